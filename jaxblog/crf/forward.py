"""Linear-chain CRF: gold-path score, log-partition, log-likelihood, marginals.

Design: the forward recursion `alpha_t(j) = logsumexp_i(alpha_{t-1}(i) + trans_ij)
+ f_t(j)` is evaluated as a *probability-space matrix product* with a running
log-scale per sequence. Two shifts keep it finite: every row of `exp(trans)` is
scaled by its own maximum (so the top state always has a successor of weight
1), and the state is rescaled by its maximum after each step; they cancel
exactly in the value. Emissions enter in log space, so magnitudes such as 1e4
and `-inf` transitions (tag constraints) never overflow nor give NaN values or
gradients. A plain log-space scan materialises `[N, K, K]` per step and is
several times slower on CPU (batched tiny dots and broadcast-reduces over a
middle axis are slow on XLA:CPU). The state is laid out
`[K, N]` (tags x batch): per-sequence masks then broadcast along the major
axis, which XLA:CPU vectorises; with `[N, K]` and K = 8 or 20 each step ran
about twice as long.

The gradient of the sequential log Z is hand-written (`jax.custom_vjp`): the
forward pass stacks the scaled states, and the backward pass runs the beta
recursion (the same scaled matmul against `exp(trans - r).T`) once the cotangent
is known, writing `g * marginals` straight into the emission gradient and
accumulating the pair counts for the transition gradient. Both are
normalised per position by one shared sum, so no scale bookkeeping is needed.
This is 2-3x faster than reverse-mode autodiff of the scan, which stored many
residuals per step. Forward-mode differentiation (`jax.jvp`, `jax.hessian`)
of the sequential path is therefore not available; `parallel=True` is plain
autodiff and supports it; reverse-over-reverse (gradients of functions of
the gradient, such as `jaxblog.crf.entropy`) works.

`parallel=True` reduces per-position transfer matrices in a pairwise tree of
*scaled* `[K, K] @ [K, K]` products (O(log L) depth, O(L K^3) work): a win on
accelerators for long sequences, slower on a 2-core CPU (see BUILD_NOTES.md).

The chain links the valid positions in order, so right padding, left padding
and gaps share one code path: an invalid step carries the state unchanged and
the first valid step restarts it from `start`. A sequence with no valid
position has score 0 and log-partition 0. Shapes: `L` positions, `K` tags,
`N` sequences once the leading batch axes are flattened.

Example:
  >>> import jax
  >>> import jax.numpy as jnp
  >>> from jaxblog import crf
  >>> emissions = jnp.zeros((2, 3))        # [L, K]: all 3**2 paths tie
  >>> transitions = jnp.zeros((3, 3))
  >>> print(round(float(crf.log_partition(emissions, transitions)), 4))  # log 9
  2.1972
  >>> print(crf.marginals(emissions, transitions)[0])
  [0.33333334 0.33333334 0.33333334]
  >>> tags = jnp.array([0, 2])
  >>> loss = lambda e: -crf.log_likelihood(e, tags, transitions)
  >>> print(jax.grad(loss)(emissions))     # marginals minus one-hot tags
  [[-0.6666666   0.33333334  0.33333334]
   [ 0.33333334  0.33333334 -0.6666666 ]]
"""
from __future__ import annotations

import functools

import jax
from jax import lax
import jax.numpy as jnp
from jax.typing import ArrayLike

from jaxblog import _chain


def _safe_log(x):
  """log(x) with -inf at 0 and a finite gradient everywhere."""
  pos = x > 0
  return jnp.where(pos, jnp.log(jnp.where(pos, x, 1.0)), -jnp.inf)


def _finite_or_zero(x):
  return jnp.where(jnp.isfinite(x), x, 0.0)


def _gold_score(chain, tags):
  """Score of `tags` [N, L] under the chain: emissions, transitions, ends."""
  em, trans, start, end, mask = chain[:5]
  k = em.shape[-1]
  first, last, _ = _chain.boundaries(mask)
  prev_tag, linked, _, _ = _chain.neighbours(tags, mask)
  emit = jnp.take_along_axis(em, tags[..., None], axis=-1)[..., 0]
  pair = jnp.take(trans.reshape(-1), prev_tag * k + tags)
  total = jnp.where(mask, emit, 0.0)
  total = total + jnp.where(linked, pair, 0.0)
  total = total + jnp.where(first, jnp.take(start, tags), 0.0)
  total = total + jnp.where(last, jnp.take(end, tags), 0.0)
  return jnp.sum(total, axis=1)


# Floor of the per-position normaliser in the backward pass: keeps g / n
# finite when the forward and backward states barely overlap (> ~69 nats).
_NORM_FLOOR = 1e-30


