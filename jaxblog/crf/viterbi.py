"""Batched on-device Viterbi decoding: best path, k best paths, parallel.

Design:
- `viterbi` runs the max-plus forward recursion and stores only the `[L, ...]`
  scores, not back-pointers. The backtrack (a reverse `lax.scan`) recomputes
  the arg-max over `K` for the one chosen tag per step, never with a variadic
  `argmax` (about 10x slower than `max` per element on XLA:CPU). Both the max-plus step and that arg-max are
  unrolled selects (`where(a >= b, a, b)`), which XLA:CPU fuses into one
  loop; `jnp.max` lowers to a NaN-propagating maximum that costs more per
  element. The step folds 8 chains of running maxima joined by a tree, the
  arg-max is a pairwise tree. Ties go to the lowest tag index.
- `viterbi(..., parallel=True)` is O(log L) depth throughout: the max-plus
  prefix products come from `lax.associative_scan`, the back-pointers of all
  positions are computed at once, and the backtrack itself is an associative
  scan that composes back-pointer maps (`[K]` index arrays). It follows the
  same tie rule as the sequential one. It does O(L K^3) work: for
  accelerators.
- `kbest_viterbi` keeps the `k` best partial paths per tag (`lax.top_k` over
  `K * k` candidates) and stores their back-pointers.

Masks of any validity pattern are handled like in `jaxblog.crf.forward`:
invalid positions carry the state, the first valid position restarts from
`start`. Tags at invalid positions are returned as 0; a sequence with no
valid position has best score 0. Shapes: `L` positions, `K` tags.

A jitted decoder exports with `jax.export`, including a symbolic batch axis
(`jax.export.symbolic_shape("b")`), for serving without the Python package.

Example:
  >>> import jax
  >>> import jax.numpy as jnp
  >>> from jaxblog import crf
  >>> emissions = jnp.array([[2.0, 0.0], [0.0, 1.0], [1.0, 0.0]])   # [L, K]
  >>> transitions = jnp.array([[0.0, -2.0], [0.0, 0.5]])
  >>> tags, best = crf.viterbi(emissions, transitions)
  >>> tags.tolist(), float(best)
  ([0, 0, 0], 3.0)
  >>> paths, scores = crf.kbest_viterbi(emissions, transitions, 2)
  >>> paths.tolist(), scores.tolist()
  ([[0, 0, 0], [1, 1, 0]], [3.0, 2.5])
  >>> b, = jax.export.symbolic_shape("b")
  >>> exported = jax.export.export(jax.jit(crf.viterbi))(
  ...     jax.ShapeDtypeStruct((b, 3, 2), jnp.float32),
  ...     jax.ShapeDtypeStruct((2, 2), jnp.float32))
  >>> exported.call(emissions[None], transitions)[0].tolist()
  [[0, 0, 0]]
"""
from __future__ import annotations

import jax
from jax import lax
import jax.numpy as jnp
from jax.typing import ArrayLike

from jaxblog import _chain
from jaxblog.crf.forward import _transfer_matrices


def first_argmax(x: jax.Array, axis: int = -1) -> jax.Array:
  """Index of the first maximum along `axis` (cheaper than `argmax` on CPU)."""
  top = jnp.max(x, axis=axis, keepdims=True)
  iota = lax.broadcasted_iota(jnp.int32, x.shape, x.ndim + axis if axis < 0 else axis)
  return jnp.min(jnp.where(x == top, iota, x.shape[axis]), axis=axis)


# The max-plus step and the backtrack arg-max are unrolled selects up to this
# many tags; beyond it the program would grow too large.
_TREE_MAX_K = 128


def _select_max(values, indices=None):
  """Pairwise maximum of equally shaped arrays; with `indices`, also the arg-max.

  A tree of `where(a >= b, a, b)`: XLA:CPU fuses it into one loop with short
  dependency chains, and a select is cheaper than the NaN-propagating `max`.
  The left operand holds the lower indices, so ties go to the lowest index.
  """
  while len(values) > 1:
    pairs = range(0, len(values) - 1, 2)
    take = [values[i] >= values[i + 1] for i in pairs]
    merged = [jnp.where(c, values[i], values[i + 1]) for c, i in zip(take, pairs)]
    if indices is not None:
      chosen = [jnp.where(c, indices[i], indices[i + 1]) for c, i in zip(take, pairs)]
      indices = chosen + indices[len(values) - 1:] if len(values) % 2 else chosen
    values = merged + values[len(values) - 1:] if len(values) % 2 else merged
  return values[0] if indices is None else (values[0], indices[0])


