"""Generation and extraction metrics in pure Python (no JAX, no NumPy needed).

Text metrics work on sequences of tokens; a Python `str` is a sequence of
characters, which is how Chinese generation is usually scored (Su's bert4keras
seq2seq examples join the characters with spaces before calling NLTK's BLEU
and the `rouge` package, which is the same as scoring characters here):
- `bleu`: sentence-level BLEU-4 (uniform weights, brevity penalty against
  the reference closest in length) with Chen & Cherry's smoothing "method 1":
  an n-gram order with no match gets precision `epsilon / count` (epsilon
  0.1) instead of 0, so one missing 4-gram does not zero the score. As in
  NLTK, a candidate without a single unigram match scores 0.
- `rouge_l`: ROUGE-L F1 (beta = 1) from the longest common subsequence.
- `distinct_n`: distinct n-grams / all n-grams over a set of outputs.
Extraction metrics work on tag sequences:
- `tag_spans`: `(start, end, type)` entity spans (end exclusive) from BIO or
  BMES/BIOES tags;
- `span_prf`: micro precision / recall / F1 over exact span matches.

References:
  Papineni et al. 2002, "BLEU" (ACL); Chen & Cherry 2014, "A Systematic
  Comparison of Smoothing Techniques for Sentence-Level BLEU" (WMT); Lin 2004,
  "ROUGE" (ACL workshop); Li et al. 2016, "A Diversity-Promoting Objective
  Function for Neural Conversation Models" (arXiv:1510.03055, distinct-n);
  Su 2020, https://kexue.fm/archives/7187 (the generation and extraction
  tasks these serve).
"""
from __future__ import annotations

import collections
import math
from typing import Hashable, Iterable, Sequence, Set, Tuple

Span = Tuple[int, int, str]
SCHEMES = ("bio", "bmes")


def _ngrams(tokens: Sequence[Hashable], n: int) -> collections.Counter:
  return collections.Counter(tuple(tokens[i:i + n]) for i in range(len(tokens) - n + 1))


def _check_sequence(name: str, value) -> None:
  if not isinstance(value, (str, list, tuple)):
    raise TypeError(f"{name} must be a str or a list/tuple of tokens, got {type(value).__name__}")


def bleu(candidate: Sequence[Hashable], references: Sequence[Sequence[Hashable]], *,
         max_n: int = 4, epsilon: float = 0.1) -> float:
  """Sentence BLEU with uniform weights and smoothing method 1.

  Args:
    candidate: the generated tokens (a `str` scores characters).
    references: one or more reference token sequences (a bare `str` is
      taken as a single reference).
    max_n: highest n-gram order (4 for BLEU-4).
    epsilon: numerator used for an order with no matching n-gram.

  Returns:
    BLEU in `[0, 1]`; 0 for an empty candidate or no unigram match.

  Example:
    >>> round(bleu("今天天气很好", ["今天天气不错"]), 4)
    0.5081
  """
  _check_sequence("candidate", candidate)
  if isinstance(references, str):
    references = [references]
  if not references:
    raise ValueError("references must hold at least one reference, got none")
  for i, ref in enumerate(references):
    _check_sequence(f"references[{i}]", ref)
  if not isinstance(max_n, int) or max_n < 1:
    raise ValueError(f"max_n must be a positive int, got {max_n!r}")
  if not epsilon > 0:
    raise ValueError(f"epsilon must be > 0, got {epsilon!r}")
  if not candidate:
    return 0.0
  log_precision = 0.0
  for n in range(1, max_n + 1):
    counts = _ngrams(candidate, n)
    best = collections.Counter()
    for ref in references:
      best |= _ngrams(ref, n)
    matches = sum(min(c, best[g]) for g, c in counts.items())
    total = max(1, sum(counts.values()))
    if matches == 0:
      if n == 1:
        return 0.0
      matches = epsilon
    log_precision += math.log(matches / total) / max_n
  c = len(candidate)
  r = min((abs(len(ref) - c), len(ref)) for ref in references)[1]
  brevity = 0.0 if c >= r else 1.0 - r / c
  return math.exp(brevity + log_precision)


def lcs_length(a: Sequence[Hashable], b: Sequence[Hashable]) -> int:
  """Length of the longest common subsequence (O(len(a) * len(b)))."""
  prev = [0] * (len(b) + 1)
  for x in a:
    cur = [0]
    for j, y in enumerate(b):
      cur.append(prev[j] + 1 if x == y else max(prev[j + 1], cur[j]))
    prev = cur
  return prev[-1]


def rouge_l(candidate: Sequence[Hashable], reference: Sequence[Hashable]) -> float:
  """ROUGE-L F1: `2 P R / (P + R)` with `P = lcs / len(candidate)`, `R = lcs / len(reference)`.

  Args:
    candidate: generated tokens (a `str` scores characters).
    reference: reference tokens.

  Returns:
    F in `[0, 1]`; 0 when either side is empty or nothing is in common.

  Example:
    >>> rouge_l("今天天气很好", "今天天气不错")
    0.6666666666666666
  """
  _check_sequence("candidate", candidate)
  _check_sequence("reference", reference)
  common = lcs_length(candidate, reference)
  if common == 0:
    return 0.0
  return 2.0 * common / (len(candidate) + len(reference))


def distinct_n(outputs: Iterable[Sequence[Hashable]], n: int) -> float:
  """Distinct n-grams over all outputs divided by the number of n-grams.

  Args:
    outputs: generated token sequences (strings score characters).
    n: n-gram order.

  Returns:
    ratio in `[0, 1]`; 0 when the outputs hold no n-gram at all.

  Example:
    >>> distinct_n(["好好", "好"], 1)
    0.3333333333333333
  """
  if not isinstance(n, int) or n < 1:
    raise ValueError(f"n must be a positive int, got {n!r}")
  seen, total = set(), 0
  for i, out in enumerate(outputs):
    _check_sequence(f"outputs[{i}]", out)
    grams = _ngrams(out, n)
    seen.update(grams)
    total += sum(grams.values())
  return len(seen) / total if total else 0.0