def _shift_rows(trans):
  """Row maxima `r` (0 for an all -inf row) and `exp(trans - r)`, whose rows peak at 1."""
  r = _finite_or_zero(jnp.max(trans, axis=1))
  return r, jnp.exp(trans - r[:, None])


def _alpha_scan(em_t, expt, start, end_r, mask, first, stack=False, unroll=1):
  """Scaled forward recursion in the `[K, N]` layout.

  Args:
    em_t: `[L, K, N]` emissions plus the row shift `r`.
    expt: `[K, K]` `exp(trans - r)`.
    start: `[K]`.
    end_r: `[K]` `end - r`.
    mask, first: `[N, L]` bool.
    stack: also return the state after every step, `[L, K, N]`.
    unroll: `lax.scan` unroll factor.

  Returns:
    `(log Z [N], final state [K, N], stacked states or None)`.
  """
  _, k, n = em_t.shape
  expt_t = expt.T

  def step(carry, xs):
    p, c = carry
    f_t, m_t, first_t = xs
    l = jnp.where(first_t[None, :], start[:, None], _safe_log(expt_t @ p)) + f_t
    top = _finite_or_zero(jnp.max(l, axis=0))
    p = jnp.where(m_t[None, :], jnp.exp(l - top[None, :]), p)
    c = jnp.where(m_t, jnp.where(first_t, 0.0, c) + top, c)
    return (p, c), (p if stack else None)

  init = (jnp.ones((k, n), em_t.dtype), jnp.zeros((n,), em_t.dtype))
  (p, c), ps = lax.scan(step, init, (em_t, mask.T, first.T), unroll=unroll)
  out = c + jax.nn.logsumexp(_safe_log(p) + end_r[:, None], axis=0)
  return jnp.where(jnp.any(mask, axis=1), out, 0.0), p, ps


def _time_major(em, r):
  """`[N, L, K]` emissions plus `r` as `[L, K, N]` (one transposing copy)."""
  return jnp.transpose(em + r[None, None, :], (1, 2, 0))


@functools.partial(jax.custom_vjp, nondiff_argnums=(5,))
def _log_z(em, trans, start, end, mask, unroll=1):
  """Sequential log Z `[N]` of flat inputs, with a forward-backward gradient."""
  r, expt = _shift_rows(trans)
  first = _chain.boundaries(mask)[0]
  return _alpha_scan(_time_major(em, r), expt, start, end - r, mask, first,
                     unroll=unroll)[0]


def _log_z_fwd(em, trans, start, end, mask, unroll):
  r, expt = _shift_rows(trans)
  first, last, _ = _chain.boundaries(mask)
  em_t = _time_major(em, r)
  out, p_last, ps = _alpha_scan(em_t, expt, start, end - r, mask, first,
                                stack=True, unroll=unroll)
  return out, (em_t, ps, p_last, expt, start, end - r, mask, last)


def _log_z_bwd(unroll, res, g):
  """Beta recursion with the cotangent `g` known: marginals and pair counts.

  At a valid position `t` with forward state `p_t` and next-state message
  `b_t = exp(trans - r) @ h_next` (or `exp(end - r)` at the last valid position),
  the marginal is `p_t * b_t / n_t` with `n_t = sum(p_t * b_t)`, and the pair
  marginal with the next valid position is `p_t[i] exp(trans - r)[i, j]
  h_next[j] / n_t`: the same normaliser, so no scale bookkeeping is needed.
  Pair counts accumulate as one `[K, N] @ [N, K]` product per step.
  """
  em_t, ps, p_last, expt, start, end_r, mask, last = res
  length, k, n = em_t.shape
  if length == 0:  # no position at all: log Z is the constant 0
    return (jnp.zeros((n, 0, k), em_t.dtype), jnp.zeros_like(expt),
            jnp.zeros_like(start), jnp.zeros_like(end_r), None)
  end_p = jnp.exp(end_r - _finite_or_zero(jnp.max(end_r)))

  def weights(x, norm):
    # g / n, zero where n underflowed to 0.
    return jnp.where(norm > 0, g / jnp.maximum(norm, _NORM_FLOOR), 0.0) * x

  def step(carry, xs):
    h, pairs, d_em = carry
    t, f_t, p_t, m_t, last_t = xs
    b = expt @ h
    b_last = jnp.where(last_t[None, :], end_p[:, None], b)
    scale = weights(m_t, jnp.sum(p_t * b_last, axis=0))
    d_em = lax.dynamic_update_index_in_dim(d_em, (p_t * b_last * scale[None, :]).T, t, 1)
    pairs = pairs + (p_t * jnp.where(last_t, 0.0, scale)[None, :]) @ h.T
    l = jnp.where(last_t[None, :], end_r[:, None], _safe_log(b)) + f_t
    top = _finite_or_zero(jnp.max(l, axis=0))
    h = jnp.where(m_t[None, :], jnp.exp(l - top[None, :]), h)
    return (h, pairs, d_em), None

  init = (jnp.ones((k, n), em_t.dtype), jnp.zeros((k, k), em_t.dtype),
          jnp.zeros((n, length, k), em_t.dtype))
  xs = (jnp.arange(length), em_t, ps, mask.T, last.T)
  (h_first, pairs, d_em), _ = lax.scan(step, init, xs, reverse=True, unroll=unroll)

  # Boundary marginals from the boundary states: the forward's final state sits
  # at the last valid position, the backward's final carry at the first one.
  def boundary(state, weight):
    z = jnp.where(jnp.any(mask, axis=1)[None, :], state * weight[:, None], 0.0)
    return z @ weights(1.0, jnp.sum(z, axis=0))

  d_start = boundary(h_first, jnp.exp(start - _finite_or_zero(jnp.max(start))))
  d_end = boundary(p_last, end_p)
  return d_em, expt * pairs, d_start, d_end, None


