"""Tests of the entity-linking recognizer + matcher (jaxblog.models.el)."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxblog.models import el as el_model
from jaxblog.models.config import TransformerConfig

B, T, L, V = 3, 10, 7, 20


def _batch(seed=0):
  rng = np.random.default_rng(seed)
  mask = np.arange(T)[None] < np.array([10, 6, 1])[:, None]
  dmask = np.arange(L)[None] < np.array([7, 3, 0])[:, None]
  prior = (rng.random((B, T, 2)) > 0.5).astype(np.float32)
  feats = (rng.random((B, T, 4)) > 0.5).astype(np.float32)
  feats[2, :, 0] = 0.0  # an empty mention span
  spans = np.zeros((B, T, 2), np.float32)
  spans[0, 2, 0] = spans[0, 4, 1] = 1.0
  return {"ids": jnp.asarray(rng.integers(1, V, (B, T)) * mask, jnp.int32),
          "mask": jnp.asarray(mask), "prior": jnp.asarray(prior),
          "features": jnp.asarray(feats),
          "desc_ids": jnp.asarray(rng.integers(1, V, (B, L)) * dmask, jnp.int32),
          "desc_mask": jnp.asarray(dmask), "spans": jnp.asarray(spans),
          "label": jnp.array([1.0, 0.0, 1.0]), "has_link": jnp.array([True, True, False])}


@pytest.fixture(scope="module")
def linker():
  model = el_model.EntityLinker(el_model.CharEmbed(V, 8), hidden=4, conv=6, heads=2,
                                head_dim=4, dense=5)
  params = jax.jit(model.init)(jax.random.key(0), _batch())["params"]
  return model, params


def test_shapes_gating_and_padding(linker):
  model, params = linker
  batch = _batch()
  probs, logits = jax.jit(lambda p, b: model.apply({"params": p}, b))(params, batch)
  assert probs.shape == (B, T, 2) and logits.shape == (B,)
  assert np.all(np.asarray(probs)[np.asarray(batch["prior"]) == 0] == 0)
  assert np.all(np.asarray(probs)[~np.asarray(batch["mask"])] == 0)
  assert np.isfinite(np.asarray(logits)).all()  # empty description and empty span: no NaN
  # The entry points agree with the joint call.
  rec, mat = jax.jit(lambda p, b: (
      model.apply({"params": p}, b["ids"], b["mask"], b["prior"], method=model.recognize),
      model.apply({"params": p}, b["ids"], b["mask"], b["prior"], b["features"],
                  b["desc_ids"], b["desc_mask"], method=model.match)))(params, batch)
  np.testing.assert_allclose(rec, probs, atol=1e-6)
  np.testing.assert_allclose(mat, logits, atol=1e-5)


def test_padding_content_does_not_change_outputs(linker):
  model, params = linker
  a = _batch()
  b = dict(a, ids=jnp.where(a["mask"], a["ids"], 7), desc_ids=jnp.where(a["desc_mask"],
                                                                        a["desc_ids"], 5))
  apply = jax.jit(lambda p, b: model.apply({"params": p}, b))
  pa, la = apply(params, a)
  pb, lb = apply(params, b)
  np.testing.assert_allclose(pa, pb, atol=1e-6)
  np.testing.assert_allclose(la, lb, atol=1e-5)


@pytest.mark.slow  # compiling the LSTM gradient takes ~1 min on a loaded 2-core machine
def test_loss_finite_gradients_and_masking(linker):
  model, params = linker
  batch = _batch()

  def f(p):
    probs, logits = model.apply({"params": p}, batch, train=True,
                                rngs={"dropout": jax.random.key(1)})
    return el_model.loss(probs, logits, batch)

  (value, aux), grads = jax.jit(jax.value_and_grad(f, has_aux=True))(params)
  assert np.isfinite(float(value))
  assert all(np.isfinite(np.asarray(g)).all() for g in jax.tree.leaves(grads))
  # A text without a linkable mention adds no link loss.
  probs, logits = jax.jit(lambda p, b: model.apply({"params": p}, b))(params, batch)
  _, aux1 = el_model.loss(probs, logits, batch)
  _, aux2 = el_model.loss(probs, logits.at[2].set(100.0), dict(batch, label=batch["label"].at[2].set(0.0)))
  assert float(aux1["link"]) == pytest.approx(float(aux2["link"]))


def test_loss_hand_values():
  probs = jnp.array([[[0.5, 0.0], [0.25, 1.0]]])
  batch = {"mask": jnp.array([[True, False]]), "spans": jnp.array([[[1.0, 0.0], [0.0, 0.0]]]),
           "label": jnp.array([1.0]), "has_link": jnp.array([True])}
  value, aux = el_model.loss(probs, jnp.array([0.0]), batch)
  assert float(aux["recognition"]) == pytest.approx(np.log(2.0), rel=1e-5)
  assert float(aux["link"]) == pytest.approx(np.log(2.0), rel=1e-5)
  assert float(value) == pytest.approx(2 * np.log(2.0), rel=1e-5)


@pytest.mark.slow  # a second model compilation
def test_pretrained_embed_and_with_pretrained():
  config = TransformerConfig(vocab_size=V, hidden_size=8, num_layers=1, num_heads=2,
                             intermediate_size=12, max_position=16)
  model = el_model.EntityLinker(el_model.PretrainedEmbed(config), hidden=4, conv=6, heads=2,
                                head_dim=4, dense=5)
  params = jax.jit(model.init)(jax.random.key(0), _batch())["params"]
  bert = jax.tree.map(jnp.zeros_like, params["embed"]["bert"])
  new = el_model.with_pretrained(params, bert)
  assert all(float(jnp.abs(x).sum()) == 0 for x in jax.tree.leaves(new["embed"]["bert"]))
  assert new["match_rnn"] is params["match_rnn"]
  probs, logits = jax.jit(lambda p, b: model.apply({"params": p}, b))(new, _batch())
  assert probs.shape == (B, T, 2) and np.isfinite(np.asarray(logits)).all()
  with pytest.raises(ValueError, match="structure"):
    el_model.with_pretrained(params, {"x": jnp.zeros(2)})
