"""MLM pretraining runs and learns; the warm-up AdamW is optax.adamw with its schedule."""
import jax.numpy as jnp
import numpy as np
import optax

from jaxblog.data.vocab import Vocab
from jaxblog.models.config import TransformerConfig
from jaxblog.training.pretrain import pretrain_mlm, warmup_adamw


def test_warmup_adamw_equals_optax_adamw_with_joined_linear_schedules():
  lr, steps, warmup = 1e-2, 20, 4
  schedule = optax.join_schedules(
      [optax.linear_schedule(0.0, lr, warmup),
       optax.linear_schedule(lr, 0.1 * lr, steps - warmup)], [warmup])
  ours, ref = warmup_adamw(lr, steps, warmup), optax.adamw(schedule, eps=1e-6, weight_decay=0.01)
  params = {"w": jnp.linspace(-1.0, 1.0, 6)}
  p1, p2, s1, s2 = params, params, ours.init(params), ref.init(params)
  for t in range(steps + 3):
    g = {"w": jnp.sin(p1["w"] * (t + 1))}
    u1, s1 = ours.update(g, s1, p1)
    u2, s2 = ref.update(g, s2, p2)
    p1, p2 = optax.apply_updates(p1, u1), optax.apply_updates(p2, u2)
  np.testing.assert_allclose(p1["w"], p2["w"], rtol=1e-5, atol=1e-7)


def test_pretrain_mlm_reduces_the_loss():
  texts = ["甲乙丙丁戊己庚辛壬癸" * 6] * 4
  vocab = Vocab.build(texts)
  config = TransformerConfig(vocab_size=len(vocab), hidden_size=16, num_layers=1, num_heads=2,
                             intermediate_size=32, max_position=16, with_mlm=True)
  res = pretrain_mlm(config, vocab, texts, steps=60, batch=8, length=12, lr=1e-2, seed=0,
                     out_dir=None)
  assert res.history[0]["loss"] > res.history[-1]["loss"]
  assert res.seconds > 0 and "token_embed" in res.params
