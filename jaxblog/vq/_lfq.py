"""Lookup-free quantization (LFQ): each channel is a bit, the codebook is `{−1, 1}^d`.

The code of `z ∈ R^d` is `sign(z)` (zero counts as −1), read as a `d`-bit
index (bit `i` set iff `z_i > 0`; channel 0 is the least significant bit,
as in `fsq_codes_to_indices`). No distances to `2^d` codes are computed for
the forward pass, which is what lets MAGVIT-v2 grow the vocabulary to 2^18.

The entropy penalty keeps the codes used: with the soft assignment
`p(c | z) ∝ exp(−‖z − c‖²/τ)` over all codes, the loss term is
`E_z[H(p(·|z))] − λ·H(E_z[p(·|z)])` — confident per sample, diverse over
the batch. Because `‖z − c‖²` is a sum over channels, `p(·|z)` factorises
into independent bits with `p(bit_i = 1 | z) = sigmoid(4 z_i / τ)`, so the
per-sample entropy is exactly the sum of `d` binary entropies: no `2^d`
anything. The batch ("codebook") entropy does not factorise (the mean of
product distributions is not a product). `entropy="exact"` computes it over
all `2^d` codes (an `[N, 2^d]` matrix, for small `d`); `"factorized"` sums
the binary entropies of the batch-mean bit probabilities instead, an upper
bound on the exact value that costs `O(N·d)` and is what large `d` needs.

References:
  Yu et al. 2023, "Language Model Beats Diffusion — Tokenizer is Key to
  Visual Generation" (MAGVIT-v2, arXiv:2310.05737); the VQ-VAE losses it
  keeps: Su 2019, https://kexue.fm/archives/6760.
"""
from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
from jax import lax
import numpy as np

from jaxblog import _checks
from jaxblog.vq import _quantize
from jaxblog.vq import _rotation
from jaxblog.vq._fsq import channels

_ENTROPY = ("exact", "factorized")
_MAX_BITS = 24  # usage statistics count every one of the 2^d codes


class LFQResult(NamedTuple):
  """What `lfq` returns.

  Attributes:
    quantized: `[..., d]` codes `±1`, straight-through to `z`.
    indices: int32 `[...]` `d`-bit code index.
    loss: scalar `commitment_weight·mean((z − sg[q])²) + entropy_weight·
      (per_sample_entropy − diversity_weight·codebook_entropy)`.
    per_sample_entropy: scalar mean over the batch of `H(p(·|z))` (nats).
    codebook_entropy: scalar `H(E_z[p(·|z)])` (nats; exact or factorised).
    perplexity: scalar `exp(entropy)` of the hard code usage in the batch.
    usage: scalar fraction of the `2^d` codes used in the batch.
  """
  quantized: jax.Array
  indices: jax.Array
  loss: jax.Array
  per_sample_entropy: jax.Array
  codebook_entropy: jax.Array
  perplexity: jax.Array
  usage: jax.Array


def _check_bits(name: str, dim: int) -> None:
  if not 1 <= dim <= _MAX_BITS:
    raise ValueError(f"{name}: LFQ needs 1 <= d <= {_MAX_BITS} channels, got d = {dim}")


def lfq_codes_to_indices(codes: jax.Array) -> jax.Array:
  """`d`-bit index of `±1` codes: bit `i` set iff `codes[..., i] > 0`.

  Args:
    codes: `[..., d]` real codes (or any real `z`: only the signs matter).

  Returns:
    int32 `[...]` in `[0, 2^d)`.

  Example:
    >>> import jax.numpy as jnp
    >>> from jaxblog import vq
    >>> vq.lfq_codes_to_indices(jnp.asarray([[1.0, -1.0, 1.0], [-1.0, 1.0, 1.0]])).tolist()
    [5, 6]
  """
  _checks.require_min_rank("codes", codes, 1, "[..., d]")
  _check_bits("codes", np.shape(codes)[-1])
  weights = channels(1 << np.arange(np.shape(codes)[-1]), np.ndim(codes), jnp.int32)
  return jnp.sum(jnp.where(jnp.asarray(codes) > 0, weights, 0), axis=-1).astype(jnp.int32)


def lfq_indices_to_codes(indices: jax.Array, dim: int) -> jax.Array:
  """The `±1` codes `[..., dim]` of `dim`-bit indices (inverse of `lfq_codes_to_indices`).

  Args:
    indices: int `[...]` in `[0, 2^dim)`.
    dim: number of bits `d`.

  Returns:
    float32 `[..., dim]` with entries `±1`.

  Example:
    >>> import jax.numpy as jnp
    >>> from jaxblog import vq
    >>> vq.lfq_indices_to_codes(jnp.asarray([5]), 3).tolist()
    [[1.0, -1.0, 1.0]]
  """
  _checks.require_integer("indices", indices)
  _check_bits("dim", dim)
  idx = jnp.asarray(indices, jnp.int32)[..., None]
  bits = (idx >> channels(np.arange(dim), idx.ndim, jnp.int32)) & 1
  return jnp.where(bits == 1, 1.0, -1.0).astype(jnp.float32)


def _binary_entropy(logit: jax.Array) -> jax.Array:
  """`H(sigmoid(logit))` in nats, stable for large |logit|."""
  p = jax.nn.sigmoid(logit)
  return -(p * jax.nn.log_sigmoid(logit) + (1.0 - p) * jax.nn.log_sigmoid(-logit))


