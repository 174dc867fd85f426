"""BERT (and, by configuration, ALBERT and a GPT-2-shaped LM) as one Flax module.

`Transformer` is embeddings (token + segment + learned position, LayerNorm, and for
ALBERT an `E -> H` projection), `num_layers` blocks (separate parameters
`layers_0 … layers_{L-1}`, or one `block` reused L times when
`config.share_layers`), and an optional MLM head tied to the token embedding
(Dense + activation + LayerNorm, then `h @ E^T + bias`).

Which model it is depends on the mask ("Transformer如戏，全靠Mask"): `application_mask`
turns an application name plus padding / segment ids / a generation order into
the bool mask, using `jaxblog.masks` only. The permutation LM has two
equivalent forms and both are supported: tokens in original order with
`masks.permutation(order)`, or tokens fed in the permuted order with their
original `positions` under the causal mask.

`prefill` and `decode_step` are the two halves of cached decoding used by
`jaxblog.models.generate`; they share every parameter with `__call__`.

References: Su 2019, 《从语言模型到Seq2Seq：Transformer如戏，全靠Mask》 https://kexue.fm/archives/6933;
Su 2020, 《抛开约束，增强模型：一行代码提升albert表现》 https://kexue.fm/archives/7187.
"""
from __future__ import annotations

from typing import Optional, Sequence, Tuple

import flax.linen as nn
import jax
import jax.numpy as jnp

from jaxblog import _checks, masks
from jaxblog.models.config import ACTIVATIONS, APPLICATIONS, TransformerConfig
from jaxblog.models.layers import Block, KVCache, _init


def application_mask(application: str, valid: jax.Array,
                     segment_ids: Optional[jax.Array] = None,
                     order: Optional[jax.Array] = None) -> jax.Array:
  """The attention mask `[B, T, T]` of an application.

  Args:
    application: `encoder` (bidirectional), `lm` (causal), `unilm` (source
      bidirectional, target causal, from `segment_ids`) or `permutation`
      (key visible when generated no later than the query, from `order`).
    valid: bool `[B, T]`, `True` at real tokens; padded keys are hidden.
    segment_ids: integer `[B, T]`, required for `unilm`.
    order: integer `[B, T]` or `[T]`, `order[k]` = position generated k-th;
      required for `permutation`.

  Returns:
    bool `[B, T, T]`.

  References: Su 2019, 《从语言模型到Seq2Seq：Transformer如戏，全靠Mask》 https://kexue.fm/archives/6933.
  """
  _checks.require_bool("valid", valid)
  _checks.require_min_rank("valid", valid, 2, "[B, T]")
  length = valid.shape[-1]
  if application == "encoder":
    pattern = None
  elif application == "lm":
    pattern = masks.causal(length)
  elif application == "unilm":
    if segment_ids is None:
      raise ValueError("application='unilm' needs segment_ids [B, T] (0 = source, 1 = target)")
    pattern = masks.unilm(segment_ids)
  elif application == "permutation":
    if order is None:
      raise ValueError("application='permutation' needs order [B, T] (order[k] = position "
                       "generated k-th)")
    if order.shape[-1] != length:
      raise ValueError(f"order must have shape [B, T] with T={length}, got {order.shape}")
    pattern = masks.permutation(order)
  else:
    raise ValueError(f"application must be one of {APPLICATIONS}, got {application!r}")
  mask = masks.combine(pattern, masks.padding(valid))
  return jnp.broadcast_to(mask, valid.shape[:-1] + (length, length))


