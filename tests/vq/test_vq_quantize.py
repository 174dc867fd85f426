"""`quantize`, `straight_through`, `rotation_trick`, `residual_quantize`."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxblog import vq

# Jitted once per static configuration: the tests run compiled code, not op-by-op.
nearest = jax.jit(vq.nearest, static_argnames=("metric", "chunk_size"))
quantize = jax.jit(vq.quantize, static_argnames=("metric", "gradient", "chunk_size", "axis_name"))
ema_update = jax.jit(vq.ema_update, static_argnames=("decay", "eps", "axis_name"))
residual_quantize = jax.jit(vq.residual_quantize, static_argnames=("axis_name",))


def np_perplexity(idx, k):
  p = np.bincount(np.ravel(idx), minlength=k) / np.size(idx)
  p = p[p > 0]
  return np.exp(-(p * np.log(p)).sum())


def _data(seed=0, shape=(4, 6, 6, 8), k=16):
  z = jax.random.normal(jax.random.key(seed), shape)
  cb = jax.random.normal(jax.random.key(seed + 1), (k, shape[-1]))
  return z, cb


def test_quantize_matches_numpy():
  z, cb = _data()
  res = jax.jit(vq.quantize)(z, cb)
  zn, cn = np.asarray(z, np.float64), np.asarray(cb, np.float64)
  idx = ((zn[..., None, :] - cn) ** 2).sum(-1).argmin(-1)
  np.testing.assert_array_equal(res.indices, idx)
  np.testing.assert_allclose(res.quantized, cn[idx], rtol=1e-6, atol=1e-6)
  mse = ((zn - cn[idx]) ** 2).mean()
  np.testing.assert_allclose(res.loss, 1.25 * mse, rtol=1e-5)
  np.testing.assert_allclose(res.perplexity, np_perplexity(idx, 16), rtol=1e-5)
  res2 = quantize(z, cb, commitment_weight=0.5, codebook_weight=2.0)
  np.testing.assert_allclose(res2.loss, 2.5 * mse, rtol=1e-5)


def test_loss_gradients_split_as_in_the_article():
  z, cb = _data(shape=(5, 8), k=6)
  beta, gamma = 1.5, 0.3
  loss = lambda z, cb: quantize(z, cb, commitment_weight=gamma, codebook_weight=beta).loss
  gz, gcb = jax.grad(loss, argnums=(0, 1))(z, cb)
  idx = np.asarray(nearest(z, cb))
  diff = np.asarray(z) - np.asarray(cb)[idx]
  np.testing.assert_allclose(gz, gamma * 2 * diff / diff.size, rtol=1e-5, atol=1e-7)
  want_cb = np.zeros(cb.shape)
  np.add.at(want_cb, idx, -beta * 2 * diff / diff.size)
  np.testing.assert_allclose(gcb, want_cb, rtol=1e-5, atol=1e-7)


def test_straight_through_value_and_identity_gradient():
  x = jnp.arange(6.0).reshape(2, 3)
  y = jnp.sin(x) * 10
  np.testing.assert_allclose(vq.straight_through(x, y), y, rtol=1e-6)
  w = jnp.cos(x)
  g = jax.grad(lambda x, y: jnp.sum(vq.straight_through(x, y) * w), argnums=(0, 1))(x, y)
  np.testing.assert_allclose(g[0], w, rtol=1e-6)
  np.testing.assert_allclose(g[1], 0.0)
  # quantize: decoder gradient reaches z unchanged, and not the codebook.
  z, cb = _data(shape=(3, 4), k=5)
  w = jax.random.normal(jax.random.key(9), (3, 4))
  gz, gcb = jax.grad(lambda z, cb: jnp.sum(quantize(z, cb).quantized * w), (0, 1))(z, cb)
  np.testing.assert_allclose(gz, w, rtol=1e-6)
  np.testing.assert_allclose(gcb, 0.0)
  with pytest.raises(ValueError, match="same shape"):
    vq.straight_through(x, y[0])


def test_rotation_trick_value_and_jacobian():
  key = jax.random.key(3)
  jac_fn = jax.jit(jax.jacobian(vq.rotation_trick))
  for i in range(5):
    z, q = jax.random.normal(jax.random.fold_in(key, i), (2, 7))
    out = vq.rotation_trick(z, q)
    np.testing.assert_allclose(out, q, rtol=1e-5, atol=1e-6)
    jac = np.asarray(jac_fn(z, q), np.float64)
    lam = np.linalg.norm(q) / np.linalg.norm(z)
    rot = jac / lam
    np.testing.assert_allclose(rot.T @ rot, np.eye(7), atol=1e-5)  # orthogonal
    np.testing.assert_allclose(np.linalg.det(rot), 1.0, atol=1e-4)  # a rotation
    np.testing.assert_allclose(jac @ np.asarray(z), q, rtol=1e-4, atol=1e-5)  # maps z to q
    # vectors orthogonal to span(z, q) are only scaled
    u = np.linalg.svd(np.stack([z, q]))[2][2]
    np.testing.assert_allclose(jac @ u, lam * u, atol=1e-5)
  z = jnp.asarray([[1.0, 0.0], [0.0, 0.0]])
  out = jax.jacobian(lambda z: vq.rotation_trick(z, jnp.asarray([[-2.0, 0.0], [1.0, 1.0]])))(z)
  assert np.isfinite(np.asarray(out)).all()


def test_quantize_rotation_gradient_and_cosine():
  z, cb = _data(shape=(10, 4), k=7)
  res = quantize(z, cb, gradient="rotation")
  np.testing.assert_allclose(res.quantized, quantize(z, cb).quantized, rtol=1e-5, atol=1e-6)
  g = jax.grad(lambda z: jnp.sum(quantize(z, cb, gradient="rotation").quantized))(z)
  assert not np.allclose(g, 1.0)
  cos = jax.jit(lambda z, cb: quantize(z, cb, metric="cosine"))(z, cb)
  zn = np.asarray(z) / np.linalg.norm(z, axis=-1, keepdims=True)
  cn = np.asarray(cb) / np.linalg.norm(cb, axis=-1, keepdims=True)
  idx = np.argmax(zn @ cn.T, -1)
  np.testing.assert_array_equal(cos.indices, idx)
  np.testing.assert_allclose(cos.quantized, cn[idx], rtol=1e-5, atol=1e-6)
  np.testing.assert_allclose(cos.loss, 1.25 * ((zn - cn[idx]) ** 2).mean(), rtol=1e-4)


def test_mask_excludes_rows_and_bf16():
  z, cb = _data(shape=(6, 4), k=5)
  mask = jnp.asarray([True, False, True, True, False, True])
  res = quantize(z, cb, mask=mask)
  sub = quantize(z[np.asarray(mask)], cb)
  np.testing.assert_allclose(res.loss, sub.loss, rtol=1e-6)
  np.testing.assert_allclose(res.perplexity, sub.perplexity, rtol=1e-6)
  empty = quantize(z, cb, mask=jnp.zeros(6, bool))
  assert np.isfinite(empty.loss) and float(empty.perplexity) == 1.0
  rb = quantize(z.astype(jnp.bfloat16), cb)
  assert rb.quantized.dtype == jnp.bfloat16 and rb.loss.dtype == jnp.float32


def test_quantize_errors():
  z, cb = _data(shape=(3, 4), k=5)
  with pytest.raises(ValueError, match="z feature dimension"):
    quantize(z, cb[:, :3])
  with pytest.raises(ValueError, match="gradient"):
    quantize(z, cb, gradient="gumbel")
  with pytest.raises(ValueError, match="mask"):
    quantize(z, cb, mask=jnp.ones((4,), bool))
  with pytest.raises(TypeError, match="mask"):
    quantize(z, cb, mask=jnp.ones((3,)))


def test_residual_quantize_matches_sequential_stages():
  z, _ = _data(shape=(20, 4))
  cbs = jax.random.normal(jax.random.key(7), (3, 9, 4)) * jnp.asarray([1.0, 0.4, 0.1])[:, None, None]
  res = jax.jit(vq.residual_quantize)(z, cbs)
  r, total, loss = np.asarray(z), 0.0, 0.0
  for s in range(3):
    one = quantize(jnp.asarray(r), cbs[s])
    np.testing.assert_array_equal(res.indices[:, s], one.indices)
    np.testing.assert_allclose(res.residuals[s], r, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(res.perplexity[s], one.perplexity, rtol=1e-6)
    code = np.asarray(cbs[s])[np.asarray(one.indices)]
    total, loss, r = total + code, loss + float(one.loss), r - code
  np.testing.assert_allclose(res.quantized, total, rtol=1e-5, atol=1e-6)
  np.testing.assert_allclose(res.loss, loss, rtol=1e-5)
  err1 = np.mean((np.asarray(z) - np.asarray(cbs[0])[np.asarray(res.indices[:, 0])]) ** 2)
  assert np.mean((np.asarray(z) - np.asarray(res.quantized)) ** 2) < err1
  g = jax.grad(lambda z: jnp.sum(residual_quantize(z, cbs).quantized))(z)
  np.testing.assert_allclose(g, 1.0)


def test_helpers_under_jit_and_vmap():
  idx = jnp.asarray([[0, 2, 2], [1, 1, 1]])
  counts = jax.jit(lambda i: vq.code_counts(i, 4))(idx)
  np.testing.assert_array_equal(counts, [1, 3, 2, 0])
  masked = vq.code_counts(idx, 4, mask=jnp.asarray([[True, False, True], [False] * 3]))
  np.testing.assert_array_equal(masked, [1, 0, 1, 0])
  np.testing.assert_allclose(jax.jit(vq.perplexity)(counts), np_perplexity(idx, 4), rtol=1e-6)
  np.testing.assert_allclose(vq.perplexity(jnp.zeros(4)), 1.0)
  x = jnp.asarray([[3.0, 4.0], [0.0, 0.0]])
  np.testing.assert_allclose(jax.jit(vq.l2_normalize)(x), [[0.6, 0.8], [0.0, 0.0]], rtol=1e-6)
  np.testing.assert_allclose(jax.jit(vq.straight_through)(x, 2 * x), 2 * x)
  # vmap over a batch of independent problems == one call each
  z, cb = _data(shape=(3, 10, 4), k=6)
  cbs = jnp.stack([cb, cb + 1.0, cb * 2.0])
  res = jax.jit(jax.vmap(vq.quantize))(z, cbs)
  for b in range(3):
    one = quantize(z[b], cbs[b])
    np.testing.assert_array_equal(res.indices[b], one.indices)
    np.testing.assert_allclose(res.loss[b], one.loss, rtol=1e-6)
    np.testing.assert_allclose(res.perplexity[b], one.perplexity, rtol=1e-6)
  states = jax.vmap(vq.ema_init)(cbs)
  new = jax.vmap(vq.ema_update)(states, z, res.indices)
  np.testing.assert_allclose(new.codebook[1], ema_update(vq.ema_init(cbs[1]), z[1],
                                                            res.indices[1]).codebook, rtol=1e-6)
