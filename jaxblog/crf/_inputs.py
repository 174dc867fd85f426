"""Argument checking and layout shared by the CRF algorithms.

Every public CRF function accepts `emissions [..., T, K]` with any leading
batch axes, a `[K, K]` transition matrix, optional `start`/`end` vectors and an
optional bool mask `[..., T]` of any validity pattern. This module turns those
into one canonical layout: a flat batch `[N, T, K]` in the compute dtype, a
dense mask `[N, T]`, plus the boundary indicators (`first`, `last`) and the
neighbouring valid tags that let right padding, left padding and gaps share
one code path without a sequential scan. All checks run on static shapes, so they cost nothing under `jax.jit`.
"""
from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from jaxblog import _checks


class Chain(NamedTuple):
  """Canonical CRF inputs: flat batch `N`, time `T`, tags `K`."""
  emissions: jnp.ndarray    # [N, T, K] compute dtype
  transitions: jnp.ndarray  # [K, K]
  start: jnp.ndarray        # [K]
  end: jnp.ndarray          # [K]
  mask: jnp.ndarray         # [N, T] bool
  batch_shape: tuple        # leading axes to restore on outputs


def num_tags(emissions) -> int:
  return int(np.shape(emissions)[-1])


def _batch_shape(emissions, others) -> tuple:
  """Broadcast of the leading axes of emissions and the `[..., T]` arrays."""
  shapes = [tuple(np.shape(emissions))[:-2]]
  shapes += [tuple(np.shape(x))[:-1] for _, x in others if x is not None]
  try:
    return tuple(np.broadcast_shapes(*shapes))
  except ValueError:
    desc = ", ".join(f"{n} {np.shape(x)}" for n, x in others if x is not None)
    raise ValueError(
        f"leading batch axes do not broadcast: emissions {np.shape(emissions)}, "
        f"{desc}") from None


def check_transitions(transitions, k: int, name: str = "transitions") -> None:
  _checks.require_floating(name, transitions)
  if tuple(np.shape(transitions)) != (k, k):
    raise ValueError(
        f"{name} must have shape [K, K] = ({k}, {k}) to match emissions with "
        f"K={k} tags, got {np.shape(transitions)}")


def check_tags(tags, length: int) -> None:
  """TypeError/ValueError unless `tags` is an integer `[..., T]` array."""
  _checks.require_integer("tags", tags)
  _checks.require_min_rank("tags", tags, 1, "[..., T]")
  if np.shape(tags)[-1] != length:
    raise ValueError(
        f"tags must have shape [..., T] with T={length} (from emissions), got "
        f"{np.shape(tags)}")


def check_tag_range(tags, mask, k: int) -> None:
  """ValueError for tags outside [0, K) at valid positions, when concrete.

  Padding positions may hold any value (e.g. -100). Under `jax.jit` the values
  are unknown at trace time and out-of-range tags are clipped instead.
  """
  concrete = [x for x in (tags, mask) if x is not None]
  if any(isinstance(x, jax.core.Tracer) for x in concrete):
    return
  t = np.asarray(tags)
  if mask is not None:
    shape = np.broadcast_shapes(t.shape, np.shape(mask))
    t = np.broadcast_to(t, shape)[np.broadcast_to(np.asarray(mask), shape)]
  if t.size:
    lo, hi = int(t.min()), int(t.max())
    if lo < 0 or hi >= k:
      raise ValueError(
          f"tags must lie in [0, K) = [0, {k}) at valid positions, got values "
          f"in [{lo}, {hi}] (tags shape {np.shape(tags)})")


