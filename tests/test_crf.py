"""Tests for jaxblog.crf against brute-force enumeration and pytorch-crf.

Shapes are fixed per test (length L = 5 padded, K in {1, 2, 3}) and only values and
mask bits vary, so each jitted function compiles a handful of times and is
reused across hypothesis examples.
"""
import importlib
import itertools

from hypothesis import given, settings, strategies as st
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxblog import crf

T_PAD = 5
SETTINGS = settings(max_examples=15, deadline=None, derandomize=True)

log_partition_seq = jax.jit(lambda e, t, m, s, n: crf.log_partition(e, t, m, start=s, end=n))
log_partition_par = jax.jit(
    lambda e, t, m, s, n: crf.log_partition(e, t, m, start=s, end=n, parallel=True))
score_j = jax.jit(lambda e, y, t, m, s, n: crf.score(e, y, t, m, start=s, end=n))
marginals_j = jax.jit(lambda e, t, m, s, n: crf.marginals(e, t, m, start=s, end=n))
viterbi_seq = jax.jit(lambda e, t, m, s, n: crf.viterbi(e, t, m, start=s, end=n))
viterbi_par = jax.jit(lambda e, t, m, s, n: crf.viterbi(e, t, m, start=s, end=n, parallel=True))
kbest_j = jax.jit(lambda e, t, m, s, n: crf.kbest_viterbi(e, t, 4, m, start=s, end=n))
log_likelihood_j = jax.jit(
    lambda e, y, t, m, s, n: crf.log_likelihood(e, y, t, m, start=s, end=n))


@jax.jit
def everything(em, tags, trans, mask, start):
  """Loss + gradients (both scans), log Z (tree) and both Viterbis, one compile."""
  out = {}
  for parallel in (False, True):
    fn = lambda e, t: -crf.log_likelihood(e, tags, t, mask, start=start,
                                          parallel=parallel).sum()
    out["loss", parallel] = jax.value_and_grad(fn, argnums=(0, 1))(em, trans)
    out["viterbi", parallel] = crf.viterbi(em, trans, mask, start=start, parallel=parallel)
  return out


def brute(em, trans, mask, start, end):
  """All (path, score) pairs over the valid positions, in float64."""
  em, trans, start, end = (np.asarray(x, np.float64) for x in (em, trans, start, end))
  idx = [t for t in range(len(mask)) if mask[t]]
  if not idx:
    return idx, {(): 0.0}
  out = {}
  for path in itertools.product(range(em.shape[-1]), repeat=len(idx)):
    s = start[path[0]] + end[path[-1]]
    s += sum(em[t, y] for t, y in zip(idx, path))
    s += sum(trans[a, b] for a, b in zip(path, path[1:]))
    out[path] = s
  return idx, out


def logsumexp(values):
  v = np.array(list(values))
  if np.all(v == -np.inf):
    return -np.inf
  top = v.max()
  return top + np.log(np.exp(v - top).sum())


@st.composite
def chains(draw, scale=None):
  k = draw(st.integers(1, 3))
  mask = np.array(draw(st.lists(st.booleans(), min_size=T_PAD, max_size=T_PAD)))
  rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
  s = draw(st.sampled_from([0.1, 1.0, 5.0])) if scale is None else scale
  em = (s * rng.normal(size=(T_PAD, k))).astype(np.float32)
  trans = rng.normal(size=(k, k)).astype(np.float32)
  ends = draw(st.booleans())
  start = rng.normal(size=k).astype(np.float32) if ends else np.zeros(k, np.float32)
  end = rng.normal(size=k).astype(np.float32) if ends else np.zeros(k, np.float32)
  return em, trans, mask, start, end


@SETTINGS
@given(chains())
def test_log_partition_matches_brute_force(args):
  idx, paths = brute(*args)
  want = logsumexp(paths.values()) if idx else 0.0
  np.testing.assert_allclose(log_partition_seq(*args), want, rtol=1e-5, atol=1e-4)
  np.testing.assert_allclose(log_partition_par(*args), want, rtol=1e-5, atol=1e-4)


@SETTINGS
@given(chains(), st.integers(0, 2**32 - 1))
def test_score_and_log_likelihood_match_brute_force(args, seed):
  em, trans, mask, start, end = args
  idx, paths = brute(*args)
  tags = np.random.default_rng(seed).integers(0, em.shape[-1], T_PAD)
  want = paths[tuple(tags[idx])]
  np.testing.assert_allclose(score_j(em, tags, trans, mask, start, end), want,
                             rtol=1e-5, atol=1e-4)
  ll = log_likelihood_j(em, tags, trans, mask, start, end)
  np.testing.assert_allclose(ll, want - (logsumexp(paths.values()) if idx else 0.0),
                             rtol=1e-5, atol=1e-4)
  assert float(ll) <= 1e-5


