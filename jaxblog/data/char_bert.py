"""Character-level BERT inputs: a vocabulary with special tokens and the input formats.

No pretrained Chinese BERT ships in any package (DATA.md §2), so the
experiments pretrain small character models themselves. This module holds the
text side: a frequency-ordered character vocabulary with `[PAD] [UNK] [CLS]
[SEP] [MASK]`, single-text encoding `[CLS] text [SEP]`, pair encoding
`[CLS] a [SEP] b [SEP]` with segment ids 0/1 and bert4keras' truncation
(pop from the longer side until the pair fits, SPEC.md §6.4), and fixed-length
windows over a corpus for MLM pretraining.

References: SPEC.md §6.2–6.4 (UniLM input format, truncation), §9.2
(`truncate_sequences`).
"""
from __future__ import annotations

import collections
from typing import Iterable, Sequence

import numpy as np

SPECIALS = ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]")
PAD, UNK, CLS, SEP, MASK = range(5)


class CharVocab:
  """Characters by descending frequency after the five special tokens."""

  def __init__(self, chars: Sequence[str]):
    self.tokens = list(SPECIALS) + list(chars)
    self.index = {t: i for i, t in enumerate(self.tokens)}

  @classmethod
  def build(cls, texts: Iterable[str], min_count: int = 1, max_size: int | None = None
            ) -> "CharVocab":
    """From texts (training text only); ties broken by the character."""
    counts = collections.Counter(ch for t in texts for ch in t)
    chars = sorted((c for c, n in counts.items() if n >= min_count), key=lambda c: (-counts[c], c))
    if max_size is not None:
      chars = chars[:max(max_size - len(SPECIALS), 0)]
    return cls(chars)

  def __len__(self) -> int:
    return len(self.tokens)

  def ids(self, text: str) -> list:
    return [self.index.get(ch, UNK) for ch in text]

  def decode(self, ids: Iterable[int], stop: int = SEP) -> str:
    """Characters up to the first `stop` id; special tokens dropped."""
    out = []
    for i in ids:
      i = int(i)
      if i == stop:
        break
      if i >= len(SPECIALS):
        out.append(self.tokens[i])
    return "".join(out)

  def encode(self, texts: Sequence[str], max_len: int) -> tuple:
    """`[CLS] text [SEP]`, truncated, right-padded: `(ids int32 [N, L], valid bool [N, L])`."""
    ids = np.zeros((len(texts), max_len), np.int32)
    for row, text in enumerate(texts):
      seq = [CLS] + self.ids(text)[:max_len - 2] + [SEP]
      ids[row, :len(seq)] = seq
    return ids, ids != PAD

  def encode_pairs(self, first: Sequence[str], second: Sequence[str], max_len: int,
                   max_second: int | None = None) -> tuple:
    """`[CLS] a [SEP] b [SEP]` with segments 0…0 1…1, right-padded.

    Args:
      first, second: parallel texts (source, target).
      max_len: total length including the three special tokens.
      max_second: optional cap on the second text's length (applied first).

    Returns:
      `(ids int32 [N, L], segment_ids int32 [N, L], valid bool [N, L])`.
    """
    n = len(first)
    ids = np.zeros((n, max_len), np.int32)
    seg = np.zeros((n, max_len), np.int32)
    for row, (a, b) in enumerate(zip(first, second)):
      a, b = self.ids(a), self.ids(b)[:max_second]
      while len(a) + len(b) > max_len - 3:  # pop from the longer, as bert4keras does
        (a if len(a) >= len(b) else b).pop()
      seq = [CLS] + a + [SEP] + b + [SEP]
      ids[row, :len(seq)] = seq
      seg[row, len(a) + 2:len(seq)] = 1
    return ids, seg, ids != PAD

  def encode_sources(self, texts: Sequence[str], max_len: int) -> tuple:
    """Decoder prompts `[CLS] a [SEP]` (segment 0): `(ids, valid)`, right-padded."""
    return self.encode(texts, max_len)


def windows(texts: Sequence[str], length: int) -> list:
  """Cuts texts into pieces of at most `length` characters (drops pieces < 8 chars)."""
  out = []
  for text in texts:
    for start in range(0, len(text), length):
      piece = text[start:start + length]
      if len(piece) >= 8:
        out.append(piece)
  return out
