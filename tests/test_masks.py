"""Tests for jaxblog.masks against brute-force NumPy loops."""
import doctest

import hypothesis.extra.numpy as hnp
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from jaxblog import masks

SETTINGS = settings(max_examples=25, deadline=None)


def _brute(rank_q, rank_k, strict=False):
  q, k = len(rank_q), len(rank_k)
  out = np.zeros((q, k), bool)
  for i in range(q):
    for j in range(k):
      out[i, j] = rank_k[j] < rank_q[i] if strict else rank_k[j] <= rank_q[i]
  return out


@pytest.mark.parametrize("length", [1, 2, 7])
def test_causal_lower_triangular(length):
  got = np.asarray(masks.causal(length))
  assert got.dtype == bool and got.shape == (length, length)
  np.testing.assert_array_equal(got, np.tril(np.ones((length, length), bool)))


def test_causal_bad_length():
  with pytest.raises(ValueError, match="length must be >= 1"):
    masks.causal(0)
  with pytest.raises(TypeError, match="length"):
    masks.causal(2.5)


def test_padding_shape_and_broadcast():
  valid = jnp.array([[True, True, False], [True, False, False]])
  got = masks.padding(valid)
  assert got.shape == (2, 1, 3)
  both = masks.combine(masks.causal(3), got)
  assert both.shape == (2, 3, 3)
  np.testing.assert_array_equal(both[1], [[1, 0, 0], [1, 0, 0], [1, 0, 0]])


@SETTINGS
@given(hnp.arrays(np.int32, st.tuples(st.integers(1, 3), st.integers(1, 9)),
                  elements=st.integers(0, 1)))
def test_unilm_matches_bruteforce(seg):
  got = np.asarray(masks.unilm(jnp.asarray(seg)))
  for b in range(seg.shape[0]):
    c = np.cumsum(seg[b])
    np.testing.assert_array_equal(got[b], _brute(c, c))


@pytest.mark.parametrize("src,tgt", [(1, 1), (3, 4), (5, 1)])
def test_unilm_equals_2019_construction(src, tgt):
  s = np.array([0] * src + [1] * tgt)
  n = len(s)
  tril = np.tril(np.ones((n, n)))
  old = (1 - s[:, None]) * (1 - s[None, :]) + s[:, None] * tril
  np.testing.assert_array_equal(np.asarray(masks.unilm(jnp.asarray(s))), old > 0)


@SETTINGS
@given(st.integers(1, 8).flatmap(lambda n: st.permutations(list(range(n)))),
       st.booleans())
def test_permutation_matches_bruteforce(order, strict):
  order = np.array(order)
  rank = np.empty_like(order)
  rank[order] = np.arange(len(order))
  got = np.asarray(masks.permutation(jnp.asarray(order), strict=strict))
  np.testing.assert_array_equal(got, _brute(rank, rank, strict))


def test_permutation_identity_is_causal_and_strict_has_empty_diagonal():
  order = jnp.arange(5)
  np.testing.assert_array_equal(masks.permutation(order), masks.causal(5))
  strict = np.asarray(masks.permutation(order, strict=True))
  assert not strict.diagonal().any()
  assert not strict[0].any()  # first generated token sees nothing (NaN-safe bias needed)


def test_permutation_batched_under_jit():
  orders = jnp.array([[2, 0, 1], [0, 1, 2]])
  got = jax.jit(masks.permutation)(orders)
  # ranks of positions 0, 1, 2 are 1, 2, 0
  np.testing.assert_array_equal(got[0], [[1, 0, 1], [1, 1, 1], [0, 0, 1]])
  np.testing.assert_array_equal(got[1], np.tril(np.ones((3, 3), bool)))


def test_permutation_rejects_non_permutation():
  with pytest.raises(ValueError, match="permutation"):
    masks.permutation(jnp.array([0, 0, 1]))
  with pytest.raises(TypeError, match="order must be an integer"):
    masks.permutation(jnp.array([0.0, 1.0]))


@SETTINGS
@given(hnp.arrays(np.int32, st.tuples(st.integers(1, 2), st.integers(1, 8)),
                  elements=st.integers(0, 3)))
