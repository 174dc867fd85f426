"""fsq / residual_fsq against a NumPy reference; index round trips; usage statistics."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxblog import vq

fsq = jax.jit(vq.fsq, static_argnames=("levels", "eps", "axis_name"))
residual_fsq = jax.jit(vq.residual_fsq, static_argnames=("levels", "num_stages", "eps"))


def np_fsq(z, levels, eps=1e-3):
  """The paper's bound-and-round, written out in float64."""
  lv = np.asarray(levels, np.float64)
  half = (lv - 1) * (1 + eps) / 2
  offset = np.where(np.asarray(levels) % 2 == 0, 0.5, 0.0)
  shift = np.arctanh(offset / half)
  rounded = np.round(np.tanh(z + shift) * half - offset)
  hw = np.asarray(levels) // 2
  digits = (rounded + hw).astype(np.int64)
  basis = np.cumprod((1,) + tuple(levels[:-1]))
  return rounded / hw, (digits * basis).sum(-1)


def np_stats(idx, k):
  counts = np.bincount(np.ravel(idx), minlength=k)
  p = counts[counts > 0] / counts.sum()
  return np.exp(-(p * np.log(p)).sum()), (counts > 0).mean()


@pytest.mark.parametrize("levels", [(8, 5, 5, 5), (3, 4), (2, 7, 6)])
def test_fsq_matches_numpy(levels):
  z = 2.0 * jax.random.normal(jax.random.key(0), (5, 7, len(levels)))
  res = fsq(z, levels)
  codes, idx = np_fsq(np.asarray(z, np.float64), levels)
  np.testing.assert_allclose(res.quantized, codes, atol=1e-6)
  np.testing.assert_array_equal(res.indices, idx)
  ppl, usage = np_stats(idx, int(np.prod(levels)))
  np.testing.assert_allclose(res.perplexity, ppl, rtol=1e-5)
  np.testing.assert_allclose(res.usage, usage, rtol=1e-6)


@pytest.mark.parametrize("levels", [(5,), (4,), (2,), (7, 6)])
def test_every_level_is_reachable_odd_and_even(levels):
  grid = np.linspace(-6, 6, 121)
  z = jnp.asarray(np.stack(np.meshgrid(*[grid] * len(levels), indexing="ij"), -1))
  res = fsq(z, levels)
  for i, L in enumerate(levels):
    hw = L // 2
    want = (np.arange(L) - hw) / hw  # odd: symmetric; even: one more level below 0
    np.testing.assert_allclose(np.unique(np.asarray(res.quantized[..., i])), want, atol=1e-6)
  assert float(res.usage) == 1.0
  np.testing.assert_array_equal(fsq(jnp.zeros((1, len(levels))), levels).quantized, 0.0)


@pytest.mark.parametrize("levels", [(8, 5, 5, 5), (2, 3, 4)])
def test_index_round_trip(levels):
  k = int(np.prod(levels))
  idx = jnp.arange(k)
  codes = jax.jit(vq.fsq_indices_to_codes, static_argnums=1)(idx, levels)
  np.testing.assert_array_equal(jax.jit(vq.fsq_codes_to_indices, static_argnums=1)(codes, levels),
                                idx)
  assert len({tuple(c) for c in np.asarray(codes)}) == k
  z = jax.random.normal(jax.random.key(1), (50, len(levels))) * 3
  res = fsq(z, levels)
  np.testing.assert_allclose(vq.fsq_indices_to_codes(res.indices, levels), res.quantized,
                             atol=1e-6)


def test_straight_through_gradient_and_dtype():
  levels = (5, 4)
  z = jax.random.normal(jax.random.key(2), (6, 2))
  w = jax.random.normal(jax.random.key(3), (6, 2))
  g = jax.grad(lambda z: jnp.sum(vq.fsq(z, levels).quantized * w))(z)
  lv = np.asarray(levels, np.float64)
  half = (lv - 1) * 1.001 / 2
  shift = np.arctanh(np.asarray([0.0, 0.5]) / half)
  dbound = (1 - np.tanh(np.asarray(z, np.float64) + shift) ** 2) * half
  np.testing.assert_allclose(g, np.asarray(w) * dbound / (np.asarray(levels) // 2), rtol=1e-5)
  res = fsq(z.astype(jnp.bfloat16), levels)
  assert res.quantized.dtype == jnp.bfloat16 and res.indices.dtype == jnp.int32


def test_mask_and_axis_name():
  levels = (3, 3)
  z = jnp.asarray([[[-5.0, -5.0], [5.0, 5.0]], [[0.0, 0.0], [5.0, -5.0]]])
  mask = jnp.asarray([[True, False], [True, False]])
  res = fsq(z, levels, mask=mask)
  np.testing.assert_allclose(res.usage, 2 / 9)
  np.testing.assert_allclose(res.perplexity, 2.0, rtol=1e-6)
  out = jax.vmap(lambda z: vq.fsq(z, levels, axis_name="d"), axis_name="d")(z)
  np.testing.assert_allclose(out.usage, [4 / 9, 4 / 9])


def test_residual_fsq_matches_stagewise_numpy_and_decodes():
  levels, stages = (7, 5, 4), 3
  z = 1.5 * jax.random.normal(jax.random.key(4), (9, 3))
  res = residual_fsq(z, levels, stages)
  r = np.asarray(z, np.float64)
  total = np.zeros_like(r)
  for s in range(stages):
    scale = (np.asarray(levels, np.float64) - 1) ** -s
    codes, idx = np_fsq(r / scale, levels)
    np.testing.assert_array_equal(res.indices[..., s], idx)
    total += codes * scale
    r = r - codes * scale
    ppl, usage = np_stats(idx, int(np.prod(levels)))
    np.testing.assert_allclose(res.usage[s], usage, rtol=1e-6)
    np.testing.assert_allclose(res.perplexity[s], ppl, rtol=1e-5)
  np.testing.assert_allclose(res.quantized, total, atol=1e-5)
  decoded = sum(np.asarray(vq.fsq_indices_to_codes(res.indices[..., s], levels))
                * (np.asarray(levels) - 1.0) ** -s for s in range(stages))
  np.testing.assert_allclose(decoded, res.quantized, atol=1e-5)
  # More stages approximate the first stage's bounded input more closely.
  errs = [float(jnp.abs(residual_fsq(z * 0.3, levels, s).quantized
                        - residual_fsq(z * 0.3, levels, 6).quantized).max()) for s in (1, 2, 3)]
  assert errs[0] > errs[1] > errs[2]
  g = jax.grad(lambda z: jnp.sum(vq.residual_fsq(z, levels, stages).quantized))(z)
  assert np.isfinite(np.asarray(g)).all() and float(jnp.abs(g).min()) > 0


def test_errors():
  z = jnp.zeros((3, 2))
  with pytest.raises(ValueError, match="levels"):
    vq.fsq(z, (1, 3))
  with pytest.raises(ValueError, match="levels"):
    vq.fsq(z, ())
  with pytest.raises(ValueError, match="len\\(levels\\)"):
    vq.fsq(z, (3, 3, 3))
  with pytest.raises(TypeError, match="z"):
    vq.fsq(jnp.zeros((3, 2), jnp.int32), (3, 3))
  with pytest.raises(ValueError, match="int32"):
    vq.fsq_indices_to_codes(jnp.zeros(2, jnp.int32), (1 << 16, 1 << 16))
  with pytest.raises(ValueError, match="num_stages"):
    vq.residual_fsq(z, (3, 3), 0)
  with pytest.raises(ValueError, match="mask"):
    vq.fsq(z, (3, 3), mask=jnp.ones((2,), bool))
