"""VQ-VAE model (the article's layout at 28×28): shapes, both codebook variants, EMA state."""
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from jaxblog import vq
from jaxblog.models.vqvae import VQVAE, codebook_of


def _setup(**kw):
  model = VQVAE(num_codes=16, code_dim=4, channels=8, num_blocks=1, **kw)
  x = jax.random.uniform(jax.random.key(0), (4, 28, 28, 1), minval=-1.0, maxval=1.0)
  return model, x, model.init(jax.random.key(1), x, train=True)


def test_shapes_and_learned_codebook_gets_codebook_gradient():
  model, x, variables = _setup()
  assert "vq_stats" not in variables
  out = jax.jit(lambda v, x: model.apply(v, x))(variables, x)
  assert out.reconstruction.shape == x.shape and out.z.shape == (4, 7, 7, 4)
  assert out.indices.shape == (4, 7, 7) and out.indices.dtype == jnp.int32
  assert float(jnp.abs(out.reconstruction).max()) <= 1.0
  np.testing.assert_array_equal(out.indices, vq.nearest(out.z, codebook_of(variables)))

  def loss(params):
    o, _ = model.apply({**variables, "params": params}, x, train=True, mutable=["batch_stats"])
    return jnp.mean((o.reconstruction - x) ** 2) + o.vq_loss

  grads = jax.jit(jax.grad(loss))(variables["params"])
  assert float(jnp.abs(grads["quantizer"]["codebook"]).sum()) > 0
  assert float(jnp.abs(grads["encoder"]["Conv_0"]["kernel"]).sum()) > 0


def test_ema_variant_updates_state_only_in_training():
  model, x, variables = _setup(ema=True, decay=0.5)
  assert "codebook" not in variables["params"].get("quantizer", {})
  state = variables["vq_stats"]["quantizer"]["ema"]
  assert isinstance(state, vq.EMAState)
  out_eval = jax.jit(model.apply)(variables, x)  # not mutable: no update
  out, new = jax.jit(lambda v, x: model.apply(v, x, train=True,
                                              mutable=["batch_stats", "vq_stats"]))(variables, x)
  want = vq.ema_update(state, out.z, out.indices, decay=0.5)
  got = new["vq_stats"]["quantizer"]["ema"]
  np.testing.assert_allclose(got.codebook, want.codebook, rtol=1e-5, atol=1e-6)
  assert out_eval.reconstruction.shape == x.shape
  # the EMA variant's vq loss is the commitment term only
  np.testing.assert_allclose(
      out.vq_loss, 0.25 * jnp.mean((out.z - jnp.take(state.codebook, out.indices, 0)) ** 2),
      rtol=1e-5)


def test_ema_restart_needs_rng_and_revives():
  model, x, variables = _setup(ema=True, restart_threshold=0.9)
  with pytest.raises(Exception, match="restart"):
    model.apply(variables, x, train=True, mutable=["batch_stats", "vq_stats"])
  _, new = jax.jit(lambda v, x, r: model.apply(v, x, train=True, mutable=["batch_stats", "vq_stats"],
                                               rngs={"restart": r}))(variables, x, jax.random.key(2))
  sizes = new["vq_stats"]["quantizer"]["ema"].cluster_size
  assert float(sizes.min()) >= 0.9 - 1e-6  # every dead code was re-seeded and reset


@pytest.mark.slow
def test_a_few_training_steps_reduce_the_loss():
  model, x, variables = _setup(ema=True, restart_threshold=0.5)
  tx = optax.adam(3e-3)
  opt = tx.init(variables["params"])

  @jax.jit
  def step(params, opt, state, rng):
    def loss(p):
      o, new = model.apply({"params": p, **state}, x, train=True,
                           mutable=["batch_stats", "vq_stats"], rngs={"restart": rng})
      return jnp.mean((o.reconstruction - x) ** 2) + o.vq_loss, new
    (value, new), g = jax.value_and_grad(loss, has_aux=True)(params)
    u, opt = tx.update(g, opt)
    return optax.apply_updates(params, u), opt, new, value

  params, state = variables["params"], {k: v for k, v in variables.items() if k != "params"}
  losses = []
  for i in range(15):
    params, opt, state, value = step(params, opt, state, jax.random.key(i))
    losses.append(float(value))
  assert losses[-1] < losses[0]