@SETTINGS
@given(chains())
def test_marginals_match_brute_force(args):
  em, trans, mask, start, end = args
  idx, paths = brute(*args)
  want = np.zeros(em.shape)
  if idx:
    logz = logsumexp(paths.values())
    for path, s in paths.items():
      for t, y in zip(idx, path):
        want[t, y] += np.exp(s - logz)
  got = marginals_j(*args)
  np.testing.assert_allclose(got, want, atol=1e-5)


@SETTINGS
@given(chains())
def test_viterbi_matches_brute_force(args):
  em, trans, mask, start, end = args
  _, paths = brute(*args)
  best = max(paths.values())
  for decode in (viterbi_seq, viterbi_par):
    tags, value = decode(*args)
    np.testing.assert_allclose(value, best, rtol=1e-5, atol=1e-4)
    np.testing.assert_allclose(score_j(em, tags, trans, mask, start, end), best,
                               rtol=1e-5, atol=1e-4)
    assert np.all(np.asarray(tags)[~mask] == 0)


@SETTINGS
@given(chains())
def test_kbest_matches_brute_force(args):
  em, trans, mask, start, end = args
  idx, paths = brute(*args)
  want = sorted(paths.values(), reverse=True)[:4]
  want += [-np.inf] * (4 - len(want))
  tags, values = kbest_j(*args)
  np.testing.assert_allclose(values, want, rtol=1e-5, atol=1e-4)
  found = set()
  for i in range(4):
    if np.isfinite(want[i]):
      got = score_j(em, tags[i], trans, mask, start, end)
      np.testing.assert_allclose(got, want[i], rtol=1e-5, atol=1e-4)
      found.add(tuple(np.asarray(tags[i])[idx]))
  assert len(found) == sum(np.isfinite(want))  # distinct paths


def test_parallel_equals_sequential_long_gappy():
  rng = np.random.default_rng(0)
  em = rng.normal(size=(3, 37, 4)).astype(np.float32) * 3
  trans = rng.normal(size=(4, 4)).astype(np.float32)
  mask = rng.random((3, 37)) < 0.6
  mask[2] = False

  @jax.jit
  def both(e):
    out = []
    for parallel in (False, True):
      fn = lambda x: crf.log_partition(x, trans, mask, parallel=parallel)
      value, grad = jax.value_and_grad(lambda x: fn(x).sum())(e)
      out.append((fn(e), grad, crf.viterbi(e, trans, mask, parallel=parallel)))
    return out

  (a, ga, (ta, va)), (b, gb, (tb, vb)) = both(em)
  np.testing.assert_allclose(a, b, rtol=1e-5)
  assert float(a[2]) == 0.0
  np.testing.assert_allclose(ga, gb, atol=1e-5)
  np.testing.assert_array_equal(ta, tb)
  np.testing.assert_allclose(va, vb, rtol=1e-5)


def test_all_invalid_rows_give_zero_without_nan():
  em = jnp.ones((2, 4, 3))
  trans = jnp.full((3, 3), -jnp.inf).at[0, 0].set(0.0)
  mask = jnp.zeros((2, 4), bool)
  tags = jnp.zeros((2, 4), jnp.int32)

  @jax.jit
  def run(e, t):
    out = []
    for parallel in (False, True):
      fn = lambda e, t: crf.log_likelihood(e, tags, t, mask, parallel=parallel).sum()
      out.append(jax.value_and_grad(fn, argnums=(0, 1))(e, t))
    return out, crf.marginals(e, t, mask), crf.viterbi(e, t, mask)

  results, probs, (tags_out, best) = run(em, trans)
  for val, grads in results:
    assert float(val) == 0.0
    assert all(np.all(np.isfinite(g)) and np.all(g == 0) for g in grads)
  assert np.all(np.asarray(probs) == 0)
  assert np.all(np.asarray(best) == 0) and np.all(np.asarray(tags_out) == 0)


