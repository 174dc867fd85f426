"""Joint mention recognizer and candidate matcher for entity linking (article 5).

One module, `EntityLinker`, with two entry points sharing the input encoder:

- `recognize`: embeddings + the two prior channels (starts/ends of the
  pruned max-matching spans) -> BiLSTM -> Conv1D(3, ReLU) -> a start and an
  end sigmoid per position ("half pointer, half tagging"), both multiplied
  by the prior channels, so only dictionary spans can fire.
- `match`: the recognizer's BiLSTM states + four overlap channels (mention
  mask; character / word / short-object overlap with the candidate's
  description) -> BiLSTM -> Q; the description -> embeddings -> BiLSTM -> D;
  multi-head attention Q->D and D->Q, each max-pooled over its valid
  positions, and the mean of Q over the mention -> dropout -> Dense(ReLU) ->
  one logit (is this candidate the mention's entity?).

The embedding is pluggable: `CharEmbed` (the article's character model,
without its pretrained word vectors, which have no English counterpart
here) or `PretrainedEmbed`, a BERT-architecture encoder whose last hidden
states replace the embeddings (fine-tuned; load weights with
`jaxblog.models.load_hf_bert` and `with_pretrained`). Positions are then
word pieces instead of characters; the caller maps channels onto them.

`loss` is the article's sum of the masked mean BCE of the start and end
probabilities and the BCE of the link logit, with probabilities clipped
to [1e-7, 1 - 1e-7] as Keras does (a gated probability can be exactly 0).

References:
  Su 2019, 百度实体链接比赛后记：行为建模和实体链接, https://kexue.fm/archives/6919
"""
from __future__ import annotations

from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import optax

from jaxblog import el
from jaxblog.models.config import TransformerConfig
from jaxblog.models.transformer import Transformer

_EPS = 1e-7


class BiLSTM(nn.Module):
  """Bidirectional LSTM over right-padded sequences: `[B, T, D] -> [B, T, 2H]`."""
  hidden: int

  @nn.compact
  def __call__(self, x: jax.Array, mask: jax.Array) -> jax.Array:
    lengths = jnp.sum(mask, -1).astype(jnp.int32)
    fwd = nn.RNN(nn.OptimizedLSTMCell(self.hidden))
    bwd = nn.RNN(nn.OptimizedLSTMCell(self.hidden), reverse=True, keep_order=True)
    out = nn.Bidirectional(fwd, bwd)(x, seq_lengths=lengths)
    return jnp.where(mask[..., None], out, 0.0)


class CharEmbed(nn.Module):
  """Character embeddings `[B, T] -> [B, T, dim]` (id 0 = padding)."""
  vocab_size: int
  dim: int = 128

  @nn.compact
  def __call__(self, ids, mask, train: bool = False):
    del mask, train
    return nn.Embed(self.vocab_size, self.dim, name="embedding")(ids)


class PretrainedEmbed(nn.Module):
  """Last hidden states of a BERT-architecture `Transformer` as embeddings."""
  config: TransformerConfig

  @nn.compact
  def __call__(self, ids, mask, train: bool = False):
    return Transformer(self.config, name="bert")(ids, None, mask, deterministic=not train)