def _split_tag(tag: str) -> Tuple[str, str]:
  if not isinstance(tag, str):
    raise TypeError(f"tags must be strings such as 'B-PER' or 'O', got {tag!r}")
  if tag == "O":
    return "O", ""
  prefix, sep, kind = tag.partition("-")
  if not sep or not kind or prefix not in ("B", "I", "M", "E", "S"):
    raise ValueError(f"tag {tag!r} is not 'O' or '<B|I|M|E|S>-<type>'")
  return prefix, kind


def tag_spans(tags: Sequence[str], scheme: str = "bio") -> Set[Span]:
  """Entity spans `(start, end, type)` (end exclusive) of one tag sequence.

  Args:
    tags: e.g. `["B-PER", "I-PER", "O"]`.
    scheme: `bio` (`B-X I-X*`; an `I-X` not continuing an `X` entity opens
      one, as conlleval does) or `bmes` (also BIOES: `B-X (M|I)-X* E-X` or
      `S-X`; fragments that never close are dropped).

  Returns:
    the set of spans.

  Example:
    >>> sorted(tag_spans(["B-LOC", "E-LOC", "O", "S-PER"], "bmes"))
    [(0, 2, 'LOC'), (3, 4, 'PER')]
  """
  if scheme not in SCHEMES:
    raise ValueError(f"scheme must be one of {SCHEMES}, got {scheme!r}")
  spans: Set[Span] = set()
  start, kind = None, ""
  for i, tag in enumerate(tags):
    prefix, this = _split_tag(tag)
    if scheme == "bio":
      continues = prefix == "I" and start is not None and this == kind
      if not continues and start is not None:
        spans.add((start, i, kind))
        start = None
      if prefix in ("B", "I") and not continues:
        start, kind = i, this
      elif prefix not in ("B", "I", "O"):
        raise ValueError(f"tag {tag!r} is not a BIO tag")
    else:
      if prefix == "S":
        spans.add((i, i + 1, this))
        start = None
      elif prefix == "B":
        start, kind = i, this
      elif prefix in ("M", "I"):
        if start is not None and this != kind:
          start = None
      elif prefix == "E":
        if start is not None and this == kind:
          spans.add((start, i + 1, kind))
        start = None
      else:
        start = None
  if scheme == "bio" and start is not None:
    spans.add((start, len(tags), kind))
  return spans


def span_prf(predicted: Sequence[Set[Span]], gold: Sequence[Set[Span]]
             ) -> Tuple[float, float, float]:
  """Micro precision, recall and F1 of exact span matches over sentences.

  Args:
    predicted: per sentence, the set of predicted spans.
    gold: per sentence, the set of gold spans (same length).

  Returns:
    `(precision, recall, f1)`; a ratio with a zero denominator is 0, except
    that all three are 1.0 when both sides hold no span at all.

  Example:
    >>> span_prf([{(0, 2, "PER")}], [{(0, 2, "PER"), (3, 4, "LOC")}])
    (1.0, 0.5, 0.6666666666666666)
  """
  if len(predicted) != len(gold):
    raise ValueError(f"predicted and gold must have the same number of sentences, got "
                     f"{len(predicted)} and {len(gold)}")
  hits = n_pred = n_gold = 0
  for p, g in zip(predicted, gold):
    p, g = set(p), set(g)
    hits += len(p & g)
    n_pred += len(p)
    n_gold += len(g)
  if n_pred == 0 and n_gold == 0:
    return 1.0, 1.0, 1.0
  precision = hits / n_pred if n_pred else 0.0
  recall = hits / n_gold if n_gold else 0.0
  f1 = 2 * precision * recall / (precision + recall) if hits else 0.0
  return precision, recall, f1


def mean_se(values: Iterable[float]) -> Tuple[float, float]:
  """Mean and standard error of the mean (`stdev / sqrt(n)`) over runs.

  Args:
    values: one number per run (e.g. per seed); at least one.

  Returns:
    `(mean, standard_error)`; the standard error is NaN for a single run.
  """
  values = [float(v) for v in values]
  if not values:
    raise ValueError("mean_se needs at least one value")
  mean = math.fsum(values) / len(values)
  if len(values) < 2:
    return mean, float("nan")
  var = math.fsum((v - mean) ** 2 for v in values) / (len(values) - 1)
  return mean, math.sqrt(var / len(values))


def format_mean_se(values: Iterable[float], digits: int = 2) -> str:
  """`"m ± se"` over runs, or just `"m"` for a single run."""
  mean, se = mean_se(values)
  return f"{mean:.{digits}f}" if math.isnan(se) else f"{mean:.{digits}f} ± {se:.{digits}f}"


def format_estimate(mean: float, se: float, digits: int = 2, signed: bool = False) -> str:
  """`"m ± se"`, or `"m (1 run, no s.e.)"` when `se` is NaN (a single run).

  Args:
    mean: the estimate, e.g. a mean difference over seeds.
    se: its standard error (NaN for one run, as `mean_se` returns it).
    digits: decimals of both numbers.
    signed: print the mean with an explicit sign (for differences).
  """
  m = f"{mean:+.{digits}f}" if signed else f"{mean:.{digits}f}"
  return f"{m} (1 run, no s.e.)" if math.isnan(se) else f"{m} ± {se:.{digits}f}"
