"""Tests for crf.entropy, crf.kl, crf.sample, crf.partial_log_likelihood,
the BIOUL scheme and a `jax.export`ed Viterbi decoder.

References are brute-force enumerations over all K**n paths of the valid
positions (float64 NumPy, or jnp for gradients). Shapes are fixed per test so
each jitted function compiles a handful of times.
"""
import itertools

from hypothesis import given, settings, strategies as st
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxblog import crf
from tests.test_crf import T_PAD, brute, chains, log_likelihood_j, logsumexp

SETTINGS = settings(max_examples=12, deadline=None, derandomize=True)

entropy_j = jax.jit(lambda e, t, m, s, n: crf.entropy(e, t, m, start=s, end=n))
kl_j = jax.jit(lambda pe, pt, qe, qt, m, ps, pn, qs, qn: crf.kl(
    pe, pt, qe, qt, m, p_start=ps, p_end=pn, q_start=qs, q_end=qn))
partial_j = jax.jit(lambda e, a, t, m, s, n, p: crf.partial_log_likelihood(
    e, a, t, m, start=s, end=n, parallel=p), static_argnums=6)


def probabilities(args):
  """Brute-force path probabilities `{path: p}` over the valid positions."""
  idx, paths = brute(*args)
  logz = logsumexp(paths.values())
  return idx, {y: np.exp(s - logz) for y, s in paths.items()}


@SETTINGS
@given(chains())
def test_entropy_matches_brute_force(args):
  idx, probs = probabilities(args)
  want = -sum(p * np.log(p) for p in probs.values() if p > 0) if idx else 0.0
  np.testing.assert_allclose(entropy_j(*args), want, rtol=1e-4, atol=1e-4)


@SETTINGS
@given(chains(), st.integers(0, 2**32 - 1))
def test_kl_matches_brute_force(args, seed):
  em, trans, mask, start, end = args
  rng = np.random.default_rng(seed)
  q = (em + rng.normal(size=em.shape).astype(np.float32),
       trans + rng.normal(size=trans.shape).astype(np.float32),
       mask, start, rng.normal(size=end.shape).astype(np.float32))
  idx, p_probs = probabilities(args)
  _, q_paths = brute(*q)
  q_logz = logsumexp(q_paths.values())
  want = sum(p * (np.log(p) - (q_paths[y] - q_logz)) for y, p in p_probs.items() if p > 0)
  got = kl_j(em, trans, q[0], q[1], mask, start, end, q[3], q[4])
  np.testing.assert_allclose(got, want if idx else 0.0, rtol=1e-4, atol=1e-4)
  self_kl = kl_j(em, trans, em, trans, mask, start, end, start, end)
  np.testing.assert_allclose(self_kl, 0.0, atol=1e-4)


def jnp_brute_entropy(em, trans, mask):
  """Entropy by enumerating every path of a `[L, K]` chain in jnp (for grads)."""
  idx = [t for t in range(len(mask)) if mask[t]]
  k = em.shape[-1]
  paths = np.array(list(itertools.product(range(k), repeat=len(idx))))
  scores = sum(em[t, paths[:, i]] for i, t in enumerate(idx))
  scores = scores + sum(trans[paths[:, i], paths[:, i + 1]] for i in range(len(idx) - 1))
  logp = scores - jax.nn.logsumexp(scores)
  p = jnp.exp(logp)
  return -jnp.sum(jnp.where(p > 0, p * jnp.where(p > 0, logp, 0.0), 0.0))


