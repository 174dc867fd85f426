"""swa / swa_params (uniform weight average) and ema(start_step) warm-up."""
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from jaxblog import optim
from tests.optim._util import assert_trees_close, count_traces, make_params, run


def np_mean(trees):
  return jax.tree.map(lambda *xs: np.mean([np.asarray(x, np.float64) for x in xs], 0), *trees)


@pytest.mark.parametrize("period,start", [(1, 0), (3, 2), (2, 5)])
def test_swa_matches_numpy_reference(period, start):
  params = make_params()
  n = 13
  traj, state = run(optim.swa(optax.adam(1e-2), period, start), params, n)
  picked = [traj[i - 1] for i in range(1, n + 1) if i >= start and (i - start) % period == 0]
  assert float(state.num_averaged) == len(picked)
  assert_trees_close(jax.jit(optim.swa_params)(state), np_mean(picked), rtol=1e-5)
  ref, _ = run(optax.adam(1e-2), params, n)
  assert_trees_close(traj[-1], ref[-1], rtol=1e-6)  # updates unchanged


def test_swa_inside_derive_with_accumulation_and_ema():
  params = make_params()
  k, n = 2, 12
  tx = optim.derive(optax.scale_by_adam(), 1e-2, swa=(2, 0), ema=0.5, grad_accum_steps=k)
  traj, state = run(tx, params, n)
  real = [traj[t] for t in range(k - 1, n, k)]  # params after real updates only
  assert_trees_close(optim.swa_params(state), np_mean(real[1::2]), rtol=1e-5)
  optim.ema_params(state)  # both averages live side by side
  # bert4keras mode sets integer counters to micro-steps: the float count survives.
  tx = optim.derive(optax.scale_by_adam(), 1e-2, swa=(1, 0), grad_accum_steps=2,
                    grad_accum_mode="bert4keras")
  _, state = run(tx, params, 6)
  assert float(jax.tree.leaves(state.inner_state.num_averaged)[0]) == 3.0


def test_swa_params_before_first_sample_and_bf16():
  params = make_params(dtype=jnp.bfloat16)
  tx = optim.swa(optax.sgd(0.1), period=1, start=4)
  state = tx.init(params)
  assert_trees_close(optim.swa_params(state, params), params)
  _, state = run(tx, params, 2)
  assert_trees_close(optim.swa_params(state, params), params)  # nothing sampled yet
  assert all(x.dtype == jnp.float32 for x in jax.tree.leaves(state.mean))
  assert all(x.dtype == jnp.bfloat16 for x in jax.tree.leaves(optim.swa_params(state, params)))
  assert count_traces(tx, params) == 1


@pytest.mark.parametrize("start_step", [0, 4])
def test_ema_start_step_matches_numpy_reference(start_step):
  params = make_params()
  decay, n = 0.8, 10
  traj, state = run(optim.ema(optax.adam(1e-2), decay, start_step=start_step), params, n)
  avg = jax.tree.map(lambda p: np.zeros(p.shape), params)
  used = traj[start_step:]
  for p in used:
    avg = jax.tree.map(lambda a, x: decay * a + (1 - decay) * np.asarray(x, np.float64), avg, p)
  expect = jax.tree.map(lambda a: a / (1 - decay ** len(used)), avg)
  assert_trees_close(optim.ema_params(state), expect, rtol=1e-5)
  # Default start_step=0 is the plain EMA, bit for bit.
  if start_step == 0:
    _, plain = run(optim.ema(optax.adam(1e-2), decay), params, n)
    jax.tree.map(np.testing.assert_array_equal, plain.ema, state.ema)


def test_ema_before_start_step_returns_params():
  params = make_params()
  tx = optim.derive(optax.scale_by_adam(), 1e-2, ema=0.9, ema_start_step=5)
  _, state = run(tx, params, 3)
  assert_trees_close(optim.ema_params(state, params), params)


def test_errors():
  with pytest.raises(ValueError, match="period"):
    optim.swa(optax.sgd(0.1), period=0)
  with pytest.raises(ValueError, match="start"):
    optim.swa(optax.sgd(0.1), start=-1)
  with pytest.raises(ValueError, match="start_step"):
    optim.ema(optax.sgd(0.1), start_step=1.5)
  with pytest.raises(ValueError, match="exactly one SwaState"):
    optim.swa_params(optax.adam(1e-3).init({"a": jnp.ones(2)}))
  with pytest.raises(ValueError, match="swa must be"):
    optim.derive(optax.scale_by_adam(), 1e-3, swa=3)
  tx = optim.swa(optax.sgd(0.1))
  with pytest.raises(ValueError, match="params"):
    tx.update({"a": jnp.ones(2)}, tx.init({"a": jnp.ones(2)}))