def test_length_one_and_left_padding():
  rng = np.random.default_rng(1)
  em = rng.normal(size=(1, 3)).astype(np.float32)
  trans = rng.normal(size=(3, 3)).astype(np.float32)
  start, end = rng.normal(size=3).astype(np.float32), rng.normal(size=3).astype(np.float32)
  want = logsumexp(em[0] + start + end)
  np.testing.assert_allclose(crf.log_partition(em, trans, start=start, end=end), want, rtol=1e-6)
  # BERT-style: [CLS] off, then tokens, then right padding.
  em2 = rng.normal(size=(6, 3)).astype(np.float32)
  mask = np.array([False, True, True, True, False, False])
  packed = em2[1:4]
  tags = np.array([-100, 2, 0, 1, -100, -100])
  np.testing.assert_allclose(
      crf.log_likelihood(em2, tags, trans, mask, start=start, end=end),
      crf.log_likelihood(packed, tags[1:4], trans, start=start, end=end), rtol=1e-5)


def reference_log_partition(em, trans, mask, start, end):
  """Plain log-space forward recursion: the autodiff reference for gradients."""
  n, length, k = em.shape
  alpha = jnp.zeros((n, k))
  started = jnp.zeros((n,), bool)
  for t in range(length):  # T is small and static in these tests
    moved = jax.nn.logsumexp(alpha[:, :, None] + trans[None], axis=1)
    new = jnp.where(started[:, None], moved, start[None, :]) + em[:, t]
    alpha = jnp.where(mask[:, t, None], new, alpha)
    started = started | mask[:, t]
  out = jax.nn.logsumexp(alpha + end[None, :], axis=1)
  return jnp.where(started, out, 0.0)


def _masks(rng, n, length):
  """Right padding, left padding, gaps, all-invalid and length-1 rows."""
  mask = rng.random((n, length)) < 0.6
  mask[0] = np.arange(length) < length - 2
  mask[1] = np.arange(length) >= 2
  mask[2] = False
  mask[3] = np.arange(length) == 3
  mask[4] = True
  return mask


@pytest.mark.parametrize("constrained", [False, True])
def test_forward_backward_gradient_equals_autodiff(constrained):
  rng = np.random.default_rng(7)
  n, length, k = 7, 6, 4
  em = (2.0 * rng.normal(size=(n, length, k))).astype(np.float32)
  trans = rng.normal(size=(k, k)).astype(np.float32)
  start, end = rng.normal(size=k).astype(np.float32), rng.normal(size=k).astype(np.float32)
  if constrained:  # every tag keeps one allowed predecessor and successor
    trans[rng.random((k, k)) < 0.4] = -np.inf
    np.fill_diagonal(trans, 0.5)
    start[0] = end[1] = -np.inf
  mask = _masks(rng, n, length)
  weights = rng.normal(size=n).astype(np.float32)

  def grads(fn):
    loss = lambda e, t, s, z: jnp.sum(weights * fn(e, t, mask, s, z))
    return jax.jit(jax.value_and_grad(loss, argnums=(0, 1, 2, 3)))(em, trans, start, end)

  got_value, got = grads(lambda e, t, m, s, z: crf.log_partition(e, t, m, start=s, end=z))
  want_value, want = grads(reference_log_partition)
  np.testing.assert_allclose(got_value, want_value, rtol=1e-5)
  for name, a, b in zip(("emissions", "transitions", "start", "end"), got, want):
    assert np.all(np.isfinite(a)), name
    b = np.where(np.isfinite(b), b, 0.0)  # -inf entries: the reference gives 0 or NaN
    np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5, err_msg=name)
  assert np.all(np.asarray(got[0])[~mask] == 0) and np.all(np.asarray(got[0])[2] == 0)