_log_z.defvjp(_log_z_fwd, _log_z_bwd)


def _log_partition_sequential(chain, unroll=1):
  em, trans, start, end, mask = chain[:5]
  return _log_z(em, trans, start, end, mask, unroll)


def _transfer_matrices(chain):
  """Per-position log transfer matrices `[N, L, K, K]`.

  Valid, linked position: `trans_ij + f_t(j)`; first valid position: every row is
  `start_j + f_t(j)` (rank one, so a product that passes it has identical
  rows); invalid position: the log-semiring identity.
  """
  em, trans, start, _, mask = chain[:5]
  k = em.shape[-1]
  first = _chain.boundaries(mask)[0]
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


def _scaled_transfer_matrices(chain):
  """Probability-space transfer matrices `[N, L, K, K]` and their log-scales `[N, L]`.

  `exp` of `_transfer_matrices` divided by its maximum, built without any
  `[N, L, K, K]` log-space temporary: with column maxima `c_j = max_i trans_ij`,
  a linked position is `exp(trans - c) * exp(f + c - top)` (a `[K, K]` table times
  a `[K]` row per position), the first valid position repeats the row
  `exp(start + f - top)`, an invalid one is the identity with scale 0.
  """
  em, trans, start, _, mask = chain[:5]
  k = em.shape[-1]
  first = _chain.boundaries(mask)[0]
  col = lax.stop_gradient(jnp.max(trans, axis=0))
  table = jnp.exp(trans - _finite_or_zero(col)[None, :])
  logits = jnp.where(first[..., None], start[None, None, :] + em, em + col[None, None, :])
  top = _finite_or_zero(lax.stop_gradient(jnp.max(logits, axis=-1)))
  row = jnp.exp(logits - top[..., None])  # [N, L, K]
  eye = jnp.eye(k, dtype=em.dtype)
  linked = jnp.where(first[..., None, None], jnp.ones((k, 1), em.dtype)[None, None],
                     table[None, None])
  mats = jnp.where(mask[..., None, None], linked * row[..., None, :], eye[None, None])
  return mats, jnp.where(mask, top, 0.0)


def _log_partition_parallel(chain):
  em, _, _, end, mask = chain[:5]
  n, _, k = em.shape
  mats, scale = _scaled_transfer_matrices(chain)
  eye = jnp.eye(k, dtype=em.dtype)
  mats = _pad_to_power_of_two(mats, 1, eye[None, None])
  scale = _pad_to_power_of_two(scale, 1, jnp.zeros((), em.dtype))
  while mats.shape[1] > 1:  # log2(L) levels: a static Python loop.
    prod = mats[:, 0::2] @ mats[:, 1::2]
    s = lax.stop_gradient(jnp.max(prod, axis=(2, 3)))
    s = jnp.where(s > 0, s, 1.0)
    mats = prod / s[..., None, None]
    scale = scale[:, 0::2] + scale[:, 1::2] + jnp.log(s)
  out = scale[:, 0] + jax.nn.logsumexp(_safe_log(mats[:, 0, 0, :]) + end[None, :], axis=1)
  return jnp.where(jnp.any(mask, axis=1), out, 0.0)


