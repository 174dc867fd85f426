"""Character tagger: embeddings + small Transformer encoder + one of four heads.

The encoder produces per-character emission scores `[B, T, K]`; the head
decides how they are normalised and decoded, with everything else equal:
- `softmax`: per-token cross-entropy, arg-max decoding;
- `crf`: `jaxblog.crf.log_likelihood` (global normalisation);
- `memm`: `jaxblog.memm.log_likelihood(direction="l2r")`;
- `bimemm`: `jaxblog.memm.log_likelihood(direction="both")` (Su's Bi-MEMM).
The three structured heads share one learned `[K, K]` transition matrix
parameter and decode with `jaxblog.crf.viterbi`. Losses are token means, so
the learning rate means the same for every head. `TaggerConfig.weak()` /
`.strong()` are the two encoder sizes of the CRF-vs-MEMM experiment.

References: Su 2020, "CRF用过了，不妨再了解下更快的MEMM？" (SPEC.md §8.3).
"""
from __future__ import annotations

import dataclasses

import flax.linen as nn
import jax
import jax.numpy as jnp

from jaxblog import crf, memm

HEADS = ("softmax", "crf", "memm", "bimemm")


@dataclasses.dataclass(frozen=True)
class TaggerConfig:
  vocab_size: int
  num_tags: int
  dim: int = 128
  layers: int = 2
  heads: int = 4
  max_len: int = 128
  dropout: float = 0.1

  @classmethod
  def weak(cls, vocab_size, num_tags, max_len=128):
    return cls(vocab_size, num_tags, dim=32, layers=1, heads=2, max_len=max_len)

  @classmethod
  def strong(cls, vocab_size, num_tags, max_len=128):
    return cls(vocab_size, num_tags, dim=64, layers=2, heads=4, max_len=max_len)


class _Block(nn.Module):
  cfg: TaggerConfig

  @nn.compact
  def __call__(self, x, mask, train):
    cfg = self.cfg
    attn_mask = (mask[:, None, None, :] & mask[:, None, :, None])
    h = nn.LayerNorm()(x)
    h = nn.MultiHeadDotProductAttention(num_heads=cfg.heads, dropout_rate=cfg.dropout,
                                        deterministic=not train)(h, h, mask=attn_mask)
    x = x + nn.Dropout(cfg.dropout, deterministic=not train)(h)
    h = nn.LayerNorm()(x)
    h = nn.Dense(4 * cfg.dim)(h)
    h = nn.Dense(cfg.dim)(nn.gelu(h))
    return x + nn.Dropout(cfg.dropout, deterministic=not train)(h)


class Tagger(nn.Module):
  """`apply(vars, ids [B, T], mask [B, T], train)` → emissions `[B, T, K]`."""
  cfg: TaggerConfig

  @nn.compact
  def __call__(self, ids, mask, train=False):
    cfg = self.cfg
    x = nn.Embed(cfg.vocab_size, cfg.dim)(ids)
    pos = self.param("position", nn.initializers.normal(0.02), (cfg.max_len, cfg.dim))
    x = x + pos[None, :ids.shape[1]]
    x = nn.Dropout(cfg.dropout, deterministic=not train)(x)
    for _ in range(cfg.layers):
      x = _Block(cfg)(x, mask, train)
    x = nn.LayerNorm()(x)
    emissions = nn.Dense(cfg.num_tags)(x)
    # Transitions live here for every head (unused by softmax) so all heads
    # have the same parameter tree.
    trans = self.param("transitions", nn.initializers.glorot_uniform(),
                       (cfg.num_tags, cfg.num_tags))
    return emissions, trans


def loss(head: str, emissions, trans, tags, mask):
  """Token-mean negative log-likelihood of `tags` under `head`."""
  tokens = jnp.maximum(jnp.sum(mask), 1)
  if head == "softmax":
    logp = jax.nn.log_softmax(emissions.astype(jnp.float32), axis=-1)
    gold = jnp.take_along_axis(logp, tags[..., None], axis=-1)[..., 0]
    return -jnp.sum(jnp.where(mask, gold, 0.0)) / tokens
  if head == "crf":
    return -jnp.sum(crf.log_likelihood(emissions, tags, trans, mask)) / tokens
  if head in ("memm", "bimemm"):
    direction = "l2r" if head == "memm" else "both"
    return -jnp.sum(memm.log_likelihood(emissions, tags, trans, mask,
                                        direction=direction)) / tokens
  raise ValueError(f"head must be one of {HEADS}, got {head!r}")


def decode(head: str, emissions, trans, mask):
  """Predicted tag ids `[B, T]` (0 at invalid positions)."""
  if head == "softmax":
    return jnp.where(mask, jnp.argmax(emissions, axis=-1), 0)
  if head in ("crf", "memm", "bimemm"):
    return crf.viterbi(emissions, trans, mask)[0]
  raise ValueError(f"head must be one of {HEADS}, got {head!r}")