def test_entropy_and_kl_gradients_match_autodiff_and_stay_finite():
  rng = np.random.default_rng(0)
  n, length, k = 4, 4, 3
  em = rng.normal(size=(n, length, k)).astype(np.float32)
  trans = rng.normal(size=(k, k)).astype(np.float32)
  trans[0, 1] = trans[2, 0] = -np.inf  # constrained
  mask = np.ones((n, length), bool)
  mask[1, :2] = False            # left padding
  mask[2, 1] = mask[2, 3] = False  # gaps
  mask[3] = False                # empty

  q_em = em + 0.5
  q_trans = np.where(np.isfinite(trans), trans * 0.5, -np.inf).astype(np.float32)
  # q forbids a transition p allows: infinite divergence, still no NaN.
  strict = np.where(np.eye(k, dtype=bool), -np.inf, q_trans).astype(np.float32)

  @jax.jit
  def run(e, t, f):
    entropy_grads = jax.grad(lambda e, t: jnp.sum(crf.entropy(e, t, mask)), argnums=(0, 1))
    kl_grads = jax.value_and_grad(
        lambda e, f: jnp.sum(crf.kl(e, t, f, q_trans, mask)), argnums=(0, 1))
    return entropy_grads(e, t), kl_grads(e, f), crf.kl(e, t, f, strict, mask)

  (g_em, g_t), (value, (gp, gq)), infinite = run(em, trans, q_em)
  assert np.all(np.isfinite(g_em)) and np.all(np.isfinite(g_t))
  want_em = np.zeros_like(em)
  want_t = np.zeros_like(trans)
  for row in range(3):
    ge, gt = jax.grad(jnp_brute_entropy, argnums=(0, 1))(
        jnp.asarray(em[row]), jnp.asarray(trans), mask[row])
    want_em[row] = ge
    want_t += np.where(np.isfinite(trans), gt, 0.0)
  np.testing.assert_allclose(g_em, want_em, atol=2e-4)
  np.testing.assert_allclose(g_t, want_t, atol=2e-4)
  assert np.all(g_em[3] == 0)
  # KL gradients: finite with constraints on both sides and an empty row.
  assert np.isfinite(value) and np.all(np.isfinite(gp)) and np.all(np.isfinite(gq))
  assert float(value) >= 0
  assert np.all(np.isposinf(np.asarray(infinite)[:3])) and float(infinite[3]) == 0.0


def test_entropy_kl_batch_axes_bf16_and_empty():
  rng = np.random.default_rng(1)
  em = rng.normal(size=(2, 3, 5, 4)).astype(np.float32)
  trans = rng.normal(size=(4, 4)).astype(np.float32)
  mask = rng.random((3, 5)) < 0.7

  @jax.jit
  def run(e):
    half = crf.entropy(e.astype(jnp.bfloat16), trans.astype(jnp.bfloat16), mask)
    return (crf.entropy(e, trans, mask), jax.vmap(lambda x: crf.entropy(x, trans, mask))(e),
            crf.kl(e, trans, e[0], trans * 2, mask), half)  # q's emissions broadcast

  out, vm, div, half = run(em)
  assert out.shape == (2, 3) and div.shape == (2, 3)
  np.testing.assert_allclose(out, vm, rtol=1e-5)
  assert np.all(np.asarray(div) >= -1e-5)
  assert half.dtype == jnp.float32
  np.testing.assert_allclose(half, out, rtol=0.05, atol=0.05)
  empty = jax.value_and_grad(lambda e: jnp.sum(crf.entropy(e, trans)))(jnp.zeros((2, 0, 4)))
  assert float(empty[0]) == 0.0 and empty[1].shape == (2, 0, 4)


def test_sample_frequencies_match_brute_force():
  """Chi-square goodness of fit over all 27 paths, fixed seed."""
  rng = np.random.default_rng(2)
  k = 3
  em = rng.normal(size=(5, k)).astype(np.float32)
  trans = rng.normal(size=(k, k)).astype(np.float32)
  trans[1, 2] = -np.inf
  start, end = rng.normal(size=k).astype(np.float32), rng.normal(size=k).astype(np.float32)
  mask = np.array([False, True, False, True, True])  # left pad + a gap
  idx, probs = probabilities((em, trans, mask, start, end))
  draws = 20000
  tags = jax.jit(lambda key: crf.sample(key, em, trans, mask, start=start, end=end,
                                        num_samples=draws))(jax.random.key(0))
  tags = np.asarray(tags)
  assert tags.shape == (draws, 5) and np.all(tags[:, ~mask] == 0)
  paths, counts = np.unique(tags[:, idx], axis=0, return_counts=True)
  seen = dict(zip(map(tuple, paths), counts))
  assert all(probs[y] > 0 for y in seen)  # never a forbidden path
  observed = np.array([seen.get(y, 0) for y in probs])
  expected = np.array([draws * p for p in probs.values()])
  keep = expected > 0
  chi2 = np.sum((observed[keep] - expected[keep]) ** 2 / expected[keep])
  # 21 allowed paths (6 use the forbidden 1 -> 2): 20 degrees of freedom,
  # whose 0.999 quantile is 45.3.
  assert keep.sum() == 21 and chi2 < 45.3, chi2


