"""A seq2seq Transformer with an L2R and an R2L decoder that can see each other.

Our reading of the synchronous bidirectional model (SPEC.md §4.1): a shared
encoder; two decoders (separate weights, shared output classifier), the L2R one
reading `[start, y_1 … y_{n-1}]` and the R2L one `[start', y_n … y_2]`; in every
decoder layer, besides causal self-attention and attention to the encoder,
position `i` of one direction attends to positions `j <= i` of the other
direction's layer input (the reference's cross-direction causal constraint).
With `cross_direction=False` the two decoders are independent, i.e. two
unidirectional models sharing an encoder — the baseline.

Every mask comes from `jaxblog.masks`; decoding re-runs the decoders on full
prefixes (as the reference does), which `decode_at` exposes for the step
functions of `jaxblog.decoding`. The reference's LSTM layers, conditional
LayerNorm and copy prior are replaced by plain pre-LN Transformer layers.

References: Su 2019, "seq2seq之双向解码" (SPEC.md §4); Zhou, Zhang & Zong,
TACL 2019.
"""
from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp

from jaxblog import masks


class _Attend(nn.Module):
  heads: int

  @nn.compact
  def __call__(self, x, context, mask):
    return nn.MultiHeadDotProductAttention(num_heads=self.heads)(
        nn.LayerNorm()(x), context, mask=mask[:, None])


class _FeedForward(nn.Module):
  @nn.compact
  def __call__(self, x):
    dim = x.shape[-1]
    return nn.Dense(dim)(nn.gelu(nn.Dense(4 * dim)(nn.LayerNorm()(x))))


class BiDecoderSeq2Seq(nn.Module):
  """Encoder + L2R/R2L decoders; `__call__` returns both directions' logits.

  Attributes:
    src_vocab, tgt_vocab: vocabulary sizes.
    dim, heads: width and attention heads.
    enc_layers, dec_layers: depths.
    max_len: longest source / target sequence (position embeddings).
    cross_direction: let each decoder attend to the other (causally).
  """
  src_vocab: int
  tgt_vocab: int
  dim: int = 128
  heads: int = 4
  enc_layers: int = 2
  dec_layers: int = 2
  max_len: int = 32
  cross_direction: bool = True

  def setup(self):
    self.src_embed = nn.Embed(self.src_vocab, self.dim)
    self.tgt_embed = nn.Embed(self.tgt_vocab, self.dim)
    self.src_pos = self.param("src_pos", nn.initializers.normal(0.02),
                              (self.max_len, self.dim))
    self.tgt_pos = self.param("tgt_pos", nn.initializers.normal(0.02),
                              (2, self.max_len, self.dim))
    self.enc = [(_Attend(self.heads), _FeedForward()) for _ in range(self.enc_layers)]
    self.enc_norm = nn.LayerNorm()
    self.dec = [[{"self": _Attend(self.heads), "src": _Attend(self.heads),
                  "other": _Attend(self.heads), "ff": _FeedForward()}
                 for _ in range(self.dec_layers)] for _ in range(2)]
    self.out_norm = [nn.LayerNorm(), nn.LayerNorm()]
    self.classifier = nn.Dense(self.tgt_vocab)  # shared by both directions

  def encode(self, src):
    """`src int [B, S]` (0 = pad) -> `(memory [B, S, D], src_valid [B, S])`."""
    valid = src > 0
    h = self.src_embed(src) + self.src_pos[None, :src.shape[1]]
    mask = masks.padding(valid)
    for attend, ff in self.enc:
      h = h + attend(h, h, mask)
      h = h + ff(h)
    return self.enc_norm(h), valid

  def decode(self, memory, src_valid, l2r_in, r2l_in):
    """Teacher-forced decoders: `[B, T]` inputs -> two `[B, T, V]` logits.

    Input position 0 is each direction's start token; padding is id 0 and is
    only ever attended by later (ignored) positions.
    """
    # Causal masks suffice: a valid position never sees a later (padding) one.
    causal = masks.causal(l2r_in.shape[1])[None]
    src_mask = masks.padding(src_valid)
    hs = [self._embed(x, d) for d, x in enumerate((l2r_in, r2l_in))]
    for layer in range(self.dec_layers):
      new = []
      for d in range(2):
        h = self._layer(d, layer, hs[d], memory, src_mask, causal)
        if self.cross_direction:
          h = h + self.dec[d][layer]["other"](h, hs[1 - d], causal)
        new.append(h + self.dec[d][layer]["ff"](h))
      hs = new
    return tuple(self.classifier(self.out_norm[d](hs[d])) for d in range(2))

  def decode_one(self, memory, src_valid, inputs, direction: int):
    """One direction alone (`cross_direction=False` only): `[B, T, V]` logits."""
    if self.cross_direction:
      raise ValueError("decode_one needs cross_direction=False")
    causal = masks.causal(inputs.shape[1])[None]
    h = self._embed(inputs, direction)
    for layer in range(self.dec_layers):
      h = self._layer(direction, layer, h, memory, masks.padding(src_valid), causal)
      h = h + self.dec[direction][layer]["ff"](h)
    return self.classifier(self.out_norm[direction](h))

  def _embed(self, x, d):
    return self.tgt_embed(x) + self.tgt_pos[d][None, :x.shape[1]]

  def _layer(self, d, layer, h, memory, src_mask, causal):
    blk = self.dec[d][layer]
    h = h + blk["self"](h, h, causal)
    return h + blk["src"](h, memory, src_mask)

  def __call__(self, src, l2r_in, r2l_in):
    memory, valid = self.encode(src)
    return self.decode(memory, valid, l2r_in, r2l_in)

  def decode_at(self, memory, src_valid, l2r_in, r2l_in, index):
    """Both directions' logits `[N, V]` at position `index` (for search steps)."""
    logits_l, logits_r = self.decode(memory, src_valid, l2r_in, r2l_in)
    take = lambda x: jax.lax.dynamic_index_in_dim(x, index, axis=1, keepdims=False)
    return take(logits_l), take(logits_r)


def teacher_inputs(tgt, start: int, end: int):
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