class Transformer(nn.Module):
  """BERT / ALBERT / GPT-2-shaped Transformer; see the module docstring."""
  config: TransformerConfig

  def setup(self):
    c = self.config
    e = c.embed_dim
    self.token_embed = nn.Embed(c.vocab_size, e, embedding_init=_init(c))
    self.position_embed = nn.Embed(c.max_position, e, embedding_init=_init(c))
    if c.type_vocab_size:
      self.segment_embed = nn.Embed(c.type_vocab_size, e, embedding_init=_init(c))
    if not c.pre_norm:
      self.embed_norm = nn.LayerNorm(c.layer_norm_eps)
    if e != c.hidden_size:
      self.embed_project = nn.Dense(c.hidden_size, kernel_init=_init(c))
    # `deterministic` (argument 3, counting the module) is static under remat.
    block = nn.remat(Block, static_argnums=(3,)) if c.remat else Block
    if c.share_layers:
      self.block = block(c)
    else:
      self.layers = [block(c) for _ in range(c.num_layers)]
    if c.pre_norm:
      self.final_norm = nn.LayerNorm(c.layer_norm_eps)
    if c.with_mlm and c.mlm_transform:
      self.mlm_dense = nn.Dense(e, kernel_init=_init(c))
      self.mlm_norm = nn.LayerNorm(c.layer_norm_eps)
    if c.with_mlm and c.mlm_bias:
      self.mlm_bias = self.param("mlm_bias", nn.initializers.zeros, (c.vocab_size,))
    self.dropout = nn.Dropout(c.dropout_rate)

  def _blocks(self) -> Sequence[Block]:
    c = self.config
    return [self.block] * c.num_layers if c.share_layers else self.layers

  def _embed(self, input_ids, segment_ids, positions, deterministic):
    c = self.config
    x = self.token_embed(input_ids) + self.position_embed(positions)
    if c.type_vocab_size:
      x = x + self.segment_embed(segment_ids)
    if not c.pre_norm:
      x = self.embed_norm(x)
    x = self.dropout(x, deterministic=deterministic)
    if c.embed_dim != c.hidden_size:
      x = self.embed_project(x)
    return x

  def _check_inputs(self, input_ids, segment_ids, attention_mask):
    _checks.require_integer("input_ids", input_ids)
    if input_ids.ndim != 2:
      raise ValueError(f"input_ids must have shape [B, T], got {input_ids.shape}")
    if input_ids.shape[1] > self.config.max_position:
      raise ValueError(f"input_ids has length {input_ids.shape[1]} > max_position="
                       f"{self.config.max_position}")
    if segment_ids is None:
      segment_ids = jnp.zeros_like(input_ids)
    _checks.require_integer("segment_ids", segment_ids)
    _checks.require_shape("segment_ids", segment_ids, input_ids.shape, "[B, T] of input_ids")
    if attention_mask is None:
      valid = jnp.ones(input_ids.shape, bool)
    else:
      _checks.require_shape("attention_mask", attention_mask, input_ids.shape,
                            "[B, T] of input_ids")
      valid = jnp.asarray(attention_mask) != 0
    return segment_ids, valid

  def encode(self, input_ids: jax.Array, segment_ids: Optional[jax.Array] = None,
             attention_mask: Optional[jax.Array] = None, *,
             application: Optional[str] = None, order: Optional[jax.Array] = None,
             positions: Optional[jax.Array] = None, deterministic: bool = True,
             return_cache: bool = False):
    """Last hidden states `[B, T, H]` (and the per-layer keys/values if asked).

    Args:
      input_ids: integer `[B, T]`.
      segment_ids: integer `[B, T]` (BERT token types; UniLM source = 0,
        target = 1); default zeros.
      attention_mask: `[B, T]`, nonzero / `True` at real tokens; default all.
      application: overrides `config.application` (see `application_mask`).
      order: generation order for `application='permutation'`.
      positions: integer `[B, T]` position ids; default `0..T-1`. Feeding a
        permuted sequence with its original positions under `lm` is the
        article's simpler form of the permutation LM.
      deterministic: disables dropout (needs a `dropout` rng when `False`).
      return_cache: also return a tuple of `(keys, values)` per layer.

    Returns:
      hidden states `[B, T, H]`, or `(hidden, kv)` with `return_cache`.
    """
    c = self.config
    segment_ids, valid = self._check_inputs(input_ids, segment_ids, attention_mask)
    if positions is None:
      positions = jnp.broadcast_to(jnp.arange(input_ids.shape[1]), input_ids.shape)
    _checks.require_integer("positions", positions)
    mask = application_mask(application or c.application, valid, segment_ids, order)
    x = self._embed(input_ids, segment_ids, positions, deterministic)
    kvs = []
    for block in self._blocks():
      x, kv = block(x, mask, deterministic)
      kvs.append(kv)
    if c.pre_norm:
      x = self.final_norm(x)
    return (x, tuple(kvs)) if return_cache else x

  def logits(self, hidden: jax.Array, output_kernel: Optional[jax.Array] = None) -> jax.Array:
    """Tied MLM / LM head: `[..., H] -> [..., V]`.

    `output_kernel`, when given, is the token embedding already transposed to
    `[E, V]` (see `jaxblog.models.generate`): `h @ embedding.T` reads the
    `[V, E]` table against its layout, and on XLA:CPU the LM-head GEMM (the
    largest of a decoding step) ran 15-20 % faster at 8 and 32 rows with the
    table transposed once per search.
    """
    c = self.config
    if not c.with_mlm:
      raise ValueError("this model has no MLM head: build it with TransformerConfig(with_mlm=True)")
    h = hidden
    if c.mlm_transform:
      h = self.mlm_norm(ACTIVATIONS[c.activation](self.mlm_dense(h)))
    elif c.embed_dim != c.hidden_size:
      raise ValueError("mlm_transform=False needs embedding_size == hidden_size")
    out = self.token_embed.attend(h) if output_kernel is None else h @ output_kernel
    if c.mlm_bias:
      out = out + jnp.reshape(self.mlm_bias, (1,) * (out.ndim - 1) + (-1,))
    return out

  def __call__(self, input_ids: jax.Array, segment_ids: Optional[jax.Array] = None,
               attention_mask: Optional[jax.Array] = None, *,
               application: Optional[str] = None, order: Optional[jax.Array] = None,
               positions: Optional[jax.Array] = None,
               deterministic: bool = True) -> jax.Array:
    """Hidden states `[B, T, H]`, or logits `[B, T, V]` when `config.with_mlm`.

    Arguments as in `encode`; `model.apply(variables, input_ids,
    token_type_ids, attention_mask)` is the Hugging Face calling convention.
    """
    hidden = self.encode(input_ids, segment_ids, attention_mask, application=application,
                         order=order, positions=positions, deterministic=deterministic)
    return self.logits(hidden) if self.config.with_mlm else hidden

  def prefill(self, input_ids: jax.Array, segment_ids: Optional[jax.Array] = None,
              attention_mask: Optional[jax.Array] = None, *,
              application: Optional[str] = None
              ) -> Tuple[jax.Array, Tuple[KVCache, ...]]:
    """Runs the prompt once: logits at each row's last valid token and keys/values.

    Prompts are right-padded; `attention_mask` marks the real tokens.

    Returns:
      `(logits [B, V], ((keys, values) per layer, each [B, heads, T, head_dim]))`.
    """
    _, valid = self._check_inputs(input_ids, segment_ids, attention_mask)
    hidden, kvs = self.encode(input_ids, segment_ids, attention_mask,
                              application=application, return_cache=True)
    last = jnp.maximum(jnp.sum(valid, axis=-1) - 1, 0)
    last_hidden = jnp.take_along_axis(hidden, last[:, None, None], axis=1)[:, 0]
    return self.logits(last_hidden), kvs

  def decode_step(self, tokens: jax.Array, segment: jax.Array, positions: jax.Array,
                  key_mask: jax.Array, cache: Tuple[KVCache, ...], slot: jax.Array,
                  output_kernel: Optional[jax.Array] = None
                  ) -> Tuple[jax.Array, Tuple[KVCache, ...]]:
    """One cached step: next-token logits for `tokens` and the updated caches.

    Args:
      tokens: int `[N]`, the tokens fed at this step.
      segment: int `[N]`, their segment ids.
      positions: int `[N]`, their position ids.
      key_mask: bool `[N, K]`, the cache slots the new query may attend to
        (including `slot`).
      cache: per layer `(keys, values)`, each `[N, heads, K, head_dim]`, or a
        `transformer.CopiesCache` (then `key_mask` is `[N, T * C]`).
      slot: int32 scalar, cache slot the new keys/values are written to.
      output_kernel: optional `[E, V]` transposed embedding for the head (see
        `logits`).

    Returns:
      `(logits [N, V], cache)`.
    """
    c = self.config
    x = self._embed(tokens[:, None], segment[:, None], positions[:, None], True)
    new_cache = []
    for block, kv in zip(self._blocks(), cache):
      x, kv = block(x, key_mask[:, None, :], True, cache=kv, slot=slot)
      new_cache.append(kv)
    if c.pre_norm:
      x = self.final_norm(x)
    return self.logits(x[:, 0], output_kernel), tuple(new_cache)
