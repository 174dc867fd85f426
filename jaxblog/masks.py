"""Attention masks as one idea: a key is visible when its rank is <= the query's.

Every mask a Transformer needs for the language-model family of Su's 2019
article (https://kexue.fm/archives/6933) is the same comparison with a different
per-token rank:

| mask                   | rank of token t                          |
|------------------------|------------------------------------------|
| `causal`               | its position `t`                         |
| `unilm` (seq2seq)      | `cumsum(segment_ids)[t]` (source = 0)    |
| `permutation`          | the step at which `t` is generated       |
| `permutation(strict)`  | same, compared with `<` (XLNet query stream) |

so the module exposes `from_ranks` and builds everything else on it. Padding and
packing are not orders but filters, and are AND-ed on with `combine`:
`padding` hides invalid keys, `segment` keeps attention inside one packed
example. Masks are `bool` with `True` = may attend, shaped `[..., Q, K]` (or a
broadcastable `[..., 1, K]` for `padding`); `to_bias` turns one into an additive
bias that uses the finite `finfo(dtype).min`, so a fully masked row softmaxes to
a uniform row instead of NaN.

Nothing here materialises more than the `[..., Q, K]` result, and everything is
an integer comparison XLA fuses into the consumer.

Example:
  >>> import jax.numpy as jnp
  >>> from jaxblog import masks
  >>> segment_ids = jnp.array([0, 0, 1, 1])  # source, source, target, target
  >>> masks.unilm(segment_ids).astype(jnp.int32)
  Array([[1, 1, 0, 0],
         [1, 1, 0, 0],
         [1, 1, 1, 0],
         [1, 1, 1, 1]], dtype=int32)
  >>> valid = jnp.array([True, True, True, False])  # last token is padding
  >>> bias = masks.to_bias(masks.combine(masks.causal(4), masks.padding(valid)))
  >>> bias[3].tolist() == [0.0, 0.0, 0.0, float(jnp.finfo(jnp.float32).min)]
  True

References: Su 2019, "从语言模型到Seq2Seq：Transformer如戏，全靠Mask"
  (https://kexue.fm/archives/6933); Dong et al. 2019, "Unified Language Model
  Pre-training for Natural Language Understanding and Generation" (UniLM,
  arXiv:1905.03197);
  Yang et al. 2019, "XLNet: Generalized Autoregressive Pretraining for Language
  Understanding" (arXiv:1906.08237).
"""
from __future__ import annotations

import operator

import jax
import jax.numpy as jnp
import numpy as np

from jaxblog import _checks

__all__ = ["from_ranks", "causal", "padding", "unilm", "permutation", "segment",
           "combine", "to_bias"]


def from_ranks(query_rank: jax.Array, key_rank: jax.Array, *,
               strict: bool = False) -> jax.Array:
  """The one mask: `key_rank[..., j] <= query_rank[..., i]` (`<` if `strict`).

  Args:
    query_rank: integer `[..., Q]`, the rank of each query token.
    key_rank: integer `[..., K]`, the rank of each key token; leading axes
      broadcast against `query_rank`'s.
    strict: compare with `<`, so a token never sees itself (XLNet query stream).

  Returns:
    bool `[..., Q, K]`, `True` where query `i` may attend to key `j`.

  References: https://kexue.fm/archives/6933 (every mask there is this comparison
    for some rank).
  """
  _checks.require_integer("query_rank", query_rank)
  _checks.require_integer("key_rank", key_rank)
  _checks.require_min_rank("query_rank", query_rank, 1, "[..., Q]")
  _checks.require_min_rank("key_rank", key_rank, 1, "[..., K]")
  return _pairwise(query_rank, key_rank, jnp.greater if strict else jnp.greater_equal)


def _pairwise(query, key, op) -> jax.Array:
  """`op(query[..., i], key[..., j])` over `[..., Q, K]`, leading axes broadcast."""
  query, key = jnp.asarray(query), jnp.asarray(key)
  lead = np.broadcast_shapes(query.shape[:-1], key.shape[:-1])
  q = jnp.broadcast_to(query, lead + query.shape[-1:])[..., :, None]
  k = jnp.broadcast_to(key, lead + key.shape[-1:])[..., None, :]
  return op(q, k)


def causal(length: int) -> jax.Array:
  """Lower-triangular language-model mask, `j <= i`.

  Args:
    length: a Python int >= 1, the sequence length `T`.

  Returns:
    bool `[T, T]`.

  References: https://kexue.fm/archives/6933 (the unidirectional LM mask).
  """
  try:
    length = operator.index(length)
  except TypeError:
    raise TypeError(
        f"length must be a static Python int, got {type(length).__name__}") from None
  if length < 1:
    raise ValueError(f"length must be >= 1, got {length}")
  positions = jnp.arange(length, dtype=jnp.int32)
  return from_ranks(positions, positions)


def padding(valid: jax.Array) -> jax.Array:
  """Key-padding mask: every query may attend to the valid keys only.

  Args:
    valid: bool `[..., T]`, `True` at real (non-padding) tokens.

  Returns:
    bool `[..., 1, T]`, broadcastable against `[..., Q, T]` masks.

  References: https://kexue.fm/archives/6933 (the key-padding mask, token id > 0).
  """
  _checks.require_bool("valid", valid)
  _checks.require_min_rank("valid", valid, 1, "[..., T]")
  return jnp.asarray(valid)[..., None, :]


