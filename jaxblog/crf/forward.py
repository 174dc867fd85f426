"""Linear-chain CRF: gold-path score, log-partition, log-likelihood, marginals.

Design: the forward recursion `alpha_t(j) = logsumexp_i(alpha_{t-1}(i) + T_ij)
+ f_t(j)` is evaluated as a *probability-space matrix product* `[N, K] @ [K, K]`
with a running log-scale per sequence. Two shifts keep it finite: every row of
`exp(T)` is scaled by its own maximum (so the top state always has a
successor of weight 1), and the state vector is rescaled by its maximum after
each step. Both shifts sit under `stop_gradient`; they cancel exactly in the
value, so gradients stay exact. Emissions enter in log space, so magnitudes
such as 1e4 and `-inf` transitions (tag constraints) never overflow nor give
NaN values or gradients. A plain log-space scan materialises `[N, K, K]` per
step and is several times slower on CPU (PERF.md lesson 3).

`parallel=True` reduces per-position transfer matrices in a pairwise tree of
*scaled* `[K, K] @ [K, K]` products (O(log T) depth, O(T K^3) work): a win on
accelerators for long sequences, slower on a 2-core CPU (see BUILD_NOTES.md).

The chain links the valid positions in order, so right padding, left padding
and gaps share one code path: an invalid step carries the state unchanged and
the first valid step restarts it from `start`. A sequence with no valid
position has score 0 and log-partition 0. Marginals come from autodiff.
"""
from __future__ import annotations

import jax
from jax import lax
import jax.numpy as jnp

from jaxblog.crf import _inputs


def _safe_log(x):
  """log(x) with -inf at 0 and a finite gradient everywhere."""
  pos = x > 0
  return jnp.where(pos, jnp.log(jnp.where(pos, x, 1.0)), -jnp.inf)


def _finite_or_zero(x):
  return jnp.where(jnp.isfinite(x), x, 0.0)


def _gold_score(chain, tags):
  """Score of `tags` [N, T] under the chain: emissions, transitions, ends."""
  em, trans, start, end, mask = chain[:5]
  k = em.shape[-1]
  first, last, _ = _inputs.boundaries(mask)
  prev_tag, linked, _, _ = _inputs.neighbours(tags, mask)
  emit = jnp.take_along_axis(em, tags[..., None], axis=-1)[..., 0]
  pair = jnp.take(trans.reshape(-1), prev_tag * k + tags)
  total = jnp.where(mask, emit, 0.0)
  total = total + jnp.where(linked, pair, 0.0)
  total = total + jnp.where(first, jnp.take(start, tags), 0.0)
  total = total + jnp.where(last, jnp.take(end, tags), 0.0)
  return jnp.sum(total, axis=1)


def _log_partition_sequential(chain, unroll=1):
  em, trans, start, end, mask = chain[:5]
  first = _inputs.boundaries(mask)[0]
  # Row shift r_i = max_j T_ij: the carried state is log p + c = alpha + r.
  r = _finite_or_zero(lax.stop_gradient(jnp.max(trans, axis=1)))
  expt = jnp.exp(trans - r[:, None])
  shifted = em + r[None, None, :]
  n, _, k = em.shape

  def step(carry, xs):
    p, c = carry
    f_t, m_t, first_t = xs
    logq = _safe_log(p @ expt)
    l = jnp.where(first_t[:, None], start[None, :], logq) + f_t
    top = _finite_or_zero(lax.stop_gradient(jnp.max(l, axis=1)))
    p_new = jnp.exp(l - top[:, None])
    c_new = jnp.where(first_t, 0.0, c) + top
    return (jnp.where(m_t[:, None], p_new, p), jnp.where(m_t, c_new, c)), None

  init = (jnp.ones((n, k), em.dtype), jnp.zeros((n,), em.dtype))
  xs = (jnp.swapaxes(shifted, 0, 1), mask.T, first.T)
  (p, c), _ = lax.scan(step, init, xs, unroll=unroll)
  out = c + jax.nn.logsumexp(_safe_log(p) + (end - r)[None, :], axis=1)
  return jnp.where(jnp.any(mask, axis=1), out, 0.0)


def _transfer_matrices(chain):
  """Per-position log transfer matrices `[N, T, K, K]`.

  Valid, linked position: `T_ij + f_t(j)`; first valid position: every row is
  `start_j + f_t(j)` (rank one, so a product that passes it has identical
  rows); invalid position: the log-semiring identity.
  """
  em, trans, start, _, mask = chain[:5]
  k = em.shape[-1]
  first = _inputs.boundaries(mask)[0]
  eye = jnp.where(jnp.eye(k, dtype=bool), 0.0, -jnp.inf).astype(em.dtype)
  base = jnp.where(first[..., None, None], start[None, None, None, :],
                   trans[None, None, :, :])
  mats = base + em[:, :, None, :]
  return jnp.where(mask[..., None, None], mats, eye[None, None])


def _pad_to_power_of_two(x, axis, fill):
  size = x.shape[axis]
  target = 1 << max(size - 1, 0).bit_length()
  if target == size:
    return x
  pad_shape = list(x.shape)
  pad_shape[axis] = target - size
  return jnp.concatenate([x, jnp.broadcast_to(fill, pad_shape).astype(x.dtype)], axis=axis)


