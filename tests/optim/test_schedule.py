"""piecewise_linear: values at and between knots, errors (https://kexue.fm/archives/7094)."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from jaxblog import optim


def brute_force(knots, t, from_zero=True):
  knots = dict(knots)
  if from_zero and 0 not in knots:
    knots[0] = 0.0
  ks = sorted(knots)
  if t <= ks[0]:
    return knots[ks[0]]
  for a, b in zip(ks, ks[1:]):
    if a <= t <= b:
      return knots[a] + (knots[b] - knots[a]) * (t - a) / (b - a)
  return knots[ks[-1]]


def test_article_examples():
  rho = jax.jit(optim.piecewise_linear({1000: 1, 2000: 0.1}))
  for t, v in [(0, 0.0), (250, 0.25), (1000, 1.0), (1500, 0.55), (2000, 0.1), (10 ** 6, 0.1)]:
    np.testing.assert_allclose(rho(t), v, rtol=1e-6, atol=1e-7)
  warm = optim.piecewise_linear({1000: 1.0})
  np.testing.assert_allclose(warm(jnp.array([0, 1, 999, 1000, 5000])),
                             [0.0, 0.001, 0.999, 1.0, 1.0], rtol=1e-6)
  const = optim.piecewise_linear({0: 1.0})
  np.testing.assert_allclose(const(jnp.arange(3)), 1.0)
  assert const(jnp.arange(3)).shape == (3,)


def test_from_zero_false_holds_first_value():
  rho = optim.piecewise_linear({10: 2.0, 20: 4.0}, from_zero=False)
  np.testing.assert_allclose(rho(jnp.array([0, 10, 15, 30])), [2.0, 2.0, 3.0, 4.0])


@settings(max_examples=40, deadline=None)
@given(st.dictionaries(st.integers(0, 5000), st.floats(-10, 10), min_size=1, max_size=6),
       st.integers(0, 8000), st.booleans())
def test_matches_brute_force(knots, t, from_zero):
  got = float(optim.piecewise_linear(knots, from_zero=from_zero)(t))
  np.testing.assert_allclose(got, brute_force(knots, t, from_zero), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("bad", [{-1: 1.0}, {1.5: 1.0}, {True: 1.0}, {}, {"a": 1.0},
                                 {10: float("nan")}])
def test_errors(bad):
  with pytest.raises(ValueError, match="schedule"):
    optim.piecewise_linear(bad)