def test_forward_backward_gradient_bf16_vmap_and_empty():
  rng = np.random.default_rng(8)
  em = rng.normal(size=(3, 5, 6, 4)).astype(np.float32)
  trans = rng.normal(size=(4, 4)).astype(np.float32)
  mask = rng.random((3, 5, 6)) < 0.7
  tags = rng.integers(0, 4, (3, 5, 6))

  @jax.jit
  def run(e, t):
    loss = lambda e, t: -jnp.sum(crf.log_likelihood(e, tags, t, mask))
    batched = jax.value_and_grad(loss, argnums=(0, 1))(e, t)
    mapped = jax.grad(lambda e, t: -jnp.sum(jax.vmap(
        lambda x, y, m: crf.log_likelihood(x, y, t, m))(e, tags, mask)), argnums=(0, 1))(e, t)
    return batched, mapped

  (value, (g_em, g_t)), (v_em, v_t) = run(em, trans)
  np.testing.assert_allclose(g_em, v_em, rtol=1e-5, atol=1e-6)
  np.testing.assert_allclose(g_t, v_t, rtol=1e-5, atol=1e-5)
  (_, (b_em, b_t)), _ = run(jnp.asarray(em, jnp.bfloat16), jnp.asarray(trans, jnp.bfloat16))
  assert b_em.dtype == jnp.bfloat16 and b_t.dtype == jnp.bfloat16
  want = jax.jit(jax.grad(lambda e, t: -jnp.sum(crf.log_likelihood(e, tags, t, mask)), argnums=(0, 1)))(
      np.asarray(jnp.asarray(em, jnp.bfloat16), np.float32),
      np.asarray(jnp.asarray(trans, jnp.bfloat16), np.float32))
  np.testing.assert_allclose(np.asarray(b_em, np.float32), want[0], rtol=0.02, atol=0.02)
  # T = 0: no valid position anywhere, value and gradients 0.
  empty = jax.value_and_grad(lambda e: jnp.sum(crf.log_partition(e, trans)))(jnp.zeros((2, 0, 4)))
  assert float(empty[0]) == 0.0 and empty[1].shape == (2, 0, 4)


@pytest.mark.parametrize("k", [33, 130])  # [N, K] layout tree; reduce fallback
def test_viterbi_many_tags_equals_parallel(k):
  rng = np.random.default_rng(9)
  n, length = 5, 6
  em = rng.normal(size=(n, length, k)).astype(np.float32)
  em[0] = np.round(em[0])  # ties: both decoders take the lowest index
  trans = rng.normal(size=(k, k)).astype(np.float32)
  trans[rng.random((k, k)) < 0.3] = -np.inf
  mask = _masks(rng, n, length)
  start = rng.normal(size=k).astype(np.float32)

  @jax.jit
  def both(e, t):
    return [crf.viterbi(e, t, mask, start=start, parallel=p) for p in (False, True)]

  (tags, best), (ptags, pbest) = both(em, trans)
  np.testing.assert_array_equal(tags, ptags)
  np.testing.assert_allclose(best, pbest, rtol=1e-6)
  np.testing.assert_allclose(crf.score(em, tags, trans, mask, start=start), best, rtol=1e-5)
  (tags0, _), (ptags0, _) = both(np.zeros_like(em), np.zeros_like(trans))  # all ties
  np.testing.assert_array_equal(tags0, ptags0)


LABELS_BIO = ["O", "B-PER", "I-PER", "B-LOC", "I-LOC"]


def test_allowed_transitions_bio():
  allowed, start, end = crf.allowed_transitions(LABELS_BIO, "BIO")
  assert allowed[1, 2] and allowed[2, 2] and not allowed[0, 2] and not allowed[1, 4]
  assert allowed[2, 3] and allowed[4, 0] and not allowed[3, 2]
  np.testing.assert_array_equal(start, [True, True, False, True, False])
  assert end.all()


def test_allowed_transitions_bioes_and_bmes():
  labels = ["O", "B-X", "I-X", "E-X", "S-X"]
  allowed, start, end = crf.allowed_transitions(labels, "BIOES")
  assert allowed[1, 2] and allowed[1, 3] and not allowed[1, 0] and not allowed[1, 4]
  assert allowed[3, 0] and allowed[3, 1] and allowed[4, 4] and not allowed[0, 3]
  np.testing.assert_array_equal(start, [True, True, False, False, True])
  np.testing.assert_array_equal(end, [True, False, False, True, True])
  allowed, start, end = crf.allowed_transitions(["B", "M", "E", "S"], "BMES")
  want = np.array([[0, 1, 1, 0], [0, 1, 1, 0], [1, 0, 0, 1], [1, 0, 0, 1]], bool)
  np.testing.assert_array_equal(allowed, want)
  np.testing.assert_array_equal(start, [True, False, False, True])
  np.testing.assert_array_equal(end, [False, False, True, True])


