"""layer_adaptation: LAMB equivalence, closed form, exclusions, layer_axis.

Reference: https://kexue.fm/archives/7094 (layer adaptation).
"""
import hypothesis.extra.numpy as hnp
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from hypothesis import given, settings, strategies as st

from jaxblog import optim
from tests.optim._util import assert_trees_close, count_traces, make_params, run


def test_derive_with_layer_adaptation_equals_optax_lamb():
  params = make_params()
  ours, _ = run(optim.derive(optax.scale_by_adam(eps=1e-6), 1e-2, weight_decay=0.01,
                             layer_adaptation=True), params, 60)
  ref, _ = run(optax.lamb(1e-2, weight_decay=0.01), params, 60)
  for a, b in zip(ours, ref):
    assert_trees_close(a, b, rtol=2e-5, atol=1e-6)


# Norms are sqrt(sum(x*x)) in float32 (as the reference): entries below ~1e-19
# square to zero and count as a zero update, so keep magnitudes >= 1e-6 or 0.
_ELEMENTS = st.floats(-3, 3, width=32).map(lambda x: 0.0 if abs(x) < 1e-6 else x)


@settings(max_examples=25, deadline=None)
@given(hnp.arrays(np.float32, (3, 4), elements=_ELEMENTS),
       hnp.arrays(np.float32, (3, 4), elements=_ELEMENTS))
def test_closed_form_per_leaf(p, u):
  tx = optim.layer_adaptation()
  out, _ = tx.update({"w": jnp.asarray(u)}, tx.init(None), {"w": jnp.asarray(p)})
  pn, un = np.linalg.norm(p.astype(np.float64)), np.linalg.norm(u.astype(np.float64))
  expect = u * (pn / un) if pn > 0 and un > 0 else u
  np.testing.assert_allclose(out["w"], expect, rtol=1e-5, atol=1e-6)


def test_zero_norms_and_exclusion_give_ratio_one():
  tx = optim.layer_adaptation(exclude=("bias",))
  params = {"zero": jnp.zeros(3), "w": jnp.ones(3) * 2, "bias": jnp.ones(3), "nou": jnp.ones(2)}
  upd = {"zero": jnp.ones(3), "w": jnp.ones(3) * 4, "bias": jnp.ones(3) * 5, "nou": jnp.zeros(2)}
  out, _ = jax.jit(tx.update)(upd, tx.init(params), params)
  np.testing.assert_array_equal(out["zero"], 1.0)
  np.testing.assert_allclose(out["w"], 2.0)
  np.testing.assert_array_equal(out["bias"], 5.0)
  np.testing.assert_array_equal(out["nou"], 0.0)
  assert not any(np.isnan(np.asarray(x)).any() for x in jax.tree.leaves(out))


def test_layer_axis_equals_separate_leaves():
  rng = np.random.default_rng(0)
  stacked_p = jnp.asarray(rng.normal(size=(4, 3, 2)), jnp.float32)
  stacked_u = jnp.asarray(rng.normal(size=(4, 3, 2)), jnp.float32)
  stacked_p = stacked_p.at[2].set(0.0)  # one zero layer: ratio 1 there only
  per_layer = optim.layer_adaptation()
  split_p = {str(i): stacked_p[i] for i in range(4)}
  split_u = {str(i): stacked_u[i] for i in range(4)}
  ref, _ = per_layer.update(split_u, per_layer.init(None), split_p)
  for axis_spec in (0, {"^stack": 0}):
    tx = optim.layer_adaptation(layer_axis=axis_spec)
    out, _ = jax.jit(tx.update)({"stack": stacked_u}, tx.init(None), {"stack": stacked_p})
    np.testing.assert_allclose(out["stack"], jnp.stack([ref[str(i)] for i in range(4)]),
                               rtol=1e-6)
  # Stacked along axis 1 instead.
  tx = optim.layer_adaptation(layer_axis=1)
  out, _ = tx.update({"s": stacked_u.transpose(1, 0, 2)}, tx.init(None),
                     {"s": stacked_p.transpose(1, 0, 2)})
  np.testing.assert_allclose(out["s"].transpose(1, 0, 2),
                             jnp.stack([ref[str(i)] for i in range(4)]), rtol=1e-6)
  # A leaf not matched by the mapping gets one ratio.
  tx = optim.layer_adaptation(layer_axis={"^other": 0})
  out, _ = tx.update({"stack": stacked_u}, tx.init(None), {"stack": stacked_p})
  ratio = np.linalg.norm(stacked_p) / np.linalg.norm(stacked_u)
  np.testing.assert_allclose(out["stack"], stacked_u * ratio, rtol=1e-5)


def test_bf16_and_retrace_and_errors():
  params = make_params(dtype=jnp.bfloat16)
  tx = optim.derive(optax.scale_by_adam(), 1e-3, weight_decay=0.01, layer_adaptation=True)
  traj, _ = run(tx, params, 2)
  assert all(x.dtype == jnp.bfloat16 for x in jax.tree.leaves(traj[-1]))
  assert count_traces(tx, params) == 1
  with pytest.raises(ValueError, match="layer_axis=3 is out of range"):
    tx = optim.layer_adaptation(layer_axis=3)
    tx.update({"a": jnp.ones((2, 2))}, tx.init(None), {"a": jnp.ones((2, 2))})
  with pytest.raises(ValueError, match="invalid regular expression"):
    optim.layer_adaptation(exclude=("*bias",))
