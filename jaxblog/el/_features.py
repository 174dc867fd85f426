"""Per-character input channels of the recognizer and the matcher (host side).

The recognizer sees two 0/1 channels marking where (pruned) max-matching
spans start and end. The matcher's query side sees four more channels for
one (mention, candidate) pair: the mention's span; whether each character
occurs in the candidate's description; whether the word around it occurs
among the description's words (repeated over the word's characters); and
whether it lies in an occurrence of one of the candidate's short `object`
values. These are NumPy arrays built once per example, outside `jit`.

References:
  Su 2019, 百度实体链接比赛后记：行为建模和实体链接,
  https://kexue.fm/archives/6919 (the two prior channels and the three
  overlap features, objects of at most 10 characters).
"""
from __future__ import annotations

import re
from typing import Iterable, Sequence, Tuple

import numpy as np

_WORD = re.compile(r"\w+")


def span_channels(spans: Iterable[Tuple[int, int]], length: int) -> np.ndarray:
  """Start/end indicator channels of end-exclusive spans.

  Args:
    spans: `(start, end)` character spans, end exclusive; parts beyond
      `length` are ignored (a truncated text).
    length: T, the channel length.

  Returns:
    float32 `[T, 2]`: `[:, 0]` is 1 at every span start, `[:, 1]` at every
    span's last character.

  Example:
    >>> span_channels([(1, 3)], 4).T.tolist()
    [[0.0, 1.0, 0.0, 0.0], [0.0, 0.0, 1.0, 0.0]]
  """
  if length < 0:
    raise ValueError(f"length must be >= 0, got {length}")
  out = np.zeros((length, 2), np.float32)
  for start, end in spans:
    if not 0 <= start < end:
      raise ValueError(f"spans must satisfy 0 <= start < end, got {(start, end)}")
    if end - 1 < length:
      out[start, 0] = 1.0
      out[end - 1, 1] = 1.0
  return out


def link_features(text: str, span: Tuple[int, int], description: str,
                  objects: Sequence[str] = (), *, length: int | None = None,
                  max_object_len: int = 10) -> np.ndarray:
  """The matcher's four query channels for one mention and one candidate.

  Comparisons are case-insensitive (the description is lowercased).

  Args:
    text: the query text.
    span: the mention's `(start, end)`, end exclusive.
    description: the candidate's description (see `describe`).
    objects: the candidate's `object` values; those of at most
      `max_object_len` characters are searched in the text.
    length: T (default `len(text)`); the text is cut or zero-padded to it.
    max_object_len: longest object value searched.

  Returns:
    float32 `[T, 4]`: mention mask, character in description, word in
    description words, inside an occurrence of a short object value.

  Example:
    >>> f = link_features("Paris, France", (0, 5), "capital of france",
    ...                   ["France"])
    >>> f[:, 0].tolist()[:6], f[7:, 2].tolist(), f[7:, 3].tolist()
    ([1.0, 1.0, 1.0, 1.0, 1.0, 0.0], [1.0, 1.0, 1.0, 1.0, 1.0, 1.0], [1.0, 1.0, 1.0, 1.0, 1.0, 1.0])
  """
  start, end = span
  if not 0 <= start < end <= len(text):
    raise ValueError(f"span {span} is not inside the text of length {len(text)}")
  length = len(text) if length is None else length
  lower, desc = text.lower(), description.lower()
  n = min(length, len(text))
  out = np.zeros((length, 4), np.float32)
  out[start:min(end, length), 0] = 1.0
  chars = set(desc) - {" "}
  out[:n, 1] = [c in chars for c in lower[:n]]
  words = set(_WORD.findall(desc))
  for m in _WORD.finditer(lower):
    if m.group() in words:
      out[m.start():min(m.end(), length), 2] = 1.0
  for value in objects:
    value = value.lower()
    if not value or len(value) > max_object_len:
      continue
    for m in re.finditer(re.escape(value), lower):
      if (m.start() == 0 or not lower[m.start() - 1].isalnum()) and (
          m.end() == len(lower) or not lower[m.end()].isalnum()):
        out[m.start():min(m.end(), length), 3] = 1.0
  return out
