"""Attention, the Transformer block and the decoding caches every Transformer here is built from.

One configuration dataclass describes BERT, ALBERT (factorised embeddings and a
single shared block), and a GPT-2-shaped causal LM (pre-LN, plain tied head);
the masks decide what the model *is* ("Transformer如戏，全靠Mask"), so the
blocks here only ever see a boolean attention mask `[B, Q, K]` (`True` = may
attend) built with `jaxblog.masks`. The same `Block` also serves the
character tagger (bidirectional mask) and the encoder-decoder of the
bidirectional-decoding article: a decoder layer is a `Block` whose
`sources` add cross-attention sublayers over other sequences (the encoder
output, the other direction's decoder), each with its own mask.

Attention takes an optional key/value cache so the same parameters serve both
full-sequence training and one-token-at-a-time decoding; the cache layout is
`[N, heads, T, head_dim]` per layer (the layout the attention dots read
directly, so the cache is never transposed), written in place with
`lax.dynamic_update_slice` (no stacking over layers, no slicing per step).
For decoding several copies of each input (beams, samples) Attention also takes
a `CopiesCache`, slots per copy that are never reordered (see
`jaxblog.models.generate`).
The fused `qkv` projection makes one GEMM per layer instead of three, which is
what matters for the small-row GEMMs of decoding on CPU.

References: Su 2019, 《从语言模型到Seq2Seq：Transformer如戏，全靠Mask》
https://kexue.fm/archives/6933; Su 2020, 《抛开约束，增强模型：一行代码提升albert表现》
https://kexue.fm/archives/7187; Su 2019, 《seq2seq之双向解码》
https://kexue.fm/archives/6877.
"""
from __future__ import annotations

from typing import NamedTuple, Optional, Sequence, Tuple, Union

import flax.linen as nn
import jax
import jax.numpy as jnp

from jaxblog.models.config import ACTIVATIONS, TransformerConfig


def _init(config: TransformerConfig):
  return nn.initializers.normal(config.initializer_range)


KVCache = Tuple[jax.Array, jax.Array]


class CopiesCache(NamedTuple):
  """Decoding cache for `C` copies (beams, samples) of each of `B` inputs.

  `T` slots per copy, interleaved slot-major: slot `t` of copy `c` is entry
  `t * C + c`, so one step writes one contiguous `dynamic_update_slice` (in
  place) for all copies, and a copy only ever writes its own entries. Which
  copy holds a hypothesis' token at each slot is the caller's business,
  expressed through the attention mask over all `T * C` entries (exactly one
  copy per visible slot); so a beam search that reorders hypotheses never
  moves these arrays, only the mask changes. With `C = 1` this is a plain
  per-row cache.

  Keys are stored transposed, `head_dim` before slots, so that both attention
  dots read their right operand in its natural `[contracted, out]` layout (a
  transposed right operand ran at half speed or less on XLA:CPU).

  Attributes:
    keys: `[B, heads, head_dim, T * C]`.
    values: `[B, heads, T * C, head_dim]`.
  """
  keys: jax.Array
  values: jax.Array


def _masked_softmax(scores, visible):
  """Softmax over the last axis of the visible entries.

  `where` rather than an added bias: a fully masked row stays finite (uniform).
  Computed in float32 also for half-precision scores; returned in their dtype.
  """
  wide = scores.astype(jnp.promote_types(scores.dtype, jnp.float32))
  weights = jax.nn.softmax(jnp.where(visible, wide, jnp.finfo(wide.dtype).min), axis=-1)
  return weights.astype(scores.dtype)


def _copies_attention(q, k, v, mask, cache: CopiesCache, slot):
  """Attention of rows `b * C + c` over a `CopiesCache`; returns `(context, cache)`.

  `q, k, v` are `[N, heads, Q, head_dim]` with `N = B * C`; `mask` is bool
  `[N, Q, T * C]`; `k, v` go to slots `slot .. slot + Q - 1` of each row's own
  copy. Queries of all copies of an input share one batched dot per (input,
  head) against every copy's entries (the mask keeps the right ones), so the
  dots have `C * Q` rows instead of `Q`.
  """
  n, heads, length, dim = q.shape
  batch = cache.keys.shape[0]
  copies = n // batch
  # [N, heads, Q, D] -> [B, C, heads, Q, D] (tiny arrays)
  q, k, v = (x.reshape(batch, copies, heads, length, dim) for x in (q, k, v))
  k = jnp.transpose(k, (0, 2, 4, 3, 1)).reshape(batch, heads, dim, length * copies)
  v = jnp.transpose(v, (0, 2, 3, 1, 4)).reshape(batch, heads, length * copies, dim)
  start = slot * copies
  keys = jax.lax.dynamic_update_slice(cache.keys, k.astype(cache.keys.dtype), (0, 0, 0, start))
  values = jax.lax.dynamic_update_slice(cache.values, v.astype(cache.values.dtype),
                                        (0, 0, start, 0))
  q = jnp.swapaxes(q, 1, 2).reshape(batch, heads, copies * length, dim)
  scores = jnp.einsum("bhmd,bhdk->bhmk", q, keys) * (1.0 / jnp.sqrt(dim).astype(q.dtype))
  weights = _masked_softmax(scores, mask.reshape(batch, 1, copies * length, mask.shape[-1]))
  context = jnp.einsum("bhmk,bhkd->bhmd", weights, values)
  context = jnp.swapaxes(context.reshape(batch, heads, copies, length, dim), 1, 2)
  return context.reshape(n, heads, length, dim), CopiesCache(keys, values)


