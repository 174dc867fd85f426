"""Benchmark: cached generation, jaxblog vs Hugging Face `GPT2LMHeadModel.generate`.

Same process, same random GPT-2 weights (converted with
`jaxblog.models.hf_loader.gpt2_from_hf`), timed with `jaxblog.training.benchmark`
(interleaved rounds, paired per-round ratios with their spread):

  jaxblog greedy   `cached_decoder` + `jaxblog.decoding.sample(top_k=1)`, one jit
  jaxblog beam-4   `cached_decoder` + `jaxblog.decoding.beam_search(beam_size=4)`
  HF greedy        `generate(do_sample=False)` (PyTorch, DynamicCache)
  HF beam-4        `generate(num_beams=4)`

Both sides generate exactly `new` tokens (`min_new_tokens` / `min_len` forbid
EOS, no length penalty), and before timing the script checks that both produce
the same tokens (greedy: all rows; beam: the best beam). PyTorch is timed at 1
and 2 threads and the faster of the two is kept in every round. Also reported:
KV-cache bytes per token and sequence, and XLA temporary bytes of the compiled
jaxblog functions.

Issue #7 targets: greedy >= 3x and beam-4 >= 2x Hugging Face tokens/s.

Usage: python experiments/bench_generate.py [--quick] [--reps N]
"""
from __future__ import annotations

import argparse
import statistics
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

from jaxblog import decoding
from jaxblog.models.generate import cached_decoder, kv_bytes_per_token
from jaxblog.models.hf_loader import gpt2_from_hf
from jaxblog.training import benchmark

EOS = 1


def build(layers, width, heads, vocab, positions):
  import torch  # pylint: disable=import-outside-toplevel
  import transformers  # pylint: disable=import-outside-toplevel
  torch.manual_seed(0)
  config = transformers.GPT2Config(vocab_size=vocab, n_positions=positions, n_embd=width,
                                   n_layer=layers, n_head=heads, eos_token_id=EOS,
                                   bos_token_id=EOS, pad_token_id=0)
  hf = transformers.GPT2LMHeadModel(config).eval()
  model, variables = gpt2_from_hf(config.to_dict(),
                                  {k: v.numpy() for k, v in hf.state_dict().items()})
  return hf, model, variables


def jax_generators(model, new, batch):
  def greedy(variables, prompt):
    step_fn, state = cached_decoder(model, variables, prompt, max_new_tokens=new)
    return decoding.sample(step_fn, state, jax.random.PRNGKey(0), batch_size=batch,
                           max_len=new, bos_id=0, eos_id=EOS, top_k=1, min_len=new)

  def beam(variables, prompt):
    step_fn, state = cached_decoder(model, variables, prompt, max_new_tokens=new)
    seqs, _ = decoding.beam_search(step_fn, state, batch_size=batch, beam_size=4, max_len=new,
                                   bos_id=0, eos_id=EOS, min_len=new)
    return seqs[:, 0]

  return {"greedy": jax.jit(greedy), "beam-4": jax.jit(beam)}


def hf_generators(hf, new):
  import torch  # pylint: disable=import-outside-toplevel

  def make(beams):
    def run(prompt):
      with torch.no_grad():
        out = hf.generate(prompt, attention_mask=torch.ones_like(prompt), max_new_tokens=new,
                          min_new_tokens=new, do_sample=False, num_beams=beams,
                          length_penalty=0.0, early_stopping=False, pad_token_id=0)
      return out[:, prompt.shape[1]:]
    return run

  return {"greedy": make(1), "beam-4": make(4)}


def main():
  parser = argparse.ArgumentParser(description=__doc__,
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument("--quick", action="store_true", help="fewer rounds")
  parser.add_argument("--smoke", action="store_true", help="toy sizes, 2 rounds: checks the script runs (the test suite's check)")
  parser.add_argument("--reps", type=int, default=None, help="interleaved rounds")
  parser.add_argument("--out", type=Path, default=Path("runs/bench/generate.md"))
  args = parser.parse_args()
  import torch  # pylint: disable=import-outside-toplevel

  layers, width, heads, vocab, batch, prompt_len, new = 4, 256, 4, 8000, 8, 16, 64
  if args.smoke:
    layers, width, heads, vocab, batch, prompt_len, new = 1, 32, 2, 256, 2, 4, 6
  reps = args.reps or (2 if args.smoke else 3 if args.quick else 7)
  hf, model, variables = build(layers, width, heads, vocab, positions=128)
  prompt = np.random.default_rng(0).integers(2, vocab, (batch, prompt_len)).astype(np.int32)
  prompt_jax, prompt_torch = jnp.asarray(prompt), torch.tensor(prompt, dtype=torch.long)
  ours, theirs = jax_generators(model, new, batch), hf_generators(hf, new)

  def hf_at(mode, threads):
    def run():
      torch.set_num_threads(threads)
      return theirs[mode](prompt_torch)
    return run

  head = benchmark.machine_line()
  rows, lines = [], []
  for mode in ("greedy", "beam-4"):
    a = np.asarray(ours[mode](variables, prompt_jax))
    b = theirs[mode](prompt_torch).numpy()
    agree = float(np.mean(a == b))
    lines.append(f"{mode}: token agreement with HF = {agree:.4f} "
                 f"({'identical' if agree == 1.0 else 'DIFFERENT'})")
    times = benchmark.interleaved(
        {"jaxblog": lambda m=mode: ours[m](variables, prompt_jax),
         "HF t1": hf_at(mode, 1), "HF t2": hf_at(mode, 2)}, rounds=reps, calls=3)
    times["HF best"] = benchmark.best_of(times, ["HF t1", "HF t2"])
    ratio = benchmark.paired_ratio(times, "HF best", "jaxblog")
    med = {k: statistics.median(v) for k, v in times.items()}
    tok = batch * new
    target = 3.0 if mode == "greedy" else 2.0
    rows.append(f"| {mode} | {tok / med['jaxblog']:.0f} | {tok / med['HF t1']:.0f} | "
                f"{tok / med['HF t2']:.0f} | {ratio} | {target:.0f}x "
                f"{'met' if ratio.median >= target else 'NOT met'} | "
                f"{benchmark.temp_mib(ours[mode], variables, prompt_jax):.2f} |")
  table = "\n".join([
      f"GPT-2 shape: {layers} layers, width {width}, {heads} heads, vocab {vocab}, "
      f"batch {batch}, prompt {prompt_len}, {new} new tokens, random weights; "
      f"{reps} interleaved rounds (1 dropped + median of 3 timed calls per contestant "
      f"per round); tok/s from the median round; speed-up = median (min-max) over rounds "
      f"of the per-round ratio best-HF time / jaxblog time. Start: {head}; "
      f"end: {benchmark.machine_line()}",
      "",
      "| mode | jaxblog tok/s | HF tok/s (1 thr) | HF tok/s (2 thr) | speed-up vs best HF "
      "| target | XLA temp MiB |",
      "|---|---|---|---|---|---|---|",
      *rows,
      "",
      *lines,
      f"KV cache: {kv_bytes_per_token(model.config)} bytes per token per sequence "
      f"(2 x {layers} layers x {width} x float32; HF DynamicCache stores the same), i.e. "
      f"{kv_bytes_per_token(model.config) * (prompt_len + new) * batch * 4 / 2**20:.1f} MiB "
      f"for the beam-4 batch at full length.",
  ])
  print(table)
  args.out.parent.mkdir(parents=True, exist_ok=True)
  args.out.write_text(table + "\n")


if __name__ == "__main__":
  main()
