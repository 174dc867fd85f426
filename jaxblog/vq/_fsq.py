"""Finite scalar quantization (FSQ): a fixed grid instead of a learned codebook.

Each of the `d` channels is squashed into a bounded interval and rounded to
one of `L_i` levels, so the implicit codebook is the product grid of
`Π L_i` points and there is nothing to learn, collapse or re-seed: no
codebook loss, no commitment loss, no EMA. The squashing is
`f(z) = tanh(z + s)·h − o` with half-width `h = (L − 1)(1 + ε)/2`, offset
`o = 1/2` for even `L` (0 for odd) and shift `s = atanh(o/h)`, so `f(0) = 0`
and rounding `f(z)` gives the integers `−⌊L/2⌋ … ⌊L/2⌋` (odd `L`) or
`−L/2 … L/2 − 1` (even `L`). The rounded value goes through straight-through
and is divided by `⌊L/2⌋`, so codes lie in `[−1, 1]`. The `ε` widens the
interval slightly so the outermost levels are reached as often as the others.

A code's index is its mixed-radix number, digit `i` = level of channel `i`
(channel 0 is the least significant), which `fsq_codes_to_indices` and
`fsq_indices_to_codes` convert exactly.

`residual_fsq` chains `S` FSQ stages on the residual, stage `s` seeing it
magnified by `(L − 1)^s` (the step of the previous grid, per channel) and its
codes scaled back down, so every stage resolves the previous stage's rounding
error on the same grid.

References:
  Mentzer et al. 2023, "Finite Scalar Quantization: VQ-VAE Made Simple"
  (arXiv:2309.15505); the VQ-VAE it replaces: Su 2019,
  https://kexue.fm/archives/6760.
"""
from __future__ import annotations

import math
from typing import NamedTuple, Sequence

import jax
import jax.numpy as jnp
from jax import lax
import numpy as np

from jaxblog import _checks
from jaxblog.vq import _quantize
from jaxblog.vq import _rotation


class FSQResult(NamedTuple):
  """What `fsq` and `residual_fsq` return.

  Attributes:
    quantized: `[..., d]` codes in `[−1, 1]` (the sum of the stage codes for
      `residual_fsq`), straight-through to the bounded input.
    indices: int32 `[...]` code index (`[..., S]`, one per stage, for
      `residual_fsq`).
    perplexity: scalar (`[S]`) `exp(entropy)` of the code usage in the batch.
    usage: scalar (`[S]`) fraction of the `Π L_i` codes used in the batch.
  """
  quantized: jax.Array
  indices: jax.Array
  perplexity: jax.Array
  usage: jax.Array


def check_levels(levels: Sequence[int]) -> tuple[int, ...]:
  """`levels` as a tuple of ints >= 2 whose product fits in int32."""
  try:
    out = tuple(int(x) for x in levels)
  except TypeError as e:
    raise TypeError(f"levels must be a sequence of ints, got {levels!r}") from e
  if not out or any(x < 2 or x != l for x, l in zip(out, levels)):
    raise ValueError(f"levels must be a non-empty sequence of ints >= 2, got {levels!r}")
  if math.prod(out) > np.iinfo(np.int32).max:
    raise ValueError(f"levels {out} give {math.prod(out)} codes, more than int32 indices hold")
  return out


def _check_z(z: jax.Array, levels: tuple[int, ...]) -> None:
  _checks.require_floating("z", z)
  _checks.require_min_rank("z", z, 1, "[..., d]")
  if np.shape(z)[-1] != len(levels):
    raise ValueError(
        f"z [..., d] must have d = len(levels) = {len(levels)} channels, got shape {np.shape(z)}")


