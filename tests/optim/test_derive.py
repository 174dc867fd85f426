"""derive: the documented stacking order and the whole stack under jit."""
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from jaxblog import optim
from tests.optim._util import assert_trees_close, count_traces, make_params, run


def test_schedule_multiplies_learning_rate():
  params = make_params()
  sched = {3: 1.0, 8: 0.2}
  rho = optim.piecewise_linear(sched)
  ours, _ = run(optim.derive(optax.scale_by_adam(), 1e-2, weight_decay=0.01,
                             exclude_from_weight_decay=("bias", "Norm"), lr_schedule=sched),
                params, 12)
  mask = jax.tree_util.tree_map_with_path(
      lambda path, _: not any(k in optim._names.path_name(path) for k in ("bias", "Norm")), params)
  ref_tx = optax.adamw(lambda c: 1e-2 * rho(c), weight_decay=0.01, mask=mask)
  ref, _ = run(ref_tx, params, 12)
  for a, b in zip(ours, ref):
    assert_trees_close(a, b, rtol=1e-6, atol=1e-6)
  assert_trees_close(ours[0], params)  # ρ(0) = 0: first update does not move


def test_order_is_base_wd_la_lr_lazy_lookahead_ema_accum():
  params = make_params()
  tx = optim.derive(optax.scale_by_adam(eps=1e-6), 1e-2, weight_decay=0.01,
                    layer_adaptation=True, lr_schedule={2: 1.0}, grad_accum_steps=2,
                    lookahead=(3, 0.5), lazy=("kernel",), ema=0.9)
  by_hand = optim.accumulate(
      optim.ema(optim.lookahead(optim.lazy(optax.chain(
          optax.scale_by_adam(eps=1e-6), optim.weight_decay(0.01), optim.layer_adaptation(),
          optax.scale_by_learning_rate(lambda c: 1e-2 * optim.piecewise_linear({2: 1.0})(c))),
          include=("kernel",)), 3, 0.5), 0.9), 2)
  ours, s1 = run(tx, params, 14)
  ref, s2 = run(by_hand, params, 14)
  for a, b in zip(ours, ref):
    assert_trees_close(a, b, rtol=1e-6, atol=1e-7)
  assert_trees_close(optim.ema_params(s1), optim.ema_params(s2))
  assert jax.tree.structure(s1) == jax.tree.structure(s2)


def test_full_stack_bf16_arrays_only_and_no_retrace():
  params = make_params(dtype=jnp.bfloat16)
  tx = optim.derive(optax.scale_by_adam(), 1e-3, weight_decay=0.01, layer_adaptation=True,
                    exclude_from_layer_adaptation=("bias",), lr_schedule={5: 1.0},
                    grad_accum_steps=2, lookahead=(2, 0.5), lazy=(".*",), ema=0.99,
                    grad_accum_mode="bert4keras", lazy_freeze_state=True)
  traj, state = run(tx, params, 6)
  assert all(x.dtype == jnp.bfloat16 for x in jax.tree.leaves(traj[-1]))
  assert all(isinstance(x, jax.Array) for x in jax.tree.leaves(state))
  assert not any(np.isnan(np.asarray(x, np.float32)).any() for x in jax.tree.leaves(traj[-1]))
  assert count_traces(tx, params) == 1


def test_errors_surface_at_construction():
  base = optax.scale_by_adam()
  with pytest.raises(ValueError, match="lookahead"):
    optim.derive(base, 1e-3, lookahead=5)
  with pytest.raises(ValueError, match="steps"):
    optim.derive(base, 1e-3, grad_accum_steps=0)
  with pytest.raises(ValueError, match="schedule"):
    optim.derive(base, 1e-3, lr_schedule={-5: 1.0})
  with pytest.raises(ValueError, match="invalid regular expression"):
    optim.derive(base, 1e-3, weight_decay=0.1, exclude_from_weight_decay=("+",))


def test_full_stack_state_checkpoints_with_orbax(tmp_path):
  from jaxblog.training import checkpoint
  params = make_params()
  tx = optim.derive(optax.scale_by_adam(), 1e-2, weight_decay=0.01, grad_accum_steps=2,
                    lookahead=(2, 0.5), lazy=("kernel",), ema=0.9)
  _, state = run(tx, params, 5)
  ckpt = checkpoint.Checkpointer(tmp_path / "ckpt")
  ckpt.save(5, state)
  restored = ckpt.restore(tx.init(params))
  ckpt.close()
  assert jax.tree.structure(restored) == jax.tree.structure(state)
  assert_trees_close(restored, state, rtol=0, atol=0)
  assert_trees_close(optim.ema_params(restored), optim.ema_params(state), rtol=0, atol=0)
