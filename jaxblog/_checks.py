"""Trace-time argument checks shared by the pure-function modules.

Every check runs on static shapes/dtypes only, so it costs nothing under
`jax.jit` and raises before any computation. Messages name the argument and
the shapes involved.
"""
from __future__ import annotations

from typing import Sequence

import jax.numpy as jnp
import numpy as np


def require_floating(name: str, x) -> None:
  """TypeError unless `x` has a floating dtype."""
  if not jnp.issubdtype(jnp.result_type(x), jnp.floating):
    raise TypeError(f"{name} must be a floating array, got dtype {jnp.result_type(x)}")


def require_integer(name: str, x) -> None:
  """TypeError unless `x` has an integer dtype (bool is not an integer here)."""
  dtype = jnp.result_type(x)
  if not jnp.issubdtype(dtype, jnp.integer):
    raise TypeError(f"{name} must be an integer array, got dtype {dtype}")


def require_bool(name: str, x) -> None:
  """TypeError unless `x` is a bool array."""
  dtype = jnp.result_type(x)
  if dtype != jnp.bool_:
    raise TypeError(f"{name} must be a bool array (True = valid), got dtype {dtype}")


def require_min_rank(name: str, x, rank: int, layout: str) -> None:
  """ValueError unless `x.ndim >= rank`; `layout` is e.g. '[..., T, K]'."""
  if np.ndim(x) < rank:
    raise ValueError(f"{name} must have shape {layout}, got shape {np.shape(x)}")


def require_shape(name: str, x, shape: Sequence[int], layout: str) -> None:
  """ValueError unless `x.shape == shape` exactly."""
  if tuple(np.shape(x)) != tuple(shape):
    raise ValueError(
        f"{name} must have shape {layout} = {tuple(shape)}, got {np.shape(x)}")


def compute_dtype(dtype) -> jnp.dtype:
  """float32 for half-precision inputs, the input dtype otherwise."""
  dtype = jnp.dtype(dtype)
  if jnp.issubdtype(dtype, jnp.floating) and jnp.finfo(dtype).bits < 32:
    return jnp.dtype(jnp.float32)
  return dtype