def test_segment_and_packed_causal(seg):
  got = np.asarray(masks.combine(masks.causal(seg.shape[-1]),
                                 masks.segment(jnp.asarray(seg))))
  for b in range(seg.shape[0]):
    n = seg.shape[1]
    want = np.array([[seg[b, i] == seg[b, j] and j <= i for j in range(n)]
                     for i in range(n)])
    np.testing.assert_array_equal(got[b], want)


def test_segment_cross_attention_shapes():
  q = jnp.array([[0, 0, 1]])
  k = jnp.array([[0, 1, 1, 1]])
  got = masks.segment(q, k)
  assert got.shape == (1, 3, 4)
  np.testing.assert_array_equal(got[0, 2], [False, True, True, True])


def test_from_ranks_broadcasts_leading_axes():
  q = jnp.arange(3)[None, :]
  k = jnp.zeros((2, 4), jnp.int32)
  assert masks.from_ranks(q, k).shape == (2, 3, 4)


def test_bad_inputs_name_the_argument():
  with pytest.raises(TypeError, match="segment_ids must be an integer"):
    masks.unilm(jnp.array([0.0, 1.0]))
  with pytest.raises(TypeError, match="valid must be a bool"):
    masks.padding(jnp.array([1, 0]))
  with pytest.raises(ValueError, match=r"segment_ids must have shape"):
    masks.unilm(jnp.array(1))
  with pytest.raises(TypeError, match="masks\\[1\\] must be a bool"):
    masks.combine(masks.causal(2), jnp.ones((2, 2)))
  with pytest.raises(TypeError, match="dtype must be a floating"):
    masks.to_bias(masks.causal(2), jnp.int32)


def test_combine_none_handling():
  assert masks.combine() is None
  assert masks.combine(None, None) is None
  m = masks.causal(3)
  np.testing.assert_array_equal(masks.combine(None, m, None), m)


@pytest.mark.parametrize("dtype", [jnp.float32, jnp.bfloat16, jnp.float16])
def test_to_bias_fully_masked_rows_are_finite(dtype):
  mask = jnp.array([[True, False, True], [False, False, False]])
  bias = masks.to_bias(mask, dtype)
  assert bias.dtype == dtype
  logits = jnp.array([[0.3, -2.0, 1.0], [5.0, -1.0, 0.0]], dtype)
  probs = jax.nn.softmax((logits + bias).astype(jnp.float32), axis=-1)
  assert np.isfinite(np.asarray(probs)).all()
  np.testing.assert_allclose(probs[0, 1], 0.0, atol=1e-6)
  np.testing.assert_allclose(np.asarray(probs[0]).sum(), 1.0, rtol=1e-6)


def test_all_builders_jit():
  seg = jnp.array([[0, 0, 1, 1]])
  for fn in (masks.unilm, masks.segment, masks.permutation):
    arg = jnp.array([[1, 3, 0, 2]]) if fn is masks.permutation else seg
    np.testing.assert_array_equal(jax.jit(fn)(arg), fn(arg))
  valid = jnp.array([[True, False]])
  np.testing.assert_array_equal(jax.jit(masks.padding)(valid), masks.padding(valid))
  np.testing.assert_array_equal(jax.jit(masks.to_bias)(valid), masks.to_bias(valid))


def test_from_ranks_and_combine_under_jit():
  q = jnp.array([[0, 2, 1]])
  k = jnp.array([[1, 1, 0, 2]])
  want = np.array([[r_k <= r_q for r_k in k[0]] for r_q in q[0]])
  np.testing.assert_array_equal(jax.jit(masks.from_ranks)(q, k)[0], want)
  np.testing.assert_array_equal(
      jax.jit(lambda a, b: masks.combine(a, None, b))(masks.causal(3), masks.padding(
          jnp.array([[True, True, False]])))[0],
      [[1, 0, 0], [1, 1, 0], [1, 1, 0]])


def test_docstring_examples():
  result = doctest.testmod(masks, verbose=False)
  assert result.attempted > 0 and result.failed == 0
