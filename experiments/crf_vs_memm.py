"""CRF vs MEMM vs Bi-MEMM vs softmax tagging heads (Su 2020, article 8).

Article: 《CRF用过了，不妨再了解下更快的MEMM？》 https://kexue.fm/archives/7213.
Two character-level tasks: MSRA NER (`jaxblog.data.msra_ner`, BMES over
PER/LOC/ORG, entity-level F1 on the official test file) and People's Daily
Jan-1998 word segmentation (`jaxblog.data.peoples_daily`, BMES, word-level
F1, split by paragraph). Both are tokenised one id per character with the
ALBERT-tiny vocabulary (`[CLS] chars [SEP]`; the head sees the characters
only), so every encoder reads the same arrays.

Encoders:
- `albert`: the pretrained Chinese ALBERT-tiny (CKIP; 4 layers *sharing* one
  block, H=312), fine-tuned end to end: the strong encoder;
- `weak`: the small scratch Transformer `TaggerConfig.weak` (1 layer, d=32);
- `albert1` (throughput only): the same pretrained block applied once.
Heads (`jaxblog.models.tagger.loss` / `decode` on emissions `[B, T, K]` and
one `[K, K]` transition matrix): per-token softmax, MEMM (left to right),
Bi-MEMM (Su's mean of both directions, same matrix) and CRF; the three chain
heads decode with `jaxblog.crf.viterbi` (the article's decoding); the MEMM
heads are also scored with their own most likely path (`memm.viterbi`). Every head of a seed gets the same
initialisation, data order, steps and optimizer: Adam with linear warm-up
and cosine decay; the transitions get `crf_lr_multiplier` x the learning
rate (bert4keras's `lr_multiplier`, via `optax.multi_transform` and
`crf_param_labels`). A fixed number of steps, no model selection; valid and
test F1 at the end; mean ± standard error over seeds.

Throughput: one training step (forward, backward, Adam) of Bi-MEMM and of
CRF with the 4-layer and the 1-layer pretrained encoder (and the weak one),
all in this process, interleaved rounds (`jaxblog.training.benchmark`); the
ratio is paired per round.

--quick (default, ~5 minutes on a loaded 2-core machine): 256 training
sentences per task, 20 steps, 1 seed, 100 valid/test sentences, length 48:
checks the pipeline, decides nothing. --full: all training sentences, 3,000
steps of batch 32, length 128, 3 seeds, full valid/test (sentences longer
than 126 characters dropped): 48 runs, of which the 24 ALBERT runs dominate
(~0.5 s per step at 32 x 128 on 2 cores with `benchmark.MALLOC_TUNABLES`, so
roughly 10 hours; a GPU makes it minutes per run). Flags override fields
for mid-scale runs, e.g. `--full --steps 1500 --batch 16 --max-len 64
--evaluate 5000` (0.2 s per ALBERT step on one core), and `--tasks`,
`--encoders`, `--heads` take comma-separated subsets. `--speed-only` runs
just the throughput benchmark; `--no-speed` skips it. A speed claim holds
when the median ratio reaches the article's speed-up and every round is
faster (`benchmark.Ratio.reaches`).
"""
from __future__ import annotations

import dataclasses
import json
import time
from typing import Optional, Tuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

from jaxblog.data import msra_ner, packages
from jaxblog.data import peoples_daily as pd
from jaxblog.data.tokenizer import ChineseTokenizer, albert_tiny_zh_dir
from jaxblog.models import heads, tagger
from jaxblog.models.hf_loader import load_hf_albert
from jaxblog.training import benchmark, cli, loop, report
from jaxblog.training.metrics import format_estimate as est, format_mean_se as fmt, mean_se

TASKS = ("ner", "cws")
ENCODERS = ("albert", "weak")
SPEED_ENCODERS = ("albert", "albert1", "weak")


