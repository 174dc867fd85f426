"""MLM pretraining of a small character Transformer, and the warm-up schedule of its fine-tuning.

No pretrained Chinese BERT ships in any installed package, so experiments
that need one pretrain a small character model themselves: BERT masking
(15 %, 80/10/10, `jaxblog.models.objectives.mlm_corrupt`) over fixed-length
windows of a corpus, through `loop.fit`. The MLM head only sees the masked
positions (gathered before the vocabulary projection), so its cost follows
the prediction budget, not the sequence length.

References: Devlin et al. 2019, "BERT: Pre-training of Deep Bidirectional
Transformers for Language Understanding" (arXiv:1810.04805).
"""
from __future__ import annotations

import pathlib
from typing import Any, NamedTuple, Sequence

import jax
import jax.numpy as jnp
import optax

from jaxblog import optim
from jaxblog.data import char_bert
from jaxblog.data.vocab import Vocab
from jaxblog.models.config import TransformerConfig
from jaxblog.models.objectives import mlm_corrupt, token_cross_entropy
from jaxblog.models.transformer import Transformer
from jaxblog.training import batches, loop


class Pretrained(NamedTuple):
  """What `pretrain_mlm` returns: final `params`, the `loop.fit` `history` and `seconds`."""
  params: Any
  history: list
  seconds: float


def warmup_adamw(lr: float, steps: int, warmup: int, weight_decay: float = 0.01
                 ) -> optax.GradientTransformation:
  """AdamW (eps 1e-6) with a linear warm-up to `lr` over `warmup` steps, then linear decay to 10 %.

  Built with `optim.derive` and its piecewise-linear multiplier
  `{warmup: 1, steps: 0.1}` (each segment at least one step long).
  """
  up = max(warmup, 1)
  return optim.derive(optax.scale_by_adam(eps=1e-6), lr, weight_decay=weight_decay,
                      lr_schedule={up: 1.0, up + max(steps - warmup, 1): 0.1})


def pretrain_mlm(config: TransformerConfig, vocab: Vocab, texts: Sequence[str], *, steps: int,
                 batch: int, length: int, lr: float, seed: int,
                 out_dir: pathlib.Path | None, name: str = "pretrain") -> Pretrained:
  """MLM-pretrains `Transformer(config)` (`with_mlm=True`) on windows of `texts`.

  Args:
    config: the model; `vocab_size == len(vocab)`.
    vocab: a `Vocab` with `BERT_SPECIALS`.
    texts: the corpus; cut into windows of `length - 2` characters.
    steps, batch, length: training steps, windows per batch, tokens per window.
    lr: peak learning rate of `warmup_adamw` (10 % warm-up).
    seed: seed of the batches, the masking and the initialisation.
    out_dir, name: as in `loop.fit` (checkpoints and metrics).

  Returns:
    `Pretrained(params, history, seconds)`.
  """
  model = Transformer(config)
  ids, valid = char_bert.encode(vocab, char_bert.windows(texts, length - 2), length)
  first_regular = len(vocab.specials)
  batch_fn = batches.random_batches(
      {"ids": ids, "valid": valid, "maskable": valid & (ids >= first_regular)}, batch, seed)
  budget = max(1, round(0.15 * (length - 2)))

  def loss_fn(params, b, rng):
    inputs, positions, weights = mlm_corrupt(
        rng, b["ids"], b["maskable"], mask_id=char_bert.MASK, vocab_size=config.vocab_size,
        num_predictions=budget, first_regular=first_regular)
    hidden = model.apply({"params": params}, inputs, None, b["valid"], method=Transformer.encode)
    picked = jnp.take_along_axis(hidden, positions[..., None], axis=1)
    logits = model.apply({"params": params}, picked, method=Transformer.logits)
    targets = jnp.take_along_axis(b["ids"], positions, axis=1)
    loss, acc = token_cross_entropy(logits, targets, weights)
    return loss, {"mlm_accuracy": acc}

  params = jax.jit(model.init)(jax.random.key(seed), jnp.asarray(ids[:2]))["params"]
  result = loop.fit(params=params, optimizer=warmup_adamw(lr, steps, steps // 10),
                    loss_fn=loss_fn, batch_fn=batch_fn, num_steps=steps, seed=seed,
                    out_dir=out_dir, log_every=25, name=name, progress=False)
  return Pretrained(result.state.params, result.history, result.seconds)
