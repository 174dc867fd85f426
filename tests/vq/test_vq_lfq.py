"""lfq: sign codes, bit indices, and the entropy terms against a brute-force NumPy reference."""
import itertools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxblog import vq

lfq = jax.jit(vq.lfq, static_argnames=("entropy", "axis_name"))


def np_entropy_terms(z, tau, mask=None):
  """Soft assignment over every code of {-1, 1}^d, enumerated explicitly."""
  d = z.shape[-1]
  codes = np.asarray(list(itertools.product([-1.0, 1.0], repeat=d)))
  flat = z.reshape(-1, d).astype(np.float64)
  if mask is not None:
    flat = flat[mask.reshape(-1)]
  logits = -((flat[:, None, :] - codes[None]) ** 2).sum(-1) / tau
  logits -= logits.max(-1, keepdims=True)
  p = np.exp(logits)
  p /= p.sum(-1, keepdims=True)
  h = lambda q: -(np.where(q > 0, q * np.log(np.where(q > 0, q, 1)), 0)).sum(-1)
  per_sample = h(p).mean()
  codebook = h(p.mean(0))
  bit_p = 1 / (1 + np.exp(-4 * flat / tau))
  mean_bits = bit_p.mean(0)
  factorized = h(np.stack([mean_bits, 1 - mean_bits], -1)).sum()
  return per_sample, codebook, factorized


@pytest.mark.parametrize("d", [1, 3, 6])
def test_index_round_trip(d):
  idx = jnp.arange(2 ** d)
  codes = jax.jit(vq.lfq_indices_to_codes, static_argnums=1)(idx, d)
  assert set(np.unique(np.asarray(codes))) == {-1.0, 1.0}
  np.testing.assert_array_equal(jax.jit(vq.lfq_codes_to_indices)(codes), idx)
  z = jax.random.normal(jax.random.key(d), (4, 5, d))
  res = lfq(z)
  np.testing.assert_array_equal(res.quantized, np.where(np.asarray(z) > 0, 1.0, -1.0))
  np.testing.assert_array_equal(vq.lfq_indices_to_codes(res.indices, d), res.quantized)


@pytest.mark.parametrize("tau", [0.5, 2.0])
def test_entropy_terms_match_brute_force(tau):
  z = jax.random.normal(jax.random.key(0), (6, 5, 4)) * 0.7
  exact = lfq(z, temperature=tau)
  fact = lfq(z, temperature=tau, entropy="factorized")
  per_sample, codebook, factorized = np_entropy_terms(np.asarray(z), tau)
  np.testing.assert_allclose(exact.per_sample_entropy, per_sample, rtol=1e-5)
  np.testing.assert_allclose(fact.per_sample_entropy, per_sample, rtol=1e-5)
  np.testing.assert_allclose(exact.codebook_entropy, codebook, rtol=1e-5)
  np.testing.assert_allclose(fact.codebook_entropy, factorized, rtol=1e-5)
  assert float(fact.codebook_entropy) >= float(exact.codebook_entropy) - 1e-5
  zn = np.asarray(z, np.float64)
  commit = ((zn - np.where(zn > 0, 1, -1)) ** 2).mean()
  want = 0.25 * commit + 0.1 * (per_sample - 1.0 * codebook)
  np.testing.assert_allclose(exact.loss, want, rtol=1e-5)
  custom = lfq(z, temperature=tau, commitment_weight=0.5, entropy_weight=2.0,
               diversity_weight=0.3)
  np.testing.assert_allclose(custom.loss, 0.5 * commit + 2.0 * (per_sample - 0.3 * codebook),
                             rtol=1e-5)


def test_usage_perplexity_and_mask():
  z = jax.random.normal(jax.random.key(1), (3, 8, 3))
  mask = jax.random.bernoulli(jax.random.key(2), 0.6, (3, 8))
  res = lfq(z, temperature=1.0, mask=mask)
  valid = np.asarray(z)[np.asarray(mask)]
  only = lfq(jnp.asarray(valid), temperature=1.0)
  for field in ("per_sample_entropy", "codebook_entropy", "perplexity", "usage", "loss"):
    np.testing.assert_allclose(getattr(res, field), getattr(only, field), rtol=1e-5,
                               err_msg=field)
  counts = np.bincount(np.asarray(only.indices), minlength=8)
  np.testing.assert_allclose(res.usage, (counts > 0).mean())
  empty = lfq(z, mask=jnp.zeros((3, 8), bool))
  assert all(np.isfinite(np.asarray(x)).all() for x in empty)


def test_gradients_and_axis_name():
  z = jax.random.normal(jax.random.key(3), (2, 6, 3))
  w = jax.random.normal(jax.random.key(4), (2, 6, 3))
  g = jax.grad(lambda z: jnp.sum(vq.lfq(z).quantized * w))(z)
  np.testing.assert_allclose(g, w, rtol=1e-6)  # straight-through
  for entropy in ("exact", "factorized"):
    g = jax.jit(jax.grad(lambda z: vq.lfq(z, temperature=1.0, entropy=entropy).loss))(z)
    assert np.isfinite(np.asarray(g)).all() and float(jnp.abs(g).max()) > 0
    sharded = jax.vmap(lambda z: vq.lfq(z, temperature=1.0, entropy=entropy, axis_name="b"),
                       axis_name="b")(z)
    whole = lfq(jnp.reshape(z, (12, 3)), temperature=1.0, entropy=entropy)
    np.testing.assert_allclose(sharded.codebook_entropy[0], whole.codebook_entropy, rtol=1e-5)
    np.testing.assert_allclose(sharded.per_sample_entropy[0], whole.per_sample_entropy,
                               rtol=1e-5)
    np.testing.assert_allclose(sharded.usage[0], whole.usage)
  res = lfq(z.astype(jnp.bfloat16))
  assert res.quantized.dtype == jnp.bfloat16


def test_errors():
  with pytest.raises(ValueError, match="entropy"):
    vq.lfq(jnp.zeros((2, 3)), entropy="approx")
  with pytest.raises(ValueError, match="temperature"):
    vq.lfq(jnp.zeros((2, 3)), temperature=0.0)
  with pytest.raises(ValueError, match="d <= 24"):
    vq.lfq(jnp.zeros((2, 25)))
  with pytest.raises(TypeError, match="z"):
    vq.lfq(jnp.zeros((2, 3), jnp.int32))
  with pytest.raises(ValueError, match="mask"):
    vq.lfq(jnp.zeros((2, 3)), mask=jnp.ones((3,), bool))
