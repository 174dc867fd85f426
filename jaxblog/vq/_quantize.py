"""The VQ-VAE quantizer: nearest code, straight-through output, the two losses.

`quantize` is one pure function returning a `NamedTuple`, in the spirit of
haiku's `VectorQuantizer` dict but without the `[N, K]` distances or one-hot
encodings (they are what makes the layer memory-bound). Usage statistics are
code counts from a scatter-add, so perplexity and the fraction of codes used
cost `O(N + K)` memory; with `axis_name` the counts are `psum`-ed so every
device reports the global numbers. Every quantizer in `jaxblog.vq` reports the
same two statistics (`perplexity`, `usage`), so collapse is visible whichever
one is trained.

Weights follow the article's names (Su 2019, https://kexue.fm/archives/6760:
"β" for the codebook term, "γ" for the commitment term): `codebook_weight` (Su's β,
the paper's 1) multiplies `mean((sg[z] − e)²)`, `commitment_weight` (Su's γ,
the paper's β = 0.25) multiplies `mean((z − sg[e])²)`. With EMA codebooks
(`jaxblog.vq.ema_update`) pass `codebook_weight=0`.
"""
from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
from jax import lax

from jaxblog import _checks
from jaxblog.vq import _nearest
from jaxblog.vq import _rotation

_GRADIENTS = ("straight_through", "rotation")


class QuantizeResult(NamedTuple):
  """What `quantize` returns.

  Attributes:
    quantized: `[..., D]` codes in the forward pass, encoder gradient in the
      backward pass (straight-through or rotation trick).
    indices: int32 `[...]` chosen code per vector.
    loss: scalar `codebook_weight·mean((sg[z]−e)²) + commitment_weight·mean((z−sg[e])²)`.
    perplexity: scalar `exp(entropy)` of the code usage in this batch (1 … K).
    usage: scalar fraction of the K codes used at least once in this batch.
  """
  quantized: jax.Array
  indices: jax.Array
  loss: jax.Array
  perplexity: jax.Array
  usage: jax.Array


def check_mask(mask: jax.Array | None, batch_shape: tuple[int, ...]) -> None:
  """`mask` must be bool with the batch shape `[...]` of `z`."""
  if mask is None:
    return
  _checks.require_bool("mask", mask)
  if jnp.shape(mask) != tuple(batch_shape):
    raise ValueError(
        f"mask must have the batch shape of z [...] = {tuple(batch_shape)}, got {jnp.shape(mask)}")


def code_counts(indices: jax.Array, num_codes: int, *, mask: jax.Array | None = None,
                axis_name: str | None = None) -> jax.Array:
  """float32 `[K]` number of (valid) vectors assigned to each code.

  Args:
    indices: int `[...]` code indices.
    num_codes: K.
    mask: optional bool `[...]`, `True` = counted.
    axis_name: optional mapped axis name; counts are summed over it.

  Returns:
    float32 `[K]` counts (global over `axis_name` when given).

  Example:
    >>> import jax.numpy as jnp
    >>> from jaxblog import vq
    >>> vq.code_counts(jnp.asarray([[0, 2], [2, 2]]), 4).tolist()
    [1.0, 0.0, 3.0, 0.0]

  References:
    van den Oord et al. 2017, "Neural Discrete Representation Learning"
    (arXiv:1711.00937): usage statistics for perplexity and the EMA codebook.
  """
  _checks.require_integer("indices", indices)
  check_mask(mask, jnp.shape(indices))
  flat = jnp.reshape(indices, (-1,))
  weight = (jnp.ones(flat.shape, jnp.float32) if mask is None
            else jnp.reshape(mask, (-1,)).astype(jnp.float32))
  counts = jnp.zeros((num_codes,), jnp.float32).at[flat].add(weight, mode="drop")
  if axis_name is not None:
    counts = lax.psum(counts, axis_name)
  return counts


def perplexity(counts: jax.Array) -> jax.Array:
  """`exp(−Σ p log p)` with `p = counts / Σ counts` (1 for an empty batch).

  Args:
    counts: `[K]` non-negative usage counts.

  Returns:
    scalar float32, between 1 and the number of used codes.

  References:
    van den Oord et al. 2017 (codebook usage).
  """
  counts = jnp.asarray(counts, jnp.float32)
  total = jnp.sum(counts)
  p = counts / jnp.maximum(total, 1e-12)
  entropy = -jnp.sum(jnp.where(p > 0, p * jnp.log(jnp.where(p > 0, p, 1.0)), 0.0))
  return jnp.exp(entropy)


