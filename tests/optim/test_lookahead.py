"""lookahead: drop-in, optax fast params, zeros quirk (https://kexue.fm/archives/7094)."""
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from jaxblog import optim
from tests.optim._util import assert_trees_close, count_traces, loss_fn, make_params, run


@pytest.mark.parametrize("k,alpha", [(5, 0.5), (3, 0.8), (1, 0.3)])
def test_fast_params_equal_optax_lookahead(k, alpha):
  params = make_params()
  inner = optax.adam(3e-2)
  n = 4 * k + 3
  ours, state = run(optim.lookahead(inner, k, alpha), params, n)

  ref_tx = optax.lookahead(inner, k, alpha)
  grad = jax.grad(loss_fn)

  @jax.jit
  def step(lp, s, t):
    u, s = ref_tx.update(grad(lp.fast, t), s, lp)
    return optax.apply_updates(lp, u), s

  lp = optax.LookaheadParams.init_synced(params)
  s = ref_tx.init(lp)
  for t in range(n):
    lp, s = step(lp, s, jnp.float32(t))
    assert_trees_close(ours[t], lp.fast, rtol=1e-5, atol=1e-6)
  assert_trees_close(state.slow, lp.slow, rtol=1e-5, atol=1e-6)


def test_zeros_slow_init_matches_numpy_reference():
  rng = np.random.default_rng(0)
  theta = rng.normal(size=(6,))
  target = rng.normal(size=(6,))
  lr, k, alpha, n = 0.1, 3, 0.5, 10
  # NumPy: SGD fast step, then if t mod k == 0: phi += alpha (theta - phi); theta = phi.
  phi = np.zeros_like(theta)
  th = theta.copy()
  ref = []
  for t in range(n):
    th = th - lr * (th - target)
    if t % k == 0:
      phi = phi + alpha * (th - phi)
      th = phi.copy()
    ref.append(th.copy())
  tx = optim.lookahead(optax.sgd(lr), k, alpha, slow_init="zeros")
  ours, _ = run(tx, jnp.asarray(theta, jnp.float32), n, lambda p, t: p - target)
  # The quirk: after the very first step every weight is alpha * theta_1.
  np.testing.assert_allclose(ours[0], alpha * (theta - lr * (theta - target)), rtol=1e-6)
  for a, b in zip(ours, ref):
    np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


def test_drop_in_bf16_and_no_retrace():
  params = make_params(dtype=jnp.bfloat16)
  tx = optim.lookahead(optax.adam(1e-2), 2, 0.5)
  traj, state = run(tx, params, 4)
  assert jax.tree.structure(traj[-1]) == jax.tree.structure(params)
  assert all(x.dtype == jnp.bfloat16 for x in jax.tree.leaves(traj[-1]))
  assert all(x.dtype == jnp.bfloat16 for x in jax.tree.leaves(state.slow))
  # After an even number of steps with k=2 the params are the slow weights.
  assert_trees_close(traj[-1], state.slow)
  assert count_traces(tx, params) == 1


@pytest.mark.parametrize("kwargs,match", [
    ({"sync_period": 0}, "sync_period"), ({"alpha": 0.0}, "alpha"),
    ({"alpha": 1.5}, "alpha"), ({"slow_init": "ones"}, "slow_init")])
def test_errors(kwargs, match):
  with pytest.raises(ValueError, match=match):
    optim.lookahead(optax.sgd(0.1), **kwargs)
