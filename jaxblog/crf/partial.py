"""Log-likelihood of partial (ambiguous) labels: a set of allowed tags per position.

Design: with `allowed [..., L, K]` marking the tags each position may take,
the marginal log-likelihood of all consistent paths is

  `log sum_{y consistent} exp(score(y)) - log Z
  = log_partition(where(allowed, f, -inf)) - log_partition(f)`,

two forward passes of the ordinary log-partition (and its forward-backward
gradient) on the same transitions. The restricted pass only sees `-inf`
emissions where a tag is excluded, which the scaled recursion handles exactly;
the gradient is `restricted marginals - marginals`, zero at excluded entries.
A one-hot `allowed` gives the ordinary `log_likelihood`; an all-True row
leaves that position unlabelled. A valid position with no allowed tag makes
the value `-inf` (no consistent path). This is the "multi-tag" score of TF
Addons' `crf_multitag_sequence_score` turned into a likelihood, the usual loss
for partially annotated or distantly supervised tagging.

Example:
  >>> import jax.numpy as jnp
  >>> from jaxblog import crf
  >>> emissions = jnp.zeros((3, 2))          # [L, K]: 8 equally likely paths
  >>> transitions = jnp.zeros((2, 2))
  >>> allowed = jnp.array([[True, False], [True, True], [True, True]])
  >>> ll = crf.partial_log_likelihood(emissions, allowed, transitions)
  >>> print(round(float(jnp.exp(ll)), 4))   # 4 of the 8 paths start with tag 0
  0.5

References:
  Su 2020, 《CRF用过了，不妨再了解下更快的MEMM？》,
  https://kexue.fm/archives/7213 (the CRF); "Training Conditional Random
  Fields Using Incomplete Annotations" (Tsuboi et al., COLING 2008).
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
from jax.typing import ArrayLike
import numpy as np

from jaxblog import _chain, _checks
from jaxblog.crf.forward import _log_partition_parallel, _log_partition_sequential


def partial_log_likelihood(emissions: ArrayLike, allowed: ArrayLike,
                           transitions: ArrayLike, mask: ArrayLike | None = None,
                           *, start: ArrayLike | None = None,
                           end: ArrayLike | None = None,
                           parallel: bool = False) -> jax.Array:
  """Log-probability that the path lies in the allowed tag sets.

  Args:
    emissions: `[..., L, K]` floating emission scores.
    allowed: bool `[..., L, K]`, True = tag allowed at that position (leading
      axes broadcast with `emissions`); ignored at invalid positions.
    transitions: `[K, K]`, `transitions[i, j]` scores tag `i` followed by `j`.
    mask: optional bool `[..., L]`, True = valid; any validity pattern.
    start: optional `[K]` scores of the first valid tag.
    end: optional `[K]` scores of the last valid tag.
    parallel: use the O(log L)-depth log-partition (see `log_partition`).

  Returns:
    `[...]` log-likelihoods (<= 0) in the compute dtype; 0 where no position
    is valid, `-inf` where a valid position allows no tag (or every
    consistent path is forbidden by the transitions).
  """
  _checks.require_bool("allowed", allowed)
  _checks.require_min_rank("emissions", emissions, 2, "[..., L, K]")
  _checks.require_min_rank("allowed", allowed, 2, "[..., L, K]")
  em_shape, al_shape = np.shape(emissions), np.shape(allowed)
  if al_shape[-2:] != em_shape[-2:]:
    raise ValueError(
        f"allowed must have shape [..., L, K] = [..., {em_shape[-2]}, "
        f"{em_shape[-1]}] like emissions {em_shape}, got {al_shape}")
  try:
    batch = tuple(np.broadcast_shapes(em_shape[:-2], al_shape[:-2]))
  except ValueError:
    raise ValueError(
        f"allowed has shape {al_shape}, whose leading batch axes do not "
        f"broadcast with those of emissions {em_shape}") from None
  em = jnp.broadcast_to(emissions, batch + tuple(em_shape[-2:]))
  chain, _ = _chain.prepare(em, transitions, mask, start, end)
  keep = jnp.broadcast_to(allowed, tuple(chain.batch_shape) + tuple(em_shape[-2:]))
  keep = keep.reshape(chain.emissions.shape)
  restricted = chain._replace(
      emissions=jnp.where(keep, chain.emissions, -jnp.inf).astype(chain.emissions.dtype))
  logz = _log_partition_parallel if parallel else _log_partition_sequential
  out = logz(restricted) - logz(chain)
  return _chain.restore(out, chain.batch_shape)
