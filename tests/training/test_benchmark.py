import numpy as np
import pytest

from jaxblog.training import benchmark


def test_interleaved_calls_every_contestant_and_rotates():
  log = []
  fns = {"a": lambda: log.append("a"), "b": lambda: log.append("b")}
  times = benchmark.interleaved(fns, rounds=2, calls=2, warmup=1)
  assert set(times) == {"a", "b"} and times["a"].shape == (2,)
  # warm-up a, b; round 0: a (1 dropped + 2), b (3); round 1 starts with b.
  assert log == ["a", "b"] + ["a"] * 3 + ["b"] * 3 + ["b"] * 3 + ["a"] * 3
  assert np.all(times["a"] >= 0)


def test_paired_ratio_is_per_round():
  times = {"peer": np.array([2.0, 4.0, 6.0]), "ours": np.array([1.0, 1.0, 2.0])}
  r = benchmark.paired_ratio(times, "peer", "ours")
  assert r.median == 3.0 and r.low == 2.0 and r.high == 4.0
  assert str(r) == "3.00x (2.00-4.00)"
  np.testing.assert_array_equal(benchmark.best_of({"x": [1, 5], "y": [3, 2]}, ["x", "y"]), [1, 2])


def test_bad_arguments():
  with pytest.raises(ValueError, match="rounds"):
    benchmark.interleaved({"a": lambda: None}, rounds=0)
  with pytest.raises(ValueError, match="at least one"):
    benchmark.interleaved({})