# A finite "large negative" only forbids paths when it dominates the scores.
@pytest.mark.parametrize("value,scale", [(-jnp.inf, 1.0), (-jnp.inf, 1e4), (-1e4, 1.0)])
def test_constrained_no_nan_and_viterbi_respects_constraints(value, scale):
  allowed, start_ok, end_ok = crf.allowed_transitions(LABELS_BIO, "BIO")
  rng = np.random.default_rng(2)
  trans = crf.constrain(rng.normal(size=(5, 5)).astype(np.float32), allowed, value)
  start = crf.constrain(np.zeros(5, np.float32), start_ok, value)
  em = (scale * rng.normal(size=(8, 7, 5))).astype(np.float32)
  em[:, :, 2] += scale  # push towards I-PER, often forbidden
  mask = rng.random((8, 7)) < 0.8
  tags = np.zeros((8, 7), np.int32)  # all-O is always allowed

  res = everything(em, tags, trans, mask, start)
  val, grads = res["loss", False]
  assert np.isfinite(val) and all(np.all(np.isfinite(g)) for g in grads)
  val, grads = res["loss", True]
  finite = np.isfinite if scale == 1.0 else (lambda x: ~np.isnan(x))
  assert finite(val) and all(np.all(finite(g)) for g in grads)
  for parallel in (False, True):
    out, best = res["viterbi", parallel]
    assert np.all(np.isfinite(best))
    for row, m in zip(np.asarray(out), mask):
      path = row[m]
      if len(path):
        assert start_ok[path[0]]
        assert all(allowed[a, b] for a, b in zip(path, path[1:]))


def test_half_precision_inputs_compute_in_float32():
  rng = np.random.default_rng(3)
  em = rng.normal(size=(2, 6, 4)).astype(np.float32)
  trans = rng.normal(size=(4, 4)).astype(np.float32)
  tags = rng.integers(0, 4, (2, 6))
  ll = jax.jit(crf.log_likelihood)
  ref = ll(em, tags, trans)
  for dtype in (jnp.bfloat16, jnp.float16):
    e16, t16 = jnp.asarray(em, dtype), jnp.asarray(trans, dtype)
    got = ll(e16, tags, t16)
    assert got.dtype == jnp.float32
    want = ll(np.asarray(e16, np.float32), tags, np.asarray(t16, np.float32))
    np.testing.assert_allclose(got, want, rtol=1e-5)
    np.testing.assert_allclose(got, ref, rtol=0.05)


def test_large_magnitudes_stay_finite():
  # Probability-space recursions are exact only while one step's scores span
  # less than ~80 nats; beyond that they must still be finite (documented).
  rng = np.random.default_rng(4)
  em = (1e4 * rng.normal(size=(4, 4, 3))).astype(np.float32)
  trans = (1e4 * rng.normal(size=(3, 3))).astype(np.float32)
  tags = rng.integers(0, 3, (4, 4))
  mask = np.ones((4, 4), bool)
  res = everything(em, tags, trans, mask, np.zeros(3, np.float32))
  val, grads = res["loss", False]
  assert np.isfinite(val) and all(np.all(np.isfinite(g)) for g in grads)
  # The tree's matrix products lose more range: no NaN, but may reach inf.
  val, grads = res["loss", True]
  assert not np.isnan(val) and not any(np.any(np.isnan(g)) for g in grads)
  _, best = res["viterbi", False]  # max-plus is exact at any magnitude
  zeros = np.zeros(3, np.float32)
  for row in range(4):
    _, paths = brute(em[row], trans, np.ones(4, bool), zeros, zeros)
    np.testing.assert_allclose(best[row], max(paths.values()), rtol=1e-6)


def test_leading_batch_axes_broadcast_and_vmap():
  rng = np.random.default_rng(5)
  em = rng.normal(size=(2, 3, 5, 4)).astype(np.float32)
  trans = rng.normal(size=(4, 4)).astype(np.float32)
  mask = rng.random((3, 5)) < 0.7  # broadcasts over the first axis

  @jax.jit
  def run(em):
    flat = crf.log_partition(em.reshape(6, 5, 4), trans, jnp.tile(mask, (2, 1)))
    vm = jax.vmap(lambda e: crf.log_partition(e, trans, mask))(em)
    return (crf.log_partition(em, trans, mask), flat, vm, crf.viterbi(em, trans, mask),
            crf.kbest_viterbi(em, trans, 3, mask))

  got, flat, vm, (tags, best), (ktags, kscores) = run(em)
  assert got.shape == (2, 3)
  np.testing.assert_allclose(got.reshape(6), flat, rtol=1e-6)
  np.testing.assert_allclose(vm, got, rtol=1e-6)
  assert tags.shape == (2, 3, 5) and best.shape == (2, 3)
  assert ktags.shape == (2, 3, 3, 5) and kscores.shape == (2, 3, 3)
  np.testing.assert_allclose(kscores[..., 0], best, rtol=1e-6)


