"""Maximum-entropy Markov model (MEMM) and Su's bidirectional MEMM loss.

Design: a MEMM normalises locally, `P(y_t | y_prev, x) =
softmax_j(f_t(j) + transitions[y_prev, j])`, so its log-likelihood is a plain
per-token cross-entropy whose logits gather one transition row per position:
no recursion, fully parallel, as cheap as a softmax tagger. The right-to-left
direction conditions on the tag at the *next valid* position and uses
`transitions.T` (the same as reversing each sequence within its valid
positions, as the reference does, because the loss is a sum over positions;
nothing is reversed in memory). The Bi-MEMM loss is the mean of the two
directions (same parameters). Like `jaxblog.crf`, the chain links valid
positions in order, so left padding and gaps work, and a sequence with no
valid position scores 0. Shapes: emissions `[..., L, K]` (`L` positions, `K`
tags), tags and mask `[..., L]`.

Transitions may be a `[K, K]` array or a low-rank pair `(left, right)` with
`transitions = left @ right.T` (`left, right: [K, d]`); the pair is never
multiplied out, so huge tag sets stay cheap (the reference offers the same
factorisation, trading `K^2` parameters for `2 K d`). Decoding uses
`jaxblog.crf.viterbi` on the same scores (materialise `left @ right.T` for
it). `lr_multiplier_init` / `lr_multiplier_apply` give the reference's
learning-rate multiplier reparametrisation for transition matrices (CRF or
MEMM).

Example:
  >>> import jax.numpy as jnp
  >>> from jaxblog import memm
  >>> emissions = jnp.zeros((1, 3, 2))         # [batch, L, K]
  >>> tags = jnp.array([[0, 1, 1]])
  >>> transitions = jnp.zeros((2, 2))
  >>> ll = memm.log_likelihood(emissions, tags, transitions)
  >>> print(round(float(ll[0]), 4))             # 3 uniform binary choices
  -2.0794

References:
  Su 2020, 《CRF用过了，不妨再了解下更快的MEMM？》,
  https://kexue.fm/archives/7213.
"""
from __future__ import annotations

from typing import Sequence, Union

import jax
import jax.numpy as jnp
from jax.typing import ArrayLike
import numpy as np

from jaxblog import _chain, _checks
from jaxblog import crf as _crf

_DIRECTIONS = ("l2r", "r2l", "both")
Transitions = Union[ArrayLike, Sequence[ArrayLike]]


def _rows(trans, cond, linked):
  """`trans[cond, :]` at linked positions, 0 elsewhere: `[N, L, K]`.

  A row gather (measured faster than a one-hot matmul on XLA:CPU, and exact
  with -inf entries). Low rank: gather rows of `left`, then `@ right.T`;
  nothing `[K, K]` is formed.
  """
  if isinstance(trans, tuple):
    left, right = trans
    rows = jnp.take(left, cond, axis=0) @ right.T
  else:
    rows = jnp.take(trans, cond, axis=0)
  return jnp.where(linked[..., None], rows, 0.0)


def _transpose(trans):
  if isinstance(trans, tuple):
    return (trans[1], trans[0])
  return trans.T


def _direction(em, tags, cond, linked, trans, mask, average_scores):
  """Sum over valid positions of `log softmax(f_t + trans[cond_t])[y_t]`.

  Unlinked positions (first valid for l2r, last valid for r2l) use `f_t`
  alone, which `average_scores` leaves unchanged: `(f + f) / 2 = f`.
  """
  logits = em + _rows(trans, cond, linked)
  if average_scores:
    logits = logits * jnp.where(linked, 0.5, 1.0).astype(em.dtype)[..., None]
  gold = jnp.take_along_axis(logits, tags[..., None], axis=-1)[..., 0]
  per_token = gold - jax.nn.logsumexp(logits, axis=-1)
  return jnp.sum(jnp.where(mask, per_token, 0.0), axis=1)


def _check_transitions(transitions, k):
  if isinstance(transitions, (tuple, list)):
    if len(transitions) != 2:
      raise ValueError(
          f"low-rank transitions must be a pair (left, right), got "
          f"{len(transitions)} items")
    left, right = transitions
    for name, x in (("transitions[0] (left)", left), ("transitions[1] (right)", right)):
      _checks.require_floating(name, x)
      if np.ndim(x) != 2 or np.shape(x)[0] != k:
        raise ValueError(f"{name} must have shape [K, d] with K={k}, got {np.shape(x)}")
    if np.shape(left)[1] != np.shape(right)[1]:
      raise ValueError(
          f"low-rank factors must share d: left {np.shape(left)}, right "
          f"{np.shape(right)}")
    return tuple(transitions)
  _chain.check_transitions(transitions, k)
  return transitions


