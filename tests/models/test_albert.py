"""ALBERT unshare/share: identical function before training, exact inverse."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxblog.models import share, unshare
from jaxblog.models.albert import albert_config
from jaxblog.models.transformer import Transformer


@pytest.fixture(scope="module")
def albert():
  config = albert_config(60, hidden_size=16, num_layers=3, num_heads=2, intermediate_size=32,
                         embedding_size=8, max_position=16, with_mlm=True)
  model = Transformer(config)
  ids = jax.random.randint(jax.random.PRNGKey(1), (2, 10), 1, 60)
  variables = jax.jit(model.init)(jax.random.PRNGKey(0), ids)
  return model, variables, ids


def test_unshared_gives_identical_outputs(albert):
  model, variables, ids = albert
  unshared = unshare(variables, model.config.num_layers)
  assert {"layers_0", "layers_1", "layers_2"} <= set(unshared["params"])
  assert "block" not in unshared["params"]
  bert = Transformer(model.config.replace(share_layers=False))
  seg = jnp.array([[0] * 5 + [1] * 5] * 2)
  for app in ("encoder", "unilm"):
    a = jax.jit(lambda v, x: model.apply(v, x, seg, application=app))(variables, ids)
    b = jax.jit(lambda v, x: bert.apply(v, x, seg, application=app))(unshared, ids)
    np.testing.assert_array_equal(a, b)


def test_unshared_layers_train_independently(albert):
  model, variables, ids = albert
  unshared = unshare(variables, 3)
  bert = Transformer(model.config.replace(share_layers=False))

  def loss(params):
    return jnp.mean(bert.apply({"params": params}, ids) ** 2)

  grads = jax.jit(jax.grad(loss))(unshared["params"])
  g0 = grads["layers_0"]["ffn_in"]["kernel"]
  g2 = grads["layers_2"]["ffn_in"]["kernel"]
  assert np.abs(g0 - g2).max() > 1e-7  # different layers get different gradients
  # The copies are distinct buffers, not aliases of one array.
  assert unshared["params"]["layers_0"]["ffn_in"]["kernel"] is not \
      unshared["params"]["layers_1"]["ffn_in"]["kernel"]


def test_share_inverts_unshare(albert):
  _, variables, _ = albert
  back = share(unshare(variables, 3))
  jax.tree.map(np.testing.assert_array_equal, back, variables)
  assert jax.tree.structure(back) == jax.tree.structure(variables)


def test_share_mean_averages_layers(albert):
  _, variables, _ = albert
  unshared = unshare(variables, 2)
  unshared["params"]["layers_1"] = jax.tree.map(lambda x: x + 2.0,
                                                unshared["params"]["layers_1"])
  mean = share(unshared, reduce="mean")
  jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b + 1.0, rtol=1e-6),
               mean["params"]["block"], variables["params"]["block"])


def test_errors(albert):
  _, variables, _ = albert
  with pytest.raises(ValueError, match="num_layers must be a positive int"):
    unshare(variables, 0)
  with pytest.raises(ValueError, match="no 'block'"):
    unshare(unshare(variables, 2), 2)
  with pytest.raises(ValueError, match="no 'layers_<i>'"):
    share(variables)
  with pytest.raises(ValueError, match="reduce"):
    share(unshare(variables, 2), reduce="max")
  broken = unshare(variables, 3)
  del broken["params"]["layers_1"]
  with pytest.raises(ValueError, match="numbered 0..L-1"):
    share(broken)
