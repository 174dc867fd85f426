"""Grouped (multi-head) VQ and a low-dimensional codebook behind projections.

`grouped_quantize` splits the feature axis `D` into `G` groups of `D/G`
channels and quantizes each with its own codebook (`[G, K, D/G]`) or one
shared codebook (`[K, D/G]`): the effective vocabulary is `K^G` while every
search is over `K` codes of `D/G` channels. It is `quantize` `jax.vmap`-ed
over the group axis, so it is exactly `G` separate `quantize` calls with the
per-group losses averaged (the same scale as one `quantize` over all `D`
channels) and per-group usage statistics.

`projected_quantize` looks codes up in a small space: `h = z W_in (+ b_in)`
is quantized against a `[K, d]` codebook (`d < D`) and the result is mapped
back with `W_out (+ b_out)`. The losses live in the `d`-dimensional space.
Small `d`, especially with `metric="cosine"`, is the "factorized codes"
recipe that raises codebook usage. The projections are plain arrays so this
stays framework-free; a Flax module owns them as parameters.

References:
  Su 2019, https://kexue.fm/archives/6760 (the quantizer); Yu et al. 2021,
  "Vector-quantized Image Modeling with Improved VQGAN" (arXiv:2110.04627),
  factorized low-dimensional codes; grouped / multi-head VQ as in Baevski
  et al. 2020, "wav2vec 2.0" (arXiv:2006.11477).
"""
from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
from jax import lax
import numpy as np

from jaxblog import _checks
from jaxblog.vq import _quantize


def grouped_quantize(z: jax.Array, codebooks: jax.Array, *, groups: int | None = None,
                     mask: jax.Array | None = None, axis_name: str | None = None,
                     **kwargs: Any) -> _quantize.QuantizeResult:
  """Quantizes `G` channel groups of `z`, each with its own or a shared codebook.

  Args:
    z: `[..., D]` floating encoder outputs, `D` divisible by `G`.
    codebooks: `[G, K, D/G]` one codebook per group, or `[K, D/G]` shared by
      all groups (then `groups` is required).
    groups: G for a shared codebook; must equal `codebooks.shape[0]` if given
      with per-group codebooks.
    mask: optional bool `[...]` of valid rows (losses and counts).
    axis_name: optional mapped axis for the usage counts.
    **kwargs: passed to `quantize` (`commitment_weight`, `codebook_weight`,
      `metric`, `gradient`, `chunk_size`).

  Returns:
    `QuantizeResult` with `quantized [..., D]`, `indices` int32 `[..., G]`,
    `loss` the mean of the `G` group losses, and `perplexity [G]`,
    `usage [G]` per group.

  Raises:
    ValueError, TypeError: shapes that do not split, or bad arguments.

  Example:
    >>> import jax.numpy as jnp
    >>> from jaxblog import vq
    >>> shared = jnp.asarray([[0.0], [1.0]])  # K=2 codes of D/G=1 channel
    >>> res = vq.grouped_quantize(jnp.asarray([[0.9, 0.2, 0.6]]), shared, groups=3)
    >>> res.indices.tolist(), res.quantized.tolist()
    ([[1, 0, 1]], [[1.0, 0.0, 1.0]])

  References:
    Baevski et al. 2020 (grouped codebooks); Su 2019,
    https://kexue.fm/archives/6760.
  """
  _checks.require_floating("z", z)
  _checks.require_floating("codebooks", codebooks)
  _checks.require_min_rank("z", z, 1, "[..., D]")
  shape = np.shape(codebooks)
  if len(shape) == 3:
    if groups is not None and groups != shape[0]:
      raise ValueError(
          f"groups={groups} does not match codebooks [G, K, D/G] of shape {shape}")
    groups, shared = shape[0], False
  elif len(shape) == 2:
    if groups is None:
      raise ValueError(f"a shared codebook [K, D/G] of shape {shape} needs `groups`")
    shared = True
  else:
    raise ValueError(f"codebooks must have shape [G, K, D/G] or [K, D/G], got {shape}")
  if isinstance(groups, bool) or not isinstance(groups, (int, np.integer)) or groups < 1:
    raise ValueError(f"groups must be an int >= 1, got {groups!r}")
  dim = np.shape(z)[-1]
  if dim != groups * shape[-1]:
    raise ValueError(
        f"z [..., D] with D = {dim} must split into G = {groups} groups of the codebooks' "
        f"{shape[-1]} channels (z shape {np.shape(z)}, codebooks shape {shape})")
  _quantize.check_mask(mask, np.shape(z)[:-1])
  zg = jnp.moveaxis(jnp.reshape(z, z.shape[:-1] + (groups, shape[-1])), -2, 0)

  def one(zi, cb):
    return _quantize.quantize(zi, cb, mask=mask, axis_name=axis_name, **kwargs)

  res = jax.vmap(one, in_axes=(0, None if shared else 0))(zg, codebooks)
  quantized = jnp.reshape(jnp.moveaxis(res.quantized, 0, -2), z.shape)
  return _quantize.QuantizeResult(quantized, jnp.moveaxis(res.indices, 0, -1),
                                  jnp.mean(res.loss), res.perplexity, res.usage)