def _entropy(p: jax.Array) -> jax.Array:
  return -jnp.sum(jnp.where(p > 0, p * jnp.log(jnp.where(p > 0, p, 1.0)), 0.0), axis=-1)


def _weighted_mean(x: jax.Array, w: jax.Array | None, axis_name: str | None) -> jax.Array:
  """Mean of `x [N, ...]` over rows weighted by `w [N]` (global over `axis_name`)."""
  if w is None:
    total, count = jnp.sum(x, axis=0), jnp.asarray(x.shape[0], x.dtype)
  else:
    total = jnp.tensordot(w, x, axes=1)
    count = jnp.sum(w)
  if axis_name is not None:
    total, count = lax.psum((total, count), axis_name)
  return total / jnp.maximum(count, 1.0)


def lfq(z: jax.Array, *, commitment_weight: float = 0.25, entropy_weight: float = 0.1,
        diversity_weight: float = 1.0, temperature: float = 0.01, entropy: str = "exact",
        mask: jax.Array | None = None, axis_name: str | None = None) -> LFQResult:
  """Lookup-free quantization of `z` with the MAGVIT-v2 entropy penalty.

  Args:
    z: `[..., d]` floating inputs, `1 <= d <= 24`.
    commitment_weight: weight of `mean((z − sg[sign z])²)`.
    entropy_weight: weight of the entropy term.
    diversity_weight: λ, weight of the batch entropy inside the entropy term.
    temperature: τ of the soft assignment `p(c|z) ∝ exp(−‖z − c‖²/τ)`.
    entropy: `"exact"` (batch entropy over all `2^d` codes; an `[N, 2^d]`
      matrix) or `"factorized"` (sum of per-bit entropies, `O(N·d)`).
    mask: optional bool `[...]`; only `True` rows enter losses and statistics.
    axis_name: optional mapped axis; batch means and usage counts are global.

  Returns:
    `LFQResult(quantized, indices, loss, per_sample_entropy,
    codebook_entropy, perplexity, usage)`; `quantized` has the shape and
    dtype of `z`.

  Raises:
    ValueError, TypeError: `z` not floating or `d` out of range, unknown
      `entropy`, non-positive `temperature`, a bad `mask`.

  Example:
    >>> import jax.numpy as jnp
    >>> from jaxblog import vq
    >>> res = vq.lfq(jnp.asarray([[0.5, -2.0], [-0.1, 0.3]]), temperature=1.0)
    >>> res.quantized.tolist(), res.indices.tolist(), float(res.usage)
    ([[1.0, -1.0], [-1.0, 1.0]], [1, 2], 0.5)

  References:
    Yu et al. 2023, MAGVIT-v2 (arXiv:2310.05737), lookup-free quantization
    and the entropy penalty.
  """
  _checks.require_floating("z", z)
  _checks.require_min_rank("z", z, 1, "[..., d]")
  dim = np.shape(z)[-1]
  _check_bits("z", dim)
  if entropy not in _ENTROPY:
    raise ValueError(f"entropy must be one of {_ENTROPY}, got {entropy!r}")
  if isinstance(temperature, (int, float)) and not temperature > 0:
    raise ValueError(f"temperature must be > 0, got {temperature}")
  _quantize.check_mask(mask, np.shape(z)[:-1])
  out_dtype = jnp.result_type(z)
  zf = z.astype(_checks.compute_dtype(out_dtype))
  codes = jnp.where(zf > 0, 1.0, -1.0).astype(zf.dtype)
  quantized = _rotation.straight_through(zf, codes)
  indices = lfq_codes_to_indices(codes)
  commitment = _quantize.masked_mean(jnp.square(zf - codes), mask)

  flat = jnp.reshape(zf, (-1, dim))
  w = None if mask is None else jnp.reshape(mask, (-1,)).astype(zf.dtype)
  logits = 4.0 * flat / temperature  # log-odds of each bit being +1
  per_sample = _weighted_mean(jnp.sum(_binary_entropy(logits), axis=-1), w, axis_name)
  if entropy == "factorized":
    bit_p = _weighted_mean(jax.nn.sigmoid(logits), w, axis_name)
    codebook = jnp.sum(_entropy(jnp.stack([bit_p, 1.0 - bit_p], axis=-1)))
  else:
    # log p(c|z) = Σ_i log p(bit_i = c_i | z): one GEMM against the code bits.
    bits = np.asarray((np.arange(2 ** dim)[:, None] >> np.arange(dim)) & 1, np.float32)
    log_on, log_off = jax.nn.log_sigmoid(logits), jax.nn.log_sigmoid(-logits)
    hi = lax.Precision.HIGHEST
    log_p = (jnp.matmul(log_on, jnp.asarray(bits.T), precision=hi)
             + jnp.matmul(log_off, jnp.asarray(1.0 - bits.T), precision=hi))
    codebook = _entropy(_weighted_mean(jnp.exp(log_p), w, axis_name))
  loss = commitment_weight * commitment + entropy_weight * (
      per_sample - diversity_weight * codebook)
  counts = _quantize.code_counts(indices, 2 ** dim, mask=mask, axis_name=axis_name)
  return LFQResult(quantized.astype(out_dtype), indices, loss, per_sample, codebook,
                   _quantize.perplexity(counts), _quantize.code_usage(counts))