def _check_inputs(emissions, transitions, direction):
  """`(K, transitions)` after checking `direction`, `emissions` and `transitions`."""
  if direction not in _DIRECTIONS:
    raise ValueError(f"direction must be one of {_DIRECTIONS}, got {direction!r}")
  _checks.require_floating("emissions", emissions)
  _checks.require_min_rank("emissions", emissions, 2, "[..., L, K]")
  k = int(np.shape(emissions)[-1])
  return k, _check_transitions(transitions, k)


def log_likelihood(emissions: ArrayLike, tags: ArrayLike, transitions: Transitions,
                   mask: ArrayLike | None = None, *, direction: str = "both",
                   average_scores: bool = False) -> jax.Array:
  """Per-sequence MEMM log-likelihood (sum of local log-probabilities).

  Left to right: `log softmax(f_1)[y_1] + sum_t log softmax(f_t +
  transitions[y_prev])[y_t]`; right to left: the same on the valid positions
  in reverse with `transitions.T`; `"both"`: the mean of the two (Su's
  Bi-MEMM).

  Args:
    emissions: `[..., L, K]` floating scores (bf16/fp16 computed in float32).
    tags: integer `[..., L]` in `[0, K)` at valid positions.
    transitions: `[K, K]` (`transitions[i, j]`: tag `i` followed by `j`) or a
      low-rank pair `(left [K, d], right [K, d])` meaning `left @ right.T`.
    mask: optional bool `[..., L]`, True = valid; any validity pattern. Its
      leading axes must broadcast with those of `emissions` and `tags`.
    direction: `"l2r"`, `"r2l"` or `"both"`.
    average_scores: use the reference's logits `(f_t + transitions[y_prev]) /
      2` (`f_1` alone at the first position) instead of the sum.

  Returns:
    `[...]` log-likelihoods (<= 0) in the compute dtype; 0 where no position
    is valid. Negate and divide by the token count for the reference's
    token-mean loss.

  Raises:
    ValueError/TypeError: naming the argument and its shape, e.g. a `mask`
      whose batch axes do not broadcast with `tags`.

  References:
    Su 2020, 《CRF用过了，不妨再了解下更快的MEMM？》,
    https://kexue.fm/archives/7213.
  """
  k, trans = _check_inputs(emissions, transitions, direction)
  low_rank = isinstance(trans, tuple)
  # prepare() validates and flattens; with low rank it gets an unused [K, K]
  # stand-in (dead code under jit) so the factors are never multiplied out.
  placeholder = jnp.zeros((k, k), jnp.result_type(*trans)) if low_rank else trans
  chain, flat = _chain.prepare(emissions, tags=tags, transitions=placeholder, mask=mask)
  dtype = chain.emissions.dtype
  if low_rank:
    trans = tuple(jnp.asarray(x, dtype) for x in trans)
  else:
    trans = chain.transitions
  em, m = chain.emissions, chain.mask
  prev_tag, has_prev, next_tag, has_next = _chain.neighbours(flat, m)
  parts = []
  if direction in ("l2r", "both"):
    parts.append(_direction(em, flat, prev_tag, has_prev, trans, m, average_scores))
  if direction in ("r2l", "both"):
    parts.append(_direction(em, flat, next_tag, has_next, _transpose(trans), m,
                            average_scores))
  out = parts[0] if len(parts) == 1 else (parts[0] + parts[1]) / 2
  return _chain.restore(out, chain.batch_shape)


def lr_multiplier_init(value: ArrayLike, multiplier: float) -> jax.Array:
  """Stored parameter for a learning-rate multiplier `m`: `value / m`.

  Train the stored array and read the effective one with
  `lr_multiplier_apply(stored, m) = m * stored`: the effective parameter then
  moves `m` times faster under Adam (`m**2` under SGD), the reference's
  `lr_multiplier` for CRF/MEMM transitions (bert4keras).

  Args:
    value: initial effective parameter (e.g. Glorot-uniform `[K, K]`).
    multiplier: positive scalar `m`.

  Returns:
    The array to store and optimise, the shape of `value`.

  Example:
    >>> import jax.numpy as jnp
    >>> from jaxblog import memm
    >>> stored = memm.lr_multiplier_init(jnp.ones((2, 2)), 100.0)
    >>> print(stored[0, 0], memm.lr_multiplier_apply(stored, 100.0)[0, 0])
    0.01 1.0
  """
  if not multiplier > 0:
    raise ValueError(f"multiplier must be positive, got {multiplier!r}")
  return jnp.asarray(value) / multiplier


