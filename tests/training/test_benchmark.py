import os
import platform
import subprocess
import sys

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



@pytest.mark.parametrize("per_round, verdict", [
    ([1.3, 1.4, 1.2], True),     # median reaches 1.25, every round faster
    ([1.1, 1.2, 1.15], False),   # no round reaches 1.25
    ([0.9, 1.3, 1.4], None),     # median reaches it but one round is slower: undecided
    ([1.0, 1.1, 1.3], None),     # one round reaches it, the median does not
])
def test_ratio_reaches(per_round, verdict):
  times = {"crf": np.array(per_round), "bimemm": np.ones(3)}
  assert benchmark.paired_ratio(times, "crf", "bimemm").reaches(1.25) is verdict


def test_bad_arguments():
  with pytest.raises(ValueError, match="rounds"):
    benchmark.interleaved({"a": lambda: None}, rounds=0)
  with pytest.raises(ValueError, match="at least one"):
    benchmark.interleaved({})


def test_malloc_env_appends_once():
  env = benchmark.malloc_env({"PATH": "/bin"})
  assert env["GLIBC_TUNABLES"] == benchmark.MALLOC_TUNABLES and env["PATH"] == "/bin"
  mixed = benchmark.malloc_env({"GLIBC_TUNABLES": "glibc.cpu.x86_shstk=off"})
  assert mixed["GLIBC_TUNABLES"] == "glibc.cpu.x86_shstk=off:" + benchmark.MALLOC_TUNABLES
  assert benchmark.malloc_env(mixed) == mixed


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="glibc tunables only")
def test_reexec_with_malloc_tunables(tmp_path):
  script = tmp_path / "child.py"
  script.write_text(
      "import os, sys\n"
      "from jaxblog.training import benchmark\n"
      "print('start', sys.argv[1:], flush=True)\n"
      "benchmark.reexec_with_malloc_tunables()\n"
      "print('tunables', os.environ['GLIBC_TUNABLES'])\n")
  env = {k: v for k, v in os.environ.items() if k != "GLIBC_TUNABLES"}
  out = subprocess.run([sys.executable, str(script), "x"], capture_output=True, text=True,
                       env=env, check=True).stdout.splitlines()
  # first run prints start and re-executes; the second finds the tunables set
  assert out == ["start ['x']", "start ['x']", "tunables " + benchmark.MALLOC_TUNABLES]