def test_sample_batch_layout_and_determinism():
  rng = np.random.default_rng(3)
  em = rng.normal(size=(2, 3, 4, 5)).astype(np.float32)
  trans = rng.normal(size=(5, 5)).astype(np.float32)
  mask = np.ones((3, 4), bool)
  mask[1] = False
  key = jax.random.key(1)

  @jax.jit
  def run(k, e):
    sharp, _ = crf.viterbi(100 * e, 100 * trans, mask)
    return (crf.sample(k, e, trans, mask, num_samples=6),
            crf.sample(k, 100 * e, 100 * trans, mask, num_samples=3), sharp)

  a, peaked, sharp = run(key, em)
  assert a.shape == (6, 2, 3, 4) and a.dtype == jnp.int32
  np.testing.assert_array_equal(a, run(key, em)[0])  # same key, same draws
  assert np.all(np.asarray(a)[:, :, 1] == 0)
  # Nearly deterministic scores: every sample is the Viterbi path.
  np.testing.assert_array_equal(peaked, np.broadcast_to(sharp, (3,) + sharp.shape))


@SETTINGS
@given(chains(), st.integers(0, 2**32 - 1))
def test_partial_log_likelihood_matches_brute_force(args, seed):
  em, trans, mask, start, end = args
  k = em.shape[-1]
  rng = np.random.default_rng(seed)
  allowed = rng.random((T_PAD, k)) < 0.6
  idx, paths = brute(*args)
  logz = logsumexp(paths.values())
  consistent = [s for y, s in paths.items() if all(allowed[t, j] for t, j in zip(idx, y))]
  want = (logsumexp(consistent) if consistent else -np.inf) - logz if idx else 0.0
  for parallel in (False, True):
    got = partial_j(em, allowed, trans, mask, start, end, parallel)
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-4)
  # One-hot sets: the ordinary log-likelihood.
  tags = rng.integers(0, k, T_PAD)
  one_hot = np.eye(k, dtype=bool)[tags]
  np.testing.assert_allclose(
      partial_j(em, one_hot, trans, mask, start, end, False),
      log_likelihood_j(em, tags, trans, mask, start, end), rtol=1e-5, atol=1e-4)


def test_partial_log_likelihood_gradients_and_edge_cases():
  rng = np.random.default_rng(4)
  n, length, k = 3, 6, 4
  em = rng.normal(size=(n, length, k)).astype(np.float32)
  trans = rng.normal(size=(k, k)).astype(np.float32)
  trans[0, 1] = -np.inf
  allowed = rng.random((n, length, k)) < 0.5
  allowed[..., 2] = True  # at least one tag everywhere
  mask = rng.random((n, length)) < 0.8
  mask[2] = False

  first_empty = allowed.copy()
  first_empty[:, 0] = False

  @jax.jit
  def run(e, t):
    fn = lambda e, t: jnp.sum(crf.partial_log_likelihood(e, allowed, t, mask))
    restricted = crf.marginals(jnp.where(allowed, e, -jnp.inf), t, mask)
    return (jax.value_and_grad(fn, argnums=(0, 1))(e, t),
            restricted - crf.marginals(e, t, mask),
            crf.partial_log_likelihood(e, np.ones_like(allowed), t, mask),
            crf.partial_log_likelihood(e, first_empty, t, np.ones((n, length), bool)),
            crf.partial_log_likelihood(e, allowed[0], t, mask))  # broadcast sets

  (value, (g_em, g_t)), want_em, full, none, shared = run(em, trans)
  assert np.isfinite(value) and np.all(np.isfinite(g_em)) and np.all(np.isfinite(g_t))
  # d/d emissions = restricted marginals - marginals.
  np.testing.assert_allclose(g_em, want_em, atol=1e-5)
  assert np.all(np.asarray(g_em)[2] == 0)
  # All-True sets: log-likelihood 0; an empty set at a valid position: -inf.
  np.testing.assert_allclose(full, 0.0, atol=1e-5)
  assert np.all(np.isneginf(np.asarray(none)))
  assert shared.shape == (n,)


