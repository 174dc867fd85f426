"""EMA codebooks (VQ-VAE paper, appendix A.1) with Laplace-smoothed cluster sizes.

The state keeps the two running sums the paper defines, per code `i`:
`N_i ← λN_i + (1−λ)n_i` (assignments) and `m_i ← λm_i + (1−λ)Σ_{k(j)=i} z_j`,
and the codebook `e_i = m_i / Ñ_i` with the Laplace-smoothed size
`Ñ_i = (N_i + ε) / (Σ N + Kε) · Σ N` (Sonnet's form), so a code that stops
being used never divides by zero.

Design choices:
* `ema_init` starts from *consistent* statistics, `m_i = c_i · e_i` with
  `c_i = cluster_size` (default 1, i.e. one pseudo-observation at the initial
  code), rather than zero sums. Zero `N` with non-zero `m` is the inconsistency
  behind several reported blow-ups (nadavbh12/VQ-VAE#11,
  lucidrains#66); `restart_dead_codes` keeps the same invariant.
* Statistics are a scatter-add over the flat batch, `O(N·D + K·D)` memory, no
  `[N, K]` one-hot. With `axis_name` both sums are `psum`-ed before the update,
  so under data parallelism every device computes the identical codebook.
"""
from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
from jax import lax
import numpy as np

from jaxblog import _checks
from jaxblog.vq import _nearest
from jaxblog.vq import _quantize


class EMAState(NamedTuple):
  """EMA codebook state.

  Attributes:
    codebook: `[K, D]` current codes `embed_sum / smoothed(cluster_size)`.
    cluster_size: `[K]` EMA of assignment counts (`N_i`, unsmoothed).
    embed_sum: `[K, D]` EMA of the sum of assigned vectors (`m_i`).
  """
  codebook: jax.Array
  cluster_size: jax.Array
  embed_sum: jax.Array


def ema_init(codebook: jax.Array, *, cluster_size: float | jax.Array = 1.0) -> EMAState:
  """EMA state whose statistics reproduce `codebook` exactly.

  Args:
    codebook: `[K, D]` floating initial codes (random, or `kmeans_init`).
    cluster_size: scalar or `[K]` pseudo-count per code (must be > 0); the
      initial `embed_sum` is `cluster_size · codebook`, so both stay consistent.

  Returns:
    `EMAState(codebook, cluster_size [K], embed_sum [K, D])` in float32 (or
    the codebook's wider float dtype).

  References:
    van den Oord et al. 2017 (VQ-VAE EMA, arXiv:1711.00937); Su 2019 mentions
    it, https://kexue.fm/archives/6760.
  """
  _checks.require_floating("codebook", codebook)
  if np.ndim(codebook) != 2 or np.shape(codebook)[0] < 1:
    raise ValueError(f"codebook must have shape [K, D] with K >= 1, got {np.shape(codebook)}")
  dtype = _checks.compute_dtype(jnp.result_type(codebook))
  codebook = jnp.asarray(codebook, dtype)
  num_codes = codebook.shape[0]
  if isinstance(cluster_size, (int, float)) and not cluster_size > 0:
    raise ValueError(f"cluster_size must be > 0, got {cluster_size}")
  sizes = jnp.broadcast_to(jnp.asarray(cluster_size, dtype), (num_codes,))
  return EMAState(codebook, sizes, codebook * sizes[:, None])


def check_decay(decay: float) -> None:
  if isinstance(decay, (int, float)) and not 0.0 <= decay < 1.0:
    raise ValueError(f"decay must be in [0, 1), got {decay}")


def smoothed_codebook(cluster_size: jax.Array, embed_sum: jax.Array,
                      eps: float) -> jax.Array:
  """`embed_sum / Ñ` with Laplace-smoothed sizes `Ñ_i = (N_i+ε)/(ΣN+Kε)·ΣN`."""
  total = jnp.sum(cluster_size)
  num_codes = cluster_size.shape[0]
  smoothed = (cluster_size + eps) / (total + num_codes * eps) * total
  return embed_sum / jnp.maximum(smoothed, jnp.finfo(embed_sum.dtype).tiny)[:, None]


def ema_update(state: EMAState, z: jax.Array, indices: jax.Array, *, decay: float = 0.99,
               eps: float = 1e-5, mask: jax.Array | None = None,
               axis_name: str | None = None) -> EMAState:
  """One EMA step of the codebook towards the mean of its assigned vectors.

  Args:
    state: `EMAState` from `ema_init` (or a previous update).
    z: `[..., D]` floating encoder outputs (treated as constants).
    indices: int `[...]` their codes (e.g. `quantize(...).indices`).
    decay: λ in `[0, 1)`.
    eps: Laplace smoothing ε ≥ 0.
    mask: optional bool `[...]`; only `True` rows enter the statistics.
    axis_name: optional mapped axis name; counts and sums are `psum`-ed so the
      codebook is identical on every device.

  Returns:
    The new `EMAState`.

  Example:
    >>> import jax.numpy as jnp
    >>> from jaxblog import vq
    >>> state = vq.ema_init(jnp.zeros((2, 1)))
    >>> z = jnp.asarray([[1.5], [1.5], [-4.0]])
    >>> state = vq.ema_update(state, z, jnp.asarray([0, 0, 1]), decay=0.5, eps=0.0)
    >>> state.cluster_size.tolist(), state.codebook[:, 0].tolist()
    ([1.5, 1.0], [1.0, -2.0])

  References:
    van den Oord et al. 2017, appendix A.1 (arXiv:1711.00937).
  """
  _nearest.check_codebook(z, state.codebook)
  _checks.require_integer("indices", indices)
  if jnp.shape(indices) != jnp.shape(z)[:-1]:
    raise ValueError(
        f"indices must have the batch shape of z [..., D] = {jnp.shape(z)}, got {jnp.shape(indices)}")
  _quantize.check_mask(mask, jnp.shape(indices))
  check_decay(decay)
  if isinstance(eps, (int, float)) and eps < 0:
    raise ValueError(f"eps must be >= 0, got {eps}")
  num_codes, dim = state.codebook.shape
  dtype = state.embed_sum.dtype
  flat_z = lax.stop_gradient(jnp.reshape(z, (-1, dim)).astype(dtype))
  flat_idx = jnp.reshape(indices, (-1,))
  if mask is not None:
    flat_z = flat_z * jnp.reshape(mask, (-1, 1)).astype(dtype)
  counts = _quantize.code_counts(indices, num_codes, mask=mask).astype(dtype)
  sums = jnp.zeros((num_codes, dim), dtype).at[flat_idx].add(flat_z, mode="drop")
  if axis_name is not None:
    counts, sums = lax.psum((counts, sums), axis_name)
  cluster_size = decay * state.cluster_size + (1.0 - decay) * counts
  embed_sum = decay * state.embed_sum + (1.0 - decay) * sums
  codebook = smoothed_codebook(cluster_size, embed_sum, eps)
  return EMAState(codebook.astype(state.codebook.dtype), cluster_size, embed_sum)
