"""Benchmark: `jaxblog.vq.nearest` vs the bare matmul and the naive broadcast.

Same process, interleaved, median of repetitions (the order rotates every
round). For each (N, D, K):

  nearest      jaxblog.vq.nearest (chunked GEMM, cheap first-index-of-max)
  matmul       z @ codebook.T, the [N, K] score matrix alone: the physical
               limit of the computation (it must write N*K*4 bytes)
  mm+argmin    ‖e‖² − 2 z·e then jnp.argmin, unchunked (haiku-style)
  naive        argmin(sum((z[:, None] − e)², −1)), the broadcast form

and the XLA temporary bytes of each compiled function (peak extra memory;
`memory_analysis().temp_size_in_bytes`, plus the output for the matmul whose
output *is* the [N, K] matrix). A function whose temporaries exceed
`--max-gb` is not run.

Targets (issue #5): nearest ≤ 1.2× the matmul time, ≥ 3× faster than naive,
temporaries < 10 % of N·K·4.

Usage: python experiments/bench_vq.py [--quick] [--reps N]
"""
from __future__ import annotations

import argparse
import os
import statistics
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

from jaxblog import vq
from jaxblog.training import report

FULL = [(65536, 64, 512), (65536, 64, 8192), (262144, 32, 1024)]
QUICK = [(16384, 64, 512), (16384, 64, 2048), (65536, 32, 1024)]
SMOKE = [(256, 8, 32)]


def bare_matmul(z, cb):
  return z @ cb.T


def mm_argmin(z, cb):
  scores = jnp.sum(cb * cb, -1) - 2.0 * (z @ cb.T)
  return jnp.argmin(scores, -1).astype(jnp.int32)


def naive(z, cb):
  return jnp.argmin(jnp.sum(jnp.square(z[:, None, :] - cb[None]), -1), -1).astype(jnp.int32)


IMPLS_JIT = {name: jax.jit(f) for name, f in
             {"nearest": vq.nearest, "matmul": bare_matmul, "mm+argmin": mm_argmin,
              "naive": naive}.items()}


def extra_bytes(name, z, cb):
  """XLA temporaries; for the matmul also its output, which is the [N, K] matrix."""
  mem = IMPLS_JIT[name].lower(z, cb).compile().memory_analysis()
  return mem.temp_size_in_bytes + (mem.output_size_in_bytes if name == "matmul" else 0)


def time_once(fn, z, cb):
  t0 = time.perf_counter()
  jax.block_until_ready(fn(z, cb))
  return time.perf_counter() - t0


def bench(n, d, k, reps, max_bytes):
  z = jax.random.normal(jax.random.key(0), (n, d), jnp.float32)
  cb = jax.random.normal(jax.random.key(1), (k, d), jnp.float32)
  mem = {name: extra_bytes(name, z, cb) for name in IMPLS_JIT}
  live = [name for name in IMPLS_JIT if mem[name] <= max_bytes]
  ref = np.asarray(IMPLS_JIT["mm+argmin"](z, cb)) if "mm+argmin" in live else None
  for name in live:
    out = IMPLS_JIT[name](z, cb)  # compile + warm up
    if name != "matmul" and ref is not None:
      agree = float(np.mean(np.asarray(out) == ref))
      assert agree > 0.999, (name, agree)
  times = {name: [] for name in live}
  for r in range(reps):
    for name in live[r % len(live):] + live[:r % len(live)]:
      times[name].append(time_once(IMPLS_JIT[name], z, cb))
  return {name: statistics.median(times[name]) for name in live}, mem


def main():
  parser = argparse.ArgumentParser(description=__doc__,
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument("--quick", action="store_true", help="smaller sizes")
  parser.add_argument("--smoke", action="store_true", help="toy sizes, 2 rounds: checks the script runs (the test suite's check)")
  parser.add_argument("--out", type=Path, default=Path("runs/bench"), help="folder of the table")
  parser.add_argument("--reps", type=int, default=5)
  parser.add_argument("--max-gb", type=float, default=6.0,
                      help="skip a function whose temporaries exceed this")
  args = parser.parse_args()
  sizes = SMOKE if args.smoke else QUICK if args.quick else FULL
  if args.smoke:
    args.reps = 2
  load0 = os.getloadavg()
  rows = []
  for n, d, k in sizes:
    med, mem = bench(n, d, k, args.reps, args.max_gb * 2**30)
    full = n * k * 4
    ms = lambda name: f"{1e3 * med[name]:.1f}" if name in med else "skipped"
    mb = lambda name: f"{mem[name] / 2**20:.1f} ({100 * mem[name] / full:.1f}%)"
    ratio = lambda a, b: f"{med[a] / med[b]:.2f}" if a in med and b in med else "n/a"
    rows.append([f"({n}, {d}, {k})", ms("nearest"), ms("matmul"), ms("mm+argmin"), ms("naive"),
                 ratio("nearest", "matmul"), ratio("naive", "nearest"),
                 mb("nearest"), mb("matmul"), mb("mm+argmin"), mb("naive")])
    print(rows[-1], flush=True)
  load1 = os.getloadavg()
  head = ["(N, D, K)", "nearest ms", "matmul ms", "mm+argmin ms", "naive ms",
          "nearest÷matmul (≤1.2)", "naive÷nearest (≥3)", "nearest temp MiB (% N·K·4; <10%)",
          "matmul out+temp MiB", "mm+argmin temp MiB", "naive temp MiB"]
  table = report.markdown_table(head, rows)
  note = (f"\nmedian of {args.reps} interleaved reps; jax {jax.__version__}, "
          f"{jax.devices()[0].platform}; load average before {load0[0]:.2f}, "
          f"after {load1[0]:.2f} (shared 2-core machine: timings are noisy)\n")
  print(table + note)
  out = args.out
  out.mkdir(parents=True, exist_ok=True)
  (out / f"bench_vq{'_quick' if args.quick else ''}.md").write_text(table + note)


if __name__ == "__main__":
  main()
