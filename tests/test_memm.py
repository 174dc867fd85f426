"""Tests for jaxblog.memm: local normalisation, Bi-MEMM, low rank, lr multiplier."""
import itertools

from hypothesis import given, settings, strategies as st
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from jaxblog import memm

T_PAD = 5
SETTINGS = settings(max_examples=15, deadline=None, derandomize=True)


@jax.jit
def all_directions(em, tags, trans, mask):
  return {(d, avg): memm.log_likelihood(em, tags, trans, mask, direction=d,
                                        average_scores=avg)
          for d in ("l2r", "r2l", "both") for avg in (False, True)}


def log_softmax(x):
  x = np.asarray(x, np.float64)
  top = x.max()
  return x - top - np.log(np.exp(x - top).sum())


def reference(em, tags, trans, mask, average):
  """Left-to-right MEMM log-likelihood, written out per valid position."""
  idx = [t for t in range(len(mask)) if mask[t]]
  total = 0.0
  for n, t in enumerate(idx):
    if n == 0:
      logits = em[t]
    else:
      logits = em[t] + trans[tags[idx[n - 1]]]
      if average:
        logits = logits / 2
    total += log_softmax(logits)[tags[t]]
  return total



def every_path(mask, k):
  """`(tags [3**T_PAD, T_PAD], count)`: the first `count` rows are every tagging of the
  valid positions (a fixed batch, one compile per K; the extra rows are ignored)."""
  idx = [t for t in range(T_PAD) if mask[t]]
  paths = np.array(list(itertools.product(range(k), repeat=len(idx))), np.int32)
  tags = np.zeros((3**T_PAD, T_PAD), np.int32)
  if idx:
    tags[:len(paths), idx] = paths
  return tags, len(paths)


@st.composite
def cases(draw):
  k = draw(st.integers(1, 3))
  mask = np.array(draw(st.lists(st.booleans(), min_size=T_PAD, max_size=T_PAD)))
  rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
  em = (2 * rng.normal(size=(T_PAD, k))).astype(np.float32)
  trans = rng.normal(size=(k, k)).astype(np.float32)
  tags = rng.integers(0, k, T_PAD)
  return em, tags, trans, mask