@dataclasses.dataclass(frozen=True)
class Config:
  """Sizes of one run; `QUICK` and `FULL` below, flags override fields."""
  tasks: Tuple[str, ...] = TASKS
  encoders: Tuple[str, ...] = ENCODERS
  heads: Tuple[str, ...] = ("softmax", "memm", "bimemm", "crf")
  seeds: Tuple[int, ...] = (0, 1, 2)
  train: Optional[int] = None  # training sentences per task (None: all)
  evaluate: Optional[int] = None  # valid / test sentences (None: all)
  steps: int = 3000
  batch: int = 32
  max_len: int = 128  # tokens incl. [CLS] and [SEP]; longer sentences are dropped
  albert_lr: float = 2e-4
  weak_lr: float = 3e-3
  # Transitions learn at multiplier x lr (about 2e-2 for both encoders).
  albert_crf_multiplier: float = 100.0
  weak_crf_multiplier: float = 10.0
  speed_rounds: int = 7
  speed_calls: int = 3
  speed_encoders: Tuple[str, ...] = SPEED_ENCODERS


QUICK = Config(seeds=(0,), train=256, evaluate=100, steps=20, batch=16, max_len=48,
               speed_rounds=2, speed_calls=1)
FULL = Config()
# `--smoke`: the NER task with every encoder and head at toy size (the test suite's check;
# CWS differs only in its loader, `jaxblog.data.peoples_daily`, tested in tests/data).
SMOKE = Config(tasks=("ner",), seeds=(0,), train=16, evaluate=8, steps=2, batch=8, max_len=24,
               speed_rounds=1, speed_calls=1, speed_encoders=("albert1",))


def load_task(task: str, cfg: Config, tok: ChineseTokenizer):
  """`(labels, {"train"|"valid"|"test": arrays})` of one task, one id per character."""
  if task == "ner":
    parts = msra_ner.load(seed=0)
    parts = [(s.chars, s.tags) for s in parts]
    labels = msra_ner.TAGS
  else:
    parts = [([list(t) for t in s.texts], s.tags) for s in pd.load("cws")]
    labels = pd.LABELS["cws"]
  index = {t: i for i, t in enumerate(labels)}
  charset = sorted({c for chars, _ in parts for sent in chars for c in sent})
  char_id = {c: (ids[0] if ids else tok.unk_id) for c, ids in zip(charset, tok.ids(charset))}

  def encode(chars, tags, limit, shuffle):
    keep = [i for i, c in enumerate(chars) if len(c) <= cfg.max_len - 2]
    if shuffle:  # one fixed order, so a subsample is a random one
      keep = [keep[i] for i in np.random.default_rng(0).permutation(len(keep))]
    keep = keep[:limit]
    ids = np.zeros((len(keep), cfg.max_len), np.int32)
    tag_ids = np.zeros_like(ids)
    for r, i in enumerate(keep):
      n = len(chars[i])
      ids[r, :n + 2] = [tok.cls_id] + [char_id[c] for c in chars[i]] + [tok.sep_id]
      tag_ids[r, 1:n + 1] = [index[t] for t in tags[i]]
    return {"ids": ids, "tags": tag_ids}

  data = {"train": encode(*parts[0], cfg.train, True), "valid": encode(*parts[1], cfg.evaluate, False),
          "test": encode(*parts[2], cfg.evaluate, False)}
  return labels, data


def build(encoder: str, num_tags: int, cfg: Config, albert: dict, seed: int):
  """`(emit, params, lr, multiplier)`; `emit(params, ids, rng)` -> (emissions `[B, T-1, K]`, transitions)."""
  if encoder == "weak":
    model = tagger.Tagger(tagger.TaggerConfig.weak(albert["config"].vocab_size, num_tags,
                                                   max_len=cfg.max_len))
    ids = jnp.zeros((1, cfg.max_len), jnp.int32)
    params = model.init(jax.random.key(seed), ids, ids > 0)["params"]

    def emit(p, ids, rng=None):
      em, trans = model.apply({"params": p}, ids, ids > 0, train=rng is not None,
                              rngs=None if rng is None else {"dropout": rng})
      return em[:, 1:], trans
    return emit, params, cfg.weak_lr, cfg.weak_crf_multiplier
  config = albert["config"].replace(num_layers=1 if encoder == "albert1" else 4)
  model = heads.CrfTagger(config, num_tags)  # ALBERT's dropout is 0: deterministic
  params = model.init(jax.random.key(seed), jnp.zeros((1, cfg.max_len), jnp.int32))["params"]
  params = heads.with_encoder(params, jax.tree.map(jnp.copy, albert["params"]))

  def emit(p, ids, rng=None):
    del rng
    em, trans = model.apply({"params": p}, ids, None, ids > 0)
    return em[:, 1:], trans
  return emit, params, cfg.albert_lr, cfg.albert_crf_multiplier


