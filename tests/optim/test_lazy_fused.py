"""lazy_adam / scale_by_lazy_adam (fused LazyAdam) == lazy(adam, freeze_state=True).

`lazy(inner, freeze_state=True)` is the general path for any inner
transformation; `lazy_adam` and `derive(scale_by_lazy_adam(...), lazy=...)`
compute the same LazyAdam with the moments selected before the direction.
Both compute the same expressions; only XLA's fusion differs (the general
path recomputes the new moments inside the params update, and fused loops
may contract multiply-adds differently), which moves float32 results by
about one ulp per step. So float32 results are compared to float32
rounding amplified over the coupled steps, bf16 results (and every frozen
row, which is a copy of the old value on both paths) exactly.
"""
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from jaxblog import optim
from tests.optim._util import count_traces

STEPS = 24


def problem(dtype, seed=0):
  """Params with 2-D, 3-D, 1-D, scalar and non-lazy leaves, and sparse-row gradients."""
  rng = np.random.default_rng(seed)
  shapes = {"embedding": (10, 4), "stack/table": (3, 5, 4), "vec": (6,), "scalar": (),
            "dense": (4, 3)}
  params = {k: jnp.asarray(rng.normal(size=s), dtype) for k, s in shapes.items()}
  grads = {}
  for k, s in shapes.items():
    g = rng.normal(size=(STEPS,) + s)
    if len(s) >= 1:
      rows = rng.random((STEPS,) + s[:-1] + (1,)) < 0.35
      rows[3] = False  # a step touching nothing
      rows[5] = True  # a step touching everything
      g = g * rows
    else:
      g = g * (rng.random(STEPS) < 0.5)
    if k == "embedding":
      g[7, 2, 1] = -0.0  # a row with a negative zero and otherwise zeros
      g[7, 2, [0, 2, 3]] = 0.0
    grads[k] = np.asarray(g, np.float32)
  return params, grads


def trajectory(tx, params, grads):
  """Jitted steps (params and state donated); returns the params trajectory and state."""
  def step(params, state, g):
    # Couple the gradient to the params so trajectories could drift apart.
    g = jax.tree.map(lambda g, p: (g * (1.0 + 0.1 * p.astype(jnp.float32))).astype(p.dtype),
                     g, params)
    u, state = tx.update(g, state, params)
    return optax.apply_updates(params, u), state

  step = jax.jit(step, donate_argnums=(0, 1))
  params = jax.tree.map(jnp.copy, params)
  state = tx.init(params)
  traj = []
  for t in range(STEPS):
    params, state = step(params, state, {k: v[t] for k, v in grads.items()})
    traj.append(jax.tree.map(np.asarray, params))
  return traj, jax.tree.map(np.asarray, state)


def assert_same(a, b, exact=True):
  assert jax.tree.structure(a) == jax.tree.structure(b)
  for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)):
    assert x.dtype == y.dtype
    if exact or x.dtype != np.float32:
      np.testing.assert_array_equal(x, y)
    else:
      np.testing.assert_allclose(x, y, rtol=1e-5, atol=1e-5)


INCLUDE = (r"^(embedding|stack|vec|scalar)",)  # "dense" is not lazy


def _schedule(c):
  return 0.05 * optim.piecewise_linear({4: 1.0})(c)


# name -> (fused LazyAdam, the same optimizer for the general lazy wrapper)
PAIRS = {
    "adam": lambda inc: (optim.lazy_adam(0.05, include=inc), optax.adam(0.05)),
    "adam_schedule_eps_root": lambda inc: (
        optim.lazy_adam(lambda c: 0.05 / (1.0 + c), eps_root=1e-8, include=inc),
        optax.adam(lambda c: 0.05 / (1.0 + c), eps_root=1e-8)),
    "adamw": lambda inc: (optim.lazy_adam(0.05, weight_decay=0.1, include=inc),
                          optax.adamw(0.05, weight_decay=0.1)),
    "nadam": lambda inc: (optim.lazy_adam(0.05, b1=0.8, b2=0.99, nesterov=True, include=inc),
                          optax.adam(0.05, b1=0.8, b2=0.99, nesterov=True)),
    "adam_mu_bf16": lambda inc: (optim.lazy_adam(0.05, mu_dtype=jnp.bfloat16, include=inc),
                                 optax.adam(0.05, mu_dtype=jnp.bfloat16)),
    "scale_by_lazy_adam_alone": lambda inc: (
        optim.lazy(optim.scale_by_lazy_adam(eps=1e-6, include=inc), include=inc),
        optax.scale_by_adam(eps=1e-6)),
    "derive_chain": lambda inc: (
        optim.derive(optim.scale_by_lazy_adam(eps=1e-6, include=inc), 0.05,
                     weight_decay=0.01, exclude_from_weight_decay=("vec",),
                     lr_schedule={4: 1.0}, lazy=inc),
        optim.derive(optax.scale_by_adam(eps=1e-6), 0.05, weight_decay=0.01,
                     exclude_from_weight_decay=("vec",), lr_schedule={4: 1.0})),
}