def projected_quantize(z: jax.Array, codebook: jax.Array, w_in: jax.Array, w_out: jax.Array,
                       *, b_in: jax.Array | None = None, b_out: jax.Array | None = None,
                       **kwargs: Any) -> _quantize.QuantizeResult:
  """Quantizes `z W_in + b_in` against a `[K, d]` codebook and maps back with `W_out`.

  Args:
    z: `[..., D]` floating encoder outputs.
    codebook: `[K, d]` codebook in the projected space.
    w_in: `[D, d]` input projection.
    w_out: `[d, D]` output projection.
    b_in: optional `[d]` input bias.
    b_out: optional `[D]` output bias.
    **kwargs: passed to `quantize` (weights, `metric`, `gradient`, `mask`,
      `axis_name`, `chunk_size`).

  Returns:
    `QuantizeResult` whose `quantized` is `[..., D]` (`q W_out + b_out` with
    `q` the straight-through codes) in the dtype of `z`; `loss`, `indices`,
    `perplexity` and `usage` are those of the `d`-dimensional quantizer.

  Raises:
    ValueError, TypeError: mismatched projection shapes.

  Example:
    >>> import jax.numpy as jnp
    >>> from jaxblog import vq
    >>> w_in, w_out = jnp.asarray([[1.0], [1.0]]), jnp.asarray([[0.5, 0.5]])
    >>> res = vq.projected_quantize(jnp.asarray([[0.4, 0.5]]), jnp.asarray([[0.0], [1.0]]),
    ...                             w_in, w_out)
    >>> res.indices.tolist(), res.quantized.tolist()
    ([1], [[0.5, 0.5]])

  References:
    Yu et al. 2021 (arXiv:2110.04627), factorized codes.
  """
  _checks.require_floating("z", z)
  _checks.require_min_rank("z", z, 1, "[..., D]")
  dim = np.shape(z)[-1]
  _checks.require_floating("w_in", w_in)
  _checks.require_floating("w_out", w_out)
  if np.ndim(w_in) != 2 or np.shape(w_in)[0] != dim:
    raise ValueError(f"w_in must have shape [D={dim}, d], got {np.shape(w_in)}")
  low = np.shape(w_in)[1]
  _checks.require_shape("w_out", w_out, (low, dim), "[d, D]")
  if b_in is not None:
    _checks.require_shape("b_in", b_in, (low,), "[d]")
  if b_out is not None:
    _checks.require_shape("b_out", b_out, (dim,), "[D]")
  out_dtype = jnp.result_type(z)
  dtype = _checks.compute_dtype(out_dtype)
  hi = lax.Precision.HIGHEST
  h = jnp.matmul(z.astype(dtype), w_in.astype(dtype), precision=hi)
  if b_in is not None:
    h = h + jnp.reshape(b_in.astype(dtype), (1,) * (h.ndim - 1) + (low,))
  res = _quantize.quantize(h, codebook, **kwargs)
  out = jnp.matmul(res.quantized.astype(dtype), w_out.astype(dtype), precision=hi)
  if b_out is not None:
    out = out + jnp.reshape(b_out.astype(dtype), (1,) * (out.ndim - 1) + (dim,))
  return res._replace(quantized=out.astype(out_dtype))
