"""`jaxblog.vq.nearest`: numpy brute force, ties, chunking, memory, errors."""
import hypothesis.extra.numpy as hnp
from hypothesis import given, settings, strategies as st
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxblog import vq

# Jitted once per static configuration: the tests run compiled code, not op-by-op.
nearest = jax.jit(vq.nearest, static_argnames=("metric", "chunk_size"))


def brute_nearest(z, codebook):
  d = ((z[..., None, :] - codebook) ** 2).sum(-1)
  return np.argmin(d, axis=-1)  # numpy argmin returns the first minimum


@settings(max_examples=12, deadline=None)
@given(data=st.data(), n=st.integers(1, 40), k=st.integers(1, 9), d=st.integers(1, 5),
       chunk=st.sampled_from([None, 1, 3, 7]))
def test_matches_brute_force_with_ties(data, n, k, d, chunk):
  # Small integers make every distance exact, so ties are real ties.
  z = data.draw(hnp.arrays(np.float32, (n, d), elements=st.integers(-3, 3).map(float)))
  cb = data.draw(hnp.arrays(np.float32, (k, d), elements=st.integers(-3, 3).map(float)))
  got = np.asarray(nearest(jnp.asarray(z), jnp.asarray(cb), chunk_size=chunk))
  np.testing.assert_array_equal(got, brute_nearest(z, cb))


def test_duplicate_codes_pick_lowest_index():
  cb = jnp.asarray([[1.0, 0.0], [0.0, 1.0], [1.0, 0.0], [0.0, 1.0]])
  z = jnp.asarray([[2.0, 0.0], [0.0, 3.0], [0.5, 0.5]])
  np.testing.assert_array_equal(np.asarray(nearest(z, cb)), [0, 1, 0])


@pytest.mark.parametrize("chunk", [None, 64, 100, 999])
def test_random_floats_jit_and_batch_shape(chunk):
  z = jax.random.normal(jax.random.key(0), (3, 333, 16))
  cb = jax.random.normal(jax.random.key(1), (50, 16))
  got = jax.jit(lambda a, b: nearest(a, b, chunk_size=chunk))(z, cb)
  assert got.shape == (3, 333) and got.dtype == jnp.int32
  zn, cn = np.asarray(z, np.float64), np.asarray(cb, np.float64)
  dist = ((zn[..., None, :] - cn) ** 2).sum(-1)
  chosen = np.take_along_axis(dist, np.asarray(got)[..., None], -1)[..., 0]
  np.testing.assert_allclose(chosen, dist.min(-1), rtol=1e-5, atol=1e-5)
  assert (np.asarray(got) == dist.argmin(-1)).mean() > 0.99


def test_cosine_metric():
  z = jax.random.normal(jax.random.key(2), (200, 8))
  cb = jax.random.normal(jax.random.key(3), (30, 8)) * jnp.arange(1.0, 31.0)[:, None]
  got = np.asarray(nearest(z, cb, metric="cosine", chunk_size=17))
  cn = np.asarray(cb) / np.linalg.norm(np.asarray(cb), axis=-1, keepdims=True)
  np.testing.assert_array_equal(got, np.argmax(np.asarray(z) @ cn.T, -1))


def test_unbatched_vmap_half_precision_and_empty():
  cb = jax.random.normal(jax.random.key(4), (7, 4))
  z = jax.random.normal(jax.random.key(5), (5, 4))
  assert nearest(z[0], cb).shape == ()
  np.testing.assert_array_equal(jax.vmap(vq.nearest, (0, None))(z, cb), nearest(z, cb))
  zb = z.astype(jnp.bfloat16)
  np.testing.assert_array_equal(nearest(zb, cb), brute_nearest(np.asarray(zb, np.float32),
                                                                   np.asarray(cb)))
  assert nearest(jnp.zeros((0, 3, 4)), cb).shape == (0, 3)


def test_nan_rows_stay_in_range():
  z = jnp.asarray([[jnp.nan, 0.0], [1.0, 1.0]])
  got = np.asarray(nearest(z, jnp.eye(2)))
  assert got.min() >= 0 and got.max() <= 1


def test_memory_bounded_and_no_nkd_tensor():
  n, d, k = 65536, 8, 256
  z = jax.ShapeDtypeStruct((n, d), jnp.float32)
  cb = jax.ShapeDtypeStruct((k, d), jnp.float32)
  lowered = jax.jit(vq.nearest).lower(z, cb)
  temp = lowered.compile().memory_analysis().temp_size_in_bytes
  assert temp < 0.1 * n * k * 4, temp
  assert f"{n},{k},{d}" not in lowered.as_text() and f"[{n},{k}]" not in lowered.as_text()


def test_errors():
  cb = jnp.zeros((4, 3))
  with pytest.raises(ValueError, match="z feature dimension"):
    nearest(jnp.zeros((2, 5)), cb)
  with pytest.raises(TypeError, match="z must be a floating"):
    nearest(jnp.zeros((2, 3), jnp.int32), cb)
  with pytest.raises(TypeError, match="codebook must be a floating"):
    nearest(jnp.zeros((2, 3)), jnp.zeros((4, 3), jnp.int32))
  with pytest.raises(ValueError, match="K >= 1"):
    nearest(jnp.zeros((2, 3)), jnp.zeros((0, 3)))
  with pytest.raises(ValueError, match=r"codebook must have shape \[K, D\]"):
    nearest(jnp.zeros((2, 3)), jnp.zeros((3,)))
  with pytest.raises(ValueError, match="metric"):
    nearest(jnp.zeros((2, 3)), cb, metric="l1")