def unilm(segment_ids: jax.Array) -> jax.Array:
  """UniLM seq2seq mask: `cumsum(s)[j] <= cumsum(s)[i]`.

  With segment ids `0…0 1…1` (source, then target) the source attends
  bidirectionally within itself, and each target token sees the whole source
  and the target causally. For that layout this equals the 2019 construction
  `(1 - s_i)(1 - s_j) + s_i [j <= i]`.

  Args:
    segment_ids: integer `[..., T]` (0 = source, 1 = target).

  Returns:
    bool `[..., T, T]`.

  References: https://kexue.fm/archives/6933 (bert4keras `UniLM_Mask`); UniLM,
    arXiv:1905.03197.
  """
  _checks.require_integer("segment_ids", segment_ids)
  _checks.require_min_rank("segment_ids", segment_ids, 1, "[..., T]")
  rank = jnp.cumsum(jnp.asarray(segment_ids), axis=-1)
  return from_ranks(rank, rank)


def permutation(order: jax.Array, *, strict: bool = False) -> jax.Array:
  """Permutation-LM mask: key `j` visible when generated no later than query `i`.

  Args:
    order: integer `[..., T]`; `order[k]` is the position generated k-th, so
      each row must be a permutation of `0..T-1` (checked when `order` is
      concrete, i.e. not under `jit`).
    strict: `rank[j] < rank[i]` instead of `<=` — the XLNet query stream, which
      must not see its own content.

  Returns:
    bool `[..., T, T]` over original positions.

  References: https://kexue.fm/archives/6933; XLNet, arXiv:1906.08237 (content
    and query streams).
  """
  _checks.require_integer("order", order)
  _checks.require_min_rank("order", order, 1, "[..., T]")
  order = jnp.asarray(order)
  length = order.shape[-1]
  if not isinstance(order, jax.core.Tracer):
    rows = np.asarray(order).reshape(-1, length)
    if not np.array_equal(np.sort(rows, axis=-1),
                          np.broadcast_to(np.arange(length), rows.shape)):
      raise ValueError(
          f"order must hold a permutation of 0..{length - 1} in every row of its "
          f"last axis, got shape {order.shape} with values {rows[:2].tolist()}...")
  # rank[order[k]] = k, i.e. the inverse permutation.
  rank = jnp.argsort(order, axis=-1).astype(jnp.int32)
  return from_ranks(rank, rank, strict=strict)


def segment(segment_ids: jax.Array, key_segment_ids: jax.Array | None = None
            ) -> jax.Array:
  """Packing mask: attend only within the same packed example, `s_i == s_j`.

  Combine it with `causal` (or `unilm`) for packed language modelling.

  Args:
    segment_ids: integer `[..., Q]`, the example id of each query token.
    key_segment_ids: integer `[..., K]`; defaults to `segment_ids`.

  Returns:
    bool `[..., Q, K]`.

  References: the packing masks of flax `make_attention_mask(seg, seg, jnp.equal)`
    and t5x.
  """
  key_segment_ids = segment_ids if key_segment_ids is None else key_segment_ids
  _checks.require_integer("segment_ids", segment_ids)
  _checks.require_integer("key_segment_ids", key_segment_ids)
  _checks.require_min_rank("segment_ids", segment_ids, 1, "[..., Q]")
  _checks.require_min_rank("key_segment_ids", key_segment_ids, 1, "[..., K]")
  return _pairwise(segment_ids, key_segment_ids, jnp.equal)


def combine(*masks: jax.Array | None) -> jax.Array | None:
  """Logical AND of bool masks with NumPy broadcasting; `None`s are skipped.

  Args:
    *masks: bool arrays (or `None`). Ranks may differ; shorter masks gain
      leading axes as in NumPy.

  Returns:
    The combined bool mask, or `None` when every argument is `None`.

  References: https://kexue.fm/archives/6933 (the mask plus the key-padding mask).
  """
  present = [m for m in masks if m is not None]
  for i, m in enumerate(present):
    _checks.require_bool(f"masks[{i}]", m)
  if not present:
    return None
  shape = np.broadcast_shapes(*(np.shape(m) for m in present))
  out = jnp.broadcast_to(jnp.asarray(present[0]), shape)
  for m in present[1:]:
    out = jnp.logical_and(out, jnp.broadcast_to(jnp.asarray(m), shape))
  return out


def to_bias(mask: jax.Array, dtype=jnp.float32) -> jax.Array:
  """Additive attention bias: 0 where visible, `finfo(dtype).min` elsewhere.

  The finite minimum (not -inf) keeps a fully masked row NaN-free: its softmax
  is uniform rather than 0/0.

  Args:
    mask: bool mask, any shape.
    dtype: floating dtype of the bias.

  Returns:
    `dtype` array of `mask`'s shape.

  References: https://kexue.fm/archives/6933 (−∞ / −1e12 added before the
    softmax).
  """
  _checks.require_bool("mask", mask)
  dtype = jnp.dtype(dtype)
  if not jnp.issubdtype(dtype, jnp.floating):
    raise TypeError(f"dtype must be a floating dtype, got {dtype}")
  return jnp.where(mask, jnp.zeros((), dtype), jnp.asarray(jnp.finfo(dtype).min, dtype))