def _index_constants(levels: tuple[int, ...]):
  """Per-channel `⌊L/2⌋` (float64) and the mixed-radix basis (int64)."""
  half_width = np.asarray([l // 2 for l in levels], np.float64)
  basis = np.cumprod((1,) + levels[:-1]).astype(np.int64)
  return half_width, basis


def _bound_constants(levels: tuple[int, ...], eps: float):
  """Per-channel float64 half-width `h`, offset `o` and shift `s` of the bound."""
  if not eps > 0:
    raise ValueError(f"eps must be > 0 (even levels need a wider interval), got {eps}")
  lv = np.asarray(levels, np.float64)
  half = (lv - 1.0) * (1.0 + eps) / 2.0
  offset = np.where(np.asarray(levels) % 2 == 0, 0.5, 0.0)
  return half, offset, np.arctanh(offset / half)


def channels(a, ndim: int, dtype) -> jax.Array:
  """A per-channel constant `[d]` shaped `[1, …, 1, d]` to broadcast against rank `ndim`."""
  a = jnp.asarray(a, dtype)
  return jnp.reshape(a, (1,) * (ndim - 1) + a.shape)


def _round_codes(z: jax.Array, levels: tuple[int, ...], eps: float) -> jax.Array:
  """Bounded, rounded (straight-through) codes in `[−1, 1]`, float32 `[..., d]`."""
  half, offset, shift = _bound_constants(levels, eps)
  half_width, _ = _index_constants(levels)
  c = lambda a: channels(a, z.ndim, z.dtype)
  bounded = jnp.tanh(z + c(shift)) * c(half) - c(offset)
  return _rotation.straight_through(bounded, jnp.round(bounded)) / c(half_width)


def fsq_codes_to_indices(codes: jax.Array, levels: Sequence[int]) -> jax.Array:
  """Mixed-radix index of each FSQ code (channel 0 least significant).

  Args:
    codes: `[..., d]` codes on the grid of `levels` (as `fsq(...).quantized`).
    levels: `d` level counts.

  Returns:
    int32 `[...]` in `[0, Π L_i)`.

  Example:
    >>> import jax.numpy as jnp
    >>> from jaxblog import vq
    >>> vq.fsq_codes_to_indices(jnp.asarray([[-1.0, 0.0], [1.0, 0.5]]), (3, 4)).tolist()
    [6, 11]
  """
  levels = check_levels(levels)
  _check_z(codes, levels)
  half_width, basis = _index_constants(levels)
  codes = codes.astype(_checks.compute_dtype(jnp.result_type(codes)))
  hw = channels(half_width, codes.ndim, codes.dtype)
  digits = jnp.round(codes * hw + hw).astype(jnp.int32)
  digits = jnp.clip(digits, 0, channels(levels, codes.ndim, jnp.int32) - 1)
  return jnp.sum(digits * channels(basis, codes.ndim, jnp.int32), axis=-1)


def fsq_indices_to_codes(indices: jax.Array, levels: Sequence[int]) -> jax.Array:
  """The FSQ codes `[..., d]` of mixed-radix indices (inverse of `fsq_codes_to_indices`).

  Args:
    indices: int `[...]` in `[0, Π L_i)`.
    levels: `d` level counts.

  Returns:
    float32 `[..., d]` codes in `[−1, 1]`.

  Example:
    >>> import jax.numpy as jnp
    >>> from jaxblog import vq
    >>> vq.fsq_indices_to_codes(jnp.asarray([6, 11]), (3, 4)).tolist()
    [[-1.0, 0.0], [1.0, 0.5]]
  """
  levels = check_levels(levels)
  _checks.require_integer("indices", indices)
  half_width, basis = _index_constants(levels)
  idx = jnp.asarray(indices).astype(jnp.int32)[..., None]
  digits = (idx // channels(basis, idx.ndim, jnp.int32)) % channels(levels, idx.ndim, jnp.int32)
  hw = channels(half_width, idx.ndim, jnp.float32)
  return (digits.astype(jnp.float32) - hw) / hw


def _stats(indices, num_codes, mask, axis_name):
  counts = _quantize.code_counts(indices, num_codes, mask=mask, axis_name=axis_name)
  return _quantize.perplexity(counts), _quantize.code_usage(counts)


def fsq(z: jax.Array, levels: Sequence[int], *, eps: float = 1e-3,
        mask: jax.Array | None = None, axis_name: str | None = None) -> FSQResult:
  """Finite scalar quantization of `z` on the grid of `levels`.

  Args:
    z: `[..., d]` floating inputs, `d = len(levels)` (project to `d` channels
      first; the paper uses e.g. `levels=(8, 5, 5, 5)` for 1000 codes).
    levels: `d` ints >= 2, the number of levels of each channel.
    eps: widening of the bounded interval (see the module docstring).
    mask: optional bool `[...]`, `True` = counted in the usage statistics.
    axis_name: optional mapped axis; usage counts are `psum`-ed over it.

  Returns:
    `FSQResult(quantized, indices, perplexity, usage)`; `quantized` has the
    shape and dtype of `z`. There is no auxiliary loss.

  Raises:
    ValueError, TypeError: bad `levels`, or `z` not floating / with
      `d != len(levels)`.

  Example:
    >>> import jax.numpy as jnp
    >>> from jaxblog import vq
    >>> res = vq.fsq(jnp.asarray([[-3.0, 0.1], [0.2, 3.0]]), levels=(3, 4))
    >>> res.quantized.tolist(), res.indices.tolist()
    ([[-1.0, 0.0], [0.0, 0.5]], [6, 10])

  References:
    Mentzer et al. 2023 (arXiv:2309.15505).
  """
  levels = check_levels(levels)
  _check_z(z, levels)
  _quantize.check_mask(mask, np.shape(z)[:-1])
  out_dtype = jnp.result_type(z)
  codes = _round_codes(z.astype(_checks.compute_dtype(out_dtype)), levels, eps)
  indices = fsq_codes_to_indices(lax.stop_gradient(codes), levels)
  ppl, usage = _stats(indices, math.prod(levels), mask, axis_name)
  return FSQResult(codes.astype(out_dtype), indices, ppl, usage)


def residual_fsq(z: jax.Array, levels: Sequence[int], num_stages: int, *, eps: float = 1e-3,
                 mask: jax.Array | None = None, axis_name: str | None = None) -> FSQResult:
  """`num_stages` FSQ stages, each quantizing the magnified residual of the last.

  Stage `s` quantizes `r_s · (L − 1)^s` (per channel) and contributes its codes
  times `(L − 1)^(−s)`; `r_{s+1} = r_s − sg[stage codes]`. The gradient of
  the sum reaches `z` through every stage's bounded, straight-through
  rounding.

  Args:
    z: `[..., d]` floating inputs, `d = len(levels)`.
    levels: `d` ints >= 2 (the same grid at every stage).
    num_stages: S >= 1.
    eps: as in `fsq`.
    mask: optional bool `[...]` for the usage statistics.
    axis_name: optional mapped axis for the usage counts.

  Returns:
    `FSQResult` with `quantized [..., d]` (sum of the scaled stage codes),
    `indices` int32 `[..., S]`, `perplexity [S]`, `usage [S]`. Decode
    indices with `Σ_s fsq_indices_to_codes(indices[..., s], levels) ·
    (L − 1)^(−s)`.

  Example:
    >>> import jax.numpy as jnp
    >>> from jaxblog import vq
    >>> res = vq.residual_fsq(jnp.asarray([[0.3, -0.2]]), (5, 5), num_stages=2)
    >>> res.indices.tolist()
    [[13, 6]]
    >>> decoded = sum(vq.fsq_indices_to_codes(res.indices[..., s], (5, 5)) / 4.0 ** s
    ...               for s in range(2))
    >>> bool(jnp.allclose(decoded, res.quantized))
    True

  References:
    Mentzer et al. 2023 (arXiv:2309.15505); residual quantization as in
    Zeghidour et al. 2021 (arXiv:2107.03312).
  """
  levels = check_levels(levels)
  if isinstance(num_stages, bool) or not isinstance(num_stages, int) or num_stages < 1:
    raise ValueError(f"num_stages must be an int >= 1, got {num_stages!r}")
  _check_z(z, levels)
  _quantize.check_mask(mask, np.shape(z)[:-1])
  out_dtype = jnp.result_type(z)
  dtype = _checks.compute_dtype(out_dtype)
  step = np.asarray(levels, np.float64) - 1.0
  scales = jnp.asarray(step[None, :] ** -np.arange(num_stages)[:, None], dtype)  # [S, d]
  num_codes = math.prod(levels)

  def stage(residual, scale):
    scale = channels(scale, residual.ndim, dtype)
    codes = _round_codes(residual / scale, levels, eps) * scale
    indices = fsq_codes_to_indices(lax.stop_gradient(codes / scale), levels)
    ppl, usage = _stats(indices, num_codes, mask, axis_name)
    return residual - lax.stop_gradient(codes), (codes, indices, ppl, usage)

  _, (codes, indices, ppl, usage) = lax.scan(stage, z.astype(dtype), scales)
  return FSQResult(jnp.sum(codes, axis=0).astype(out_dtype), jnp.moveaxis(indices, 0, -1),
                   ppl, usage)
