"""Character BERT inputs over a `Vocab` with `BERT_SPECIALS`: single texts, pairs, windows.

No pretrained Chinese BERT ships in any installed package, so the
experiments pretrain small character models themselves. This module holds
the text side: single-text encoding `[CLS] text [SEP]`, pair encoding
`[CLS] a [SEP] b [SEP]` with segment ids 0/1 and bert4keras' truncation (pop
from the longer side until the pair fits, as its `truncate_sequences` does),
and fixed-length windows over a corpus for MLM pretraining.

References: Su 2019, 《从语言模型到Seq2Seq：Transformer如戏，全靠Mask》
https://kexue.fm/archives/6933 (the UniLM input format).
"""
from __future__ import annotations

from typing import Sequence, Tuple

import numpy as np

from jaxblog.data.vocab import BERT_SPECIALS, PAD, Vocab

CLS, SEP, MASK = (BERT_SPECIALS.index(t) for t in ("[CLS]", "[SEP]", "[MASK]"))



def encode(vocab: Vocab, texts: Sequence[str], max_len: int) -> Tuple[np.ndarray, np.ndarray]:
  """`[CLS] text [SEP]`, truncated, right-padded: `(ids int32 [N, L], valid bool [N, L])`."""
  ids = np.zeros((len(texts), max_len), np.int32)
  for row, text in enumerate(texts):
    seq = [CLS] + vocab.ids(text)[:max_len - 2] + [SEP]
    ids[row, :len(seq)] = seq
  return ids, ids != PAD


def encode_pairs(vocab: Vocab, first: Sequence[str], second: Sequence[str], max_len: int,
                 max_second: int | None = None) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
  """`[CLS] a [SEP] b [SEP]` with segments 0…0 1…1, right-padded.

  Args:
    vocab: a `Vocab` with `BERT_SPECIALS`.
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
    a, b = vocab.ids(a), vocab.ids(b)[:max_second]
    while len(a) + len(b) > max_len - 3:  # pop from the longer, as bert4keras does
      (a if len(a) >= len(b) else b).pop()
    seq = [CLS] + a + [SEP] + b + [SEP]
    ids[row, :len(seq)] = seq
    seg[row, len(a) + 2:len(seq)] = 1
  return ids, seg, ids != PAD


def windows(texts: Sequence[str], length: int) -> list:
  """Cuts texts into pieces of at most `length` characters (drops pieces < 8 chars)."""
  out = []
  for text in texts:
    for start in range(0, len(text), length):
      piece = text[start:start + length]
      if len(piece) >= 8:
        out.append(piece)
  return out
