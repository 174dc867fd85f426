"""bfloat16 compute and per-block rematerialisation of the Transformer family."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxblog.models.config import TransformerConfig
from jaxblog.models.transformer import Transformer

BASE = TransformerConfig(vocab_size=64, hidden_size=64, num_layers=4, num_heads=4,
                         intermediate_size=128, max_position=64, with_mlm=True)


def _inputs(batch=4, length=32):
  ids = jax.random.randint(jax.random.key(0), (batch, length), 0, 64)
  valid = jnp.arange(length)[None, :] < jnp.array([[32], [20], [7], [1]])[:batch]
  return ids, valid


def _loss(model):
  def loss(params, ids, valid):
    logits = model.apply({"params": params}, ids, None, valid)
    logp = jax.nn.log_softmax(logits.astype(jnp.float32))
    picked = jnp.take_along_axis(logp, ids[..., None], -1)[..., 0]
    return -jnp.sum(jnp.where(valid, picked, 0.0)) / jnp.sum(valid)
  return loss


@pytest.mark.parametrize("share", [False, True])
def test_bfloat16_compute_keeps_float32_params_and_tracks_float32(share):
  ids, valid = _inputs()
  f32 = Transformer(BASE.replace(share_layers=share))
  bf16 = Transformer(BASE.replace(share_layers=share, dtype="bfloat16"))
  params = f32.init(jax.random.key(1), ids, None, valid)["params"]
  assert jax.tree.structure(params) == jax.tree.structure(
      bf16.init(jax.random.key(1), ids, None, valid)["params"])
  assert all(leaf.dtype == jnp.float32 for leaf in jax.tree.leaves(
      bf16.init(jax.random.key(1), ids, None, valid)["params"]))
  hidden = jax.jit(lambda p: f32.apply({"params": p}, ids, None, valid, method="encode"))(params)
  hidden16 = jax.jit(lambda p: bf16.apply({"params": p}, ids, None, valid,
                                          method="encode"))(params)
  assert hidden16.dtype == jnp.float32  # LayerNorm output: the residual stream stays float32
  np.testing.assert_allclose(hidden16, hidden, atol=0.08)
  np.testing.assert_allclose(jnp.mean(jnp.abs(hidden16 - hidden)), 0.0, atol=0.02)
  loss, loss16 = (jax.jit(_loss(m))(params, ids, valid) for m in (f32, bf16))
  np.testing.assert_allclose(loss16, loss, rtol=2e-2)


def _residual_bytes(loss, params, *args):
  """Bytes the forward pass keeps for the backward pass (the VJP's residuals)."""
  _, vjp = jax.vjp(lambda p: loss(p, *args), params)
  return sum(leaf.nbytes for leaf in jax.tree.leaves(vjp))


def test_remat_same_values_and_gradients_fewer_stored_activations():
  ids, valid = _inputs(batch=4, length=64)
  config = BASE.replace(num_layers=6, max_position=64)
  plain, remat = Transformer(config), Transformer(config.replace(remat=True))
  params = plain.init(jax.random.key(2), ids, None, valid)["params"]
  grad_plain = jax.jit(jax.value_and_grad(_loss(plain)))
  grad_remat = jax.jit(jax.value_and_grad(_loss(remat)))
  (l0, g0), (l1, g1) = grad_plain(params, ids, valid), grad_remat(params, ids, valid)
  np.testing.assert_allclose(l1, l0, rtol=1e-6)
  for a, b in zip(jax.tree.leaves(g1), jax.tree.leaves(g0)):
    np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6)
  # Peak memory is what the stored activations cost; XLA:CPU's compiled
  # memory_analysis does not reflect rematerialisation, the VJP's residuals do.
  stored = [_residual_bytes(_loss(m), params, ids, valid) for m in (plain, remat)]
  assert stored[1] < 0.25 * stored[0], stored


def test_remat_model_decodes_with_its_cache():
  ids, valid = _inputs(batch=2, length=8)
  config = BASE.replace(remat=True, application="lm")
  model = Transformer(config)
  variables = model.init(jax.random.key(3), ids, None, valid)
  full = model.apply(variables, ids, None, valid)
  plain = Transformer(config.replace(remat=False)).apply(variables, ids, None, valid)
  np.testing.assert_allclose(full, plain, rtol=1e-5, atol=1e-5)


def test_bad_dtype():
  with pytest.raises(ValueError, match="dtype must be None or one of"):
    TransformerConfig(vocab_size=8, dtype="int8")
