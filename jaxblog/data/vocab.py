"""One token vocabulary for every text task: specials first, then tokens by count.

A text is any sequence of tokens: a `str` (its characters) or a list of
strings (e.g. pinyin syllables). The vocabulary is the special tokens, then
the tokens of the training texts by descending count, ties broken by the
token itself, so building it is deterministic. Whatever the specials are
called, the first one is padding (id 0) and the second the unknown token
(id 1); the rest (`[CLS]`, `<s>`, ...) belong to the task's input format.
"""
from __future__ import annotations

import collections
from typing import Iterable, Sequence, Tuple

import numpy as np

BERT_SPECIALS = ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]")
PAD, UNK = 0, 1


class Vocab:
  """Token <-> id; `tokens[i]` is the token of id `i`, `index[token]` its id.

  Attributes:
    specials: the special tokens (ids `0 .. len(specials) - 1`).
    tokens: all tokens in id order.
    index: token -> id.
  """

  def __init__(self, tokens: Iterable[str], specials: Sequence[str] = BERT_SPECIALS):
    specials = tuple(specials)
    if len(specials) < 2:
      raise ValueError(f"specials must name at least padding and unknown, got {specials!r}")
    self.specials = specials
    self.tokens = list(specials) + [t for t in tokens if t not in specials]
    self.index = {t: i for i, t in enumerate(self.tokens)}

  @classmethod
  def build(cls, texts: Iterable[Sequence[str]], *, specials: Sequence[str] = BERT_SPECIALS,
            min_count: int = 1, max_size: int | None = None) -> "Vocab":
    """From training texts only.

    Args:
      texts: token sequences (`str` = characters).
      specials: special tokens; the first is padding, the second unknown.
      min_count: drop tokens seen fewer times.
      max_size: keep at most this many ids in total (specials included).

    Returns:
      The `Vocab`.
    """
    counts = collections.Counter(tok for text in texts for tok in text)
    tokens = sorted((t for t, n in counts.items() if n >= min_count),
                    key=lambda t: (-counts[t], t))
    if max_size is not None:
      tokens = tokens[:max(max_size - len(specials), 0)]
    return cls(tokens, specials)

  def __len__(self) -> int:
    return len(self.tokens)

  def __getitem__(self, token: str) -> int:
    return self.index[token]

  def __contains__(self, token: str) -> bool:
    return token in self.index

  def ids(self, text: Sequence[str]) -> list:
    """Token ids of `text`; unknown tokens map to `UNK`."""
    return [self.index.get(tok, UNK) for tok in text]

  def decode(self, ids: Iterable[int], stop: int | None = None) -> str:
    """The tokens of `ids` joined, up to the first `stop` id; specials dropped."""
    out = []
    for i in ids:
      i = int(i)
      if i == stop:
        break
      if i >= len(self.specials):
        out.append(self.tokens[i])
    return "".join(out)

  def encode(self, texts: Sequence[Sequence[str]], max_len: int
             ) -> Tuple[np.ndarray, np.ndarray]:
    """Truncated, right-padded ids: `(ids int32 [N, max_len], valid bool [N, max_len])`."""
    ids = np.full((len(texts), max_len), PAD, np.int32)
    valid = np.zeros((len(texts), max_len), bool)
    for row, text in enumerate(texts):
      seq = self.ids(text[:max_len])
      ids[row, :len(seq)] = seq
      valid[row, :len(seq)] = True
    return ids, valid
