"""Entropy of a CRF and the KL divergence between two CRFs over the same lengths.

Design: both are expectations of path scores under the model `p`:
`H(p) = log Z_p - E_p[score_p]` and `KL(p || q) = E_p[score_p - score_q]
- log Z_p + log Z_q`. The expectation `E_p[d-score]` of any additive score
`d` (emissions, transitions, start, end) equals `sum_t <mu_t, d_f_t> +
<xi, d_transitions> + ...` with the marginals `mu` and expected transition
counts `xi`; rather than forming those per sequence, one forward scan carries
next to the scaled forward state of `jaxblog.crf.forward` the expected d-score
of the prefix ending in each tag (an "expectation semiring" recursion; two
extra `[K, K] @ [K, N]` products per step). Plain autodiff differentiates
it. Entries the model forbids (`-inf` scores) are left out of the sums, so
constrained models give no NaN values or gradients; `KL(p || q)` is `+inf`
when `q` forbids an entry that `p` uses with positive probability (counted
with the same recursion). A sequence with no valid position has entropy 0 and
divergence 0.

Example:
  >>> import jax.numpy as jnp
  >>> from jaxblog import crf
  >>> emissions = jnp.zeros((3, 2))              # [L, K]: all 2**3 paths tie
  >>> transitions = jnp.zeros((2, 2))
  >>> print(round(float(crf.entropy(emissions, transitions)), 4))   # 3 log 2
  2.0794
  >>> q_emissions = emissions.at[:, 0].set(1.0)   # q favours tag 0 everywhere
  >>> print(round(float(crf.kl(emissions, transitions, q_emissions, transitions)), 4))
  0.3603

References:
  Su 2020, 《CRF用过了，不妨再了解下更快的MEMM？》,
  https://kexue.fm/archives/7213 (the CRF); entropy and KL of structured
  distributions by expected scores as in "Torch-Struct: Deep Structured
  Prediction Library" (Rush 2020, arXiv:2002.00876).
"""
from __future__ import annotations

import jax
from jax import lax
import jax.numpy as jnp
from jax.typing import ArrayLike
import numpy as np

from jaxblog import _chain, _checks
from jaxblog.crf.forward import (
    _finite_or_zero, _log_z, _safe_log, _shift_rows, _time_major)


def _expected_score(chain, d_em, d_trans, d_start, d_end):
  """`log Z [N]` of `chain` and `E[d-score] [N]` under it, in one forward scan.

  The `d` arrays are finite scores laid out like the chain's (`[N, L, K]`,
  `[K, K]`, `[K]`, `[K]`); the caller zeroes them where the chain forbids an
  entry. Alongside the scaled forward state `p_t(j)` (as in
  `jaxblog.crf.forward`) the scan carries `e_t(j)`, the expected d-score of
  the prefix given that it ends in tag `j`:
  `e_t(j) = sum_i w_ij (e_prev(i) + d_trans[i, j]) + d_f_t(j)` with the
  predecessor weights `w_ij ~ p_prev(i) exp(trans[i, j])`, i.e. two
  `[K, K] @ [K, N]` products over the normaliser. Plain autodiff gives the
  gradient.
  """
  em, trans, start, end, mask = chain[:5]
  first = _chain.boundaries(mask)[0]
  r, expt = _shift_rows(trans)
  expt_t, weighted_t = expt.T, (expt * d_trans).T

  def step(carry, xs):
    p, c, e = carry
    f_t, g_t, m_t, first_t = xs
    norm = expt_t @ p
    ratio = (expt_t @ (p * e) + weighted_t @ p) / jnp.where(norm > 0, norm, 1.0)
    e_new = jnp.where(first_t[None, :], d_start[:, None], ratio) + g_t
    l = jnp.where(first_t[None, :], start[:, None], _safe_log(norm)) + f_t
    top = _finite_or_zero(jnp.max(l, axis=0))
    p_new = jnp.exp(l - top[None, :])
    keep = m_t[None, :]
    return (jnp.where(keep, p_new, p),
            jnp.where(m_t, jnp.where(first_t, 0.0, c) + top, c),
            jnp.where(keep, jnp.where(p_new > 0, e_new, 0.0), e)), None

  n, _, k = em.shape
  init = (jnp.ones((k, n), em.dtype), jnp.zeros((n,), em.dtype), jnp.zeros((k, n), em.dtype))
  xs = (_time_major(em, r), jnp.transpose(d_em, (1, 2, 0)), mask.T, first.T)
  (p, c, e), _ = lax.scan(step, init, xs)
  end_r = end - r
  w = p * jnp.exp(end_r - _finite_or_zero(jnp.max(end_r)))[:, None]
  total = jnp.sum(w, axis=0)
  expected = jnp.sum(w * (e + d_end[:, None]), axis=0) / jnp.where(total > 0, total, 1.0)
  logz = c + jax.nn.logsumexp(_safe_log(p) + end_r[:, None], axis=0)
  valid = jnp.any(mask, axis=1)
  return jnp.where(valid, logz, 0.0), jnp.where(valid, expected, 0.0)


