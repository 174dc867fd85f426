"""Task heads on a Transformer encoder: shapes, pretrained swap-in, unshared equality, CRF."""
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from jaxblog import crf
from jaxblog.models import unshare
from jaxblog.models.albert import albert_config
from jaxblog.models.heads import (Classifier, CrfTagger, crf_decode, crf_loss, crf_param_labels,
                                  with_encoder)
from jaxblog.models.transformer import Transformer

CONFIG = albert_config(50, hidden_size=16, num_layers=3, num_heads=2, intermediate_size=32,
                       embedding_size=8, max_position=16)


@pytest.fixture(scope="module")
def batch():
  ids = jax.random.randint(jax.random.PRNGKey(1), (2, 7), 1, 50)
  mask = jnp.array([[True] * 7, [True] * 4 + [False] * 3])
  return ids, mask


@pytest.fixture(scope="module")
def pretrained(batch):
  return jax.jit(Transformer(CONFIG).init)(jax.random.PRNGKey(3), batch[0])["params"]


def _head_params(head, batch, encoder):
  params = jax.jit(head.init)(jax.random.PRNGKey(0), batch[0])["params"]
  return with_encoder(params, encoder)


def test_classifier_reads_cls_of_the_pretrained_encoder(batch, pretrained):
  ids, mask = batch
  head = Classifier(CONFIG, 3)
  params = _head_params(head, batch, pretrained)
  logits = jax.jit(lambda p: head.apply({"params": p}, ids, None, mask))(params)
  assert logits.shape == (2, 3)
  hidden = Transformer(CONFIG).apply({"params": pretrained}, ids, None, mask)
  out = params["out"]
  np.testing.assert_allclose(logits, hidden[:, 0] @ out["kernel"] + out["bias"][None],
                             rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("kind", ["classifier", "crf"])
def test_unshared_head_equals_shared_before_training(kind, batch, pretrained):
  ids, mask = batch
  make = (lambda c: Classifier(c, 2)) if kind == "classifier" else (lambda c: CrfTagger(c, 5))
  shared, unshared = make(CONFIG), make(CONFIG.replace(share_layers=False))
  p_shared = _head_params(shared, batch, pretrained)
  p_unshared = with_encoder(
      {**p_shared, "encoder": jax.tree.map(jnp.zeros_like,
                                           unshare({"params": pretrained}, 3)["params"])},
      unshare({"params": pretrained}, 3)["params"])
  a = jax.tree.leaves(jax.jit(lambda p: shared.apply({"params": p}, ids, None, mask))(p_shared))
  b = jax.tree.leaves(jax.jit(lambda p: unshared.apply({"params": p}, ids, None, mask))(p_unshared))
  for x, y in zip(a, b):
    np.testing.assert_allclose(x, y, rtol=1e-6, atol=1e-6)


def test_crf_tagger_loss_and_decode(batch, pretrained):
  ids, mask = batch
  head = CrfTagger(CONFIG, 4)
  params = _head_params(head, batch, pretrained)
  emissions, transitions = head.apply({"params": params}, ids, None, mask)
  assert emissions.shape == (2, 7, 4) and emissions.dtype == jnp.float32
  assert transitions.shape == (4, 4)
  tags = jnp.array([[0, 1, 2, 3, 0, 1, 2], [1, 1, 0, 0, 0, 0, 0]])
  loss = jax.jit(crf_loss)(emissions, transitions, tags, mask)
  expected = -jnp.sum(crf.log_likelihood(emissions, tags, transitions, mask)) / 11
  np.testing.assert_allclose(loss, expected, rtol=1e-6)
  decoded = jax.jit(crf_decode)(emissions, transitions, mask)
  assert decoded.shape == (2, 7)
  assert np.all(np.asarray(decoded)[1, 4:] == 0)

  def objective(p):
    return crf_loss(*head.apply({"params": p}, ids, None, mask), tags, mask)

  grads = jax.jit(jax.grad(objective))(params)
  assert float(jnp.max(jnp.abs(grads["transitions"]))) > 0
  assert all(np.all(np.isfinite(g)) for g in jax.tree.leaves(grads))
  empty = jnp.zeros_like(mask)
  assert float(crf_loss(emissions, transitions, tags, empty)) == 0.0


def test_crf_param_labels_drive_multi_transform(batch, pretrained):
  head = CrfTagger(CONFIG, 3)
  params = _head_params(head, batch, pretrained)
  labels = crf_param_labels(params)
  assert labels["transitions"] == "transitions"
  assert set(jax.tree.leaves(labels["encoder"])) == {"rest"}
  tx = optax.multi_transform({"transitions": optax.sgd(10.0), "rest": optax.sgd(0.0)},
                             crf_param_labels)
  grads = jax.tree.map(jnp.ones_like, params)
  updates, _ = tx.update(grads, tx.init(params), params)
  np.testing.assert_allclose(updates["transitions"], -10.0)
  assert float(jnp.max(jnp.abs(updates["emissions"]["kernel"]))) == 0.0
  with pytest.raises(ValueError, match="transitions"):
    crf_param_labels({"encoder": {}})


def test_errors(batch, pretrained):
  head = Classifier(CONFIG, 2)
  params = jax.jit(head.init)(jax.random.PRNGKey(0), batch[0])["params"]
  with pytest.raises(ValueError, match="share_layers"):
    with_encoder(params, unshare({"params": pretrained}, 3)["params"])
  with pytest.raises(ValueError, match="no 'encoder'"):
    with_encoder({"out": {}}, pretrained)
  with pytest.raises(ValueError, match="num_classes"):
    Classifier(CONFIG, 0).init(jax.random.PRNGKey(0), batch[0])
  with pytest.raises(ValueError, match="num_tags"):
    CrfTagger(CONFIG, -1).init(jax.random.PRNGKey(0), batch[0])
