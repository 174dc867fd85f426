"""Piecewise-linear multipliers with absolute knot values.

The reference's `lr_schedule={1000: 1, 2000: 0.1}` means: multiplier 1 at
step 1000, 0.1 at step 2000, linear in between and constant after the last
knot; `(0, 0.0)` is prepended when there is no knot at 0, so a linear warmup
comes for free. optax's `piecewise_interpolate_schedule` multiplies scales
instead, which is why this lives here.

Steps are 0-based and read before the increment (the first update uses ρ(0)),
which matches optax's `count`.

References:
  Su, 《6个派生优化器的简单介绍及其实现》, https://kexue.fm/archives/7094
  (piecewise linear learning rate).
"""
from __future__ import annotations

import math
import numbers
from typing import Callable, Mapping

import jax.numpy as jnp
import numpy as np


def _as_step(key) -> int:
  if isinstance(key, (bool, np.bool_)):
    raise ValueError(f"schedule steps must be integers >= 0, got {key!r}")
  if isinstance(key, numbers.Integral):
    step = int(key)
  elif isinstance(key, numbers.Real) and float(key).is_integer():
    step = int(key)
  else:
    raise ValueError(f"schedule steps must be integers >= 0, got {key!r}")
  if step < 0:
    raise ValueError(f"schedule steps must be integers >= 0, got {key!r}")
  return step


def piecewise_linear(schedule: Mapping[int, float],
                     from_zero: bool = True) -> Callable[[jnp.ndarray], jnp.ndarray]:
  """An optax schedule `step -> multiplier`, linear between absolute knots.

  Args:
    schedule: mapping step → multiplier, e.g. `{1000: 1.0, 2000: 0.1}`.
      Steps are non-negative integers; multipliers finite numbers.
    from_zero: prepend the knot `(0, 0.0)` when there is no knot at step 0.
      With `from_zero=False` the multiplier before the first knot is the
      first knot's value.

  Returns:
    A function of an integer step (scalar or array) returning float32
    multipliers of the same shape; it works under `jax.jit`.

  Raises:
    ValueError: empty schedule, negative or non-integer steps, non-finite
      multipliers.

  Example:
    >>> from jaxblog import optim
    >>> rho = optim.piecewise_linear({1000: 1.0, 2000: 0.1})
    >>> [round(float(rho(t)), 4) for t in (500, 1500, 5000)]
    [0.5, 0.55, 0.1]

  References:
    Su, https://kexue.fm/archives/7094 (piecewise linear learning rate).
  """
  if not isinstance(schedule, Mapping):
    raise TypeError(f"schedule must be a mapping step -> multiplier, got {schedule!r}")
  if not schedule:
    raise ValueError("schedule must have at least one knot, got an empty mapping")
  knots: dict[int, float] = {}
  for key, value in schedule.items():
    step = _as_step(key)
    if step in knots:
      raise ValueError(f"schedule has step {step} twice")
    try:
      v = float(value)
    except TypeError as e:
      raise ValueError(f"schedule value at step {key!r} must be a number, got {value!r}") from e
    if not math.isfinite(v):
      raise ValueError(f"schedule value at step {key!r} must be finite, got {value!r}")
    knots[step] = v
  if from_zero and 0 not in knots:
    knots[0] = 0.0
  steps = sorted(knots)
  # float32 knots: steps are exact up to 2**24 (16.7M micro-steps).
  xs = np.asarray(steps, dtype=np.float32)
  ys = np.asarray([knots[s] for s in steps], dtype=np.float32)

  def multiplier(step):
    t = jnp.asarray(step).astype(jnp.float32)
    if xs.size == 1:
      return jnp.full(t.shape, ys[0], jnp.float32)
    return jnp.interp(t, xs, ys).astype(jnp.float32)

  return multiplier
