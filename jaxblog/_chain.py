"""Linear-chain inputs: argument checks and one canonical layout.

Shared by `jaxblog.crf` and `jaxblog.memm`. Both accept `emissions [..., L, K]`
(`L` positions, `K` tags) with any leading batch axes, a `[K, K]` transition
matrix, optional `start`/`end` vectors `[K]` and an optional bool mask
`[..., L]` of any validity pattern. `prepare` checks them and returns a flat
batch `[N, L, K]` in the compute dtype and a dense mask `[N, L]`;
`boundaries` and `neighbours` give the first/last valid indicators and the
tags at the neighbouring valid positions, which let right padding, left
padding and gaps share one code path without a sequential scan. All checks
run on static shapes, so they cost nothing under `jax.jit`; bad input raises
`ValueError`/`TypeError` naming the argument and the shapes.
"""
from __future__ import annotations

import math
from typing import NamedTuple

import jax
from jax.typing import ArrayLike
import jax.numpy as jnp
import numpy as np

from jaxblog import _checks


class Chain(NamedTuple):
  """Canonical chain inputs: flat batch `N`, length `L`, tags `K`."""
  emissions: jax.Array      # [N, L, K] compute dtype
  transitions: jax.Array    # [K, K]
  start: jax.Array          # [K]
  end: jax.Array            # [K]
  mask: jax.Array           # [N, L] bool
  batch_shape: tuple        # leading axes to restore on outputs


def _batch_shape(emissions, others) -> tuple:
  """Broadcast of the leading axes of emissions and the `[..., L]` arrays.

  The error names the first argument whose leading axes do not broadcast
  with those before it (e.g. a `mask` whose batch differs from `tags`).
  """
  batch = tuple(np.shape(emissions))[:-2]
  seen = [f"emissions {np.shape(emissions)}"]
  for name, x in others:
    if x is None:
      continue
    try:
      batch = tuple(jnp.broadcast_shapes(batch, tuple(np.shape(x))[:-1]))
    except ValueError:
      raise ValueError(
          f"{name} has shape {np.shape(x)}, whose leading batch axes "
          f"{tuple(np.shape(x))[:-1]} do not broadcast with those of "
          f"{', '.join(seen)}") from None
    seen.append(f"{name} {np.shape(x)}")
  return batch


def check_transitions(transitions: ArrayLike, k: int, name: str = "transitions") -> None:
  """TypeError/ValueError unless `transitions` is a floating `[K, K]` array."""
  _checks.require_floating(name, transitions)
  if tuple(np.shape(transitions)) != (k, k):
    raise ValueError(
        f"{name} must have shape [K, K] = ({k}, {k}) to match emissions with "
        f"K={k} tags, got {np.shape(transitions)}")


def check_tags(tags: ArrayLike, length: int) -> None:
  """TypeError/ValueError unless `tags` is an integer `[..., L]` array."""
  _checks.require_integer("tags", tags)
  _checks.require_min_rank("tags", tags, 1, "[..., L]")
  if np.shape(tags)[-1] != length:
    raise ValueError(
        f"tags must have shape [..., L] with L={length} (from emissions), got "
        f"{np.shape(tags)}")


def check_tag_range(tags: ArrayLike, mask: ArrayLike | None, k: int) -> None:
  """ValueError for tags outside [0, K) at valid positions, when concrete.

  Padding positions may hold any value (e.g. -100). Under `jax.jit` the values
  are unknown at trace time and out-of-range tags are clipped instead. The
  shapes of `tags` and `mask` must already be known to broadcast.
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


def check_mask(mask: ArrayLike, length: int, emissions_shape: tuple,
               name: str = "mask") -> None:
  """TypeError/ValueError unless `mask` is a bool `[..., L]` array."""
  _checks.require_bool(name, mask)
  _checks.require_min_rank(name, mask, 1, "[..., L]")
  if np.shape(mask)[-1] != length:
    raise ValueError(
        f"{name} must have shape [..., L] with L={length} (emissions "
        f"{tuple(emissions_shape)}), got {np.shape(mask)}")


def prepare(emissions: ArrayLike, transitions: ArrayLike,
            mask: ArrayLike | None = None, start: ArrayLike | None = None,
            end: ArrayLike | None = None,
            tags: ArrayLike | None = None) -> tuple[Chain, jax.Array | None]:
  """Validates and canonicalises linear-chain inputs.

  Args:
    emissions: `[..., L, K]` floating scores.
    transitions: `[K, K]`; `transitions[i, j]` scores tag `i` followed by `j`.
    mask: optional bool `[..., L]`, True = valid.
    start: optional `[K]` score of the first valid tag.
    end: optional `[K]` score of the last valid tag.
    tags: optional integer `[..., L]` (values are data, so out-of-range tags
      cannot raise under jit; they are checked where they are concrete).

  Returns:
    `(Chain, tags [N, L] int32 or None)`.
  """
  _checks.require_floating("emissions", emissions)
  _checks.require_min_rank("emissions", emissions, 2, "[..., L, K]")
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
    check_mask(mask, length, np.shape(emissions))
  if tags is not None:
    check_tags(tags, length)
  batch = _batch_shape(emissions, [("tags", tags), ("mask", mask)])
  if tags is not None:
    check_tag_range(tags, mask, k)
  dtype = _checks.compute_dtype(jnp.result_type(
      emissions, transitions, *(v for v in (start, end) if v is not None)))
  n = math.prod(batch)  # an int, or a symbolic dimension under jax.export
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


def valid_counts(mask: jax.Array) -> jax.Array:
  """Inclusive running count of valid positions, int32 `[N, L]`.

  A matmul with a triangular ones matrix for L <= 2048: on XLA:CPU the
  associative-scan lowering of `cumsum` costs several times more at these
  sizes. Counts stay exact in float32 (< 2**24).
  """
  length = mask.shape[1]
  if length > 2048:
    return jnp.cumsum(mask, axis=1, dtype=jnp.int32)
  iota = jnp.arange(length)
  upper = (iota[:, None] <= iota[None, :]).astype(jnp.float32)
  return (mask.astype(jnp.float32) @ upper).astype(jnp.int32)


def boundaries(mask: jax.Array) -> tuple[jax.Array, jax.Array, jax.Array]:
  """First/last valid indicators and running valid counts for a `[N, L]` mask.

  Returns:
    `(first [N, L] bool, last [N, L] bool, count [N, L] int32)`.
  """
  count = valid_counts(mask)
  first = mask & (count == 1)
  last = mask & (count == count[:, -1:])
  return first, last, count


def neighbours(tags: jax.Array, mask: jax.Array
               ) -> tuple[jax.Array, jax.Array, jax.Array, jax.Array]:
  """Tags at the previous and next *valid* positions.

  The valid tags are first compacted (scattered to their rank), so gaps and
  left padding need no sequential scan.

  Returns:
    `(prev_tag, has_prev, next_tag, has_next)`, all `[N, L]`; the tags are
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


def restore(x: jax.Array, batch_shape: tuple) -> jax.Array:
  """Reshape a leading flat axis `N` back to the batch shape."""
  return x.reshape(tuple(batch_shape) + x.shape[1:])
