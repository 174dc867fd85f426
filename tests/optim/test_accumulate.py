"""accumulate: optax.MultiSteps trajectory, bert4keras reference, lax.cond.

Reference: https://kexue.fm/archives/6794 (gradient accumulation).
"""
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from jaxblog import optim
from tests.optim._util import assert_trees_close, count_traces, make_params, run


@pytest.mark.parametrize("k", [1, 3])
def test_optax_mode_equals_multisteps(k):
  params = make_params()
  inner = optax.adamw(3e-2, weight_decay=0.01)
  n = 7 * k + 2
  ours, s1 = run(optim.accumulate(inner, k), params, n)
  ref, s2 = run(optax.MultiSteps(inner, k).gradient_transformation(), params, n)
  for a, b in zip(ours, ref):
    assert_trees_close(a, b, rtol=1e-5, atol=1e-6)
  assert int(s1.micro_step) == int(s2.mini_step)
  assert float(jnp.abs(ours[-1]["dense"]["kernel"] - params["dense"]["kernel"]).max()) > 0.05


def test_inner_runs_only_on_emit_steps():
  calls = []

  def counting():
    def update(u, s, p=None):
      jax.debug.callback(lambda: calls.append(1))
      return u, s
    return optax.GradientTransformation(lambda p: optax.EmptyState(), update)

  for mode, k, n, expect in [("optax", 4, 10, 2), ("bert4keras", 4, 10, 3)]:
    calls.clear()
    tx = optim.accumulate(optax.chain(counting(), optax.sgd(0.1)), k, mode=mode)
    run(tx, {"w": jnp.ones(3)}, n, lambda p, t: {"w": jnp.ones(3)})
    assert len(calls) == expect, mode


def numpy_bert4keras(theta0, grads_fn, n, k, lr, wd, b1=0.9, b2=0.999, eps=1e-6):
  """The bert4keras semantics written out: lag, zero first update, frozen slots, micro-step t."""
  theta = {n_: np.asarray(v, np.float64) for n_, v in theta0.items()}
  acc = {n_: np.zeros_like(v) for n_, v in theta.items()}
  m = {n_: np.zeros_like(v) for n_, v in theta.items()}
  v = {n_: np.zeros_like(x) for n_, x in theta.items()}
  traj = []
  for t in range(n):
    g = grads_fn(theta, t)
    if t % k == 0:
      for key in theta:
        gbar = acc[key] / k
        m[key] = b1 * m[key] + (1 - b1) * gbar
        v[key] = b2 * v[key] + (1 - b2) * gbar ** 2
        mh = m[key] / (1 - b1 ** (t + 1))
        vh = v[key] / (1 - b2 ** (t + 1))
        theta[key] = theta[key] - lr * (mh / (np.sqrt(vh) + eps) + wd * theta[key])
        acc[key] = g[key]
    else:
      for key in theta:
        acc[key] = acc[key] + g[key]
    traj.append({key: x.copy() for key, x in theta.items()})
  return traj


def test_bert4keras_mode_matches_numpy_reference():
  rng = np.random.default_rng(1)
  params = {"a": rng.normal(size=(4, 3)), "b": rng.normal(size=(3,))}
  targets = {key: rng.normal(size=x.shape) for key, x in params.items()}

  def np_grads(theta, t):
    return {key: np.tanh(theta[key] - targets[key]) * (1 + 0.5 * np.sin(t)) for key in theta}

  def jax_grads(theta, t):
    return {key: jnp.tanh(theta[key] - targets[key]) * (1 + 0.5 * jnp.sin(t)) for key in theta}

  k, lr, wd, n = 3, 0.05, 0.1, 14
  tx = optim.derive(optax.scale_by_adam(eps=1e-6), lr, weight_decay=wd,
                    grad_accum_steps=k, grad_accum_mode="bert4keras")
  jparams = {key: jnp.asarray(x, jnp.float32) for key, x in params.items()}
  ours, _ = run(tx, jparams, n, jax_grads)
  ref = numpy_bert4keras(params, np_grads, n, k, lr, wd)
  # Zero-gradient first update: Adam does not move, weight decay does.
  np.testing.assert_allclose(ours[0]["a"], params["a"] * (1 - lr * wd), rtol=1e-6)
  for a, b in zip(ours, ref):
    assert_trees_close(a, b, rtol=1e-5, atol=1e-5)
  # Real updates only at t = 0, k, 2k, ...
  for t in range(1, n):
    moved = not np.array_equal(np.asarray(ours[t]["a"]), np.asarray(ours[t - 1]["a"]))
    assert moved == (t % k == 0)


def test_one_accumulator_bf16_and_no_retrace():
  params = make_params(dtype=jnp.bfloat16)
  tx = optim.accumulate(optax.adamw(1e-3), 4)
  traj, state = run(tx, params, 5)
  assert all(x.dtype == jnp.bfloat16 for x in jax.tree.leaves(traj[-1]))
  assert all(x.dtype == jnp.float32 for x in jax.tree.leaves(state.acc))
  param_trees = [leaf for leaf in jax.tree.leaves(state) if leaf.ndim > 0]
  n_leaves = len(jax.tree.leaves(params))
  assert len(param_trees) == 3 * n_leaves  # acc + adam mu + nu: one accumulator
  assert count_traces(tx, params) == 1
  assert count_traces(optim.accumulate(optax.adam(1e-3), 2, mode="bert4keras"), params) == 1


def test_errors():
  inner = optax.sgd(0.1)
  with pytest.raises(ValueError, match="steps"):
    optim.accumulate(inner, 0)
  with pytest.raises(ValueError, match="steps"):
    optim.accumulate(inner, 2.0)
  with pytest.raises(ValueError, match="mode"):
    optim.accumulate(inner, 2, mode="keras")