class Attention(nn.Module):
  """Multi-head attention over a bool mask: self-attention (with an optional KV cache) or cross-attention."""
  config: TransformerConfig

  @nn.compact
  def __call__(self, x: jax.Array, mask: jax.Array,
               cache: Optional[Union[KVCache, CopiesCache]] = None,
               slot: Optional[jax.Array] = None, *, source: Optional[jax.Array] = None
               ) -> Tuple[jax.Array, Union[KVCache, CopiesCache]]:
    """Attends `x` to itself (or to the cache after writing `x`'s keys into it), or to `source`.

    Args:
      x: `[B, Q, H]` inputs (the queries).
      mask: bool `[B or 1, Q, K]`, `True` = may attend; `K = Q` for
        self-attention without a cache, `K` = cache length with one, `K = S`
        with a `source`.
      cache: optional `(keys, values)`, each `[B, heads, K, head_dim]`, or a
        `CopiesCache` (then `mask` is `[N, Q, T * C]`).
      slot: int32 scalar, where `x`'s keys/values are written in the cache
        (for a `CopiesCache`: the slot, in each row's own copy).
      source: optional `[B, S, H]`: keys and values come from it instead of
        `x` (cross-attention, separate `query` and `key_value` projections;
        no cache).

    Returns:
      `(out [B, Q, H], (keys, values))`: this call's keys/values without a
      cache (for prefilling one), the updated cache with one.
    """
    c = self.config
    if source is None:
      qkv = nn.DenseGeneral((3, c.num_heads, c.head_dim), kernel_init=_init(c),
                           dtype=c.compute_dtype, name="qkv")(x)
      # Heads before time: [B, heads, T, head_dim] is the layout both attention
      # dots consume directly, so a cache kept in it is never transposed.
      q, k, v = (jnp.swapaxes(qkv[..., i, :, :], 1, 2) for i in range(3))
    else:
      if cache is not None:
        raise ValueError("Attention: a cache is for self-attention; got both cache and source")
      q = jnp.swapaxes(nn.DenseGeneral((c.num_heads, c.head_dim), kernel_init=_init(c),
                                       dtype=c.compute_dtype, name="query")(x), 1, 2)
      kv = nn.DenseGeneral((2, c.num_heads, c.head_dim), kernel_init=_init(c),
                           dtype=c.compute_dtype, name="key_value")(source)
      k, v = (jnp.swapaxes(kv[..., i, :, :], 1, 2) for i in range(2))
    if isinstance(cache, CopiesCache):
      context, kv = _copies_attention(q, k, v, mask, cache, slot)
    else:
      if cache is not None:
        start = (0, 0, slot, 0)
        k = jax.lax.dynamic_update_slice(cache[0], k.astype(cache[0].dtype), start)
        v = jax.lax.dynamic_update_slice(cache[1], v.astype(cache[1].dtype), start)
      scores = jnp.einsum("bhqd,bhkd->bhqk", q, k) * (1.0 / jnp.sqrt(c.head_dim).astype(q.dtype))
      weights = _masked_softmax(scores, mask[:, None])
      context, kv = jnp.einsum("bhqk,bhkd->bhqd", weights, v), (k, v)
    out = nn.DenseGeneral(c.hidden_size, axis=(-2, -1), kernel_init=_init(c),
                          dtype=c.compute_dtype, name="out")(jnp.swapaxes(context, 1, 2))
    return out, kv


class Block(nn.Module):
  """Self-attention, cross-attention to each source, feed-forward; residuals, post-LN (BERT) or pre-LN (GPT-2)."""
  config: TransformerConfig

  @nn.compact
  def __call__(self, x: jax.Array, mask: jax.Array, deterministic: bool = True, *,
               cache: Optional[KVCache] = None, slot: Optional[jax.Array] = None,
               sources: Sequence[Tuple[jax.Array, jax.Array]] = ()
               ) -> Tuple[jax.Array, KVCache]:
    """Applies the block.

    Args:
      x: `[B, Q, H]`.
      mask: bool `[B or 1, Q, K]`, the self-attention mask.
      deterministic: disables dropout.
      cache, slot: see `Attention`.
      sources: `(source [B, S, H], mask bool [B or 1, Q, S])` pairs; each
        adds a cross-attention sublayer (`cross_attn_i`) after the
        self-attention, in order (a Transformer decoder layer has one: the
        encoder output). Their number fixes the parameter tree.

    Returns:
      `(y [B, Q, H], keys/values)` of the self-attention, as `Attention`
      returns them.
    """
    c = self.config
    drop = nn.Dropout(c.dropout_rate, deterministic=deterministic)

    def sublayer(x, fn, norm):
      if c.pre_norm:
        return x + drop(fn(norm(x)))
      return norm(x + drop(fn(x)))

    def ffn(h):
      h = nn.Dense(c.intermediate_size, kernel_init=_init(c), dtype=c.compute_dtype,
                   name="ffn_in")(h)
      h = ACTIVATIONS[c.activation](h)
      return nn.Dense(c.hidden_size, kernel_init=_init(c), dtype=c.compute_dtype,
                      name="ffn_out")(h)

    kv = None

    def self_attention(h):
      nonlocal kv
      h, kv = Attention(c, name="attn")(h, mask, cache, slot)
      return h

    x = sublayer(x, self_attention, nn.LayerNorm(c.layer_norm_eps, name="attn_norm"))
    for i, (source, source_mask) in enumerate(sources):
      cross = Attention(c, name=f"cross_attn_{i}")
      x = sublayer(x, lambda h: cross(h, source_mask, source=source)[0],
                   nn.LayerNorm(c.layer_norm_eps, name=f"cross_norm_{i}"))
    x = sublayer(x, ffn, nn.LayerNorm(c.layer_norm_eps, name="ffn_norm"))
    return x, kv
