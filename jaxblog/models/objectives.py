"""Training objectives of the BERT family: MLM corruption and losses, UniLM seq2seq loss.

Kept apart from the model so the same `Transformer` serves pretraining (masked LM),
seq2seq fine-tuning (the UniLM loss: predict token `t+1`
from position `t` wherever `t+1` is in the target segment) and a plain causal
LM over the concatenation (the naive baseline the article argues against).
All losses are means over counted positions and stay finite when nothing is
counted.

References: Su 2019, 《从语言模型到Seq2Seq：Transformer如戏，全靠Mask》 https://kexue.fm/archives/6933;
Devlin et al. 2019 (BERT's 15 % / 80-10-10 masking).
"""
from __future__ import annotations

from typing import Tuple

import jax
import jax.numpy as jnp

from jaxblog import _checks


def mlm_corrupt(rng: jax.Array, ids: jax.Array, maskable: jax.Array, *, mask_id: int,
                vocab_size: int, num_predictions: int, first_regular: int = 0
                ) -> Tuple[jax.Array, jax.Array, jax.Array]:
  """BERT masking with a fixed prediction budget per row (static shapes).

  Picks `num_predictions` maskable positions per row uniformly at random
  (fewer when a row has fewer maskable tokens; the extra slots get weight 0);
  of those, 80 % become `mask_id`, 10 % a random regular token, 10 % stay.
  Gathering the hidden states at `positions` before the vocabulary projection
  keeps the MLM head's cost at the budget, not at `T`.

  Args:
    rng: PRNG key.
    ids: int `[B, T]` token ids.
    maskable: bool `[B, T]`, positions that may be chosen (real, non-special).
    mask_id: the `[MASK]` id.
    vocab_size: random replacements are drawn from `[first_regular, vocab_size)`.
    num_predictions: positions per row (BERT's `max_predictions_per_seq`,
      ~15 % of `T`).
    first_regular: first id that is an ordinary token (skip special ids).

  Returns:
    `(inputs [B, T], positions int32 [B, P], weights bool [B, P])`.
  """
  _checks.require_integer("ids", ids)
  _checks.require_bool("maskable", maskable)
  _checks.require_shape("maskable", maskable, ids.shape, "[B, T] of ids")
  if ids.ndim != 2:
    raise ValueError(f"ids must have shape [B, T], got {ids.shape}")
  if not 1 <= num_predictions <= ids.shape[1]:
    raise ValueError(f"num_predictions must be in [1, T={ids.shape[1]}], got {num_predictions}")
  k_pick, k_kind, k_tok = jax.random.split(rng, 3)
  score = jnp.where(maskable, jax.random.uniform(k_pick, ids.shape), -1.0)
  top, positions = jax.lax.top_k(score, num_predictions)
  weights = top >= 0.0
  chosen = jnp.zeros(ids.shape, bool).at[jnp.arange(ids.shape[0])[:, None], positions].max(
      weights)
  kind = jax.random.uniform(k_kind, ids.shape)
  random_ids = jax.random.randint(k_tok, ids.shape, first_regular, vocab_size, ids.dtype)
  inputs = jnp.where(chosen & (kind < 0.8), mask_id,
                     jnp.where(chosen & (kind < 0.9), random_ids, ids))
  return inputs.astype(ids.dtype), positions.astype(jnp.int32), weights


def token_cross_entropy(logits: jax.Array, targets: jax.Array, weights: jax.Array
                        ) -> Tuple[jax.Array, jax.Array]:
  """Weighted mean token cross-entropy and accuracy; 0 when no weight.

  Args:
    logits: `[..., V]`.
    targets: int `[...]`.
    weights: bool or float `[...]`.

  Returns:
    `(loss, accuracy)` scalars.
  """
  _checks.require_floating("logits", logits)
  _checks.require_integer("targets", targets)
  _checks.require_shape("targets", targets, logits.shape[:-1], "[...] of logits")
  _checks.require_shape("weights", weights, logits.shape[:-1], "[...] of logits")
  logp = jax.nn.log_softmax(logits.astype(jnp.float32), axis=-1)
  nll = -jnp.take_along_axis(logp, targets[..., None], axis=-1)[..., 0]
  w = weights.astype(jnp.float32)
  total = jnp.maximum(jnp.sum(w), 1.0)
  correct = (jnp.argmax(logits, axis=-1) == targets).astype(jnp.float32)
  return jnp.sum(nll * w) / total, jnp.sum(correct * w) / total


def seq2seq_targets(ids: jax.Array, segment_ids: jax.Array, valid: jax.Array
                    ) -> Tuple[jax.Array, jax.Array]:
  """Next-token targets and weights of the UniLM loss.

  Position `t` predicts `ids[t+1]`, counted where `t+1` is a valid target
  token (`segment_ids == 1`): every target token and the final `[SEP]`, never
  the source or padding. The last position predicts nothing.

  Args:
    ids: int `[B, T]`.
    segment_ids: int `[B, T]` (0 source, 1 target).
    valid: bool `[B, T]`.

  Returns:
    `(targets int [B, T], weights bool [B, T])`.
  """
  _checks.require_integer("ids", ids)
  _checks.require_shape("segment_ids", segment_ids, ids.shape, "[B, T] of ids")
  _checks.require_shape("valid", valid, ids.shape, "[B, T] of ids")
  targets = jnp.concatenate([ids[:, 1:], jnp.zeros_like(ids[:, :1])], axis=1)
  counted = (segment_ids == 1) & valid
  weights = jnp.concatenate([counted[:, 1:], jnp.zeros_like(counted[:, :1])], axis=1)
  return targets, weights