def _chained_max(values, chains=8):
  """Maximum of equally shaped arrays: `chains` running maxima, then a tree.

  Each chain folds a contiguous block of leaves with `where(a >= b, a, b)`;
  the chains' results meet in `_select_max`. At K = 64 the max-plus step ran
  7-9% faster than the pure pairwise tree (presumably fewer live values); at
  K = 8 and 20 it is the same (BUILD_NOTES.md, issue 4).
  """
  size = -(-len(values) // chains)
  heads = []
  for lo in range(0, len(values), size):
    acc = values[lo]
    for v in values[lo + 1:lo + size]:
      acc = jnp.where(acc >= v, acc, v)
    heads.append(acc)
  return _select_max(heads)


def _viterbi_sequential(chain):
  """Max-plus scan storing scores, then a reverse scan recomputing one arg-max.

  Layout: below 32 tags the state is `[K, N]` (tags x batch), so per-sequence
  masks broadcast along the major axis, which XLA:CPU vectorises; from 32
  tags the `[N, K]` layout's contiguous rows win.
  """
  em, trans, start, end, mask = chain[:5]
  first, last, _ = _chain.boundaries(mask)
  n, _, k = em.shape
  tree = k <= _TREE_MAX_K
  tags_major = k < 32
  if tags_major:
    em_steps = jnp.transpose(em, (1, 2, 0))                   # [L, K, N]
    per_seq, per_tag = (lambda v: v[None, :]), (lambda v: v[:, None])
    leaves = lambda d: [trans[i][:, None] + d[i][None, :] for i in range(k)]
    reduce_max = lambda d: jnp.max(trans[:, :, None] + d[:, None, :], axis=0)
    column = lambda d, nxt: d + jnp.take(trans, nxt, axis=1)
    rows = lambda c: [c[i] for i in range(k)]
    argmax = lambda c: first_argmax(c, axis=0)
  else:
    em_steps = jnp.swapaxes(em, 0, 1)                         # [L, N, K]
    per_seq, per_tag = (lambda v: v[:, None]), (lambda v: v[None, :])
    leaves = lambda d: [d[:, i:i + 1] + trans[i][None, :] for i in range(k)]
    reduce_max = lambda d: jnp.max(d[:, None, :] + trans.T[None, :, :], axis=-1)
    column = lambda d, nxt: d + trans.T[nxt]
    rows = lambda c: [c[:, i] for i in range(k)]
    argmax = first_argmax

  # The scores overwrite the (freshly copied) time-major emissions in place:
  # one [L, ...] temporary instead of two (temporaries are page-faulted again
  # on every call).
  def forward(carry, xs):
    delta, steps = carry
    t, m_t, first_t = xs
    best = _chained_max(leaves(delta)) if tree else reduce_max(delta)
    new = jnp.where(per_seq(first_t), per_tag(start), best) + steps[t]
    delta = jnp.where(per_seq(m_t), new, delta)
    return (delta, lax.dynamic_update_index_in_dim(steps, delta, t, 0)), None

  init = (jnp.zeros(em_steps.shape[1:], em.dtype), em_steps)
  (final, deltas), _ = lax.scan(forward, init, (jnp.arange(em.shape[1]), mask.T, first.T))

  def backward(nxt, xs):
    d_t, m_t, last_t = xs
    cand = jnp.where(per_seq(last_t), d_t + per_tag(end), column(d_t, nxt))
    if tree:
      tag = _select_max(rows(cand), [jnp.int32(i) for i in range(k)])[1]
      tag = jnp.broadcast_to(tag, (n,))
    else:
      tag = argmax(cand)
    tag = jnp.where(m_t, tag, nxt)
    return tag, tag

  _, tags = lax.scan(backward, jnp.zeros((n,), jnp.int32),
                     (deltas, mask.T, last.T), reverse=True)
  tags = jnp.where(mask, tags.T, 0)
  top = jnp.max(final + per_tag(end), axis=0 if tags_major else 1)
  best = jnp.where(jnp.any(mask, axis=1), top, 0.0)
  return tags, best


def _maxplus(a, b):
  """Max-plus product of `[..., K, K]` matrices."""
  return jnp.max(a[..., :, :, None] + b[..., None, :, :], axis=-2)


def _compose(earlier, later):
  """Index maps `[..., K]` applied in sequence: `result[j] = later[earlier[j]]`."""
  return jnp.take_along_axis(later, earlier, axis=-1)


def _viterbi_parallel(chain):
  em, trans, _, end, mask = chain[:5]
  first, _, _ = _chain.boundaries(mask)
  n, length, k = em.shape
  logm = _transfer_matrices(chain)
  prefix = lax.associative_scan(_maxplus, logm, axis=1)
  # Rows are identical once the rank-one first-position matrix has been passed.
  delta = prefix[:, :, 0, :]  # [N, L, K]
  prev = jnp.concatenate([jnp.zeros_like(delta[:, :1]), delta[:, :-1]], axis=1)
  linked = mask & ~first
  iota = jnp.broadcast_to(jnp.arange(k, dtype=jnp.int32), (n, length, k))
  bp = first_argmax(prev[:, :, None, :] + trans.T[None, None, :, :], axis=-1)
  bp = jnp.where(linked[..., None], bp, iota)  # identity map elsewhere
  # maps[t] sends the tag at the next valid position to the tag at t.
  maps = jnp.concatenate([bp[:, 1:], iota[:, :1]], axis=1)
  # Suffix compositions: scan the time-reversed maps, new map applied last.
  suffix = lax.associative_scan(_compose, jnp.flip(maps, axis=1), axis=1)
  suffix = jnp.flip(suffix, axis=1)
  final = delta[:, -1] + end[None, :]
  last_tag = first_argmax(final)
  tags = jnp.take_along_axis(suffix, last_tag[:, None, None], axis=-1)[..., 0]
  tags = jnp.where(mask, tags, 0)
  best = jnp.where(jnp.any(mask, axis=1), jnp.max(final, axis=1), 0.0)
  return tags, best


def viterbi(emissions: ArrayLike, transitions: ArrayLike,
            mask: ArrayLike | None = None, *, start: ArrayLike | None = None,
            end: ArrayLike | None = None,
            parallel: bool = False) -> tuple[jax.Array, jax.Array]:
  """Highest-scoring tag sequence, batched and on device.

  Args:
    emissions: `[..., L, K]` floating emission scores.
    transitions: `[K, K]`; -inf entries are never used by a returned path
      (unless every path is forbidden).
    mask: optional bool `[..., L]`, True = valid; any validity pattern.
    start: optional `[K]`.
    end: optional `[K]`.
    parallel: False: sequential scan (fastest on CPU). True: O(log L)-depth
      max-plus associative scan with a parallel back-pointer composition.

  Returns:
    `(tags int32 [..., L], best_score [...])`; tags are 0 at invalid
    positions, `best_score` equals `score(emissions, tags, ...)` and is 0
    where no position is valid.

  References:
    Su 2020, 《CRF用过了，不妨再了解下更快的MEMM？》,
    https://kexue.fm/archives/7213 (decoding).
  """
  chain, _ = _chain.prepare(emissions, transitions, mask, start, end)
  tags, best = (_viterbi_parallel if parallel else _viterbi_sequential)(chain)
  return (_chain.restore(tags, chain.batch_shape),
          _chain.restore(best, chain.batch_shape))


def kbest_viterbi(emissions: ArrayLike, transitions: ArrayLike, k: int,
                  mask: ArrayLike | None = None, *, start: ArrayLike | None = None,
                  end: ArrayLike | None = None) -> tuple[jax.Array, jax.Array]:
  """The `k` highest-scoring tag sequences, best first.

  Args:
    emissions: `[..., L, K]` floating emission scores.
    transitions: `[K, K]`.
    k: number of paths (static positive int).
    mask: optional bool `[..., L]`, True = valid.
    start: optional `[K]`.
    end: optional `[K]`.

  Returns:
    `(tags int32 [..., k, L], scores [..., k])`, scores descending. When fewer
    than `k` distinct paths exist the extra scores are -inf (their tags are
    unspecified). A sequence with no valid position has one path of score 0
    (the rest -inf).

  References:
    Su 2020, 《CRF用过了，不妨再了解下更快的MEMM？》,
    https://kexue.fm/archives/7213; k-best (list) Viterbi as in allennlp's
    `viterbi_tags(top_k=...)` and torch-struct's KMax semiring.
  """
  if not isinstance(k, int) or k < 1:
    raise ValueError(f"k must be a positive int, got {k!r}")
  chain, _ = _chain.prepare(emissions, transitions, mask, start, end)
  em, trans, start_v, end_v, m = chain[:5]
  first, _, _ = _chain.boundaries(m)
  n, length, num = em.shape
  neg = jnp.full((), -jnp.inf, em.dtype)
  rank0 = jnp.arange(k) == 0

  def forward(delta, xs):
    f_t, m_t, first_t = xs
    cand = delta[:, None, :, :] + trans.T[None, :, :, None]  # [N, j, i, r]
    vals, idx = lax.top_k(cand.reshape(n, num, num * k), k)
    fresh = jnp.where(rank0[None, None, :], start_v[None, :, None], neg)
    new = jnp.where(first_t[:, None, None], fresh, vals) + f_t[:, :, None]
    return jnp.where(m_t[:, None, None], new, delta), idx.astype(jnp.int32)

  init = jnp.where(rank0[None, None, :], jnp.zeros((n, num, k), em.dtype), neg)
  xs = (jnp.swapaxes(em, 0, 1), m.T, first.T)
  final, pointers = lax.scan(forward, init, xs)
  scores, flat = lax.top_k((final + end_v[None, :, None]).reshape(n, num * k), k)
  any_valid = jnp.any(m, axis=1)
  empty = jnp.where(rank0[None, :], 0.0, neg)
  scores = jnp.where(any_valid[:, None], scores, empty)

  def backward(carry, xs):
    tag, rank = carry
    ptr, m_t, first_t = xs
    came = jnp.take_along_axis(ptr.reshape(n, num * k), tag * k + rank, axis=1)
    step_back = m_t[:, None] & ~first_t[:, None]
    new_tag = jnp.where(step_back, came // k, tag)
    new_rank = jnp.where(step_back, came % k, rank)
    return (new_tag, new_rank), tag

  init_back = (flat // k, flat % k)
  _, tags = lax.scan(backward, init_back, (pointers, m.T, first.T), reverse=True)
  tags = jnp.where(m[:, None, :], jnp.moveaxis(tags, 0, 2), 0)
  return (_chain.restore(tags, chain.batch_shape),
          _chain.restore(scores, chain.batch_shape))
