"""Shared search plumbing: the two-stage top-k equals `lax.top_k` exactly."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax import lax

from jaxblog.decoding import top_k


@pytest.mark.parametrize("shape,k,dtype", [
    ((8, 32000), 8, jnp.float32), ((3, 4, 2050), 5, jnp.float32),
    ((6, 1000), 1, jnp.bfloat16), ((2, 300), 2, jnp.float32), ((4, 50), 3, jnp.int32)])
def test_top_k_equals_lax_top_k_with_ties_and_neg_inf(shape, k, dtype):
  rng = np.random.default_rng(sum(shape) + k)
  x = np.round(rng.normal(size=shape) * 2)  # many ties
  if jnp.issubdtype(dtype, jnp.floating):
    x = np.where(rng.random(shape) < 0.3, -np.inf, x)
    x[..., 0, :] = -np.inf  # a row with nothing finite
    x[..., 1, :] = np.where(np.arange(shape[-1]) == shape[-1] - 1, 5.0, -np.inf)
  x = jnp.asarray(x, dtype)
  want = lax.top_k(x, k)
  got = jax.jit(top_k, static_argnums=1)(x, k)
  assert got[0].shape == want[0].shape and got[0].dtype == want[0].dtype
  np.testing.assert_array_equal(np.asarray(got[0], np.float32), np.asarray(want[0], np.float32))
  np.testing.assert_array_equal(got[1], want[1])
