"""Nearest-code search without the `[N, K, D]` tensor, and without a full `[N, K]` one.

The squared distance `‖z − e‖² = ‖z‖² − 2 z·e + ‖e‖²` is ranked per row, so the
row constant `‖z‖²` drops out (the article's code, https://kexue.fm/archives/6760,
expands the distance the same way). The score `z·e − ‖e‖²/2` — the largest is the nearest — comes
out of one GEMM on `[z, 1]` and `[e, −‖e‖²/2]`, with no elementwise pass over
the scores. Two more things make it fast and small on XLA:CPU (docs/vq.md):

* the first index of the maximum is found as `min(where(s == max(s), iota, K))`,
  two plain reductions, instead of the variadic `argmax` reduce that is ~10×
  slower per element; it keeps the lowest-index tie rule exactly;
* when the `[N, K]` score matrix would be large, rows are processed in chunks by
  a `lax.fori_loop` whose body slices `z` in place (the last chunk is shifted
  back to end at row N, overlapping its predecessor, so no padded copy of `z` is
  ever made). Peak extra memory is one `[chunk, K]` score block.

Cosine codebooks rank by `z·ê` with `ê = e / ‖e‖` (the norm of `z` does not
change the ranking).
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
from jax import lax
import numpy as np

from jaxblog import _checks

# A [chunk, K] float32 score block of this many bytes stays in L2/L3
# cache on CPU hosts and is small next to any accelerator's memory.
_CHUNK_BYTES = 2 << 20
_METRICS = ("euclidean", "cosine")


def check_codebook(z: jax.Array, codebook: jax.Array) -> None:
  """Trace-time checks shared by every function that pairs `z` with a codebook."""
  _checks.require_floating("z", z)
  _checks.require_floating("codebook", codebook)
  if np.ndim(codebook) != 2:
    raise ValueError(f"codebook must have shape [K, D], got shape {np.shape(codebook)}")
  _checks.require_min_rank("z", z, 1, "[..., D]")
  num_codes, dim = np.shape(codebook)
  if num_codes < 1:
    raise ValueError(f"codebook must have K >= 1 codes, got shape {np.shape(codebook)}")
  if np.shape(z)[-1] != dim:
    raise ValueError(
        f"z feature dimension must match codebook [K, D]: z has shape {np.shape(z)}, "
        f"codebook has shape {np.shape(codebook)}")


def l2_normalize(x: jax.Array, axis: int = -1, eps: float = 1e-12) -> jax.Array:
  """`x / max(‖x‖, eps)` along `axis` (zero vectors stay zero, no NaN)."""
  sq = jnp.sum(jnp.square(x), axis=axis, keepdims=True)
  return x * lax.rsqrt(jnp.maximum(sq, eps * eps))


def _first_max_index(scores):
  """Index of the first maximum along the last axis (cheap two-reduce form)."""
  num_codes = scores.shape[-1]
  best = jnp.max(scores, axis=-1, keepdims=True)
  iota = lax.broadcasted_iota(jnp.int32, scores.shape, scores.ndim - 1)
  idx = jnp.min(jnp.where(scores == best, iota, num_codes), axis=-1)
  # A NaN row matches nothing; keep the index in range rather than return K.
  return jnp.minimum(idx, num_codes - 1)


def _block_indices(zc, codebook_aug):
  """Nearest indices of one `[C, D]` block.

  The score `z·e − ‖e‖²/2` (= −(‖z − e‖² − ‖z‖²)/2) comes straight out of
  one GEMM on `[z, 1]` and `[e, −‖e‖²/2]`, so no elementwise pass over the
  `[C, K]` block is needed before the two reductions.
  """
  zc = zc.astype(codebook_aug.dtype)
  ones = jnp.ones(zc.shape[:-1] + (1,), zc.dtype)
  zc_aug = jnp.concatenate([zc, ones], axis=-1)
  scores = lax.dot_general(zc_aug, codebook_aug, (((1,), (1,)), ((), ())),
                           precision=lax.Precision.HIGHEST)
  return _first_max_index(scores)


def nearest(z: jax.Array, codebook: jax.Array, *, metric: str = "euclidean",
            chunk_size: int | None = None) -> jax.Array:
  """Index of the nearest codebook row for every vector in `z`.

  Args:
    z: `[..., D]` floating vectors (bf16/fp16 are compared in float32).
    codebook: `[K, D]` floating codes, `K >= 1`.
    metric: `"euclidean"` (squared distance, as in the article) or `"cosine"`
      (largest `z·e / ‖e‖`, i.e. nearest on the unit sphere).
    chunk_size: rows per block of the score matrix; default keeps a
      `[chunk, K]` float32 block near 2 MiB, and no chunking when the whole
      `[N, K]` matrix is that small.

  Returns:
    int32 `[...]`: `argmin_k ‖z − e_k‖²` (ties go to the lowest index).
    Never materialises `[N, K, D]`; peak temporary is one `[chunk, K]` block.

  Example:
    >>> import jax.numpy as jnp
    >>> from jaxblog import vq
    >>> codebook = jnp.asarray([[0.0, 0.0], [1.0, 1.0], [1.0, 1.0]])
    >>> vq.nearest(jnp.asarray([[0.9, 0.8], [-1.0, 0.2]]), codebook).tolist()  # ties: lowest
    [1, 0]

  References:
    Su 2019, 《VQ-VAE的简明介绍：量子化自编码器》, https://kexue.fm/archives/6760
    (nearest code, matmul-form distances).
  """
  check_codebook(z, codebook)
  if metric not in _METRICS:
    raise ValueError(f"metric must be one of {_METRICS}, got {metric!r}")
  dtype = jnp.promote_types(_checks.compute_dtype(jnp.result_type(z)),
                            _checks.compute_dtype(jnp.result_type(codebook)))
  num_codes, dim = codebook.shape
  batch_shape = z.shape[:-1]
  flat = jnp.reshape(z, (-1, dim))  # cast per block: no float32 copy of a bf16 z
  codebook = codebook.astype(dtype)
  if metric == "cosine":
    codebook = l2_normalize(codebook)
    bias = jnp.zeros((num_codes, 1), dtype)
  else:
    bias = -0.5 * jnp.sum(jnp.square(codebook), axis=-1, keepdims=True)
  codebook_aug = jnp.concatenate([codebook, bias], axis=-1)
  n = flat.shape[0]
  if n == 0:
    return jnp.zeros(batch_shape, jnp.int32)
  if chunk_size is None:
    chunk_size = max(8, _CHUNK_BYTES // (4 * num_codes))
  if chunk_size < 1:
    raise ValueError(f"chunk_size must be positive, got {chunk_size}")
  if n <= chunk_size:
    return jnp.reshape(_block_indices(flat, codebook_aug), batch_shape)

  num_chunks = -(-n // chunk_size)

  def body(i, out):
    # The last block ends at row n and may overlap the previous one; the
    # overlapping rows get the same indices, so writing them twice is harmless.
    start = jnp.minimum(i * chunk_size, n - chunk_size)
    zc = lax.dynamic_slice_in_dim(flat, start, chunk_size, axis=0)
    return lax.dynamic_update_slice_in_dim(
        out, _block_indices(zc, codebook_aug), start, axis=0)

  out = lax.fori_loop(0, num_chunks, body, jnp.zeros((n,), jnp.int32))
  return jnp.reshape(out, batch_shape)
