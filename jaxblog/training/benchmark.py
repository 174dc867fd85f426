"""Same-process, interleaved timing with paired per-round ratios.

Every `experiments/bench_*.py` compares jaxblog with a peer in one process.
Absolute times on a shared 2-core VM drift by tens of percent between
minutes, so a benchmark here never compares medians taken at different
times: it runs the contestants in *rounds* (the order rotated each round),
and within a round each contestant gets one dropped call (PyTorch's OpenMP
workers keep spinning after a call and would charge the next contestant)
followed by `calls` timed calls. The ratio of two contestants is then taken
per round, and its median and spread (min–max over rounds) are reported, so
load that comes and goes moves both sides of each ratio together.
"""
from __future__ import annotations

import os
import platform
import statistics
import sys
import time
from typing import Any, Callable, Dict, Mapping, NamedTuple, Optional, Sequence

import jax
import numpy as np


def _timed_call(fn: Callable[[], Any]) -> float:
  start = time.perf_counter()
  jax.block_until_ready(fn())
  return time.perf_counter() - start


def interleaved(fns: Mapping[str, Callable[[], Any]], *, rounds: int = 7, calls: int = 3,
                warmup: int = 1) -> Dict[str, np.ndarray]:
  """Per-round seconds per call of each contestant.

  Args:
    fns: name -> zero-argument callable; its result is blocked on, so JAX
      dispatch is timed to completion (torch calls are synchronous on CPU).
    rounds: number of rounds (>= 1).
    calls: timed calls per contestant per round (>= 1); the round's value is
      their median.
    warmup: untimed calls of each contestant before the first round
      (compilation, allocator warm-up).

  Returns:
    name -> float64 `[rounds]`, seconds per call.
  """
  if rounds < 1 or calls < 1 or warmup < 0:
    raise ValueError(f"rounds and calls must be >= 1 and warmup >= 0, got rounds={rounds}, "
                     f"calls={calls}, warmup={warmup}")
  if not fns:
    raise ValueError("fns must name at least one contestant")
  names = list(fns)
  for name in names:
    for _ in range(warmup):
      _timed_call(fns[name])
  times = {name: np.zeros(rounds) for name in names}
  for r in range(rounds):
    shift = r % len(names)
    for name in names[shift:] + names[:shift]:
      _timed_call(fns[name])
      times[name][r] = statistics.median(_timed_call(fns[name]) for _ in range(calls))
  return times


class Ratio(NamedTuple):
  """A paired ratio `numerator_time / denominator_time` over rounds."""
  median: float
  low: float
  high: float
  per_round: np.ndarray

  def __str__(self) -> str:
    return f"{self.median:.2f}x ({self.low:.2f}-{self.high:.2f})"

  def reaches(self, target: float) -> Optional[bool]:
    """Verdict on "the denominator is about `target` times faster".

    `True` when the median reaches `target` and every round is faster
    (ratio > 1); `False` when no round reaches `target`; `None` when the
    rounds disagree (load noise is as large as the effect).
    """
    if self.median >= target and self.low > 1.0:
      return True
    if self.high < target:
      return False
    return None


def paired_ratio(times: Mapping[str, np.ndarray], numerator: str, denominator: str) -> Ratio:
  """Round-by-round `times[numerator] / times[denominator]`: how many times faster
  `denominator` is than `numerator`, with its spread over rounds."""
  ratios = np.asarray(times[numerator]) / np.asarray(times[denominator])
  return Ratio(float(np.median(ratios)), float(ratios.min()), float(ratios.max()), ratios)


def best_of(times: Mapping[str, np.ndarray], names: Sequence[str]) -> np.ndarray:
  """Per round, the fastest of `names` (e.g. a peer timed at 1 and 2 threads)."""
  return np.min(np.stack([np.asarray(times[n]) for n in names]), axis=0)


def temp_mib(jitted: Any, *args: Any, **kwargs: Any) -> float:
  """XLA's temporary buffer size in MiB for a `jax.jit`-wrapped function at
  these arguments (NaN where the backend does not report it)."""
  stats = jitted.lower(*args, **kwargs).compile().memory_analysis()
  return stats.temp_size_in_bytes / 2**20 if stats is not None else float("nan")


def machine_line() -> str:
  """Load averages and core count, for the header of a benchmark table."""
  one, five, fifteen = os.getloadavg()
  return (f"load avg {one:.2f}/{five:.2f}/{fifteen:.2f} on {os.cpu_count()} cores, "
          f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}")


# glibc malloc settings that keep freed memory for reuse: no `mmap` for large
# blocks (XLA:CPU's per-call temporaries, ~0.9 GB for an ALBERT-tiny training
# step, were otherwise mapped and page-faulted anew on every call: 225k minor
# faults per step), no trimming, and transparent huge pages for the heap.
MALLOC_TUNABLES = ("glibc.malloc.hugetlb=1:glibc.malloc.mmap_max=0:"
                   "glibc.malloc.trim_threshold=68719476736")


def malloc_env(env: Mapping[str, str]) -> Dict[str, str]:
  """`env` with `MALLOC_TUNABLES` appended to `GLIBC_TUNABLES` (unless present)."""
  out = dict(env)
  current = out.get("GLIBC_TUNABLES", "")
  if MALLOC_TUNABLES not in current:
    out["GLIBC_TUNABLES"] = f"{current}:{MALLOC_TUNABLES}" if current else MALLOC_TUNABLES
  return out


def reexec_with_malloc_tunables() -> None:
  """Restarts this Python process with `malloc_env` (glibc reads its tunables
  only at start-up); returns at once when they are already set or the C
  library is not glibc."""
  if platform.libc_ver()[0] != "glibc" or MALLOC_TUNABLES in os.environ.get("GLIBC_TUNABLES", ""):
    return
  sys.stdout.flush()
  sys.stderr.flush()
  os.execve(sys.executable, [sys.executable, *sys.argv], malloc_env(os.environ))
