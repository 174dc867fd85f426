"""Task heads on a (pretrained) `Transformer` encoder.

Two heads, as in Su's ALBERT fine-tuning experiments (bert4keras
`task_sentiment_albert.py` and the CRF sequence-labelling examples):
- `Classifier`: the final hidden state of `[CLS]` (position 0, no pooler) ->
  `Dense(num_classes)` logits;
- `CrfTagger`: per-token `Dense(num_tags)` emission scores plus a learned
  `[K, K]` transition matrix, trained with `jaxblog.crf.log_likelihood` and
  decoded with `jaxblog.crf.viterbi` (`crf_loss` / `crf_decode` below).
Both hold the encoder as the submodule `encoder`, so pretrained weights go in
with `with_encoder(params, encoder_params)`: load ALBERT, optionally
`unshare` it, and build the head with the matching config
(`share_layers=False` for the unshared copy). A generation head needs no
module: it is the encoder's own tied MLM head (`Transformer` with
`with_mlm=True`) under the UniLM mask.

bert4keras trains the CRF transitions with a learning-rate multiplier (the
emission layer sees many tokens per step, the `K^2` transition entries few);
`crf_param_labels` labels the transition leaf so that an
`optax.multi_transform` can give it its own rate.

References: Su 2020, https://kexue.fm/archives/7187 (ALBERT fine-tuned on
classification, extraction and generation); Lafferty et al. 2001, "Conditional
Random Fields" (ICML).
"""
from __future__ import annotations

from typing import Any, Mapping, Optional, Tuple

import flax.linen as nn
import jax
import jax.numpy as jnp

from jaxblog import crf
from jaxblog.models.config import TransformerConfig
from jaxblog.models.transformer import Transformer


def _positive(name: str, value) -> None:
  if not isinstance(value, int) or isinstance(value, bool) or value < 1:
    raise ValueError(f"{name} must be a positive int, got {value!r}")


class Classifier(nn.Module):
  """`[CLS]` classifier: `apply(vars, ids [B, T], segment_ids, attention_mask)` -> logits `[B, C]`.

  Attributes:
    config: the encoder's `TransformerConfig` (its `with_mlm` is ignored).
    num_classes: number of classes `C`.
  """
  config: TransformerConfig
  num_classes: int

  def setup(self):
    _positive("num_classes", self.num_classes)
    self.encoder = Transformer(self.config.replace(with_mlm=False))
    self.out = nn.Dense(self.num_classes,
                        kernel_init=nn.initializers.normal(self.config.initializer_range))

  def __call__(self, input_ids: jax.Array, segment_ids: Optional[jax.Array] = None,
               attention_mask: Optional[jax.Array] = None, *,
               deterministic: bool = True) -> jax.Array:
    hidden = self.encoder(input_ids, segment_ids, attention_mask, deterministic=deterministic)
    return self.out(hidden[:, 0])


class CrfTagger(nn.Module):
  """CRF tagging head: `apply(vars, ids [B, T], ...)` -> `(emissions [B, T, K], transitions [K, K])`.

  `transitions[i, j]` scores tag `i` followed by tag `j` (the convention of
  `jaxblog.crf`).

  Attributes:
    config: the encoder's `TransformerConfig` (its `with_mlm` is ignored).
    num_tags: number of tags `K`.
  """
  config: TransformerConfig
  num_tags: int

  def setup(self):
    _positive("num_tags", self.num_tags)
    self.encoder = Transformer(self.config.replace(with_mlm=False))
    self.emissions = nn.Dense(self.num_tags,
                              kernel_init=nn.initializers.normal(self.config.initializer_range))
    self.transitions = self.param("transitions", nn.initializers.zeros,
                                  (self.num_tags, self.num_tags))

  def __call__(self, input_ids: jax.Array, segment_ids: Optional[jax.Array] = None,
               attention_mask: Optional[jax.Array] = None, *,
               deterministic: bool = True) -> Tuple[jax.Array, jax.Array]:
    hidden = self.encoder(input_ids, segment_ids, attention_mask, deterministic=deterministic)
    return self.emissions(hidden).astype(jnp.float32), self.transitions


def crf_loss(emissions: jax.Array, transitions: jax.Array, tags: jax.Array,
             mask: jax.Array) -> jax.Array:
  """Negative log-likelihood per valid token (a scalar; 0 when nothing is valid).

  Args:
    emissions: `[B, T, K]`.
    transitions: `[K, K]`.
    tags: int `[B, T]` gold tags.
    mask: bool `[B, T]`, `True` at real tokens.
  """
  tokens = jnp.maximum(jnp.sum(mask), 1)
  return -jnp.sum(crf.log_likelihood(emissions, tags, transitions, mask)) / tokens


def crf_decode(emissions: jax.Array, transitions: jax.Array, mask: jax.Array) -> jax.Array:
  """Viterbi tags `[B, T]` (0 at invalid positions)."""
  return crf.viterbi(emissions, transitions, mask)[0]


def crf_param_labels(params: Mapping[str, Any], *, transitions: str = "transitions",
                     other: str = "rest") -> dict:
  """Labels for `optax.multi_transform`: `transitions` for the `[K, K]` leaf, `other` elsewhere.

  Example:
    >>> import optax
    >>> params = {"encoder": {"w": 0.0}, "transitions": 0.0}
    >>> tx = optax.multi_transform({"transitions": optax.adam(1e-2),
    ...                             "rest": optax.adam(1e-4)}, crf_param_labels)
  """
  if "transitions" not in params:
    raise ValueError(f"crf_param_labels: no 'transitions' entry in params (keys {sorted(params)})")
  return {k: (jax.tree.map(lambda _: transitions, v) if k == "transitions"
              else jax.tree.map(lambda _: other, v)) for k, v in params.items()}


def with_encoder(params: Mapping[str, Any], encoder_params: Mapping[str, Any]) -> dict:
  """`params` of a head with its `encoder` subtree replaced by (pretrained) `encoder_params`.

  Args:
    params: a head's `params` (e.g. from `init`), holding `encoder`.
    encoder_params: the `params` collection of a `Transformer` of the same
      config (shared or unshared, without the MLM head's leaves).

  Returns:
    a new params dict; the rest of `params` is kept.

  Raises:
    ValueError: the two encoder trees differ in structure or in a shape.
  """
  if "encoder" not in params:
    raise ValueError(f"with_encoder: params has no 'encoder' entry (keys {sorted(params)})")
  want = jax.tree_util.tree_flatten_with_path(params["encoder"])[0]
  have = jax.tree_util.tree_flatten_with_path(encoder_params)[0]
  want_shapes = {jax.tree_util.keystr(p): jnp.shape(v) for p, v in want}
  have_shapes = {jax.tree_util.keystr(p): jnp.shape(v) for p, v in have}
  if want_shapes != have_shapes:
    missing = sorted(set(want_shapes) - set(have_shapes))[:4]
    extra = sorted(set(have_shapes) - set(want_shapes))[:4]
    wrong = sorted(k for k in set(want_shapes) & set(have_shapes)
                   if want_shapes[k] != have_shapes[k])[:4]
    raise ValueError(f"with_encoder: encoder_params do not match the head's encoder "
                     f"(missing {missing}, unexpected {extra}, shape differs at {wrong}); "
                     f"is share_layers / with_mlm the same in both?")
  return {**params, "encoder": encoder_params}
