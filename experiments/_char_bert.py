"""Shared by the two Transformer experiments: MLM pretraining of a small char model.

Not an experiment itself (the leading underscore keeps `reproduce.py` away).
Pretraining is BERT masking (15 %, 80/10/10) over fixed-length windows of the
People's Daily text, through `jaxblog.training.loop.fit`.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax

from jaxblog.data import char_bert
from jaxblog.data.vocab import Vocab
from jaxblog.training import loop
from jaxblog.models.transformer import Transformer
from jaxblog.models.objectives import mlm_corrupt, token_cross_entropy


def warmup_adam(lr: float, steps: int, warmup: int, weight_decay: float = 0.01):
  """AdamW with linear warm-up then linear decay to 10 %."""
  schedule = optax.join_schedules(
      [optax.linear_schedule(0.0, lr, max(warmup, 1)),
       optax.linear_schedule(lr, 0.1 * lr, max(steps - warmup, 1))], [max(warmup, 1)])
  return optax.adamw(schedule, eps=1e-6, weight_decay=weight_decay)


def pretrain_mlm(config, vocab: Vocab, texts, *, steps: int, batch: int,
                 length: int, lr: float, seed: int, out_dir, name: str = "pretrain"):
  """MLM-pretrains `Transformer(config)` (with_mlm) on windows of `texts`.

  Returns:
    `(params, history, seconds)`.
  """
  model = Transformer(config)
  pieces = char_bert.windows(texts, length - 2)
  ids_all, valid_all = char_bert.encode(vocab, pieces, length)
  maskable_all = valid_all & (ids_all >= len(vocab.specials))

  def batch_fn(step):
    idx = np.random.default_rng([seed, step]).integers(0, len(pieces), batch)
    return {"ids": ids_all[idx], "valid": valid_all[idx], "maskable": maskable_all[idx]}

  budget = max(1, round(0.15 * (length - 2)))

  def loss_fn(params, b, rng):
    inputs, positions, weights = mlm_corrupt(
        rng, b["ids"], b["maskable"], mask_id=char_bert.MASK, vocab_size=config.vocab_size,
        num_predictions=budget, first_regular=len(vocab.specials))
    hidden = model.apply({"params": params}, inputs, None, b["valid"], method=Transformer.encode)
    picked = jnp.take_along_axis(hidden, positions[..., None], axis=1)
    logits = model.apply({"params": params}, picked, method=Transformer.logits)
    targets = jnp.take_along_axis(b["ids"], positions, axis=1)
    loss, acc = token_cross_entropy(logits, targets, weights)
    return loss, {"mlm_accuracy": acc}

  params = jax.jit(model.init)(jax.random.key(seed), jnp.asarray(ids_all[:2]))["params"]
  result = loop.fit(params=params, optimizer=warmup_adam(lr, steps, steps // 10),
                    loss_fn=loss_fn, batch_fn=batch_fn, num_steps=steps, seed=seed,
                    out_dir=out_dir, log_every=25, name=name, progress=False)
  return result.state.params, result.history, result.seconds
