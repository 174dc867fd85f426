"""grouped_quantize == G separate quantize calls; projected_quantize; usage everywhere."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxblog import vq

grouped = jax.jit(vq.grouped_quantize, static_argnames=("groups", "metric", "gradient"))


@pytest.mark.parametrize("shared", [False, True])
@pytest.mark.parametrize("metric", ["euclidean", "cosine"])
def test_grouped_equals_separate_calls(shared, metric):
  g, k, dg = 3, 5, 4
  z = jax.random.normal(jax.random.key(0), (2, 7, g * dg))
  books = jax.random.normal(jax.random.key(1), (k, dg) if shared else (g, k, dg))
  res = grouped(z, books, groups=g if shared else None, metric=metric)
  parts = [vq.quantize(p, books if shared else books[i], metric=metric)
           for i, p in enumerate(jnp.split(z, g, axis=-1))]
  np.testing.assert_allclose(res.quantized, jnp.concatenate([r.quantized for r in parts], -1),
                             rtol=1e-6, atol=1e-6)
  np.testing.assert_array_equal(res.indices, jnp.stack([r.indices for r in parts], -1))
  np.testing.assert_allclose(res.loss, np.mean([float(r.loss) for r in parts]), rtol=1e-5)
  np.testing.assert_allclose(res.perplexity, [float(r.perplexity) for r in parts], rtol=1e-5)
  np.testing.assert_allclose(res.usage, [float(r.usage) for r in parts], rtol=1e-6)
  # Gradients (encoder and codebooks) equal too.
  def ours(z, books):
    r = vq.grouped_quantize(z, books, groups=g if shared else None, metric=metric)
    return r.loss + jnp.sum(r.quantized ** 2)

  def theirs(z, books):
    rs = [vq.quantize(p, books if shared else books[i], metric=metric)
          for i, p in enumerate(jnp.split(z, g, axis=-1))]
    return sum(r.loss for r in rs) / g + sum(jnp.sum(r.quantized ** 2) for r in rs)

  for a, b in zip(jax.grad(ours, (0, 1))(z, books), jax.grad(theirs, (0, 1))(z, books)):
    np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


def test_grouped_mask_and_errors():
  z = jax.random.normal(jax.random.key(2), (4, 6))
  books = jax.random.normal(jax.random.key(3), (2, 3, 3))
  mask = jnp.asarray([True, False, True, True])
  res = grouped(z, books, mask=mask)
  parts = [vq.quantize(p, books[i], mask=mask) for i, p in enumerate(jnp.split(z, 2, -1))]
  np.testing.assert_allclose(res.loss, (parts[0].loss + parts[1].loss) / 2, rtol=1e-6)
  with pytest.raises(ValueError, match="needs `groups`"):
    vq.grouped_quantize(z, books[0])
  with pytest.raises(ValueError, match="groups=3"):
    vq.grouped_quantize(z, books, groups=3)
  with pytest.raises(ValueError, match="split into G"):
    vq.grouped_quantize(z, books[0], groups=3)
  with pytest.raises(ValueError, match="codebooks must have shape"):
    vq.grouped_quantize(z, jnp.zeros((3,)))


def test_projected_quantize_matches_manual():
  rng = jax.random.split(jax.random.key(4), 6)
  z = jax.random.normal(rng[0], (3, 5, 8))
  w_in = jax.random.normal(rng[1], (8, 2))
  w_out = jax.random.normal(rng[2], (2, 8))
  b_in, b_out = jax.random.normal(rng[3], (2,)), jax.random.normal(rng[4], (8,))
  cb = jax.random.normal(rng[5], (6, 2))
  res = jax.jit(vq.projected_quantize)(z, cb, w_in, w_out, b_in=b_in, b_out=b_out)
  h = np.asarray(z, np.float64) @ np.asarray(w_in, np.float64) + np.asarray(b_in)
  idx = ((h[..., None, :] - np.asarray(cb, np.float64)) ** 2).sum(-1).argmin(-1)
  np.testing.assert_array_equal(res.indices, idx)
  want = np.asarray(cb, np.float64)[idx] @ np.asarray(w_out, np.float64) + np.asarray(b_out)
  np.testing.assert_allclose(res.quantized, want, rtol=1e-5, atol=1e-5)
  np.testing.assert_allclose(res.loss, 1.25 * ((h - np.asarray(cb)[idx]) ** 2).mean(), rtol=1e-5)
  grads = jax.grad(lambda *a: jnp.sum(vq.projected_quantize(*a).quantized) +
                   vq.projected_quantize(*a).loss, argnums=(0, 1, 2, 3))(z, cb, w_in, w_out)
  assert all(float(jnp.abs(g).max()) > 0 for g in grads)
  with pytest.raises(ValueError, match="w_in"):
    vq.projected_quantize(z, cb, w_in.T, w_out)
  with pytest.raises(ValueError, match="w_out"):
    vq.projected_quantize(z, cb, w_in, w_out[:, :4])
  with pytest.raises(ValueError, match="b_in"):
    vq.projected_quantize(z, cb, w_in, w_out, b_in=b_out)


def test_usage_in_quantize_and_residual():
  z = jax.random.normal(jax.random.key(5), (40, 3))
  cb = jax.random.normal(jax.random.key(6), (64, 3))
  mask = jnp.arange(40) < 25
  res = jax.jit(vq.quantize)(z, cb, mask=mask)
  used = np.unique(np.asarray(res.indices)[:25])
  np.testing.assert_allclose(res.usage, len(used) / 64)
  books = jax.random.normal(jax.random.key(7), (3, 16, 3))
  rres = jax.jit(vq.residual_quantize)(z, books)
  for s in range(3):
    np.testing.assert_allclose(rres.usage[s], len(np.unique(np.asarray(rres.indices[:, s]))) / 16)
  np.testing.assert_allclose(vq.code_usage(jnp.zeros((2, 5))), [0.0, 0.0])
