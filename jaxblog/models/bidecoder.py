"""A seq2seq Transformer with an L2R and an R2L decoder that can see each other.

Our reading of the synchronous bidirectional model: a shared encoder; two
decoders (separate weights, shared output classifier), the L2R one reading
`[start, y_1 … y_{n-1}]` and the R2L one `[start', y_n … y_2]`; in every
decoder layer, besides causal self-attention and attention to the encoder,
position `i` of one direction attends to positions `j <= i` of the other
direction's layer input (the reference's cross-direction causal constraint).
With `cross_direction=False` the two decoders are independent, i.e. two
unidirectional models sharing an encoder — the baseline. With
`encoder_config`, the encoder is a `jaxblog.models.Transformer` (e.g. a
pretrained ALBERT loaded with `load_hf_albert` and placed under the
`pretrained` parameter key) instead of the small built-in one.

Every layer is `jaxblog.models.layers.Block` (pre-LN): the encoder's under the
source padding mask, the decoders' under the causal mask with the encoder
output (padding mask) and, when `cross_direction`, the other direction
(causal mask) as cross-attention `sources`. Every mask comes from
`jaxblog.masks`, so the one block is encoder, decoder or bidirectional decoder
by what it is given to attend to. Decoding re-runs the decoders on full
prefixes (as the reference does), which `decode_at` exposes for the step
functions of `jaxblog.decoding`. The reference's LSTM layers, conditional
LayerNorm and copy prior are replaced by these Transformer layers.

References: Su 2019, 《seq2seq之双向解码》 https://kexue.fm/archives/6877;
Zhou, Zhang & Zong, "Synchronous Bidirectional Neural Machine Translation",
TACL 2019.
"""
from __future__ import annotations

from typing import Optional, Tuple

import flax.linen as nn
import jax
import jax.numpy as jnp

from jaxblog import masks
from jaxblog.models.config import TransformerConfig
from jaxblog.models.layers import Block
from jaxblog.models.transformer import Transformer


