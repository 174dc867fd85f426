"""derive composes with optax.contrib bases and wrappers (Muon, schedule-free)."""
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from jaxblog import optim
from tests.optim._util import assert_trees_close, count_traces, run

contrib = pytest.importorskip("optax.contrib")


def matrices(seed=0):
  rng = np.random.default_rng(seed)
  return {"w1": jnp.asarray(rng.normal(size=(6, 4)), jnp.float32),
          "w2": jnp.asarray(rng.normal(size=(4, 3)), jnp.float32)}


def muon():
  """Muon's direction on every (2-D) leaf: default dimension numbers per leaf."""
  return contrib.scale_by_muon(weight_dimension_numbers=lambda p: jax.tree.map(
      lambda _: contrib.MuonDimensionNumbers(), p))


@pytest.mark.skipif(not hasattr(contrib, "scale_by_muon"),
                    reason="this optax has no optax.contrib.scale_by_muon")
def test_muon_direction_as_base():
  params = matrices()
  lr, wd = 1e-2, 0.1
  ours, _ = run(optim.derive(muon(), lr, weight_decay=wd), params, 6)
  ref, _ = run(optax.chain(muon(), optax.add_decayed_weights(wd),
                           optax.scale_by_learning_rate(lr)), params, 6)
  for a, b in zip(ours, ref):
    assert_trees_close(a, b, rtol=1e-5, atol=1e-6)
  # The wrappers stack around it: lookahead, EMA, accumulation with skipping.
  tx = optim.derive(muon(), lr, lookahead=(2, 0.5), ema=0.9,
                    grad_accum_steps=2, grad_accum_should_skip=optax.skip_not_finite,
                    lr_schedule={2: 1.0})
  traj, state = run(tx, params, 6)
  assert all(np.isfinite(np.asarray(x)).all() for x in jax.tree.leaves(traj[-1]))
  ref_la, _ = run(optax.MultiSteps(optim.lookahead(optax.chain(
      muon(),
      optax.scale_by_learning_rate(lambda c: lr * optim.piecewise_linear({2: 1.0})(c))), 2, 0.5),
      2).gradient_transformation(), params, 6)
  assert_trees_close(traj[-1], ref_la[-1], rtol=1e-5, atol=1e-6)
  optim.ema_params(state)
  assert count_traces(tx, params) == 1


@pytest.mark.skipif(not (hasattr(contrib, "schedule_free")
                         and hasattr(contrib, "schedule_free_adamw")),
                    reason="this optax has no optax.contrib.schedule_free")
def test_schedule_free_around_a_derived_base():
  params = matrices(1)
  lr, wd = 1e-2, 0.05
  base = optax.scale_by_rms(decay=0.999, eps=1e-8, eps_in_sqrt=False, bias_correction=True)
  ours_tx = contrib.schedule_free(optim.derive(base, lr, weight_decay=wd), lr, b1=0.9)
  ref_tx = contrib.schedule_free_adamw(lr, b1=0.9, weight_decay=wd)
  ours, s1 = run(ours_tx, params, 8)
  ref, s2 = run(ref_tx, params, 8)
  for a, b in zip(ours, ref):
    assert_trees_close(a, b, rtol=1e-5, atol=1e-6)
  assert_trees_close(contrib.schedule_free_eval_params(s1, ours[-1]),
                     contrib.schedule_free_eval_params(s2, ref[-1]), rtol=1e-5, atol=1e-6)
