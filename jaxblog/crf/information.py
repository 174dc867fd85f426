"""Entropy of a CRF and the KL divergence between two CRFs over the same lengths.

Design: both are expectations of path scores under the model `p`. With
`mu_t(j)` the tag marginals, `xi(i, j)` the expected number of `i -> j`
transitions, and `mu_first`, `mu_last` the marginals of the first and last
valid tag (all gradients of `log Z`),

  `E_p[score] = sum_t <mu_t, f_t> + <xi, transitions> + <mu_first, start>
  + <mu_last, end>`,

so `H(p) = log Z_p - E_p[score_p]` and `KL(p || q) = E_p[score_p - score_q]
- log Z_p + log Z_q`. The gradients come from the same forward-backward pass
that differentiates `log_partition` (one `jax.value_and_grad` per sequence,
vectorised with `jax.vmap` so each sequence gets its own transition counts),
and the results are differentiable again. Entries the model forbids (`-inf`
scores) have zero marginal and are left out of the sums, so constrained
models give no NaN; `KL(p || q)` is `+inf` when `q` forbids a path `p` allows.
A sequence with no valid position has entropy 0 and divergence 0.

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
import jax.numpy as jnp
from jax.typing import ArrayLike
import numpy as np

from jaxblog import _chain
from jaxblog.crf.forward import _log_z


def _expectations(chain):
  """`log Z [N]` and its gradients, one set per sequence.

  Returns:
    `(log Z [N], (mu [N, L, K], xi [N, K, K], mu_first [N, K], mu_last [N, K]))`.
  """
  em, trans, start, end, mask = chain[:5]

  def one(e, m):
    fn = lambda e, t, s, z: _log_z(e[None], t, s, z, m[None])[0]
    return jax.value_and_grad(fn, argnums=(0, 1, 2, 3))(e, trans, start, end)

  return jax.vmap(one)(em, mask)


def _weighted(prob, x):
  """`sum(prob * x)` over all but the batch axis, 0 wherever `prob` is 0.

  `x` may hold `-inf` (forbidden entries, whose probability is 0) or a
  difference `inf`/NaN there; the double `where` keeps values and gradients
  finite.
  """
  keep = prob > 0
  safe = jnp.where(keep, x, 0.0)
  axes = tuple(range(1, prob.ndim))
  return jnp.sum(jnp.where(keep, prob * safe, 0.0), axis=axes)


def _expected_score(grads, chain):
  """`E_p[score_q]` per sequence, with `grads` from `p` and the scores of `q`."""
  mu, xi, mu_first, mu_last = grads
  em, trans, start, end = chain[:4]
  n = em.shape[0]
  return (_weighted(mu, em) + _weighted(xi, jnp.broadcast_to(trans, (n,) + trans.shape))
          + _weighted(mu_first, jnp.broadcast_to(start, (n,) + start.shape))
          + _weighted(mu_last, jnp.broadcast_to(end, (n,) + end.shape)))


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
  logz, grads = _expectations(chain)
  out = jnp.where(jnp.any(chain.mask, axis=1), logz - _expected_score(grads, chain), 0.0)
  return _chain.restore(out, chain.batch_shape)


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
  p_shape, q_shape = np.shape(p_emissions), np.shape(q_emissions)
  if len(p_shape) >= 2 and len(q_shape) >= 2 and p_shape[-2:] != q_shape[-2:]:
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
  logz_p, grads = _expectations(p)
  logz_q = _log_z(*q[:5], 1)
  diff = p._replace(
      emissions=p.emissions - q.emissions, transitions=p.transitions - q.transitions,
      start=p.start - q.start, end=p.end - q.end)
  out = _expected_score(grads, diff) - logz_p + logz_q
  out = jnp.where(jnp.any(p.mask, axis=1), out, 0.0)
  return _chain.restore(out, p.batch_shape)