def score(emissions: ArrayLike, tags: ArrayLike, transitions: ArrayLike,
          mask: ArrayLike | None = None, *, start: ArrayLike | None = None,
          end: ArrayLike | None = None) -> jax.Array:
  """Unnormalised score of a tag sequence.

  `sum_t f_t(y_t) + sum transitions[y_prev, y_t] + start(y_first) + end(y_last)` over the
  valid positions, where `y_prev` is the tag at the previous *valid* position.

  Args:
    emissions: `[..., L, K]` floating emission scores (bf16/fp16 computed in
      float32).
    tags: integer `[..., L]` in `[0, K)` at valid positions (padding values
      are ignored).
    transitions: `[K, K]`, `transitions[i, j]` scores tag `i` followed by `j`.
    mask: optional bool `[..., L]`, True = valid; any validity pattern.
    start: optional `[K]` scores of the first valid tag.
    end: optional `[K]` scores of the last valid tag.

  Returns:
    `[...]` scores in the compute dtype; 0 for a sequence with no valid position.

  References:
    Su 2020, 《CRF用过了，不妨再了解下更快的MEMM？》,
    https://kexue.fm/archives/7213.
  """
  chain, flat = _chain.prepare(emissions, transitions, mask, start, end, tags=tags)
  return _chain.restore(_gold_score(chain, flat), chain.batch_shape)


def log_partition(emissions: ArrayLike, transitions: ArrayLike,
                  mask: ArrayLike | None = None, *, start: ArrayLike | None = None,
                  end: ArrayLike | None = None, parallel: bool = False) -> jax.Array:
  """Log of the sum of exp(score) over all tag sequences (log Z).

  Args:
    emissions: `[..., L, K]` floating emission scores.
    transitions: `[K, K]` transition scores (may hold -inf for forbidden
      transitions).
    mask: optional bool `[..., L]`, True = valid; any validity pattern.
    start: optional `[K]`.
    end: optional `[K]`.
    parallel: False: sequential scan of scaled `[N, K] @ [K, K]` products
      (fastest on CPU). True: pairwise tree of scaled `[K, K]` products,
      O(log L) depth (for accelerators and long sequences); same value.

  Returns:
    `[...]` log-partition in the compute dtype; 0 where no position is valid.

  References:
    Su 2020, 《CRF用过了，不妨再了解下更快的MEMM？》,
    https://kexue.fm/archives/7213.
  """
  chain, _ = _chain.prepare(emissions, transitions, mask, start, end)
  if parallel:
    out = _log_partition_parallel(chain)
  else:
    out = _log_partition_sequential(chain)
  return _chain.restore(out, chain.batch_shape)


def log_likelihood(emissions: ArrayLike, tags: ArrayLike, transitions: ArrayLike,
                   mask: ArrayLike | None = None, *, start: ArrayLike | None = None,
                   end: ArrayLike | None = None, parallel: bool = False) -> jax.Array:
  """Log-probability of `tags`: `score - log_partition` (negate for a loss).

  Args:
    emissions: `[..., L, K]` floating emission scores.
    tags: integer `[..., L]`.
    transitions: `[K, K]`.
    mask: optional bool `[..., L]`, True = valid.
    start: optional `[K]`.
    end: optional `[K]`.
    parallel: use the O(log L)-depth log-partition (see `log_partition`).

  Returns:
    `[...]` log-likelihoods (<= 0) in the compute dtype; 0 where no position
    is valid.

  References:
    Su 2020, 《CRF用过了，不妨再了解下更快的MEMM？》,
    https://kexue.fm/archives/7213.
  """
  chain, flat = _chain.prepare(emissions, transitions, mask, start, end, tags=tags)
  logz = _log_partition_parallel(chain) if parallel else _log_partition_sequential(chain)
  return _chain.restore(_gold_score(chain, flat) - logz, chain.batch_shape)


def marginals(emissions: ArrayLike, transitions: ArrayLike,
              mask: ArrayLike | None = None, *, start: ArrayLike | None = None,
              end: ArrayLike | None = None) -> jax.Array:
  """Posterior tag marginals `P(y_t = j | x)`, the gradient of log Z.

  Args:
    emissions: `[..., L, K]` floating emission scores.
    transitions: `[K, K]`.
    mask: optional bool `[..., L]`, True = valid.
    start: optional `[K]`.
    end: optional `[K]`.

  Returns:
    `[..., L, K]` in the compute dtype; rows sum to 1 at valid positions and
    are 0 at invalid ones.

  References:
    Su 2020, 《CRF用过了，不妨再了解下更快的MEMM？》,
    https://kexue.fm/archives/7213; marginals as the gradient of the
    log-partition.
  """
  chain, _ = _chain.prepare(emissions, transitions, mask, start, end)

  def total(em):
    return jnp.sum(_log_partition_sequential(chain._replace(emissions=em)))

  probs = jax.grad(total)(chain.emissions)
  return _chain.restore(probs, chain.batch_shape)