def test_bioul_scheme_mirrors_bioes():
  bioes = ["O", "B-X", "I-X", "E-X", "S-X", "B-Y", "E-Y"]
  bioul = [lab.replace("E-", "L-").replace("S-", "U-") for lab in bioes]
  for got, want in zip(crf.allowed_transitions(bioul, "BIOUL"),
                       crf.allowed_transitions(bioes, "BIOES")):
    np.testing.assert_array_equal(got, want)
  allowed, start, end = crf.allowed_transitions(["O", "B-X", "I-X", "L-X", "U-X"], "BIOUL")
  assert allowed[1, 2] and allowed[1, 3] and allowed[3, 4] and not allowed[0, 3]
  np.testing.assert_array_equal(start, [True, True, False, False, True])
  np.testing.assert_array_equal(end, [True, False, False, True, True])
  with pytest.raises(ValueError, match="BIOUL"):
    crf.allowed_transitions(["O", "E-X"], "BIOUL")


def test_exported_viterbi_with_symbolic_batch():
  export = jax.export
  decode = jax.jit(lambda e, t, m: crf.viterbi(e, t, m))
  batch, = export.symbolic_shape("b")
  exported = export.export(decode)(
      jax.ShapeDtypeStruct((batch, 7, 4), jnp.float32),
      jax.ShapeDtypeStruct((4, 4), jnp.float32),
      jax.ShapeDtypeStruct((batch, 7), jnp.bool_))
  rng = np.random.default_rng(5)
  trans = rng.normal(size=(4, 4)).astype(np.float32)
  for n in (1, 5):
    em = rng.normal(size=(n, 7, 4)).astype(np.float32)
    mask = rng.random((n, 7)) < 0.7
    got_tags, got_best = exported.call(em, trans, mask)
    want_tags, want_best = decode(em, trans, mask)
    np.testing.assert_array_equal(got_tags, want_tags)
    np.testing.assert_allclose(got_best, want_best, rtol=1e-6)


def test_exported_viterbi_serialization_round_trip():
  pytest.importorskip("flatbuffers")
  decode = jax.jit(lambda e, t: crf.viterbi(e, t))
  exported = jax.export.export(decode)(jax.ShapeDtypeStruct((2, 5, 3), jnp.float32),
                                       jax.ShapeDtypeStruct((3, 3), jnp.float32))
  back = jax.export.deserialize(exported.serialize())
  em = np.random.default_rng(6).normal(size=(2, 5, 3)).astype(np.float32)
  trans = np.eye(3, dtype=np.float32)
  np.testing.assert_array_equal(back.call(em, trans)[0], decode(em, trans)[0])


def test_new_functions_bad_inputs_raise():
  em = jnp.zeros((2, 5, 3))
  trans = jnp.zeros((3, 3))
  key = jax.random.key(0)
  with pytest.raises(ValueError, match="num_samples"):
    crf.sample(key, em, trans, num_samples=0)
  with pytest.raises(ValueError, match="mask"):
    crf.sample(key, em, trans, jnp.ones((2, 4), bool))
  with pytest.raises(TypeError, match="allowed"):
    crf.partial_log_likelihood(em, jnp.ones((2, 5, 3)), trans)
  with pytest.raises(ValueError, match="allowed"):
    crf.partial_log_likelihood(em, jnp.ones((2, 5, 4), bool), trans)
  with pytest.raises(ValueError, match="allowed has shape"):
    crf.partial_log_likelihood(em, jnp.ones((3, 5, 3), bool), trans)
  with pytest.raises(ValueError, match="q_emissions"):
    crf.kl(em, trans, jnp.zeros((2, 5, 4)), jnp.zeros((4, 4)))
  with pytest.raises(ValueError, match="p_emissions"):
    crf.kl(jnp.zeros(3), trans, em, trans)
  with pytest.raises(TypeError, match="q_emissions"):
    crf.kl(em, trans, jnp.zeros((2, 5, 3), jnp.int32), trans)
  with pytest.raises(ValueError, match="transitions"):
    crf.entropy(em, jnp.zeros((4, 4)))
  with pytest.raises(ValueError, match="start"):
    crf.kl(em, trans, em, trans, p_start=jnp.zeros(4))
