"""k-means codebook initialisation from a batch of encoder outputs.

Lloyd's algorithm with the same building blocks as the quantizer: `nearest`
(chunked, no `[N, K]` matrix when large) and scatter-add sums. It starts from
distinct random rows (the restart sampler), and a cluster that loses all its
points keeps its previous centre. With `axis_name` the per-cluster sums and
counts are `psum`-ed and the starting rows come from the first device, so
every device ends with the same codebook (the synced k-means that
lucidrains/vector-quantize-pytorch PR #17 asks for).
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
from jax import lax
import numpy as np

from jaxblog import _checks
from jaxblog.vq import _nearest
from jaxblog.vq import _quantize
from jaxblog.vq import _restart


def kmeans_init(z: jax.Array, num_codes: int, rng: jax.Array, *, iters: int = 10,
                mask: jax.Array | None = None, axis_name: str | None = None) -> jax.Array:
  """A `[K, D]` codebook from `iters` Lloyd iterations on `z`.

  Args:
    z: `[..., D]` floating vectors (at least one valid row).
    num_codes: K >= 1.
    rng: PRNG key for the initial centres.
    iters: Lloyd iterations (>= 0; 0 returns the sampled rows).
    mask: optional bool `[...]`, only `True` rows count.
    axis_name: optional mapped axis for data-parallel (synced) k-means.

  Returns:
    `[K, D]` codebook in the float32 compute dtype of `z`. Pair it with
    `ema_init` (consistent statistics) for EMA training.

  References:
    k-means init for VQ (Zeghidour et al. 2021, SoundStream); extension of
    https://kexue.fm/archives/6760 (the quantizer it initialises).
  """
  _checks.require_floating("z", z)
  _checks.require_min_rank("z", z, 1, "[..., D]")
  if not isinstance(num_codes, (int, np.integer)) or num_codes < 1:
    raise ValueError(f"num_codes must be an int >= 1, got {num_codes!r}")
  if iters < 0:
    raise ValueError(f"iters must be >= 0, got {iters}")
  _quantize.check_mask(mask, jnp.shape(z)[:-1])
  dim = z.shape[-1]
  dtype = _checks.compute_dtype(jnp.result_type(z))
  flat = lax.stop_gradient(jnp.reshape(z, (-1, dim)).astype(dtype))
  flat_mask = None if mask is None else jnp.reshape(mask, (-1,))
  start = jnp.zeros((num_codes, dim), dtype)
  centres = _restart.reseed_codes(start, jnp.ones((num_codes,), bool), flat, rng,
                                  mask=flat_mask, axis_name=axis_name)
  weight = (jnp.ones((flat.shape[0], 1), dtype) if flat_mask is None
            else flat_mask[:, None].astype(dtype))

  def step(_, centres):
    idx = _nearest.nearest(flat, centres)
    counts = _quantize.code_counts(idx, num_codes, mask=flat_mask).astype(dtype)
    sums = jnp.zeros((num_codes, dim), dtype).at[idx].add(flat * weight)
    if axis_name is not None:
      counts, sums = lax.psum((counts, sums), axis_name)
    means = sums / jnp.maximum(counts, 1.0)[:, None]
    return jnp.where((counts > 0)[:, None], means, centres)

  return lax.fori_loop(0, iters, step, centres)