def test_bad_inputs_raise():
  em = jnp.zeros((2, 5, 3))
  trans = jnp.zeros((3, 3))
  tags = jnp.zeros((2, 5), jnp.int32)
  with pytest.raises(ValueError, match="transitions"):
    crf.log_partition(em, jnp.zeros((4, 4)))
  with pytest.raises(ValueError, match="mask"):
    crf.log_partition(em, trans, jnp.ones((2, 4), bool))
  with pytest.raises(TypeError, match="mask"):
    crf.log_partition(em, trans, jnp.ones((2, 5)))
  with pytest.raises(TypeError, match="tags"):
    crf.score(em, tags.astype(jnp.float32), trans)
  with pytest.raises(ValueError, match=r"\[0, K\)"):
    crf.log_likelihood(em, tags.at[0, 1].set(3), trans)
  # Padding positions may hold any value.
  crf.log_likelihood(em, tags.at[0, 4].set(-100), trans,
                     jnp.ones((2, 5), bool).at[0, 4].set(False))
  with pytest.raises(ValueError, match="tags"):
    crf.score(em, jnp.zeros((2, 4), jnp.int32), trans)
  with pytest.raises(ValueError, match="start"):
    crf.log_partition(em, trans, start=jnp.zeros(4))
  with pytest.raises(ValueError, match="emissions"):
    crf.log_partition(jnp.zeros(3), trans)
  with pytest.raises(TypeError, match="emissions"):
    crf.log_partition(jnp.zeros((2, 5, 3), jnp.int32), trans)
  with pytest.raises(ValueError, match="k must"):
    crf.kbest_viterbi(em, trans, 0)
  with pytest.raises(ValueError, match="scheme"):
    crf.allowed_transitions(["O"], "IOB9")
  with pytest.raises(ValueError, match="label"):
    crf.allowed_transitions(["O", "X-PER"], "BIO")
  # A mask whose batch axes do not broadcast with the tags is named as such.
  with pytest.raises(ValueError, match=r"mask has shape \(3, 5\)"):
    crf.log_likelihood(em, tags, trans, jnp.ones((3, 5), bool))


def test_jit_does_not_retrace():
  traces = []

  @jax.jit
  def f(e, y, t, m):
    traces.append(1)
    return crf.log_likelihood(e, y, t, m), crf.viterbi(e, t, m)

  rng = np.random.default_rng(6)
  for _ in range(3):
    e = rng.normal(size=(2, 5, 3)).astype(np.float32)
    f(e, rng.integers(0, 3, (2, 5)), np.eye(3, dtype=np.float32), rng.random((2, 5)) < 0.5)
  assert len(traces) == 1


def test_parity_with_pytorch_crf():
  torch = pytest.importorskip("torch")
  torchcrf = pytest.importorskip("torchcrf")
  torch.manual_seed(0)
  b, t, k = 4, 7, 5
  layer = torchcrf.CRF(k, batch_first=True)
  em = torch.randn(b, t, k)
  tags = torch.randint(0, k, (b, t))
  lengths = torch.tensor([7, 5, 1, 3])
  mask = torch.arange(t)[None, :] < lengths[:, None]
  with torch.no_grad():
    want = layer(em, tags, mask, reduction="none").numpy()
    want_paths = layer.decode(em, mask)
  params = dict(start=layer.start_transitions.detach().numpy(),
                end=layer.end_transitions.detach().numpy())
  trans = layer.transitions.detach().numpy()
  got = crf.log_likelihood(em.numpy(), tags.numpy(), trans, mask.numpy(), **params)
  np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)
  paths, _ = crf.viterbi(em.numpy(), trans, mask.numpy(), **params)
  for row, n, ref in zip(np.asarray(paths), lengths.numpy(), want_paths):
    assert list(row[:n]) == ref


@pytest.mark.parametrize("count", [1, 2, 7, 8, 9, 20, 33, 64])
def test_chained_max_equals_max(count):
  viterbi_module = importlib.import_module("jaxblog.crf.viterbi")  # the package exports the function
  rng = np.random.default_rng(count)
  values = np.round(rng.normal(size=(count, 3, 5)), 1).astype(np.float32)
  values[rng.random(values.shape) < 0.2] = -np.inf
  got = jax.jit(lambda v: viterbi_module._chained_max(list(v)))(values)
  np.testing.assert_array_equal(np.asarray(got), values.max(axis=0))
