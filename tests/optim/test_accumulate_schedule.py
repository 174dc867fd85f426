"""accumulate with a k schedule and skipped micro-steps == optax.MultiSteps."""
import functools

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from jaxblog import optim
from tests.optim._util import assert_trees_close, count_traces, loss_fn, make_params, run


def k_schedule(step):
  return jnp.where(step < 2, 1, jnp.where(step < 4, 3, 2))


def nan_every_fifth(params, t):
  g = jax.grad(loss_fn)(params, t)
  bad = jnp.remainder(t, 5.0) == 3.0
  return jax.tree.map(lambda x: jnp.where(bad, jnp.nan, x), g)


def test_schedule_equals_multisteps():
  params = make_params()
  inner = optax.adamw(3e-2, weight_decay=0.01)
  n = 20
  ours, s1 = run(optim.accumulate(inner, k_schedule), params, n)
  ref, s2 = run(optax.MultiSteps(inner, k_schedule).gradient_transformation(), params, n)
  for a, b in zip(ours, ref):
    assert_trees_close(a, b, rtol=1e-5, atol=1e-6)
  assert int(s1.micro_step) == int(s2.mini_step)
  assert int(s1.gradient_step) == int(s2.gradient_step)


@pytest.mark.parametrize("steps", [3, k_schedule])
def test_skip_not_finite_equals_multisteps(steps):
  params = make_params()
  inner = optax.adam(3e-2)
  n = 17
  ours, s1 = run(optim.accumulate(inner, steps, should_skip_update_fn=optax.skip_not_finite),
                 params, n, nan_every_fifth)
  ref, s2 = run(optax.MultiSteps(inner, steps, should_skip_update_fn=optax.skip_not_finite)
                .gradient_transformation(), params, n, nan_every_fifth)
  for a, b in zip(ours, ref):
    assert_trees_close(a, b, rtol=1e-5, atol=1e-6)
  assert all(np.isfinite(np.asarray(x)).all() for x in jax.tree.leaves(ours[-1]))
  assert int(s1.gradient_step) == int(s2.gradient_step)


def test_skip_large_updates_and_derive():
  params = make_params()
  skip = functools.partial(optax.skip_large_updates, max_squared_norm=1.0)
  tx = optim.derive(optax.scale_by_adam(), 1e-2, grad_accum_steps=2,
                    grad_accum_should_skip=skip)
  traj, state = run(tx, params, 6, lambda p, t: jax.tree.map(lambda x: 10.0 * jnp.ones_like(x), p))
  assert_trees_close(traj[-1], params)  # every micro-step was too large
  assert int(state.gradient_step) == 0 and int(state.micro_step) == 0
  assert count_traces(optim.accumulate(optax.adam(1e-3), k_schedule,
                                       should_skip_update_fn=optax.skip_not_finite), params) == 1


def test_errors():
  inner = optax.sgd(0.1)
  with pytest.raises(ValueError, match="bert4keras"):
    optim.accumulate(inner, k_schedule, mode="bert4keras")
  with pytest.raises(ValueError, match="bert4keras"):
    optim.accumulate(inner, 2, mode="bert4keras", should_skip_update_fn=optax.skip_not_finite)
  with pytest.raises(ValueError, match="bert4keras"):
    optim.derive(optax.scale_by_adam(), 1e-3, grad_accum_steps=2, grad_accum_mode="bert4keras",
                 grad_accum_should_skip=optax.skip_not_finite)
  with pytest.raises(ValueError, match="grad_accum_steps"):
    optim.derive(optax.scale_by_adam(), 1e-3, grad_accum_should_skip=optax.skip_not_finite)
  tx = optim.accumulate(inner, 2, should_skip_update_fn=lambda u, s, p: (jnp.zeros(2, bool), ()))
  with pytest.raises(ValueError, match="bool scalar"):
    tx.update({"a": jnp.ones(2)}, tx.init({"a": jnp.ones(2)}), {"a": jnp.ones(2)})


@pytest.mark.parametrize("name", ["accumulate", "accumulate_b4k", "ema", "swa", "derive"])
def test_state_can_be_donated(name):
  """No state holds one buffer twice (XLA refuses to donate it)."""
  tx = {
      "accumulate": lambda: optim.accumulate(optax.adam(1e-3), k_schedule,
                                             should_skip_update_fn=optax.skip_not_finite),
      "accumulate_b4k": lambda: optim.accumulate(optax.adam(1e-3), 2, mode="bert4keras"),
      "ema": lambda: optim.ema(optax.adam(1e-3), start_step=2),
      "swa": lambda: optim.swa(optax.adam(1e-3), 2, 1),
      "derive": lambda: optim.derive(optax.scale_by_adam(), 1e-3, ema=0.9, swa=(2, 0),
                                     lookahead=(2, 0.5), grad_accum_steps=2),
  }[name]()
  params = make_params()

  def step(p, s):
    u, s = tx.update(jax.tree.map(jnp.ones_like, p), s, p)
    return optax.apply_updates(p, u), s

  step = jax.jit(step, donate_argnums=(0, 1))
  p, s = jax.tree.map(jnp.copy, params), tx.init(params)
  for _ in range(3):
    p, s = step(p, s)
  assert all(np.isfinite(np.asarray(x)).all() for x in jax.tree.leaves(p))
