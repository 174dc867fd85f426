"""Orbax checkpoints with strict resume.

A run writes `<out>/checkpoints/<step>/`; running again with the same `out`
continues from the newest one. Anything that does not restore cleanly into
the expected tree (corrupt files, other shapes, another model) raises
`CheckpointError` instead of silently starting over and overwriting it.
"""
from __future__ import annotations

import pathlib

import jax
import numpy as np
import orbax.checkpoint as ocp


class CheckpointError(RuntimeError):
  """A checkpoint exists but cannot be resumed from."""


class Checkpointer:
  """Saves and restores one pytree (the training state) by step.

  Args:
    directory: folder holding one sub-folder per saved step.
    max_to_keep: how many recent checkpoints to keep.
  """

  def __init__(self, directory: pathlib.Path, max_to_keep: int = 2):
    self.directory = pathlib.Path(directory).absolute()
    self._manager = ocp.CheckpointManager(
        self.directory,
        options=ocp.CheckpointManagerOptions(
            max_to_keep=max_to_keep, create=True,
            # Synchronous: a kill right after save() cannot leave a half-written
            # "latest" step behind (orbax also commits atomically).
            enable_async_checkpointing=False))

  def latest_step(self) -> int | None:
    return self._manager.latest_step()

  def save(self, step: int, state) -> None:
    self._manager.save(step, args=ocp.args.StandardSave(state), force=True)
    self._manager.wait_until_finished()

  def restore(self, state_like, step: int | None = None):
    """Restores into the structure, shapes and shardings of `state_like`."""
    step = self.latest_step() if step is None else step
    if step is None:
      raise CheckpointError(f"no checkpoint in {self.directory}")
    target = jax.tree_util.tree_map(ocp.utils.to_shape_dtype_struct, state_like)
    try:
      restored = self._manager.restore(step, args=ocp.args.StandardRestore(target))
    except Exception as e:  # orbax raises many types; all mean "cannot resume"
      raise CheckpointError(
          f"cannot resume from checkpoint step {step} in {self.directory}: "
          f"{type(e).__name__}: {e}. Delete that folder or choose another --out; "
          "it was left untouched.") from e
    want = jax.tree_util.tree_structure(state_like)
    got = jax.tree_util.tree_structure(restored)
    if want != got:
      raise CheckpointError(
          f"checkpoint step {step} in {self.directory} has tree {got}, expected {want}")
    for a, b in zip(jax.tree_util.tree_leaves(state_like), jax.tree_util.tree_leaves(restored)):
      da, db = np.asarray(a).dtype, np.asarray(b).dtype
      if np.shape(a) != np.shape(b) or da != db:
        raise CheckpointError(
            f"checkpoint step {step} in {self.directory}: leaf {np.shape(b)} {db} "
            f"does not match expected {np.shape(a)} {da}")
    return restored

  def close(self) -> None:
    self._manager.close()
