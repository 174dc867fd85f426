"""Dead-code restart: re-seed unused codes from encoder outputs, keeping EMA stats consistent.

A code whose EMA assignment count `N_i` fell below `threshold` is moved onto a
random encoder output of the current batch, and its statistics are reset to
`N_i = reset_size`, `m_i = reset_size · z_sampled`. Resetting both is the
point: moving only the code (the bug of espnet/espnet#6284) lets the
next `ema_update` recompute `m_i / Ñ_i` from the stale sums and undo the
restart at once.

Sampling is without replacement (Gumbel top-k over the valid rows), and the
j-th dead code takes the j-th sample, so two dead codes never land on the same
vector unless the batch has fewer valid rows than dead codes. With
`axis_name` the candidates come from the first device and are broadcast with a
`psum`, so every device re-seeds identically even with different batches.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
from jax import lax

from jaxblog import _checks
from jaxblog.vq import _ema
from jaxblog.vq import _nearest
from jaxblog.vq import _quantize


def _candidates(z, num, rng, mask, axis_name):
  """Up to `num` distinct valid rows of `z [N, D]` and how many are valid."""
  n = z.shape[0]
  take = min(num, n)
  valid = jnp.ones((n,), bool) if mask is None else mask
  keys = jnp.where(valid, jax.random.gumbel(rng, (n,), jnp.float32), -jnp.inf)
  top, rows = lax.top_k(keys, take)
  cand = jnp.take(z, rows, axis=0)
  num_valid = jnp.sum(jnp.isfinite(top).astype(jnp.int32))
  if axis_name is not None:
    first = lax.axis_index(axis_name) == 0
    cand = lax.psum(jnp.where(first, cand, 0.0), axis_name)
    num_valid = lax.psum(jnp.where(first, num_valid, 0), axis_name)
  return cand, num_valid


def reseed_codes(codebook: jax.Array, dead: jax.Array, z: jax.Array, rng: jax.Array, *,
                 mask: jax.Array | None = None, axis_name: str | None = None) -> jax.Array:
  """Replace the rows of `codebook` flagged in `dead` by random rows of `z`.

  Args:
    codebook: `[K, D]` floating codes.
    dead: bool `[K]`, `True` = re-seed this code.
    z: `[..., D]` encoder outputs to sample from (treated as constants).
    rng: PRNG key.
    mask: optional bool `[...]`, only `True` rows of `z` are sampled.
    axis_name: optional mapped axis; samples are taken from the first device.

  Returns:
    `[K, D]` codebook; unchanged where `dead` is False or no row is valid.

  References:
    Dead-code restart (Dhariwal et al. 2020; Zeghidour et al. 2021), an
    extension of the article's quantizer (https://kexue.fm/archives/6760,
    which has none).
  """
  _nearest.check_codebook(z, codebook)
  _checks.require_bool("dead", dead)
  num_codes, dim = codebook.shape
  _checks.require_shape("dead", dead, (num_codes,), "[K]")
  _quantize.check_mask(mask, jnp.shape(z)[:-1])
  return _reseed(codebook, dead, z, rng, mask, axis_name)[0]


def _reseed(codebook, dead, z, rng, mask, axis_name):
  """`reseed_codes` plus the bool `[K]` of codes actually re-seeded."""
  num_codes, dim = codebook.shape
  flat = lax.stop_gradient(jnp.reshape(z, (-1, dim)).astype(codebook.dtype))
  if flat.shape[0] == 0:
    return codebook, jnp.zeros((num_codes,), bool)
  flat_mask = None if mask is None else jnp.reshape(mask, (-1,))
  cand, num_valid = _candidates(flat, num_codes, rng, flat_mask, axis_name)
  rank = jnp.cumsum(dead.astype(jnp.int32)) - 1
  pick = jnp.take(cand, jnp.remainder(rank, jnp.maximum(num_valid, 1)), axis=0)
  restarted = dead & (num_valid > 0)
  return jnp.where(restarted[:, None], pick, codebook), restarted


def restart_dead_codes(state: _ema.EMAState, z: jax.Array, rng: jax.Array, *,
                       threshold: float = 1.0, reset_size: float | None = None,
                       mask: jax.Array | None = None,
                       axis_name: str | None = None) -> _ema.EMAState:
  """Re-seed EMA codes with `cluster_size < threshold` and reset their statistics.

  Args:
    state: `EMAState`.
    z: `[..., D]` encoder outputs of the current batch.
    rng: PRNG key (same on every device is not required with `axis_name`).
    threshold: a code is dead when its EMA count `N_i < threshold`.
    reset_size: the restarted code's new `N_i` (default `threshold`); its
      `m_i` becomes `reset_size · z_sampled` so `m_i / N_i` is the new code.
    mask: optional bool `[...]` of valid rows of `z`.
    axis_name: optional mapped axis (keeps devices identical).

  Returns:
    The new `EMAState` (live codes untouched).

  References:
    van den Oord et al. 2017 (EMA codebook); espnet/espnet#6284 (the
    stale-statistics bug).
  """
  if isinstance(threshold, (int, float)) and threshold < 0:
    raise ValueError(f"threshold must be >= 0, got {threshold}")
  size = threshold if reset_size is None else reset_size
  if isinstance(size, (int, float)) and not size > 0:
    raise ValueError(f"reset_size must be > 0, got {size} (set threshold > 0 or reset_size)")
  _nearest.check_codebook(z, state.codebook)
  _quantize.check_mask(mask, jnp.shape(z)[:-1])
  dead = state.cluster_size < threshold
  codebook, restarted = _reseed(state.codebook, dead, z, rng, mask, axis_name)
  size = jnp.asarray(size, state.cluster_size.dtype)
  cluster_size = jnp.where(restarted, size, state.cluster_size)
  embed_sum = jnp.where(restarted[:, None], codebook * size, state.embed_sum)
  return _ema.EMAState(codebook, cluster_size, embed_sum)
