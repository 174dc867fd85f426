"""Data-parallel placement: batch axis sharded over all devices, params replicated.

The same script runs on one CPU, a multi-GPU box or a TPU slice: a 1-D `Mesh`
over `jax.devices()` with axis name `"data"`. XLA inserts the gradient
all-reduce itself because the loss is a mean over a sharded batch.
"""
from __future__ import annotations

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec as P

DATA_AXIS = "data"


def data_mesh(devices=None) -> Mesh:
  """A 1-D mesh named `"data"` over `devices` (default: all devices)."""
  devices = jax.devices() if devices is None else list(devices)
  return Mesh(np.asarray(devices), (DATA_AXIS,))


def replicate(tree, mesh: Mesh):
  """Places every leaf of `tree` on all devices of `mesh` (replicated)."""
  return jax.device_put(tree, NamedSharding(mesh, P()))


def shard_batch(batch, mesh: Mesh):
  """Splits the leading axis of every leaf of `batch` over the `"data"` axis.

  Raises:
    ValueError: if a leaf's leading axis is not divisible by the device count.
  """
  n = mesh.devices.size

  def put(x):
    x = np.asarray(x)
    if x.ndim == 0 or x.shape[0] % n:
      raise ValueError(
          f"batch leaf of shape {x.shape}: leading axis must be divisible by the "
          f"{n} devices of the mesh")
    return jax.device_put(x, NamedSharding(mesh, P(DATA_AXIS)))

  return jax.tree_util.tree_map(put, batch)