CASES = [(n, jnp.float32) for n in sorted(PAIRS)] + [
    (n, jnp.bfloat16) for n in ("adam", "adam_mu_bf16", "derive_chain", "nadam")]


@pytest.mark.parametrize("name,dtype", CASES)
def test_fused_equals_general_path(name, dtype):
  fast, inner = PAIRS[name](INCLUDE)
  slow = optim.lazy(inner, include=INCLUDE, freeze_state=True)
  params, grads = problem(dtype)
  traj_f, state_f = trajectory(fast, params, grads)
  traj_s, state_s = trajectory(slow, params, grads)
  for a, b in zip(traj_f, traj_s):
    assert_same(a, b, exact=dtype == jnp.bfloat16)
  assert_same(state_f, state_s, exact=dtype == jnp.bfloat16)
  # Sanity: the frozen semantics are really exercised.
  last = traj_f[-1]
  for k in ("embedding", "stack/table"):
    never = ~np.any(grads[k] != 0, axis=(0, -1))
    if never.any():
      np.testing.assert_array_equal(last[k][never], np.asarray(params[k])[never])
  assert last["dense"].dtype == dtype


@pytest.mark.parametrize("name", ["adam", "nadam", "derive_chain"])
def test_fused_all_rows_touched_equals_plain_optax(name):
  rng = np.random.default_rng(1)
  params = {"e": jnp.asarray(rng.normal(size=(8, 5)), jnp.float32),
            "b": jnp.asarray(rng.normal(size=(5,)), jnp.float32)}
  grads = {"e": rng.normal(size=(STEPS, 8, 5)).astype(np.float32),
           "b": rng.normal(size=(STEPS, 5)).astype(np.float32)}
  fast, plain = PAIRS[name]((".*",))
  traj_f, state_f = trajectory(fast, params, grads)
  traj_p, state_p = trajectory(plain, params, grads)
  for a, b in zip(traj_f, traj_p):
    assert_same(a, b, exact=False)
  assert_same(state_f, state_p, exact=False)


def test_nan_row_counts_as_touched_on_both_paths():
  params = {"embedding": jnp.ones((4, 3))}
  g = {"embedding": jnp.zeros((4, 3)).at[1, 2].set(jnp.nan).at[2, 0].set(1.0)}
  outs = []
  for tx in (optim.lazy_adam(0.1), optim.lazy(optax.adam(0.1), freeze_state=True)):
    state = tx.init(params)
    outs.append(jax.jit(tx.update)(g, state, params))
  assert_same(outs[0], outs[1])
  u, state = outs[0]
  assert np.isnan(np.asarray(state[0].mu["embedding"][1])).any()
  np.testing.assert_array_equal(np.asarray(u["embedding"])[[0, 3]], 0.0)


def test_scale_by_lazy_adam_state_is_optax_adam_state_and_no_retrace():
  params = {"embedding": jnp.ones((6, 3)), "w": jnp.ones(3)}
  ours = optim.scale_by_lazy_adam(include="embedding").init(params)
  ref = optax.scale_by_adam().init(params)
  assert type(ours) is type(ref)
  assert jax.tree.structure(ours) == jax.tree.structure(ref)
  assert count_traces(optim.lazy_adam(1e-3, include="embedding"), params) == 1
  with pytest.raises(ValueError, match="include"):
    optim.lazy_adam(1e-3, include=("(",))


def test_fused_path_has_no_state_copies():
  """The donated moments are updated in place: no full-tree XLA temporaries."""
  params = {"embedding": jnp.zeros((4096, 64))}
  g = {"embedding": jnp.ones((4096, 64)).at[::3].set(0.0)}
  leaf_bytes = 4096 * 64 * 4
  temps = {}
  cases = {
      "fused": optim.lazy_adam(1e-3),
      "derive": optim.derive(optim.scale_by_lazy_adam(eps=1e-6, include="embedding"), 1e-3,
                             weight_decay=0.01, lr_schedule={10: 1.0}, lazy=("embedding",)),
      "general": optim.lazy(optax.adam(1e-3), freeze_state=True),
  }
  for name, tx in cases.items():

    def step(p, s, g, tx=tx):
      u, s = tx.update(g, s, p)
      return optax.apply_updates(p, u), s

    compiled = jax.jit(step, donate_argnums=(0, 1)).lower(
        params, tx.init(params), g).compile()
    temps[name] = compiled.memory_analysis().temp_size_in_bytes
  assert temps["fused"] < leaf_bytes // 4, temps
  assert temps["derive"] < leaf_bytes // 4, temps
  assert temps["general"] >= leaf_bytes, temps  # the cost the fused path removes
