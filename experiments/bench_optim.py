"""Benchmark: jaxblog.optim derived optimizers vs their optax peers.

Same process, interleaved, median of repetitions; one jitted step updates
params and optimizer state (both donated) from fixed gradients. Beside each
time: XLA temporary bytes of the compiled step (temporaries are
re-page-faulted on every call on CPU, so they dominate).

Rows (targets from the issue):
  derive-AdamW vs optax.adamw            (<= 1.05x, no temporaries)
  derive-LAMB  vs optax.lamb             (<= 0.8x)
  accumulate(adamw, 4) vs MultiSteps     (<= 0.65x per micro-step)
  lazy(adam) on [50000,128], 8% rows vs adam (<= 1.2x; lazy_adam <= 1.5x)
plus, for information, lazy(adam, freeze_state=True): the same LazyAdam
through the general wrapper.

Usage: python experiments/bench_optim.py [--quick] [--reps N] [--skip-general]
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
import optax

from jaxblog import optim


def model_params(quick: bool, smoke: bool = False):
  """~10M params in 50 leaves (quick: ~1.2M; smoke: 3 blocks of width 16)."""
  d = 16 if smoke else 128 if quick else 384
  blocks = 3 if smoke else 12
  rng = np.random.default_rng(0)
  params = {"embed": rng.normal(size=(1024 if quick else 8192, 128)).astype(np.float32) * 0.02,
            "final_norm": np.ones(128, np.float32)}
  for i in range(blocks):
    params[f"block_{i}"] = {
        "kernel_a": rng.normal(size=(d, 2 * d)).astype(np.float32) * 0.05,
        "kernel_b": rng.normal(size=(2 * d, d)).astype(np.float32) * 0.05,
        "kernel_c": rng.normal(size=(d, d)).astype(np.float32) * 0.05,
        "bias": np.zeros(2 * d, np.float32),
    }
  return jax.tree.map(jnp.asarray, params)


def make_step(tx):
  def step(params, state, grads):
    u, state = tx.update(grads, state, params)
    return optax.apply_updates(params, u), state
  return jax.jit(step, donate_argnums=(0, 1))


class Case:
  """One optimizer: compiled step, its own params/state, temp bytes."""

  def __init__(self, name, tx, params, grads, calls):
    self.name, self.calls, self.grads = name, calls, grads
    self.params = jax.tree.map(jnp.copy, params)
    self.state = tx.init(self.params)
    self.step = make_step(tx)
    compiled = self.step.lower(self.params, self.state, grads).compile()
    self.temp = compiled.memory_analysis().temp_size_in_bytes
    self.run()  # warm up

  def run(self):
    t0 = time.perf_counter()
    for _ in range(self.calls):
      self.params, self.state = self.step(self.params, self.state, self.grads)
    jax.block_until_ready((self.params, self.state))
    return (time.perf_counter() - t0) / self.calls


def compare(ours: Case, peer: Case, reps: int):
  a, b = [], []
  for r in range(reps):
    order = (ours, peer) if r % 2 == 0 else (peer, ours)
    for case in order:
      (a if case is ours else b).append(case.run())
  return statistics.median(a), statistics.median(b)


def mb(nbytes):
  return f"{nbytes / 2**20:.1f}"


def main():
  ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  ap.add_argument("--quick", action="store_true", help="small sizes, few repetitions")
  ap.add_argument("--smoke", action="store_true", help="toy sizes, 2 rounds: checks the script runs (the test suite's check)")
  ap.add_argument("--reps", type=int, default=None)
  ap.add_argument("--out", type=Path, default=Path("runs/bench/optim.md"))
  ap.add_argument("--skip-general", action="store_true",
                  help="skip the informational general-path lazy(freeze_state) row")
  args = ap.parse_args()
  args.quick = args.quick or args.smoke
  reps = args.reps or (2 if args.smoke else 5 if args.quick else 21)
  load0 = os.getloadavg()

  params = model_params(args.quick, args.smoke)
  n_params = sum(x.size for x in jax.tree.leaves(params))
  n_leaves = len(jax.tree.leaves(params))
  tree_mb = n_params * 4 / 2**20
  rng = np.random.default_rng(1)
  grads = jax.tree.map(lambda p: jnp.asarray(rng.normal(size=p.shape).astype(np.float32)), params)

  rows = []

  def add(label, ours_tx, peer_tx, p, g, calls, target, note=""):
    ours = Case("ours", ours_tx, p, g, calls)
    peer = Case("peer", peer_tx, p, g, calls)
    t_ours, t_peer = compare(ours, peer, reps)
    ratio = t_ours / t_peer
    if target is None:
      target, met = "-", "info"
    else:
      met = "yes" if ratio <= float(target.strip("<= x")) else "**no**"
    rows.append([label, f"{t_ours * 1e3:.2f}", f"{t_peer * 1e3:.2f}", f"{ratio:.2f}", target, met,
                 mb(ours.temp), mb(peer.temp), note])
    print(" | ".join(rows[-1]), flush=True)

  lr, wd = 1e-3, 0.01
  add("derive AdamW vs optax.adamw",
      optim.derive(optax.scale_by_adam(eps=1e-6), lr, weight_decay=wd),
      optax.adamw(lr, eps=1e-6, weight_decay=wd), params, grads, 5, "<= 1.05x")
  add("derive LAMB vs optax.lamb",
      optim.derive(optax.scale_by_adam(eps=1e-6), lr, weight_decay=wd, layer_adaptation=True),
      optax.lamb(lr, weight_decay=wd), params, grads, 5, "<= 0.8x")
  add("accumulate(adamw,4) vs MultiSteps(adamw,4), per micro-step",
      optim.accumulate(optax.adamw(lr), 4),
      optax.MultiSteps(optax.adamw(lr), 4).gradient_transformation(), params, grads, 8,
      "<= 0.65x", "temp target <= 2 trees")

  vocab = 500 if args.smoke else 5000 if args.quick else 50000
  emb = {"embedding": jnp.asarray(rng.normal(size=(vocab, 128)).astype(np.float32) * 0.02)}
  touched = rng.random(vocab) < 0.08
  g_emb = {"embedding": jnp.asarray(
      rng.normal(size=(vocab, 128)).astype(np.float32) * touched[:, None])}
  add(f"lazy(adam) [{vocab},128], 8% rows vs adam",
      optim.lazy(optax.adam(lr)), optax.adam(lr), emb, g_emb, 5, "<= 1.2x")
  add(f"lazy_adam [{vocab},128], 8% rows vs adam",
      optim.lazy_adam(lr), optax.adam(lr), emb, g_emb, 5, "<= 1.5x",
      "fused LazyAdam")
  if not args.skip_general:
    # The same update through the general frozen-state wrapper: what the
    # fused LazyAdam saves.
    add(f"lazy(adam, freeze_state) [{vocab},128], 8% rows vs adam",
        optim.lazy(optax.adam(lr), freeze_state=True), optax.adam(lr), emb, g_emb, 5, None,
        "general path")

  load1 = os.getloadavg()
  header = ["step", "jaxblog ms", "peer ms", "ratio", "target", "met", "jaxblog temp MB",
            "peer temp MB", "note"]
  lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
  lines += ["| " + " | ".join(r) + " |" for r in rows]
  table = "\n".join(lines)
  meta = (f"params: {n_params / 1e6:.2f}M in {n_leaves} leaves (one f32 tree = {tree_mb:.1f} MB); "
          f"median of {reps} interleaved reps; jax {jax.__version__}, optax {optax.__version__}; "
          f"load avg before {load0[0]:.2f}, after {load1[0]:.2f} (2 cores shared with other agents)")
  text = f"{table}\n\n{meta}\n"
  print("\n" + text)
  args.out.parent.mkdir(parents=True, exist_ok=True)
  args.out.write_text(text)


if __name__ == "__main__":
  main()
