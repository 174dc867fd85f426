"""Residual (multi-stage) vector quantization.

Stage `s` quantizes what the previous stages left over, `r_{s+1} = r_s − sg[e_s]`,
with its own codebook; the output is `Σ_s e_s` passed straight-through to `z`.
Each stage adds its codebook and commitment losses on its own residual, so the
encoder is pulled towards the full sum while each codebook chases its residual
(the SoundStream / lucidrains `ResidualVQ` scheme). The stages run in a
`lax.scan` over the stacked `[S, K, D]` codebooks, so compile time does not
grow with the number of stages, and every stage uses the chunked `nearest`.
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
from jaxblog.vq import _rotation


class ResidualResult(NamedTuple):
  """What `residual_quantize` returns.

  Attributes:
    quantized: `[..., D]` sum of the stage codes, straight-through to `z`.
    indices: int32 `[..., S]` code of each stage.
    loss: scalar, sum over stages of the stage losses.
    perplexity: `[S]` code-usage perplexity per stage.
    residuals: `[S, ..., D]` the (stop-gradient) input of each stage, e.g. for
      a per-stage `ema_update` under `jax.vmap`.
    usage: `[S]` fraction of each stage's codes used in this batch.
  """
  quantized: jax.Array
  indices: jax.Array
  loss: jax.Array
  perplexity: jax.Array
  residuals: jax.Array
  usage: jax.Array


def residual_quantize(z: jax.Array, codebooks: jax.Array, *, commitment_weight: float = 0.25,
                      codebook_weight: float = 1.0, mask: jax.Array | None = None,
                      axis_name: str | None = None) -> ResidualResult:
  """Quantize `z` with `S` residual stages.

  Args:
    z: `[..., D]` floating encoder outputs.
    codebooks: `[S, K, D]` one codebook per stage (S >= 1).
    commitment_weight: per-stage weight of `mean((r_s − sg[e_s])²)`.
    codebook_weight: per-stage weight of `mean((sg[r_s] − e_s)²)` (0 for EMA).
    mask: optional bool `[...]` of valid rows (losses and counts).
    axis_name: optional mapped axis for the usage counts.

  Returns:
    `ResidualResult(quantized, indices, loss, perplexity, residuals, usage)`.

  Example:
    >>> import jax.numpy as jnp
    >>> from jaxblog import vq
    >>> books = jnp.asarray([[[0.0], [2.0]], [[0.0], [0.5]]])  # S=2, K=2, D=1
    >>> res = vq.residual_quantize(jnp.asarray([[2.4], [0.1]]), books)
    >>> res.indices.tolist(), res.quantized[:, 0].tolist(), res.usage.tolist()
    ([[1, 1], [0, 0]], [2.5, 0.0], [1.0, 1.0])

  References:
    Zeghidour et al. 2021, "SoundStream: An End-to-End Neural Audio Codec"
    (arXiv:2107.03312), residual VQ; the stage quantizer is that of Su 2019,
    https://kexue.fm/archives/6760.
  """
  _checks.require_floating("codebooks", codebooks)
  if np.ndim(codebooks) != 3 or np.shape(codebooks)[0] < 1:
    raise ValueError(f"codebooks must have shape [S, K, D] with S >= 1, got {np.shape(codebooks)}")
  _nearest.check_codebook(z, codebooks[0])
  _quantize.check_mask(mask, z.shape[:-1])
  out_dtype = jnp.result_type(z)
  dtype = jnp.promote_types(_checks.compute_dtype(out_dtype),
                            _checks.compute_dtype(jnp.result_type(codebooks)))
  zf = z.astype(dtype)

  def stage(residual, codebook):
    result = _quantize.quantize(residual, codebook, commitment_weight=commitment_weight,
                                codebook_weight=codebook_weight, mask=mask,
                                axis_name=axis_name)
    codes = jnp.take(codebook.astype(dtype), result.indices, axis=0)
    out = (codes, result.indices, result.loss, result.perplexity, lax.stop_gradient(residual),
           result.usage)
    return residual - lax.stop_gradient(codes), out

  _, (codes, indices, losses, perplexities, residuals, usage) = lax.scan(
      stage, zf, codebooks.astype(dtype))
  quantized = _rotation.straight_through(zf, jnp.sum(codes, axis=0))
  return ResidualResult(quantized.astype(out_dtype), jnp.moveaxis(indices, 0, -1),
                        jnp.sum(losses), perplexities, residuals, usage)
