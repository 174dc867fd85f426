"""Beam-search overhead: time per step of `beam_search` vs the step function alone.

The "model" is a one-layer cached decoder (embedding, attention over a
`[N, max_len, H]` KV cache written in place, output projection to V), so the
search has a real state to gather along the beam axis every step. For each
(beam, vocabulary) we time, interleaved and jitted:

* `step`: `max_len` calls of the step function alone in a `fori_loop`, same
  rows `N = batch * beam`, tokens fed back without any search;
* `beam/take`, `beam/one_hot`: `beam_search(..., early_exit=False)` (all
  `max_len` steps) with either state gather.

and report ms per step, the overhead `beam / step - 1` as a paired per-round
ratio with its spread (`jaxblog.training.benchmark`), and XLA temp bytes.

Usage: python experiments/bench_decoding.py [--quick] [--reps 7]
"""
from __future__ import annotations

import argparse
import pathlib

import jax
import jax.numpy as jnp
import numpy as np

from jaxblog.decoding import beam_search
from jaxblog.training import benchmark

HIDDEN = 256


def make_model(vocab, max_len, seed=0):
  k = jax.random.split(jax.random.PRNGKey(seed), 4)
  params = {
      "emb": jax.random.normal(k[0], (vocab, HIDDEN)) * 0.02,
      "wqkv": jax.random.normal(k[1], (HIDDEN, 3 * HIDDEN)) / np.sqrt(HIDDEN),
      "wo": jax.random.normal(k[2], (HIDDEN, HIDDEN)) / np.sqrt(HIDDEN),
      "out": jax.random.normal(k[3], (HIDDEN, vocab)) / np.sqrt(HIDDEN),
  }

  def step(tokens, state, index):
    x = params["emb"][tokens]                                   # [N, H]
    q, kk, v = jnp.split(x @ params["wqkv"], 3, axis=-1)
    keys = jax.lax.dynamic_update_index_in_dim(state["k"], kk, index, axis=1)
    vals = jax.lax.dynamic_update_index_in_dim(state["v"], v, index, axis=1)
    att = jnp.einsum("nh,nth->nt", q, keys) / np.sqrt(HIDDEN)
    att = jnp.where(jnp.arange(max_len)[None, :] <= index, att, -1e30)
    h = x + jnp.einsum("nt,nth->nh", jax.nn.softmax(att, axis=-1), vals) @ params["wo"]
    return h @ params["out"], {"k": keys, "v": vals}

  def init(rows):
    z = jnp.zeros((rows, max_len, HIDDEN), jnp.float32)
    return {"k": z, "v": z}

  return step, init


def build(vocab, beams, batch, max_len):
  step, init = make_model(vocab, max_len)

  def step_only(state):
    rows = batch * beams
    state = jax.tree.map(lambda x: jnp.repeat(x, beams, axis=0), state)

    def body(i, carry):
      tokens, st, acc = carry
      logits, st = step(tokens, st, i)
      # read every logit (a max, cheaper than any search) so XLA keeps the
      # whole projection
      return (tokens + 1) % vocab, st, acc + logits.max(axis=-1)

    carry = (jnp.zeros((rows,), jnp.int32), state, jnp.zeros((rows,)))
    return jax.lax.fori_loop(0, max_len, body, carry)[2]

  def search(gather):
    return lambda state: beam_search(step, state, batch_size=batch, beam_size=beams,
                                     max_len=max_len, bos_id=0, eos_id=1,
                                     length_penalty=0.6, early_exit=False,
                                     gather=gather)

  fns = {"step": step_only, "beam/take": search("take"),
         "beam/one_hot": search("one_hot")}
  return {k: jax.jit(f) for k, f in fns.items()}, init(batch)


def main():
  ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  ap.add_argument("--quick", action="store_true")
  ap.add_argument("--smoke", action="store_true", help="toy sizes, 2 rounds: checks the script runs (the test suite's check)")
  ap.add_argument("--out", type=pathlib.Path, default=pathlib.Path("runs/bench"),
                  help="folder of the table")
  ap.add_argument("--reps", type=int, default=7)
  ap.add_argument("--batch", type=int, default=4)
  args = ap.parse_args()
  if args.smoke:
    args.quick, args.reps = True, 2
  max_len = 8 if args.smoke else 16 if args.quick else 32
  vocabs = (256,) if args.smoke else (1024, 8192) if args.quick else (1024, 8192, 32768)
  beam_sizes = (1, 4) if args.quick else (1, 4, 16)
  head = benchmark.machine_line()
  rows = []
  for vocab in vocabs:
    for beams in beam_sizes:
      fns, arg = build(vocab, beams, args.batch, max_len)
      times = benchmark.interleaved({k: (lambda f=f: f(arg)) for k, f in fns.items()},
                                    rounds=args.reps, calls=1)
      temp = {k: benchmark.temp_mib(f, arg) for k, f in fns.items()}
      ms = {k: 1e3 * float(np.median(v)) / max_len for k, v in times.items()}
      over = {k: benchmark.paired_ratio(times, k, "step") for k in ("beam/take", "beam/one_hot")}
      rows.append((vocab, beams, ms, over, temp))
      print(f"V={vocab} K={beams}: " + ", ".join(f"{k} {v:.3f} ms" for k, v in ms.items()),
            flush=True)
  lines = [
      f"batch {args.batch}, max_len {max_len}, hidden {HIDDEN}, cache "
      f"[B*K, {max_len}, {HIDDEN}] x2, {args.reps} interleaved rounds (1 dropped + 1 timed "
      f"call each); ms/step from the median round; overhead = per-round ratio beam / step "
      f"- 1, median (min..max). Start: {head}; end: {benchmark.machine_line()}.",
      "",
      "| V | beam | step alone ms/step | beam (take) ms/step | overhead take | "
      "beam (one-hot) ms/step | overhead one-hot | temp MiB step / take / one-hot |",
      "|---|---|---|---|---|---|---|---|"]
  def overhead(r):
    return f"{r.median - 1:+.0%} ({r.low - 1:+.0%}..{r.high - 1:+.0%})"

  for vocab, beams, ms, over, temp in rows:
    lines.append(
        f"| {vocab} | {beams} | {ms['step']:.3f} | {ms['beam/take']:.3f} | "
        f"{overhead(over['beam/take'])} | {ms['beam/one_hot']:.3f} | "
        f"{overhead(over['beam/one_hot'])} | "
        f"{temp['step']:.1f} / {temp['beam/take']:.1f} / {temp['beam/one_hot']:.1f} |")
  table = "\n".join(lines)
  print(table)
  out = args.out
  out.mkdir(parents=True, exist_ok=True)
  (out / ("decoding_quick.md" if args.quick else "decoding.md")).write_text(table + "\n")


if __name__ == "__main__":
  main()
