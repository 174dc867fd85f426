"""Span decoding of the half-pointer heads, span pooling, and triple F1.

`span_decode` pairs every start above the threshold with the nearest end
above it at or after the start (end inclusive); the pairing itself
(`nearest_end`) is a jittable reverse cumulative minimum, only the list of
tuples is built on the host. `span_mean` and `masked_max` are the two
pooling steps of the matcher. `triple_f1` scores exact
`(text_id, mention, offset, kb_id)` triples.

References:
  Su 2019, 百度实体链接比赛后记：行为建模和实体链接,
  https://kexue.fm/archives/6919 (decode at 0.4; F1 over exact triples).
"""
from __future__ import annotations

from typing import Iterable, List, Tuple

import jax
import jax.numpy as jnp
import numpy as np

from jaxblog import _checks


def nearest_end(p_start: jax.Array, p_end: jax.Array, threshold: float = 0.4) -> jax.Array:
  """For each start above `threshold`, the nearest end at or after it.

  Args:
    p_start: start probabilities `[..., T]`.
    p_end: end probabilities `[..., T]`.
    threshold: a position fires when its probability is `> threshold`.

  Returns:
    int32 `[..., T]`: the smallest `j >= i` with `p_end[j] > threshold` for
    every `i` with `p_start[i] > threshold`, and -1 elsewhere (no start, or
    no end after it).

  Example:
    >>> import jax.numpy as jnp
    >>> nearest_end(jnp.array([.9, 0., .9, .9]), jnp.array([0., .8, 0., 0.])).tolist()
    [1, -1, -1, -1]
  """
  _checks.require_floating("p_start", p_start)
  _checks.require_floating("p_end", p_end)
  _checks.require_min_rank("p_start", p_start, 1, "[..., T]")
  if jnp.shape(p_start) != jnp.shape(p_end):
    raise ValueError(f"p_start and p_end must have the same shape [..., T], got "
                     f"{jnp.shape(p_start)} and {jnp.shape(p_end)}")
  length = p_start.shape[-1]
  pos = jnp.arange(length, dtype=jnp.int32)
  ends = jnp.where(p_end > threshold, pos, length)
  # Reverse cumulative minimum: the first end at or after each position.
  nxt = jax.lax.cummin(ends, axis=ends.ndim - 1, reverse=True)
  ok = (p_start > threshold) & (nxt < length)
  return jnp.where(ok, nxt, -1)


def span_decode(p_start, p_end, threshold: float = 0.4) -> List[Tuple[int, int]]:
  """Spans from half-pointer start/end probabilities of one text.

  Every `i` with `p_start[i] > threshold` pairs with the smallest `j >= i`
  with `p_end[j] > threshold`; starts with no such end are dropped.

  Args:
    p_start: start probabilities `[T]`.
    p_end: end probabilities `[T]`.
    threshold: firing threshold (article: 0.4).

  Returns:
    `[(i, j)]` with `j` inclusive, in increasing `i`.

  Example:
    >>> span_decode([0.9, 0.1, 0.5, 0.0], [0.1, 0.7, 0.0, 0.6])
    [(0, 1), (2, 3)]
  """
  p_start, p_end = jnp.asarray(p_start), jnp.asarray(p_end)
  if p_start.ndim != 1:
    raise ValueError(f"p_start and p_end must have shape [T], got {p_start.shape} and "
                     f"{p_end.shape}")
  ends = np.asarray(nearest_end(p_start, p_end, threshold))
  return [(int(i), int(ends[i])) for i in np.flatnonzero(ends >= 0)]


def span_mean(x: jax.Array, span: jax.Array) -> jax.Array:
  """Mean of `x` over the positions where `span` is True (0 for an empty span).

  Args:
    x: `[..., T, D]` features.
    span: bool `[..., T]`.

  Returns:
    `[..., D]`.
  """
  _checks.require_bool("span", span)
  _checks.require_min_rank("x", x, 2, "[..., T, D]")
  if jnp.shape(span) != jnp.shape(x)[:-1]:
    raise ValueError(f"span must have shape [..., T] = {jnp.shape(x)[:-1]}, got "
                     f"{jnp.shape(span)}")
  w = span.astype(x.dtype)[..., None]
  return jnp.sum(x * w, -2) / jnp.maximum(jnp.sum(w, -2), 1.0)


def masked_max(x: jax.Array, mask: jax.Array) -> jax.Array:
  """Max of `x` over the valid positions of `mask` (0 when none is valid).

  Args:
    x: `[..., T, D]` features.
    mask: bool `[..., T]`.

  Returns:
    `[..., D]`.
  """
  _checks.require_bool("mask", mask)
  _checks.require_min_rank("x", x, 2, "[..., T, D]")
  if jnp.shape(mask) != jnp.shape(x)[:-1]:
    raise ValueError(f"mask must have shape [..., T] = {jnp.shape(x)[:-1]}, got "
                     f"{jnp.shape(mask)}")
  low = jnp.finfo(x.dtype).min
  best = jnp.max(jnp.where(mask[..., None], x, low), -2)
  return jnp.where(jnp.any(mask, -1)[..., None], best, jnp.zeros_like(best))


def triple_f1(pred: Iterable[tuple], gold: Iterable[tuple]) -> Tuple[float, float, float]:
  """Precision, recall and F1 over sets of `(text_id, mention, offset, kb_id)`.

  Args:
    pred: predicted triples (duplicates count once).
    gold: gold triples.

  Returns:
    `(precision, recall, f1)`; a 0/0 ratio is 0, except that all three are
    1.0 when both sets are empty.

  Example:
    >>> triple_f1({("1", "Paris", 0, "n1"), ("1", "France", 7, "n2")},
    ...           {("1", "Paris", 0, "n1")})
    (0.5, 1.0, 0.6666666666666666)
  """
  pred, gold = set(pred), set(gold)
  if not pred and not gold:
    return 1.0, 1.0, 1.0
  hit = len(pred & gold)
  precision = hit / len(pred) if pred else 0.0
  recall = hit / len(gold) if gold else 0.0
  f1 = 2 * precision * recall / (precision + recall) if hit else 0.0
  return precision, recall, f1