def prepare(emissions, transitions, mask=None, start=None, end=None,
            tags=None):
  """Validates and canonicalises CRF inputs.

  Args:
    emissions: `[..., T, K]` floating scores.
    transitions: `[K, K]`; `transitions[i, j]` scores tag `i` followed by `j`.
    mask: optional bool `[..., T]`, True = valid.
    start: optional `[K]` score of the first valid tag.
    end: optional `[K]` score of the last valid tag.
    tags: optional integer `[..., T]` (values are data, so out-of-range tags
      cannot raise under jit; callers check them where they are concrete).

  Returns:
    `(Chain, tags [N, T] int32 or None)`.
  """
  _checks.require_floating("emissions", emissions)
  _checks.require_min_rank("emissions", emissions, 2, "[..., T, K]")
  length, k = np.shape(emissions)[-2:]
  if k < 1:
    raise ValueError(f"emissions must have K >= 1 tags, got shape {np.shape(emissions)}")
  check_transitions(transitions, k)
  for name, vec in (("start", start), ("end", end)):
    if vec is not None:
      _checks.require_floating(name, vec)
      if tuple(np.shape(vec)) != (k,):
        raise ValueError(f"{name} must have shape [K] = ({k},), got {np.shape(vec)}")
  if mask is not None:
    _checks.require_bool("mask", mask)
    _checks.require_min_rank("mask", mask, 1, "[..., T]")
    if np.shape(mask)[-1] != length:
      raise ValueError(
          f"mask must have shape [..., T] with T={length} (emissions "
          f"{np.shape(emissions)}), got {np.shape(mask)}")
  if tags is not None:
    check_tags(tags, length)
    check_tag_range(tags, mask, k)
  batch = _batch_shape(emissions, [("mask", mask), ("tags", tags)])
  dtype = _checks.compute_dtype(jnp.result_type(
      emissions, transitions, *(v for v in (start, end) if v is not None)))
  n = int(np.prod(batch, dtype=np.int64))
  em = jnp.broadcast_to(jnp.asarray(emissions, dtype), batch + (length, k))
  em = em.reshape(n, length, k)
  if mask is None:
    m = jnp.ones((n, length), bool)
  else:
    m = jnp.broadcast_to(mask, batch + (length,)).reshape(n, length)
  zeros = jnp.zeros((k,), dtype)
  chain = Chain(
      emissions=em,
      transitions=jnp.asarray(transitions, dtype),
      start=zeros if start is None else jnp.asarray(start, dtype),
      end=zeros if end is None else jnp.asarray(end, dtype),
      mask=m,
      batch_shape=batch)
  flat_tags = None
  if tags is not None:
    flat_tags = jnp.broadcast_to(tags, batch + (length,)).reshape(n, length)
    flat_tags = jnp.clip(flat_tags.astype(jnp.int32), 0, k - 1)
  return chain, flat_tags


def valid_counts(mask):
  """Inclusive running count of valid positions, int32 `[N, T]`.

  A matmul with a triangular ones matrix for T <= 2048: on XLA:CPU the
  associative-scan lowering of `cumsum` costs several times more at these
  sizes. Counts stay exact in float32 (< 2**24).
  """
  length = mask.shape[1]
  if length > 2048:
    return jnp.cumsum(mask, axis=1, dtype=jnp.int32)
  iota = jnp.arange(length)
  upper = (iota[:, None] <= iota[None, :]).astype(jnp.float32)
  return (mask.astype(jnp.float32) @ upper).astype(jnp.int32)


def boundaries(mask):
  """First/last valid indicators and running valid counts for a `[N, T]` mask.

  Returns:
    `(first [N, T] bool, last [N, T] bool, count [N, T] int32)`.
  """
  count = valid_counts(mask)
  first = mask & (count == 1)
  last = mask & (count == count[:, -1:])
  return first, last, count


def neighbours(tags, mask):
  """Tags at the previous and next *valid* positions.

  The valid tags are first compacted (scattered to their rank), so gaps and
  left padding need no sequential scan.

  Returns:
    `(prev_tag, has_prev, next_tag, has_next)`, all `[N, T]`; the tags are
    0 where the neighbour does not exist.
  """
  n, length = mask.shape
  count = valid_counts(mask)
  rank = jnp.where(mask, count - 1, length)
  rows = jnp.arange(n)[:, None]
  compact = jnp.zeros_like(tags).at[rows, rank].set(tags, mode="drop", unique_indices=True)
  has_prev = mask & (count >= 2)
  has_next = mask & (count < count[:, -1:])
  prev_tag = jnp.take_along_axis(compact, jnp.clip(count - 2, 0, length - 1), axis=1)
  next_tag = jnp.take_along_axis(compact, jnp.clip(count, 0, length - 1), axis=1)
  return (jnp.where(has_prev, prev_tag, 0), has_prev,
          jnp.where(has_next, next_tag, 0), has_next)


def restore(x, batch_shape):
  """Reshape a leading flat axis `N` back to the batch shape."""
  return x.reshape(tuple(batch_shape) + x.shape[1:])