class EntityLinker(nn.Module):
  """Recognizer + matcher sharing one embedding (see the module docstring).

  Attributes:
    embed: a module `(ids [B, T], mask [B, T], train) -> [B, T, E]`.
    hidden: LSTM units per direction (article: 64).
    conv: Conv1D channels of the recognizer (article: 128).
    heads, head_dim: attention heads of the matcher (article: 8 x 16).
    dense: width of the matcher's hidden layer (article: 128).
    dropout: dropout rate (article: 0.2).
  """
  embed: nn.Module
  hidden: int = 64
  conv: int = 128
  heads: int = 8
  head_dim: int = 16
  dense: int = 128
  dropout: float = 0.2

  def setup(self):
    self.query_rnn = BiLSTM(self.hidden)
    self.conv_layer = nn.Conv(self.conv, (3,))
    self.pointer = nn.Dense(2)
    self.match_rnn = BiLSTM(self.hidden)
    self.desc_rnn = BiLSTM(self.hidden)
    width = self.heads * self.head_dim
    self.q_to_d = nn.MultiHeadDotProductAttention(num_heads=self.heads, qkv_features=width,
                                                  out_features=width)
    self.d_to_q = nn.MultiHeadDotProductAttention(num_heads=self.heads, qkv_features=width,
                                                  out_features=width)
    self.hidden_layer = nn.Dense(self.dense)
    self.logit = nn.Dense(1)
    self.drop = nn.Dropout(self.dropout)

  def _encode(self, ids, mask, prior, train):
    x = jnp.concatenate([self.embed(ids, mask, train), prior.astype(jnp.float32)], -1)
    return self.query_rnn(self.drop(x, deterministic=not train), mask)

  def recognize(self, ids: jax.Array, mask: jax.Array, prior: jax.Array,
                train: bool = False) -> jax.Array:
    """Gated start/end probabilities.

    Args:
      ids: int32 `[B, T]` query ids.
      mask: bool `[B, T]`, right-padded.
      prior: float `[B, T, 2]` start/end channels of the pruned dictionary.
      train: enable dropout.

    Returns:
      float32 `[B, T, 2]`: `sigmoid(...) * prior`, 0 on padding.
    """
    return self._pointer(self._encode(ids, mask, prior, train), mask, prior)

  def _pointer(self, h, mask, prior):
    p = jax.nn.sigmoid(self.pointer(nn.relu(self.conv_layer(h)))) * prior
    return jnp.where(mask[..., None], p, 0.0)

  def match(self, ids: jax.Array, mask: jax.Array, prior: jax.Array, features: jax.Array,
            desc_ids: jax.Array, desc_mask: jax.Array, train: bool = False) -> jax.Array:
    """Logit that a candidate is the mention's entity.

    Args:
      ids, mask, prior: the query as in `recognize`.
      features: float `[B, T, 4]`; channel 0 is the mention mask, 1-3 the
        description overlaps.
      desc_ids: int32 `[B, L]` description ids; `desc_mask` bool `[B, L]`.
      train: enable dropout.

    Returns:
      float32 `[B]` logits.
    """
    return self._match(self._encode(ids, mask, prior, train), mask, features, desc_ids,
                       desc_mask, train)

  def _match(self, h, mask, features, desc_ids, desc_mask, train):
    q = self.match_rnn(jnp.concatenate([h, features.astype(h.dtype)], -1), mask)
    d = self.drop(self.embed(desc_ids, desc_mask, train), deterministic=not train)
    d = self.desc_rnn(d, desc_mask)
    pair = mask[:, None, :, None] & desc_mask[:, None, None, :]
    a = self.q_to_d(q, d, mask=pair)
    b = self.d_to_q(d, q, mask=jnp.swapaxes(pair, -1, -2))
    span = (features[..., 0] > 0) & mask
    x = jnp.concatenate([el.masked_max(a, mask), el.masked_max(b, desc_mask),
                         el.span_mean(q, span)], -1)
    x = nn.relu(self.hidden_layer(self.drop(x, deterministic=not train)))
    return self.logit(x)[..., 0]

  def __call__(self, batch: dict, train: bool = False):
    """`(recognize(...), match(...))` on one training batch (see `loss`)."""
    mask = batch["mask"]
    h = self._encode(batch["ids"], mask, batch["prior"], train)
    probs = self._pointer(h, mask, batch["prior"])
    logits = self._match(h, mask, batch["features"], batch["desc_ids"], batch["desc_mask"],
                         train)
    return probs, logits


def _bce(p, y):
  p = jnp.clip(p, _EPS, 1.0 - _EPS)
  return -(y * jnp.log(p) + (1.0 - y) * jnp.log1p(-p))


def loss(probs: jax.Array, logits: jax.Array, batch: dict) -> tuple[jax.Array, dict]:
  """Masked mean BCE of starts and ends + BCE of the link logit.

  Args:
    probs: `[B, T, 2]` from `recognize`.
    logits: `[B]` from `match`.
    batch: holds `mask` bool `[B, T]`, `spans` float `[B, T, 2]` (gold
      start/end indicators), `label` float `[B]` and `has_link` bool `[B]`
      (False where the text has no linkable mention: no link loss).

  Returns:
    `(loss, {"recognition": ..., "link": ...})`.
  """
  mask = batch["mask"].astype(jnp.float32)
  bce = _bce(probs, batch["spans"].astype(jnp.float32))
  denom = jnp.maximum(jnp.sum(mask), 1.0)
  recog = sum(jnp.sum(bce[..., k] * mask) / denom for k in range(2))
  has = batch["has_link"].astype(jnp.float32)
  per = optax.sigmoid_binary_cross_entropy(logits, batch["label"].astype(jnp.float32))
  link = jnp.sum(per * has) / jnp.maximum(jnp.sum(has), 1.0)
  return recog + link, {"recognition": recog, "link": link}


def with_pretrained(params: Any, bert_params: Any) -> Any:
  """`params` of an `EntityLinker(PretrainedEmbed(...))` with the encoder replaced.

  Args:
    params: the linker's initialised `params`.
    bert_params: `variables["params"]` from `load_hf_bert`.

  Returns:
    A new params dict whose `embed/bert` subtree is `bert_params`.
  """
  embed = dict(params["embed"])
  old = jax.tree.structure(embed["bert"])
  if jax.tree.structure(bert_params) != old:
    raise ValueError("bert_params does not have the structure of the linker's encoder "
                     "(different TransformerConfig?)")
  embed["bert"] = bert_params
  return {**params, "embed": embed}