def optimizer(lr: float, multiplier: float, steps: int) -> optax.GradientTransformation:
  def adam(peak):
    return optax.adam(optax.warmup_cosine_decay_schedule(0.0, peak, max(1, steps // 10), steps))
  return optax.multi_transform({"transitions": adam(lr * multiplier), "rest": adam(lr)},
                               heads.crf_param_labels)


def loss_for(emit, head):
  def loss_fn(params, batch, rng):
    em, trans = emit(params, batch["ids"], rng)
    mask = batch["ids"][:, 2:] > 0  # the characters: [CLS] dropped, [SEP] and pads masked
    em = em[:, :-1]
    return tagger.loss(head, em, trans, batch["tags"][:, 1:-1], mask), {}
  return loss_fn


def evaluate(emit, head, params, split, labels, task, size=256, memm_decoding="reference"):
  """F1 in % and the predicted tag strings per sentence."""
  @jax.jit
  def predict(p, ids):
    em, trans = emit(p, ids)
    return tagger.decode(head, em[:, :-1], trans, ids[:, 2:] > 0, memm_decoding=memm_decoding)

  ids, tags = split["ids"], split["tags"]
  lengths = (ids > 0).sum(1) - 2
  rows = []
  for i in range(0, len(ids), size):
    chunk = ids[i:i + size]
    real = len(chunk)
    chunk = np.pad(chunk, ((0, size - real), (0, 0)))  # one shape, one compilation
    rows.extend(np.asarray(predict(params, chunk))[:real])
  pred = [[labels[t] for t in row[:n]] for row, n in zip(rows, lengths)]
  gold = [[labels[t] for t in row[1:n + 1]] for row, n in zip(tags, lengths)]
  f1 = msra_ner.entity_f1(pred, gold)[2] if task == "ner" else pd.f1(gold, pred, "BMES")
  return 100 * f1, pred


def batches(train: dict, batch: int, seed: int):
  n = len(train["ids"])
  per_epoch = max(1, n // batch)

  def batch_fn(step):
    epoch, i = divmod(step, per_epoch)
    idx = np.random.default_rng([seed, epoch]).permutation(n)[i * batch:(i + 1) * batch]
    return {k: v[idx] for k, v in train.items()}
  return batch_fn


def run(cfg, task, labels, data, encoder, head, seed, albert, out) -> dict:
  emit, params, lr, mult = build(encoder, len(labels), cfg, albert, seed)
  start = time.perf_counter()
  result = loop.fit(params=params, optimizer=optimizer(lr, mult, cfg.steps),
                    loss_fn=loss_for(emit, head), batch_fn=batches(data["train"], cfg.batch, seed),
                    num_steps=cfg.steps, seed=seed, out_dir=out / f"{task}_{encoder}_{head}_s{seed}",
                    log_every=max(1, cfg.steps // 5), progress=False, name="train")
  train_s = time.perf_counter() - start
  p = result.state.params
  valid, _ = evaluate(emit, head, p, data["valid"], labels, task)
  test, pred = evaluate(emit, head, p, data["test"], labels, task)
  normalised = None  # the MEMMs' own most likely path (`memm.viterbi`), for comparison
  if head in ("memm", "bimemm"):
    normalised = evaluate(emit, head, p, data["test"], labels, task,
                          memm_decoding="normalised")[0]
  return {"task": task, "encoder": encoder, "head": head, "seed": seed, "valid": valid,
          "test": test, "test_normalised": normalised,
          "loss": float(result.history[-1]["loss"]), "train_seconds": train_s,
          "predictions": pred}


def throughput(cfg, labels, data, albert, seed):
  """Per-round seconds per training step of Bi-MEMM and CRF per speed encoder."""
  batch = batches(data["train"], cfg.batch, seed)(0)
  fns, tokens = {}, int((batch["ids"] > 0).sum()) - 2 * cfg.batch
  for encoder in cfg.speed_encoders:
    for head in ("bimemm", "crf"):
      emit, params, lr, mult = build(encoder, len(labels), cfg, albert, seed)
      opt = optimizer(lr, mult, cfg.steps)
      step = loop.make_train_step(loss_for(emit, head), opt, seed)
      box = [loop.TrainState(jnp.zeros((), jnp.int32), params, opt.init(params))]

      def call(step=step, box=box):
        box[0], m = step(box[0], batch)  # the step donates its state
        return m
      fns[f"{encoder}/{head}"] = call
  times = benchmark.interleaved(fns, rounds=cfg.speed_rounds, calls=cfg.speed_calls)
  return times, tokens




def parse(argv):
  def extra(parser):
    for name in ("tasks", "encoders", "heads"):
      parser.add_argument(f"--{name}", default=None, help="comma-separated subset")
    parser.add_argument("--seeds", type=int, default=None, help="number of seeds")
    for name in ("train", "evaluate", "steps", "batch", "max-len", "speed-rounds"):
      parser.add_argument(f"--{name}", type=int, default=None)
    speed = parser.add_mutually_exclusive_group()
    speed.add_argument("--no-speed", action="store_true", help="skip the throughput benchmark")
    speed.add_argument("--speed-only", action="store_true",
                       help="only the throughput benchmark (no training runs)")

  args = cli.parse_args(__doc__, argv, extra)
  cfg = SMOKE if args.smoke else QUICK if args.quick else FULL
  changes = {k: getattr(args, k) for k in ("train", "evaluate", "steps", "batch", "max_len",
                                           "speed_rounds") if getattr(args, k) is not None}
  for name, allowed in (("tasks", TASKS), ("encoders", ENCODERS), ("heads", tagger.HEADS)):
    if getattr(args, name):
      changes[name] = cli.subset(getattr(args, name), allowed, name)
  if args.seeds:
    changes["seeds"] = tuple(range(args.seed, args.seed + args.seeds))
  elif args.seed:
    changes["seeds"] = tuple(s + args.seed for s in cfg.seeds)
  return args, dataclasses.replace(cfg, **changes)


def main(argv=None):
  args, cfg = parse(argv)
  try:
    model, variables = load_hf_albert(albert_tiny_zh_dir())
    tok = ChineseTokenizer.albert_tiny_zh()
    if "cws" in cfg.tasks and not pd.available():
      raise packages.MissingPackageError(pd.INSTALL_HINT)
    tasks = {t: load_task(t, cfg, tok) for t in cfg.tasks}
  except packages.MissingPackageError as e:
    print(e)
    cli.missing_data(packages.INSTALL_HINT)
  albert = {"config": model.config, "params": variables["params"]}
  t0 = time.time()
  runs = []
  for task, (labels, data) in ({} if args.speed_only else tasks).items():
    for seed in cfg.seeds:
      for encoder in cfg.encoders:
        for head in cfg.heads:
          runs.append(run(cfg, task, labels, data, encoder, head, seed, albert, args.out))
          r = runs[-1]
          print(f"{task} {encoder} {head} seed {seed}: valid {r['valid']:.2f} test "
                f"{r['test']:.2f} ({r['train_seconds']:.0f}s)", flush=True)
          with (args.out / "runs.jsonl").open("a") as f:  # partial results of a long run
            f.write(json.dumps({k: v for k, v in r.items() if k != "predictions"}) + "\n")
  speed = None
  if not args.no_speed:
    labels, data = tasks[cfg.tasks[0]]
    speed = throughput(cfg, labels, data, albert, cfg.seeds[0])
  report_results(args, cfg, tasks, runs, speed, time.time() - t0, tok.decode)


def paired(runs, task, encoder, a, b):
  """Mean and s.e. over seeds of test F1 `a - b` (paired by seed)."""
  by = {(r["head"], r["seed"]): r["test"] for r in runs
        if r["task"] == task and r["encoder"] == encoder}
  seeds = sorted({s for h, s in by if h == a} & {s for h, s in by if h == b})
  return mean_se(by[a, s] - by[b, s] for s in seeds) if seeds else (float("nan"), float("nan"))


def report_results(args, cfg, tasks, runs, speed, seconds, decode):
  rows, claims = [], []
  many = len(cfg.seeds) >= 2
  why = "" if many else "; one seed: no standard error, no verdict"
  for task in (cfg.tasks if runs else ()):
    for encoder in cfg.encoders:
      for head in cfg.heads:
        mine = [r for r in runs if (r["task"], r["encoder"], r["head"]) == (task, encoder, head)]
        normalised = [r["test_normalised"] for r in mine if r.get("test_normalised") is not None]
        rows.append((task, encoder, head, fmt(r["valid"] for r in mine),
                     fmt(r["test"] for r in mine), fmt(normalised) if normalised else "-",
                     fmt(r["loss"] for r in mine), fmt(r["train_seconds"] for r in mine)))
      have = set(cfg.heads)
      if {"bimemm", "memm", "softmax"} <= have:
        d1, s1 = paired(runs, task, encoder, "bimemm", "memm")
        d2, s2 = paired(runs, task, encoder, "memm", "softmax")
        claims.append(report.Claim(
            f"{task} {encoder}: Bi-MEMM > MEMM > softmax (test F1)", "holds in all his runs",
            f"Bi-MEMM - MEMM {est(d1, s1, signed=True)}, MEMM - softmax {est(d2, s2, signed=True)}" + why,
            bool(d1 > 0 and d2 > 0) if many else None))
      elif {"bimemm", "softmax"} <= have:
        d, s = paired(runs, task, encoder, "bimemm", "softmax")
        claims.append(report.Claim(
            f"{task} {encoder}: Bi-MEMM > softmax (test F1)", "holds in all his runs",
            f"{est(d, s, signed=True)} points" + why, bool(d > 0) if many else None))
      if {"crf", "bimemm"} <= have:
        d, s = paired(runs, task, encoder, "crf", "bimemm")
        if encoder == "albert":
          art, ok = "CRF ≈ Bi-MEMM (strong encoder)", abs(d) <= max(0.3, 2 * s)
        else:
          art, ok = "CRF ≈ +0.5 over Bi-MEMM (weak encoder)", d > 2 * s and d > 0
        claims.append(report.Claim(f"{task} {encoder}: CRF - Bi-MEMM (test F1)", art,
                                   f"{est(d, s, signed=True)} points" + why, bool(ok) if many else None))
        claims.append(report.Claim(f"{task} {encoder}: CRF never worse than Bi-MEMM",
                                   "basically never worse", f"{est(d, s, signed=True)} points" + why,
                                   bool(d > -2 * s) if many else None))
  tables = {}
  if runs:
    tables["test / valid F1 % (mean ± s.e. over seeds; fixed steps, no model selection)"] = (
        report.markdown_table(["task", "encoder", "head", "valid F1", "test F1",
                               "test F1, MEMM-normalised decoding", "final train loss",
                               "train s"], rows))
  extra = {"config": dataclasses.asdict(cfg),
           "runs": [{k: v for k, v in r.items() if k != "predictions"} for r in runs]}
  if speed is not None:
    times, tokens = speed
    speed_rows = []
    for encoder, target, art in (("albert", 1.25, "1.25x (12-layer BERT-base)"),
                                 ("albert1", 1.5, "1.5x (2-layer BERT)"), ("weak", None, "-")):
      if encoder not in cfg.speed_encoders:
        continue
      ratio = benchmark.paired_ratio(times, f"{encoder}/crf", f"{encoder}/bimemm")
      speed_rows.append((encoder, f"{tokens / np.median(times[encoder + '/bimemm']):.0f}",
                         f"{tokens / np.median(times[encoder + '/crf']):.0f}", str(ratio), art))
      if target is not None:
        layers = "4-layer" if encoder == "albert" else "1-layer"
        verdict = ratio.reaches(target)  # the article's size of speed-up
        claims.append(report.Claim(
            f"Bi-MEMM trains about {target:g}x faster than CRF ({layers} pretrained encoder)",
            art, f"{ratio} (CRF step time / Bi-MEMM step time; median, min-max over rounds)"
            + ("" if verdict is not None else "; rounds disagree: undecided"), verdict))
    tables["training throughput, same process, interleaved rounds"] = (
        benchmark.machine_line() + f"; batch {cfg.batch} x {cfg.max_len} tokens, "
        f"{cfg.speed_rounds} rounds x {cfg.speed_calls} calls\n\n" + report.markdown_table(
            ["encoder", "Bi-MEMM chars/s", "CRF chars/s", "Bi-MEMM speed-up (min-max)",
             "article"], speed_rows))
    extra["speed_seconds"] = {k: v.tolist() for k, v in times.items()}
  samples = []
  first = cfg.tasks[0]
  labels, data = tasks[first]
  ids = data["test"]["ids"]
  shown = [i for i in range(len(ids)) if data["test"]["tags"][i].any()][:3] if runs else []
  for i in shown:
    n = int((ids[i] > 0).sum()) - 2
    gold = [labels[t] for t in data["test"]["tags"][i, 1:n + 1]]
    line = [f"{first} test {i}: {decode(ids[i, 1:n + 1].tolist())}", " ".join(gold)]
    for head in cfg.heads:
      r = next(r for r in runs if (r["task"], r["encoder"], r["head"], r["seed"])
               == (first, cfg.encoders[0], head, cfg.seeds[0]))
      line.append(" ".join(r["predictions"][i]))
    samples.append(line)
  name = f"sample test tags ({cfg.encoders[0]}, seed {cfg.seeds[0]}; text as the model reads it)"
  if samples:
    tables[name] = report.markdown_table(["sentence", "gold"] + list(cfg.heads), samples)
  sizes = "; ".join(f"{t}: {len(d['train']['ids'])} train / {len(d['valid']['ids'])} valid / "
                    f"{len(d['test']['ids'])} test" for t, (_, d) in tasks.items())
  summary = (f"{sizes} sentences (<= {cfg.max_len - 2} characters); {cfg.steps} Adam steps of "
             f"batch {cfg.batch} per run, warm-up + cosine, peak lr {cfg.albert_lr:g} (ALBERT, "
             f"transitions x{cfg.albert_crf_multiplier:g}) / {cfg.weak_lr:g} (weak, transitions "
             f"x{cfg.weak_crf_multiplier:g}); seeds {list(cfg.seeds)}; wall time {seconds:.0f}s.")
  scope = ("smoke scale: shows the pipeline runs, decides nothing" if args.quick else
           f"{len(cfg.seeds)} seed(s), {cfg.steps} steps on {sizes}: F1 gaps below ~2 s.e. "
           "(or any gap with one seed) are not decided; speed ratios are paired per round "
           "on a shared machine")
  if not runs:
    summary = f"throughput only (no training runs); {sizes} sentences; wall time {seconds:.0f}s."
    scope = "throughput only: speed ratios paired per round in one process"
  report.write(args.out, title="CRF vs MEMM vs Bi-MEMM vs softmax (MSRA NER, People's Daily CWS)",
               summary=summary, tables=tables, claims=claims, extra=extra, quick=args.quick,
               scope=scope)
  for table in tables.values():
    print(table)
  for c in claims:
    print(f"{c.claim}: {c.ours} [{report.holds_text(None if args.quick else c.holds)}]")


if __name__ == "__main__":
  main()
