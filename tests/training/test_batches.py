"""Shuffled-epoch and random batches, and batched evaluation."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxblog.training import batches


def test_epoch_batches_cover_each_epoch_once_and_are_pure():
  data = {"x": np.arange(10) * 10, "y": np.arange(10)}
  batch_fn = batches.epoch_batches(data, 3, seed=4)
  assert batch_fn.steps_per_epoch == 3
  for epoch in range(2):
    seen = np.concatenate([batch_fn(epoch * 3 + i)["y"] for i in range(3)])
    assert len(set(seen.tolist())) == 9  # one row of the 10 dropped
    np.testing.assert_array_equal(
        seen, np.random.default_rng([4, epoch]).permutation(10)[:9])
  b = batch_fn(4)
  np.testing.assert_array_equal(b["x"], b["y"] * 10)
  np.testing.assert_array_equal(batch_fn(4)["y"], batches.epoch_batches(data, 3, 4)(4)["y"])
  with pytest.raises(ValueError, match="batch_size"):
    batches.epoch_batches(data, 11, 0)
  with pytest.raises(ValueError, match="leading axis"):
    batches.epoch_batches({"x": np.arange(3), "y": np.arange(4)}, 1, 0)


def test_random_batches_are_seeded_by_step():
  data = {"x": np.arange(50)}
  batch_fn = batches.random_batches(data, 8, seed=1)
  np.testing.assert_array_equal(batch_fn(3)["x"],
                                np.random.default_rng([1, 3]).integers(0, 50, 8))
  assert not np.array_equal(batch_fn(3)["x"], batch_fn(4)["x"])


def test_batched_pads_the_last_chunk_and_compiles_once():
  traces = []

  @jax.jit
  def fn(x, y):
    traces.append(1)
    return {"sum": x + y, "max": jnp.max(x, axis=1)}

  x = np.arange(14.0).reshape(7, 2)
  out = batches.batched(fn, x, x, batch_size=3)
  np.testing.assert_array_equal(out["sum"], 2 * x)
  np.testing.assert_array_equal(out["max"], x[:, 1])
  assert len(traces) == 1
  with pytest.raises(ValueError, match="leading axis"):
    batches.batched(fn, x, x[:3], batch_size=3)
