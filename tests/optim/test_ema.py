"""ema and ema_params, also nested inside other wrappers (bert4keras EMA)."""
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from jaxblog import optim
from tests.optim._util import assert_trees_close, count_traces, make_params, run


def test_matches_numpy_reference():
  params = make_params()
  decay, n = 0.9, 12
  traj, state = run(optim.ema(optax.adam(1e-2), decay), params, n)
  avg = jax.tree.map(lambda p: np.zeros(p.shape), params)
  for p in traj:
    avg = jax.tree.map(lambda a, x: decay * a + (1 - decay) * np.asarray(x, np.float64), avg, p)
  expect = jax.tree.map(lambda a: a / (1 - decay ** n), avg)
  assert_trees_close(optim.ema_params(state), expect, rtol=1e-5)
  # Plain params; updates are those of the inner optimizer.
  ref, _ = run(optax.adam(1e-2), params, n)
  assert_trees_close(traj[-1], ref[-1], rtol=1e-6)


def test_found_inside_derive_with_accumulation():
  params = make_params()
  k, n, decay = 3, 10, 0.5
  tx = optim.derive(optax.scale_by_adam(), 1e-2, ema=decay, grad_accum_steps=k,
                    lookahead=(2, 0.5), weight_decay=0.01)
  traj, state = run(tx, params, n)
  real = [traj[t] for t in range(k - 1, n, k)]  # params after real updates only
  avg = jax.tree.map(lambda p: np.zeros(p.shape), params)
  for p in real:
    avg = jax.tree.map(lambda a, x: decay * a + (1 - decay) * np.asarray(x, np.float64), avg, p)
  expect = jax.tree.map(lambda a: a / (1 - decay ** len(real)), avg)
  assert_trees_close(jax.jit(optim.ema_params)(state), expect, rtol=1e-5)


def test_before_first_update_and_bf16():
  params = make_params(dtype=jnp.bfloat16)
  tx = optim.ema(optax.sgd(0.1))
  state = tx.init(params)
  assert_trees_close(optim.ema_params(state, params), params)
  traj, state = run(tx, params, 3)
  assert all(x.dtype == jnp.float32 for x in jax.tree.leaves(state.ema))
  out = optim.ema_params(state, params)
  assert all(x.dtype == jnp.bfloat16 for x in jax.tree.leaves(out))
  assert count_traces(tx, params) == 1


def test_errors():
  with pytest.raises(ValueError, match="decay"):
    optim.ema(optax.sgd(0.1), 1.0)
  with pytest.raises(ValueError, match="exactly one EmaState"):
    optim.ema_params(optax.adam(1e-3).init({"a": jnp.ones(2)}))
