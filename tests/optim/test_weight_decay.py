"""weight_decay and derive(...) == optax.adamw (https://kexue.fm/archives/7094)."""
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from jaxblog import optim
from tests.optim._util import assert_trees_close, count_traces, make_params, run


@pytest.mark.parametrize("wd", [0.01, 0.3])
def test_derive_equals_optax_adamw_over_many_steps(wd):
  params = make_params()
  ours, _ = run(optim.derive(optax.scale_by_adam(eps=1e-6), 1e-2, weight_decay=wd), params, 60)
  ref, _ = run(optax.adamw(1e-2, eps=1e-6, weight_decay=wd), params, 60)
  for a, b in zip(ours, ref):
    assert_trees_close(a, b, rtol=1e-6, atol=1e-6)
  # The trajectory actually moved.
  assert float(jnp.abs(ours[-1]["dense"]["kernel"] - params["dense"]["kernel"]).max()) > 0.1


def test_weight_decay_with_sgd_equals_l2_penalty():
  params = make_params()
  lam, lr = 0.1, 0.05

  def l2_grad(p, t):
    g = jax.grad(lambda q: sum(jnp.sum(jnp.sin(x)) for x in jax.tree.leaves(q)))(p)
    return jax.tree.map(lambda gi, x: gi + lam * x, g, p)

  plain = jax.grad(lambda q, t: sum(jnp.sum(jnp.sin(x)) for x in jax.tree.leaves(q)))
  ours, _ = run(optax.chain(optim.weight_decay(lam), optax.scale(-lr)), params, 20, plain)
  ref, _ = run(optax.sgd(lr), params, 20, l2_grad)
  assert_trees_close(ours[-1], ref[-1], rtol=1e-5)


def test_exclude_by_path_regex():
  params = make_params()
  zeros = jax.tree.map(jnp.zeros_like, params)
  tx = optim.weight_decay(0.5, exclude=("bias", "Norm"))
  u, _ = jax.jit(tx.update)(zeros, tx.init(params), params)
  np.testing.assert_allclose(u["dense"]["kernel"], 0.5 * params["dense"]["kernel"])
  np.testing.assert_array_equal(u["layers"][0], 0.5 * params["layers"][0])
  np.testing.assert_array_equal(u["dense"]["bias"], 0.0)
  np.testing.assert_array_equal(u["Norm"]["scale"], 0.0)


def test_bf16_params_stay_bf16_and_no_retrace():
  params = make_params(dtype=jnp.bfloat16)
  tx = optim.derive(optax.scale_by_adam(), 1e-3, weight_decay=0.01)
  traj, state = run(tx, params, 3)
  assert all(x.dtype == jnp.bfloat16 for x in jax.tree.leaves(traj[-1]))
  assert count_traces(tx, params) == 1


def test_errors():
  with pytest.raises(ValueError, match="rate"):
    optim.weight_decay(-0.1)
  with pytest.raises(ValueError, match="invalid regular expression"):
    optim.weight_decay(0.1, exclude=("[",))
  tx = optim.weight_decay(0.1)
  with pytest.raises(ValueError, match="params"):
    tx.update({"a": jnp.ones(2)}, tx.init({"a": jnp.ones(2)}))