def _log_partition_parallel(chain):
  em, _, _, end, mask = chain[:5]
  n, _, k = em.shape
  logm = _transfer_matrices(chain)
  top = _finite_or_zero(lax.stop_gradient(jnp.max(logm, axis=(2, 3))))
  mats = jnp.exp(logm - top[..., None, None])
  scale = top
  eye = jnp.eye(k, dtype=em.dtype)
  mats = _pad_to_power_of_two(mats, 1, eye[None, None])
  scale = _pad_to_power_of_two(scale, 1, jnp.zeros((), em.dtype))
  while mats.shape[1] > 1:  # log2(T) levels: a static Python loop.
    prod = mats[:, 0::2] @ mats[:, 1::2]
    s = lax.stop_gradient(jnp.max(prod, axis=(2, 3)))
    s = jnp.where(s > 0, s, 1.0)
    mats = prod / s[..., None, None]
    scale = scale[:, 0::2] + scale[:, 1::2] + jnp.log(s)
  out = scale[:, 0] + jax.nn.logsumexp(_safe_log(mats[:, 0, 0, :]) + end[None, :], axis=1)
  return jnp.where(jnp.any(mask, axis=1), out, 0.0)


def score(emissions, tags, transitions, mask=None, *, start=None, end=None):
  """Unnormalised score of a tag sequence.

  `sum_t f_t(y_t) + sum T(y_prev, y_t) + start(y_first) + end(y_last)` over the
  valid positions, where `y_prev` is the tag at the previous *valid* position.

  Args:
    emissions: `[..., T, K]` floating emission scores (bf16/fp16 computed in
      float32).
    tags: integer `[..., T]` in `[0, K)` at valid positions (padding values
      are ignored).
    transitions: `[K, K]`, `transitions[i, j]` scores tag `i` followed by `j`.
    mask: optional bool `[..., T]`, True = valid; any validity pattern.
    start: optional `[K]` scores of the first valid tag.
    end: optional `[K]` scores of the last valid tag.

  Returns:
    `[...]` scores in the compute dtype; 0 for a sequence with no valid position.

  References:
    Su 2020, "CRF用过了，不妨再了解下更快的MEMM？" (SPEC.md §8.1).
  """
  chain, flat = _inputs.prepare(emissions, transitions, mask, start, end, tags=tags)
  return _inputs.restore(_gold_score(chain, flat), chain.batch_shape)


def log_partition(emissions, transitions, mask=None, *, start=None, end=None,
                  parallel=False):
  """Log of the sum of exp(score) over all tag sequences (log Z).

  Args:
    emissions: `[..., T, K]` floating emission scores.
    transitions: `[K, K]` transition scores (may hold -inf for forbidden
      transitions).
    mask: optional bool `[..., T]`, True = valid; any validity pattern.
    start: optional `[K]`.
    end: optional `[K]`.
    parallel: False: sequential scan of scaled `[N, K] @ [K, K]` products
      (fastest on CPU). True: pairwise tree of scaled `[K, K]` products,
      O(log T) depth (for accelerators and long sequences); same value.

  Returns:
    `[...]` log-partition in the compute dtype; 0 where no position is valid.

  References:
    Su 2020, "CRF用过了，不妨再了解下更快的MEMM？" (SPEC.md §8.1).
  """
  chain, _ = _inputs.prepare(emissions, transitions, mask, start, end)
  if parallel:
    out = _log_partition_parallel(chain)
  else:
    out = _log_partition_sequential(chain)
  return _inputs.restore(out, chain.batch_shape)


def log_likelihood(emissions, tags, transitions, mask=None, *, start=None,
                   end=None, parallel=False):
  """Log-probability of `tags`: `score - log_partition` (negate for a loss).

  Args:
    emissions: `[..., T, K]` floating emission scores.
    tags: integer `[..., T]`.
    transitions: `[K, K]`.
    mask: optional bool `[..., T]`, True = valid.
    start: optional `[K]`.
    end: optional `[K]`.
    parallel: use the O(log T)-depth log-partition (see `log_partition`).

  Returns:
    `[...]` log-likelihoods (<= 0) in the compute dtype; 0 where no position
    is valid.

  References:
    Su 2020, "CRF用过了，不妨再了解下更快的MEMM？" (SPEC.md §8.1).
  """
  chain, flat = _inputs.prepare(emissions, transitions, mask, start, end, tags=tags)
  logz = _log_partition_parallel(chain) if parallel else _log_partition_sequential(chain)
  return _inputs.restore(_gold_score(chain, flat) - logz, chain.batch_shape)


def marginals(emissions, transitions, mask=None, *, start=None, end=None):
  """Posterior tag marginals `P(y_t = j | x)`, by autodiff of log Z.

  Args:
    emissions: `[..., T, K]` floating emission scores.
    transitions: `[K, K]`.
    mask: optional bool `[..., T]`, True = valid.
    start: optional `[K]`.
    end: optional `[K]`.

  Returns:
    `[..., T, K]` in the compute dtype; rows sum to 1 at valid positions and
    are 0 at invalid ones.

  References:
    Su 2020 (SPEC.md §8.1); marginals as the gradient of the log-partition.
  """
  chain, _ = _inputs.prepare(emissions, transitions, mask, start, end)

  def total(em):
    return jnp.sum(_log_partition_sequential(chain._replace(emissions=em)))

  probs = jax.grad(total)(chain.emissions)
  return _inputs.restore(probs, chain.batch_shape)