@SETTINGS
@given(cases())
def test_directions_match_reference(case):
  em, tags, trans, mask = case
  got = all_directions(em, tags, trans, mask)
  for avg in (False, True):
    l2r = reference(em, tags, trans, mask, avg)
    r2l = reference(em[::-1], tags[::-1], trans.T, mask[::-1], avg)
    np.testing.assert_allclose(got["l2r", avg], l2r, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(got["r2l", avg], r2l, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(got["both", avg], (l2r + r2l) / 2, rtol=1e-5, atol=1e-5)


@SETTINGS
@given(cases())
def test_each_direction_is_a_normalised_distribution(case):
  em, _, trans, mask = case
  tags, count = every_path(mask, em.shape[-1])
  batch_em = np.broadcast_to(em, (len(tags),) + em.shape)
  got = all_directions(batch_em, tags, trans, np.broadcast_to(mask, tags.shape))
  for d in ("l2r", "r2l"):
    for avg in (False, True):
      total = np.exp(np.asarray(got[d, avg], np.float64)[:count]).sum()
      np.testing.assert_allclose(total, 1.0, rtol=1e-4)


def test_padding_patterns_agree():
  rng = np.random.default_rng(0)
  em = rng.normal(size=(4, 3)).astype(np.float32)
  trans = rng.normal(size=(3, 3)).astype(np.float32)
  tags = np.array([2, 0, 1, 1])
  want = memm.log_likelihood(em, tags, trans)
  for layout in ([1, 1, 1, 1, 0, 0], [0, 0, 1, 1, 1, 1], [0, 1, 1, 0, 1, 1], [1, 0, 1, 0, 1, 1]):
    mask = np.array(layout, bool)
    em_pad = np.zeros((6, 3), np.float32)
    tags_pad = np.full(6, -100)
    em_pad[mask], tags_pad[mask] = em, tags
    got = memm.log_likelihood(em_pad, tags_pad, trans, mask)
    np.testing.assert_allclose(got, want, rtol=1e-6)


def test_low_rank_matches_dense_and_has_finite_grads():
  rng = np.random.default_rng(1)
  em = rng.normal(size=(3, 6, 5)).astype(np.float32)
  tags = rng.integers(0, 5, (3, 6))
  mask = rng.random((3, 6)) < 0.7
  left, right = (rng.normal(size=(5, 2)).astype(np.float32) for _ in range(2))

  @jax.jit
  def run(left, right):
    low = lambda l, r: memm.log_likelihood(em, tags, (l, r), mask).sum()
    dense = memm.log_likelihood(em, tags, left @ right.T, mask).sum()
    return jax.value_and_grad(low, argnums=(0, 1))(left, right), dense

  (value, grads), dense = run(left, right)
  np.testing.assert_allclose(value, dense, rtol=1e-5)
  assert all(np.all(np.isfinite(g)) for g in grads)


def test_all_invalid_rows_and_half_precision():
  em = jnp.ones((2, 4, 3), jnp.bfloat16)
  trans = jnp.full((3, 3), -jnp.inf).at[:, 0].set(0.0)
  mask = jnp.zeros((2, 4), bool).at[1, 2].set(True)
  tags = jnp.zeros((2, 4), jnp.int32)

  @jax.jit
  def run(e, t):
    fn = lambda e, t: memm.log_likelihood(e, tags, t, mask).sum()
    return memm.log_likelihood(e, tags, t, mask), jax.grad(fn, argnums=(0, 1))(e, t)

  value, grads = run(em, trans)
  assert value.dtype == jnp.float32
  assert float(value[0]) == 0.0
  np.testing.assert_allclose(value[1], -np.log(3.0), rtol=1e-6)
  assert all(np.all(np.isfinite(np.asarray(g, np.float32))) for g in grads)


def test_leading_axes_and_jit_no_retrace():
  traces = []

  @jax.jit
  def f(e, y, t, m):
    traces.append(1)
    return memm.log_likelihood(e, y, t, m)

  rng = np.random.default_rng(2)
  for _ in range(2):
    out = f(rng.normal(size=(2, 3, 5, 4)).astype(np.float32), rng.integers(0, 4, (2, 3, 5)),
            rng.normal(size=(4, 4)).astype(np.float32), rng.random((3, 5)) < 0.6)
  assert out.shape == (2, 3) and len(traces) == 1


def test_bad_inputs_raise():
  em = jnp.zeros((2, 5, 3))
  tags = jnp.zeros((2, 5), jnp.int32)
  trans = jnp.zeros((3, 3))
  with pytest.raises(ValueError, match="direction"):
    memm.log_likelihood(em, tags, trans, direction="up")
  with pytest.raises(ValueError, match="transitions"):
    memm.log_likelihood(em, tags, jnp.zeros((2, 2)))
  with pytest.raises(ValueError, match="share d"):
    memm.log_likelihood(em, tags, (jnp.zeros((3, 2)), jnp.zeros((3, 4))))
  with pytest.raises(ValueError, match="K=3"):
    memm.log_likelihood(em, tags, (jnp.zeros((4, 2)), jnp.zeros((4, 2))))
  with pytest.raises(TypeError, match="tags"):
    memm.log_likelihood(em, tags.astype(jnp.float32), trans)
  with pytest.raises(ValueError, match=r"\[0, K\)"):
    memm.log_likelihood(em, tags.at[1, 1].set(7), trans)
  with pytest.raises(ValueError, match="mask"):
    memm.log_likelihood(em, tags, trans, jnp.ones((2, 6), bool))
  with pytest.raises(ValueError, match="multiplier"):
    memm.lr_multiplier_init(trans, 0.0)


@pytest.mark.parametrize("low_rank", [False, True])
def test_mask_batch_mismatch_names_mask(low_rank):
  """Issue #16: a mask whose batch axes differ from the tags' is named."""
  em = jnp.zeros((2, 5, 3))
  tags = jnp.zeros((2, 5), jnp.int32)
  trans = (jnp.zeros((3, 2)), jnp.zeros((3, 2))) if low_rank else jnp.zeros((3, 3))
  for bad in (jnp.ones((3, 5), bool), jnp.ones((2, 3, 5), bool)):
    with pytest.raises(ValueError, match=r"mask has shape \(.*\).*tags \(2, 5\)"):
      memm.log_likelihood(em, tags, trans, bad)
  with pytest.raises(ValueError, match=r"mask must have shape \[\.\.\., L\] with L=5"):
    memm.log_likelihood(em, tags, trans, jnp.ones((2, 5, 3), bool))
  with pytest.raises(ValueError, match=r"tags has shape \(3, 5\)"):
    memm.log_likelihood(em, jnp.zeros((3, 5), jnp.int32), trans)
  # Broadcastable masks still work, jitted too.
  out = jax.jit(lambda m: memm.log_likelihood(em, tags, trans, m))(jnp.ones((5,), bool))
  assert out.shape == (2,)


def test_lr_multiplier_scales_learning_rate():
  rng = np.random.default_rng(3)
  value = rng.normal(size=(3, 3)).astype(np.float32)
  target = rng.normal(size=(3, 3)).astype(np.float32)
  m = 10.0
  stored = memm.lr_multiplier_init(value, m)
  np.testing.assert_allclose(memm.lr_multiplier_apply(stored, m), value, rtol=1e-6)
  loss = lambda w: jnp.sum((w - target) ** 2)
  for opt, factor in ((optax.sgd(1e-3), m**2), (optax.adam(1e-3), m)):
    g_plain = jax.grad(loss)(value)
    u_plain, _ = opt.update(g_plain, opt.init(value), value)
    g_stored = jax.grad(lambda s: loss(memm.lr_multiplier_apply(s, m)))(stored)
    u_stored, _ = opt.update(g_stored, opt.init(stored), stored)
    effective_step = m * np.asarray(u_stored)
    np.testing.assert_allclose(effective_step, factor * np.asarray(u_plain), rtol=1e-4)


@jax.jit
def all_viterbi(em, trans, mask):
  return {(d, avg): memm.viterbi(em, trans, mask, direction=d, average_scores=avg)
          for d in ("l2r", "r2l", "both") for avg in (False, True)}


@SETTINGS
@given(cases())
def test_viterbi_maximises_the_log_likelihood(case):
  """Against every path of the valid positions (jitted, all directions, both logit forms)."""
  em, _, trans, mask = case
  tags, count = every_path(mask, em.shape[-1])
  every = all_directions(np.broadcast_to(em, (len(tags),) + em.shape), tags, trans,
                         np.broadcast_to(mask, tags.shape))
  decoded = all_viterbi(em, trans, mask)
  for key, (best_tags, best) in decoded.items():
    want = np.asarray(every[key])[:count].max()
    np.testing.assert_allclose(best, want, rtol=1e-5, atol=1e-5)
    again = memm.log_likelihood(em, best_tags, trans, mask, direction=key[0],
                                average_scores=key[1])
    np.testing.assert_allclose(again, best, rtol=1e-6, atol=1e-6)
    assert np.all(np.asarray(best_tags)[~mask] == 0)


def test_viterbi_differs_from_the_unnormalised_decoding():
  """CRF-style decoding of `f + T` is never better, and sometimes worse, by the MEMM's own score."""
  from jaxblog import crf  # pylint: disable=import-outside-toplevel
  rng = np.random.default_rng(3)
  em = (2 * rng.normal(size=(64, 6, 4))).astype(np.float32)
  trans = (2 * rng.normal(size=(4, 4))).astype(np.float32)
  _, best = jax.jit(memm.viterbi, static_argnames="direction")(em, trans, direction="l2r")
  plain, _ = jax.jit(crf.viterbi)(em, trans)
  plain_ll = memm.log_likelihood(em, plain, trans, direction="l2r")
  assert np.all(plain_ll <= best + 1e-5)
  assert np.sum(plain_ll < best - 1e-3) > 0


def test_viterbi_low_rank_leading_axes_and_bad_input():
  rng = np.random.default_rng(1)
  em = rng.normal(size=(2, 3, 5, 4)).astype(np.float32)
  left, right = rng.normal(size=(2, 4, 2)).astype(np.float32)
  mask = rng.random((2, 3, 5)) > 0.3
  tags, score = jax.jit(memm.viterbi)(em, (left, right), mask)
  dense_tags, dense_score = memm.viterbi(em, left @ right.T, mask)
  assert tags.shape == (2, 3, 5) and score.shape == (2, 3)
  np.testing.assert_allclose(score, dense_score, rtol=1e-5, atol=1e-5)
  np.testing.assert_array_equal(tags, dense_tags)
  forbidden = np.where(np.eye(4, dtype=bool)[::-1], -np.inf, 0.0).astype(np.float32)
  forbidden[0] = -np.inf  # tag 0 can be followed by nothing
  got_tags, got = memm.viterbi(em, forbidden, mask)
  assert np.all(np.isfinite(got))
  with pytest.raises(ValueError, match="direction"):
    memm.viterbi(em, left @ right.T, direction="up")
  with pytest.raises(ValueError, match="mask"):
    memm.viterbi(em, left @ right.T, np.ones((4, 5), bool))
