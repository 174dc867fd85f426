"""Character tagger: embeddings + small Transformer encoder + one of four heads.

The encoder is `jaxblog.models.layers.Block` (pre-LN) under the padding mask
of `jaxblog.masks`, i.e. a bidirectional encoder. It produces per-character emission scores `[B, T, K]`; the head
decides how they are normalised and decoded, with everything else equal:
- `softmax`: per-token cross-entropy, arg-max decoding;
- `crf`: `jaxblog.crf.log_likelihood` (global normalisation);
- `memm`: `jaxblog.memm.log_likelihood(direction="l2r")`;
- `bimemm`: `jaxblog.memm.log_likelihood(direction="both")` (Su's Bi-MEMM).
The three structured heads share one learned `[K, K]` transition matrix
parameter and decode with `jaxblog.crf.viterbi`. Losses are token means, so
the learning rate means the same for every head. `TaggerConfig.weak()` /
`.strong()` are the two encoder sizes of the CRF-vs-MEMM experiment.

References: Su 2020, 《CRF用过了，不妨再了解下更快的MEMM？》
https://kexue.fm/archives/7213.
"""
from __future__ import annotations

import dataclasses

import flax.linen as nn
import jax
import jax.numpy as jnp

from jaxblog import crf, masks, memm
from jaxblog.models.config import TransformerConfig
from jaxblog.models.layers import Block

HEADS = ("softmax", "crf", "memm", "bimemm")


@dataclasses.dataclass(frozen=True)
class TaggerConfig:
  """Sizes of the tagger.

  Attributes:
    vocab_size: character ids (0 = padding).
    num_tags: K.
    hidden_size, num_layers, num_heads: the encoder (feed-forward width
      `4 * hidden_size`).
    max_len: number of learned position embeddings.
    dropout_rate: dropout on embeddings, attention and feed-forward outputs.
  """
  vocab_size: int
  num_tags: int
  hidden_size: int = 128
  num_layers: int = 2
  num_heads: int = 4
  max_len: int = 128
  dropout_rate: float = 0.1

  @classmethod
  def weak(cls, vocab_size: int, num_tags: int, max_len: int = 128) -> "TaggerConfig":
    return cls(vocab_size, num_tags, hidden_size=32, num_layers=1, num_heads=2, max_len=max_len)

  @classmethod
  def strong(cls, vocab_size: int, num_tags: int, max_len: int = 128) -> "TaggerConfig":
    return cls(vocab_size, num_tags, hidden_size=64, num_layers=2, num_heads=4, max_len=max_len)

  def transformer(self) -> TransformerConfig:
    """The `TransformerConfig` of the encoder blocks (pre-LN, tanh GELU)."""
    return TransformerConfig(
        vocab_size=self.vocab_size, hidden_size=self.hidden_size, num_layers=self.num_layers,
        num_heads=self.num_heads, intermediate_size=4 * self.hidden_size,
        max_position=self.max_len, type_vocab_size=0, pre_norm=True, activation="gelu_tanh",
        layer_norm_eps=1e-6, dropout_rate=self.dropout_rate)


class Tagger(nn.Module):
  """`apply(vars, ids [B, T], mask [B, T], train)` → `(emissions [B, T, K], transitions [K, K])`."""
  cfg: TaggerConfig

  @nn.compact
  def __call__(self, ids: jax.Array, mask: jax.Array, train: bool = False):
    cfg = self.cfg
    x = nn.Embed(cfg.vocab_size, cfg.hidden_size)(ids)
    pos = self.param("position", nn.initializers.normal(0.02), (cfg.max_len, cfg.hidden_size))
    x = x + pos[None, :ids.shape[1]]
    x = nn.Dropout(cfg.dropout_rate, deterministic=not train)(x)
    attend = masks.padding(jnp.asarray(mask, bool))
    for i in range(cfg.num_layers):
      x, _ = Block(cfg.transformer(), name=f"block_{i}")(x, attend, deterministic=not train)
    x = nn.LayerNorm()(x)
    emissions = nn.Dense(cfg.num_tags)(x)
    # Transitions live here for every head (unused by softmax) so all heads
    # have the same parameter tree.
    trans = self.param("transitions", nn.initializers.glorot_uniform(),
                       (cfg.num_tags, cfg.num_tags))
    return emissions, trans


_MEMM_DIRECTION = {"memm": "l2r", "bimemm": "both"}  # Bi-MEMM: mean of both directions


def loss(head: str, emissions: jax.Array, trans: jax.Array, tags: jax.Array,
         mask: jax.Array) -> jax.Array:
  """Token-mean negative log-likelihood of `tags` under `head`."""
  tokens = jnp.maximum(jnp.sum(mask), 1)
  if head == "softmax":
    logp = jax.nn.log_softmax(emissions.astype(jnp.float32), axis=-1)
    gold = jnp.take_along_axis(logp, tags[..., None], axis=-1)[..., 0]
    return -jnp.sum(jnp.where(mask, gold, 0.0)) / tokens
  if head == "crf":
    return -jnp.sum(crf.log_likelihood(emissions, tags, trans, mask)) / tokens
  if head in _MEMM_DIRECTION:
    return -jnp.sum(memm.log_likelihood(emissions, tags, trans, mask,
                                        direction=_MEMM_DIRECTION[head])) / tokens
  raise ValueError(f"head must be one of {HEADS}, got {head!r}")


def decode(head: str, emissions: jax.Array, trans: jax.Array, mask: jax.Array, *,
           memm_decoding: str = "reference") -> jax.Array:
  """Predicted tag ids `[B, T]` (0 at invalid positions).

  `memm_decoding` (MEMM heads): `"reference"` is the article's Viterbi over
  the unnormalised `f + T`, as for the CRF; `"normalised"` is the path of
  highest MEMM log-likelihood (`memm.viterbi`).
  """
  if memm_decoding not in ("reference", "normalised"):
    raise ValueError(f"memm_decoding must be 'reference' or 'normalised', got {memm_decoding!r}")
  if head == "softmax":
    return jnp.where(mask, jnp.argmax(emissions, axis=-1), 0)
  if head in _MEMM_DIRECTION and memm_decoding == "normalised":
    return memm.viterbi(emissions, trans, mask, direction=_MEMM_DIRECTION[head])[0]
  if head in ("crf", "memm", "bimemm"):
    return crf.viterbi(emissions, trans, mask)[0]
  raise ValueError(f"head must be one of {HEADS}, got {head!r}")
