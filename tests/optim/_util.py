"""Shared helpers for the optimizer tests: a small problem, a runner, trace counting."""
import jax
import jax.numpy as jnp
import numpy as np
import optax


def make_params(seed=0, dtype=jnp.float32):
  """A nested pytree with a matrix, a bias, a stacked leaf and a list."""
  rng = np.random.default_rng(seed)
  return {
      "dense": {"kernel": jnp.asarray(rng.normal(size=(5, 3)), dtype),
                "bias": jnp.asarray(rng.normal(size=(3,)) * 0.1, dtype)},
      "layers": [jnp.asarray(rng.normal(size=(4, 2)), dtype)],
      "Norm": {"scale": jnp.ones((3,), dtype)},
  }


def loss_fn(params, step):
  """A smooth non-quadratic loss whose gradient depends on the step."""
  total = 0.0
  for i, leaf in enumerate(jax.tree.leaves(params)):
    x = leaf.astype(jnp.float32)
    phase = jnp.sin(0.3 * step + i + jnp.arange(x.size, dtype=jnp.float32).reshape(x.shape))
    total = total + jnp.sum(jnp.log(jnp.cosh(x - phase))) + 0.05 * jnp.sum(x ** 4)
  return total


def run(tx, params, n_steps, grad_fn=None):
  """Applies `tx` for `n_steps` jitted steps; returns the params trajectory."""
  grad_fn = grad_fn or jax.grad(loss_fn)

  @jax.jit
  def step(params, state, t):
    g = grad_fn(params, t)
    u, state = tx.update(g, state, params)
    return optax.apply_updates(params, u), state

  state = tx.init(params)
  traj = []
  for t in range(n_steps):
    params, state = step(params, state, jnp.float32(t))
    traj.append(params)
  return traj, state


def assert_trees_close(a, b, rtol=1e-5, atol=1e-6):
  jax.tree.map(lambda x, y: np.testing.assert_allclose(
      np.asarray(x, np.float64), np.asarray(y, np.float64), rtol=rtol, atol=atol), a, b)
  assert jax.tree.structure(a) == jax.tree.structure(b)


def count_traces(tx, params):
  """Number of traces of a jitted update after two calls."""
  n = [0]

  @jax.jit
  def step(params, state):
    n[0] += 1
    g = jax.tree.map(jnp.ones_like, params)
    u, state = tx.update(g, state, params)
    return optax.apply_updates(params, u), state

  state = tx.init(params)
  params, state = step(params, state)
  params, state = step(params, state)
  return n[0]