class BiDecoderSeq2Seq(nn.Module):
  """Encoder + L2R/R2L decoders; `__call__` returns both directions' logits.

  Attributes:
    src_vocab, tgt_vocab: vocabulary sizes (id 0 = padding).
    hidden_size, num_heads: width and attention heads (feed-forward width
      `4 * hidden_size`).
    num_layers, num_decoder_layers: encoder and decoder depths.
    max_len: longest source / target sequence (position embeddings).
    cross_direction: let each decoder attend to the other (causally).
    encoder_config: when given, the encoder is `Transformer(encoder_config)`
      (parameters under `pretrained`; `src_vocab` must equal its vocabulary),
      its last hidden states projected to `hidden_size` when the widths differ.
  """
  src_vocab: int
  tgt_vocab: int
  hidden_size: int = 128
  num_heads: int = 4
  num_layers: int = 2
  num_decoder_layers: int = 2
  max_len: int = 32
  cross_direction: bool = True
  encoder_config: Optional[TransformerConfig] = None

  def setup(self):
    config = TransformerConfig(
        vocab_size=self.tgt_vocab, hidden_size=self.hidden_size, num_layers=self.num_layers,
        num_heads=self.num_heads, intermediate_size=4 * self.hidden_size,
        max_position=self.max_len, type_vocab_size=0, pre_norm=True, activation="gelu_tanh",
        layer_norm_eps=1e-6)
    enc = self.encoder_config
    if enc is None:
      self.src_embed = nn.Embed(self.src_vocab, self.hidden_size)
      self.src_pos = self.param("src_pos", nn.initializers.normal(0.02),
                                (self.max_len, self.hidden_size))
      self.encoder = [Block(config) for _ in range(self.num_layers)]
      self.enc_norm = nn.LayerNorm()
    else:
      if enc.vocab_size != self.src_vocab:
        raise ValueError(f"src_vocab ({self.src_vocab}) must equal encoder_config.vocab_size "
                         f"({enc.vocab_size})")
      self.pretrained = Transformer(enc)
      if enc.hidden_size != self.hidden_size:
        self.memory_proj = nn.Dense(self.hidden_size)
    self.tgt_embed = nn.Embed(self.tgt_vocab, self.hidden_size)
    self.tgt_pos = self.param("tgt_pos", nn.initializers.normal(0.02),
                              (2, self.max_len, self.hidden_size))
    self.decoders = [[Block(config) for _ in range(self.num_decoder_layers)] for _ in range(2)]
    self.out_norm = [nn.LayerNorm(), nn.LayerNorm()]
    self.classifier = nn.Dense(self.tgt_vocab)  # shared by both directions

  def encode(self, src: jax.Array) -> Tuple[jax.Array, jax.Array]:
    """`src int [B, S]` (0 = pad) -> `(memory [B, S, H], src_valid [B, S])`."""
    valid = src > 0
    enc = self.encoder_config
    if enc is not None:
      h = self.pretrained.encode(src, None, valid, application="encoder")
      return (h if enc.hidden_size == self.hidden_size else self.memory_proj(h)), valid
    h = self.src_embed(src) + self.src_pos[None, :src.shape[1]]
    mask = masks.padding(valid)
    for block in self.encoder:
      h, _ = block(h, mask)
    return self.enc_norm(h), valid

  def decode(self, memory: jax.Array, src_valid: jax.Array, l2r_in: jax.Array,
             r2l_in: jax.Array) -> Tuple[jax.Array, jax.Array]:
    """Teacher-forced decoders: `[B, T]` inputs -> two `[B, T, V]` logits.

    Input position 0 is each direction's start token; padding is id 0 and is
    only ever attended by later (ignored) positions.
    """
    # Causal masks suffice: a valid position never sees a later (padding) one.
    causal = masks.causal(l2r_in.shape[1])[None]
    src_mask = masks.padding(src_valid)
    hs = [self._embed(x, d) for d, x in enumerate((l2r_in, r2l_in))]
    for layer in range(self.num_decoder_layers):
      hs = [self.decoders[d][layer](
          hs[d], causal,
          sources=((memory, src_mask),) + (((hs[1 - d], causal),) if self.cross_direction else ())
      )[0] for d in range(2)]
    return tuple(self.classifier(self.out_norm[d](hs[d])) for d in range(2))

  def decode_one(self, memory: jax.Array, src_valid: jax.Array, inputs: jax.Array,
                 direction: int) -> jax.Array:
    """One direction alone (`cross_direction=False` only): `[B, T, V]` logits."""
    if self.cross_direction:
      raise ValueError("decode_one needs cross_direction=False")
    causal = masks.causal(inputs.shape[1])[None]
    src_mask = masks.padding(src_valid)
    h = self._embed(inputs, direction)
    for block in self.decoders[direction]:
      h, _ = block(h, causal, sources=((memory, src_mask),))
    return self.classifier(self.out_norm[direction](h))

  def _embed(self, x, d):
    return self.tgt_embed(x) + self.tgt_pos[d][None, :x.shape[1]]

  def __call__(self, src: jax.Array, l2r_in: jax.Array, r2l_in: jax.Array
               ) -> Tuple[jax.Array, jax.Array]:
    memory, valid = self.encode(src)
    return self.decode(memory, valid, l2r_in, r2l_in)

  def decode_at(self, memory: jax.Array, src_valid: jax.Array, l2r_in: jax.Array,
                r2l_in: jax.Array, index: jax.Array) -> Tuple[jax.Array, jax.Array]:
    """Both directions' logits `[N, V]` at position `index` (for search steps)."""
    logits_l, logits_r = self.decode(memory, src_valid, l2r_in, r2l_in)
    take = lambda x: jax.lax.dynamic_index_in_dim(x, index, axis=1, keepdims=False)
    return take(logits_l), take(logits_r)


def teacher_inputs(tgt: jax.Array, start: int, end: int
                   ) -> Tuple[jax.Array, jax.Array, jax.Array, jax.Array]:
  """Targets `[B, T]` (0-padded, no markers) -> decoder inputs and labels.

  Returns `(l2r_in, l2r_out, r2l_in, r2l_out)`, each `[B, T + 1]`:
  L2R reads `[start, y_1 … y_n]` and predicts `[y_1 … y_n, end]`; R2L reads
  `[end, y_n … y_1]` and predicts `[y_n … y_1, start]` (the reference's shared
  markers: R2L starts with the L2R end id and ends with the L2R start id).
  """
  lengths = (tgt > 0).sum(axis=1)
  batch, length = tgt.shape
  col = jnp.arange(length + 1)[None, :]
  padded = jnp.concatenate([tgt, jnp.zeros((batch, 1), tgt.dtype)], axis=1)
  l2r_out = jnp.where(col == lengths[:, None], end, padded)
  l2r_in = jnp.concatenate([jnp.full((batch, 1), start, tgt.dtype), l2r_out[:, :-1]],
                           axis=1)
  l2r_in = jnp.where(col <= lengths[:, None], l2r_in, 0)
  rev_idx = jnp.clip(lengths[:, None] - 1 - col, 0, length)
  rev = jnp.take_along_axis(padded, rev_idx, axis=1)
  r2l_out = jnp.where(col < lengths[:, None], rev,
                      jnp.where(col == lengths[:, None], start, 0))
  r2l_in = jnp.concatenate([jnp.full((batch, 1), end, tgt.dtype), r2l_out[:, :-1]],
                           axis=1)
  r2l_in = jnp.where(col <= lengths[:, None], r2l_in, 0)
  return l2r_in, l2r_out, r2l_in, r2l_out