def lr_multiplier_apply(stored: ArrayLike, multiplier: float) -> jax.Array:
  """Effective parameter `multiplier * stored` (see `lr_multiplier_init`).

  Args:
    stored: the optimised array, any shape.
    multiplier: positive scalar `m`.

  Returns:
    `m * stored`, same shape.
  """
  if not multiplier > 0:
    raise ValueError(f"multiplier must be positive, got {multiplier!r}")
  return jnp.asarray(stored) * multiplier


def _normalisers(em, trans, linked, coef, scale):
  """`logsumexp_j(coef_t * f_t[j] + scale * trans[i, j])` per position and tag `i`: `[N, L, K]`.

  The local normaliser of a step whose conditioning tag is `i`; 0 where the
  position is not linked (it has no conditioning tag).
  """
  logits = (coef[..., None] * em)[:, :, None, :] + (scale * trans)[None, None]
  norm = jax.nn.logsumexp(logits, axis=-1)
  # A tag whose every successor is forbidden (-inf) is excluded by the transitions
  # already; a 0 here keeps Viterbi from meeting -inf - (-inf).
  return jnp.where(linked[..., None] & ~jnp.isneginf(norm), norm, 0.0)


def viterbi(emissions: ArrayLike, transitions: Transitions, mask: ArrayLike | None = None,
            *, direction: str = "both", average_scores: bool = False
            ) -> tuple[jax.Array, jax.Array]:
  """The tag sequence of highest MEMM log-likelihood, exactly.

  The reference decodes a MEMM like a CRF, with Viterbi over the
  unnormalised `f + transitions`, which maximises a score the model was not
  trained on. This maximises `log_likelihood(emissions, tags, transitions,
  mask, direction=..., average_scores=...)` itself. Each local normaliser
  depends only on the conditioning tag, so it moves into that position's
  emission (`f_s[i] -= logsumexp_j(f_t[j] + transitions[i, j])` for the
  next valid position `t`, mirrored for right to left; halved and summed for
  `"both"`), and `jaxblog.crf.viterbi` runs once on the shifted emissions.

  Args:
    emissions: `[..., L, K]` floating scores.
    transitions: `[K, K]` or a low-rank pair `(left, right)` (multiplied out
      here: decoding needs every pair score).
    mask: optional bool `[..., L]`, True = valid; any validity pattern.
    direction: `"l2r"`, `"r2l"` or `"both"`, as in `log_likelihood`.
    average_scores: the reference's `(f + transitions) / 2` logits.

  Returns:
    `(tags int32 [..., L], log_likelihood [...])`; tags are 0 at invalid
    positions. Cost: `O(N L K^2)` memory for the normalisers (the `[K, K]`
    logits of every position).

  References:
    Su 2020, 《CRF用过了，不妨再了解下更快的MEMM？》,
    https://kexue.fm/archives/7213.
  """
  _, trans = _check_inputs(emissions, transitions, direction)
  if isinstance(trans, tuple):
    trans = jnp.asarray(trans[0]) @ jnp.asarray(trans[1]).T
  chain, _ = _chain.prepare(emissions, trans, mask)
  em, m, trans = chain.emissions, chain.mask, chain.transitions
  n, length = m.shape
  positions = jnp.broadcast_to(jnp.arange(length, dtype=jnp.int32)[None], (n, length))
  prev_pos, has_prev, next_pos, has_next = _chain.neighbours(positions, m)
  half = 0.5 if average_scores else 1.0
  rows = jnp.arange(n)[:, None]
  shifted, parts = jnp.zeros_like(em), 0
  if direction in ("l2r", "both"):
    coef = jnp.where(has_prev, half, 1.0).astype(em.dtype)
    norm = _normalisers(em, trans, has_prev, coef, half)  # at t, over the tag at prev(t)
    moved = jnp.where(has_next[..., None], norm[rows, next_pos], 0.0)
    shifted, parts = shifted + coef[..., None] * em - moved, parts + 1
  if direction in ("r2l", "both"):
    coef = jnp.where(has_next, half, 1.0).astype(em.dtype)
    norm = _normalisers(em, trans.T, has_next, coef, half)  # at t, over the tag at next(t)
    moved = jnp.where(has_prev[..., None], norm[rows, prev_pos], 0.0)
    shifted, parts = shifted + coef[..., None] * em - moved, parts + 1
  tags, _ = _crf.viterbi(shifted / parts, half * trans, m)
  score = log_likelihood(chain.emissions, tags, trans, m, direction=direction,
                         average_scores=average_scores)
  return _chain.restore(tags, chain.batch_shape), _chain.restore(score, chain.batch_shape)
