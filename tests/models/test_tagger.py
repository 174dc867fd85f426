"""Tests for the four-head character tagger."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxblog.models import tagger


@pytest.mark.parametrize("head", tagger.HEADS)
def test_heads_loss_and_decode(head):
  cfg = tagger.TaggerConfig(vocab_size=11, num_tags=4, hidden_size=8, num_layers=1, num_heads=2,
                            max_len=6)
  model = tagger.Tagger(cfg)
  rng = np.random.default_rng(0)
  ids = rng.integers(0, 11, (3, 6))
  mask = np.arange(6)[None, :] < np.array([6, 3, 1])[:, None]
  tags = rng.integers(0, 4, (3, 6))
  params = model.init(jax.random.key(0), ids, mask)["params"]

  @jax.jit
  def run(p):
    em, trans = model.apply({"params": p}, ids, mask)
    value, grads = jax.value_and_grad(
        lambda p: tagger.loss(head, *model.apply({"params": p}, ids, mask), tags, mask))(p)
    return value, grads, tagger.decode(head, em, trans, mask)

  value, grads, pred = run(params)
  assert np.isfinite(value) and value > 0
  assert all(np.all(np.isfinite(g)) for g in jax.tree.leaves(grads))
  assert pred.shape == (3, 6) and np.all(np.asarray(pred)[~mask] == 0)
  with pytest.raises(ValueError, match="head"):
    tagger.loss("hmm", jnp.zeros((1, 2, 4)), jnp.zeros((4, 4)), tags[:1, :2], mask[:1, :2])


@pytest.mark.parametrize("head, direction", [("memm", "l2r"), ("bimemm", "both")])
def test_normalised_memm_decoding(head, direction):
  from jaxblog import crf, memm  # pylint: disable=import-outside-toplevel
  rng = np.random.default_rng(2)
  em = jnp.asarray(2 * rng.normal(size=(4, 7, 5)), jnp.float32)
  trans = jnp.asarray(2 * rng.normal(size=(5, 5)), jnp.float32)
  mask = np.arange(7)[None, :] < np.array([7, 5, 2, 0])[:, None]
  decode = jax.jit(tagger.decode, static_argnames=("head", "memm_decoding"))
  np.testing.assert_array_equal(decode(head, em, trans, mask),
                                crf.viterbi(em, trans, mask)[0])
  got = decode(head, em, trans, mask, memm_decoding="normalised")
  np.testing.assert_array_equal(got, memm.viterbi(em, trans, mask, direction=direction)[0])
  with pytest.raises(ValueError, match="memm_decoding"):
    tagger.decode(head, em, trans, mask, memm_decoding="local")