def code_usage(counts: jax.Array) -> jax.Array:
  """Fraction of codes with a non-zero count (0 for an empty batch).

  Args:
    counts: `[..., K]` non-negative usage counts (e.g. `code_counts`).

  Returns:
    float32 `[...]` in `[0, 1]`: used codes / K.

  Example:
    >>> import jax.numpy as jnp
    >>> from jaxblog import vq
    >>> float(vq.code_usage(jnp.asarray([3.0, 0.0, 1.0, 0.0])))
    0.5
  """
  return jnp.mean((jnp.asarray(counts) > 0).astype(jnp.float32), axis=-1)


def masked_mean(sq: jax.Array, mask: jax.Array | None) -> jax.Array:
  """Mean of `sq [..., D]` over all elements, or over the rows where `mask`."""
  if mask is None:
    return jnp.mean(sq)
  w = mask.astype(sq.dtype)[..., None]
  denom = jnp.sum(w) * sq.shape[-1]
  return jnp.sum(sq * w) / jnp.maximum(denom, 1.0)


def quantize(z: jax.Array, codebook: jax.Array, *, commitment_weight: float = 0.25,
             codebook_weight: float = 1.0, metric: str = "euclidean",
             gradient: str = "straight_through", mask: jax.Array | None = None,
             axis_name: str | None = None, chunk_size: int | None = None) -> QuantizeResult:
  """Quantize `z` to its nearest codes with the VQ-VAE losses.

  Args:
    z: `[..., D]` floating encoder outputs.
    codebook: `[K, D]` floating codebook.
    commitment_weight: weight of `mean((z − sg[e])²)` (Su's γ, paper's β).
    codebook_weight: weight of `mean((sg[z] − e)²)` (Su's β); 0 for EMA codebooks.
    metric: `"euclidean"`, or `"cosine"`: `z` and the codes are L2-normalised
      first and everything (output, losses) lives on the unit sphere.
    gradient: `"straight_through"` (the article's estimator) or `"rotation"`
      (rotation trick).
    mask: optional bool `[...]`, `True` = valid; invalid rows are left out of
      the losses and the usage counts (their `quantized` is still computed).
    axis_name: optional mapped axis; usage counts for perplexity are `psum`-ed.
    chunk_size: passed to `nearest`.

  Returns:
    `QuantizeResult(quantized, indices, loss, perplexity, usage)`;
    `quantized` has the shape and dtype of `z`, `indices` int32 `[...]`.

  Example:
    >>> import jax.numpy as jnp
    >>> from jaxblog import vq
    >>> codebook = jnp.asarray([[0.0, 0.0], [1.0, 1.0]])
    >>> res = vq.quantize(jnp.asarray([[0.9, 1.2], [0.1, -0.1]]), codebook)
    >>> res.indices.tolist(), round(float(res.loss), 4), round(float(res.perplexity), 2)
    ([1, 0], 0.0219, 2.0)
    >>> float(res.usage)
    1.0

  References:
    Su 2019, 《VQ-VAE的简明介绍：量子化自编码器》, https://kexue.fm/archives/6760
    (loss with β = 1, γ = 0.25); van den Oord et al. 2017 (arXiv:1711.00937).
  """
  _nearest.check_codebook(z, codebook)
  if gradient not in _GRADIENTS:
    raise ValueError(f"gradient must be one of {_GRADIENTS}, got {gradient!r}")
  if metric not in _nearest._METRICS:
    raise ValueError(f"metric must be one of {_nearest._METRICS}, got {metric!r}")
  check_mask(mask, z.shape[:-1])
  out_dtype = jnp.result_type(z)
  dtype = jnp.promote_types(_checks.compute_dtype(out_dtype),
                            _checks.compute_dtype(jnp.result_type(codebook)))
  zf = z.astype(dtype)
  cb = codebook.astype(dtype)
  if metric == "cosine":
    zf = _nearest.l2_normalize(zf)
    cb = _nearest.l2_normalize(cb)
  indices = _nearest.nearest(lax.stop_gradient(zf), lax.stop_gradient(cb), chunk_size=chunk_size)
  codes = jnp.take(cb, indices, axis=0)
  codebook_loss = masked_mean(jnp.square(lax.stop_gradient(zf) - codes), mask)
  commitment_loss = masked_mean(jnp.square(zf - lax.stop_gradient(codes)), mask)
  loss = codebook_weight * codebook_loss + commitment_weight * commitment_loss
  if gradient == "rotation":
    quantized = _rotation.rotation_trick(zf, codes)
  else:
    quantized = _rotation.straight_through(zf, codes)
  counts = code_counts(indices, cb.shape[0], mask=mask, axis_name=axis_name)
  return QuantizeResult(quantized.astype(out_dtype), indices, loss, perplexity(counts),
                        code_usage(counts))
