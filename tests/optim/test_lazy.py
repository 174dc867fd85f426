"""lazy: rows with zero gradient untouched; reference vs LazyAdam state.

Reference: https://kexue.fm/archives/7094 (lazy optimization).
"""
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from jaxblog import optim
from tests.optim._util import count_traces, run

V, D, N = 12, 4, 8


def sparse_problem(seed=0):
  rng = np.random.default_rng(seed)
  masks = np.zeros((N, V, 1))
  for t in range(N):
    masks[t, rng.choice(V, size=3, replace=False)] = 1.0
  target = rng.normal(size=(V, D))
  emb = rng.normal(size=(V, D))
  return masks, target, emb


def numpy_lazy_adam(emb, masks, target, lr, freeze, b1=0.9, b2=0.999, eps=1e-8):
  theta = emb.astype(np.float64).copy()
  m = np.zeros_like(theta)
  v = np.zeros_like(theta)
  traj = []
  for t in range(N):
    g = masks[t] * (theta - target)
    row = np.any(g != 0, axis=-1, keepdims=True)
    m_new = b1 * m + (1 - b1) * g
    v_new = b2 * v + (1 - b2) * g ** 2
    if freeze:
      m_new = np.where(row, m_new, m)
      v_new = np.where(row, v_new, v)
    m, v = m_new, v_new
    step = lr * (m / (1 - b1 ** (t + 1))) / (np.sqrt(v / (1 - b2 ** (t + 1))) + eps)
    theta = theta - np.where(row, step, 0.0)
    traj.append((theta.copy(), m.copy()))
  return traj


@pytest.mark.parametrize("freeze", [False, True])
def test_matches_numpy_reference(freeze):
  masks, target, emb = sparse_problem()
  lr = 0.1
  tx = optim.lazy(optax.adam(lr), include=("embedding",), freeze_state=freeze)
  params = {"embedding": jnp.asarray(emb, jnp.float32), "w": jnp.ones(D)}

  def grads(p, t):
    mask = jnp.asarray(masks)[t.astype(jnp.int32)]
    return {"embedding": mask * (p["embedding"] - target), "w": jnp.zeros(D)}

  ours, state = run(tx, params, N, grads)
  ref = numpy_lazy_adam(emb, masks, target, lr, freeze)
  for t in range(N):
    np.testing.assert_allclose(ours[t]["embedding"], ref[t][0], rtol=1e-5, atol=1e-5)
  mu = state[0].mu["embedding"]
  np.testing.assert_allclose(mu, ref[-1][1], rtol=1e-5, atol=1e-7)
  # The two semantics really differ on this problem (moments of unsampled rows).
  other = numpy_lazy_adam(emb, masks, target, lr, not freeze)
  assert np.abs(other[-1][1] - ref[-1][1]).max() > 1e-3
  never = masks[:, :, 0].sum(0) == 0
  assert never.any()
  np.testing.assert_array_equal(ours[-1]["embedding"][never], params["embedding"][never])
  # "w" is not lazy: its gradient is zero, Adam with zero moments leaves it.
  np.testing.assert_array_equal(ours[-1]["w"], 1.0)


def test_rank1_and_scalar_leaves_all_or_nothing():
  tx = optim.lazy(optax.sgd(1.0, momentum=0.9))
  params = {"v": jnp.ones(3), "s": jnp.ones(())}
  state = tx.init(params)
  u, state = tx.update({"v": jnp.array([0.0, 1.0, 0.0]), "s": jnp.ones(())}, state, params)
  np.testing.assert_allclose(u["v"], [0.0, -1.0, 0.0])
  u, state = tx.update({"v": jnp.zeros(3), "s": jnp.zeros(())}, state, params)
  np.testing.assert_array_equal(u["v"], 0.0)  # momentum nonzero, gated
  np.testing.assert_array_equal(u["s"], 0.0)


def test_bf16_no_retrace_and_errors():
  params = {"embedding": jnp.ones((V, D), jnp.bfloat16)}
  for freeze in (False, True):
    tx = optim.lazy(optax.adam(1e-2), freeze_state=freeze)
    traj, _ = run(tx, params, 2, lambda p, t: {"embedding": p["embedding"].at[3:].set(0)})
    assert traj[-1]["embedding"].dtype == jnp.bfloat16
    np.testing.assert_array_equal(np.asarray(traj[-1]["embedding"][3:], np.float32), 1.0)
    assert count_traces(tx, params) == 1
  with pytest.raises(ValueError, match="include"):
    optim.lazy(optax.adam(1e-2), include=("(",))


def test_freeze_state_on_scalar_param_keeps_counter_moving():
  tx = optim.lazy(optax.adam(0.1), freeze_state=True)
  p = jnp.ones(())
  state = tx.init(p)
  _, state = tx.update(jnp.ones(()), state, p)
  mu = state[0].mu
  u, state = tx.update(jnp.zeros(()), state, p)
  assert float(u) == 0.0
  assert float(state[0].mu) == float(mu)  # frozen moment of an untouched scalar
  assert int(state[0].count) == 2  # the counter still advances