def _finite(x, *others):
  """`x` where it and all `others` are finite, else 0."""
  ok = jnp.isfinite(x)
  for o in others:
    ok = ok & jnp.isfinite(o)
  return jnp.where(ok, x, 0.0)


def entropy(emissions: ArrayLike, transitions: ArrayLike, mask: ArrayLike | None = None,
            *, start: ArrayLike | None = None, end: ArrayLike | None = None) -> jax.Array:
  """Entropy `H(p) = -sum_y p(y) log p(y)` of the CRF over tag paths, in nats.

  Args:
    emissions: `[..., L, K]` floating emission scores.
    transitions: `[K, K]`, `transitions[i, j]` scores tag `i` followed by `j`
      (may hold `-inf` for forbidden transitions).
    mask: optional bool `[..., L]`, True = valid; any validity pattern.
    start: optional `[K]` scores of the first valid tag.
    end: optional `[K]` scores of the last valid tag.

  Returns:
    `[...]` entropies (>= 0) in the compute dtype; 0 where no position is valid.
  """
  chain, _ = _chain.prepare(emissions, transitions, mask, start, end)
  logz, expected = _expected_score(chain, *(_finite(x) for x in chain[:4]))
  return _chain.restore(logz - expected, chain.batch_shape)


def kl(p_emissions: ArrayLike, p_transitions: ArrayLike, q_emissions: ArrayLike,
       q_transitions: ArrayLike, mask: ArrayLike | None = None, *,
       p_start: ArrayLike | None = None, p_end: ArrayLike | None = None,
       q_start: ArrayLike | None = None, q_end: ArrayLike | None = None) -> jax.Array:
  """KL divergence `KL(p || q) = sum_y p(y) log(p(y) / q(y))` of two CRFs.

  Both CRFs are over the same valid positions (one `mask`) and tag set.

  Args:
    p_emissions: `[..., L, K]` emission scores of `p`.
    p_transitions: `[K, K]` transition scores of `p`.
    q_emissions: `[..., L, K]` emission scores of `q` (leading axes broadcast
      with `p_emissions`).
    q_transitions: `[K, K]` transition scores of `q`.
    mask: optional bool `[..., L]`, True = valid; any validity pattern.
    p_start, p_end: optional `[K]` boundary scores of `p`.
    q_start, q_end: optional `[K]` boundary scores of `q`.

  Returns:
    `[...]` divergences (>= 0) in the compute dtype; 0 where no position is
    valid, `+inf` where `q` forbids a path that `p` allows.
  """
  for name, x in (("p_emissions", p_emissions), ("q_emissions", q_emissions)):
    _checks.require_floating(name, x)
    _checks.require_min_rank(name, x, 2, "[..., L, K]")
  p_shape, q_shape = np.shape(p_emissions), np.shape(q_emissions)
  if p_shape[-2:] != q_shape[-2:]:
    raise ValueError(
        f"q_emissions must have the [L, K] axes of p_emissions {p_shape}, got {q_shape}")
  try:
    batch = np.broadcast_shapes(p_shape[:-2], q_shape[:-2])
  except ValueError:
    raise ValueError(
        f"leading axes of p_emissions {p_shape} and q_emissions {q_shape} do not "
        "broadcast") from None
  p_em = jnp.broadcast_to(p_emissions, tuple(batch) + tuple(p_shape[-2:]))
  q_em = jnp.broadcast_to(q_emissions, tuple(batch) + tuple(q_shape[-2:]))
  p, _ = _chain.prepare(p_em, p_transitions, mask, p_start, p_end)
  q, _ = _chain.prepare(q_em, q_transitions, mask, q_start, q_end)
  diffs = [_finite(a - b, a, b) for a, b in zip(p[:4], q[:4])]
  logz_p, expected = _expected_score(p, *diffs)
  # KL is infinite when p gives mass to an entry q forbids: count such
  # entries along the path in expectation with the same recursion.
  bad = [(jnp.isfinite(a) & ~jnp.isfinite(b)).astype(a.dtype) for a, b in zip(p[:4], q[:4])]
  violations = lax.stop_gradient(_expected_score(p, *bad)[1])
  out = expected - logz_p + _log_z(*q[:5], 1)
  out = jnp.where(violations > 0, jnp.inf, out)
  out = jnp.where(jnp.any(p.mask, axis=1), out, 0.0)
  return _chain.restore(out, p.batch_shape)
