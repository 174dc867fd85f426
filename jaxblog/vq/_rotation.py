"""Straight-through and rotation-trick gradients for a quantizer.

Both return the quantized value in the forward pass; they differ in what the
encoder sees in the backward pass.

* `straight_through(x, y) = x + sg[y − x]`: the gradient of the identity
  (Su's generic "forward of f, gradient of identity" trick,
  https://kexue.fm/archives/6760).
* `rotation_trick(z, q)`: the output is `sg[λR]·z` with `R` the rotation that
  takes `z/‖z‖` to `q/‖q‖` in the plane they span and `λ = ‖q‖/‖z‖`, so the
  value is `q` and the gradient to `z` is `λ Rᵀ g` — it keeps the angle between
  the gradient and the code vector (Fifty et al. 2024, "Restructuring Vector
  Quantization with the Rotation Trick"). `R` is applied in Householder form,
  `R = I − 2 r rᵀ + 2 q̂ ẑᵀ` with `r = (ẑ + q̂)/‖ẑ + q̂‖`, so no `D×D` matrix is
  built. The forward value is made exactly `q` by a final straight-through.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
from jax import lax

from jaxblog import _checks


def straight_through(x: jax.Array, y: jax.Array) -> jax.Array:
  """Value of `y`, gradient of the identity to `x`: `x + sg[y − x]`.

  Args:
    x: array that receives the gradient.
    y: array with the forward value; same shape as `x` (no gradient flows to it).

  Returns:
    An array equal to `y` whose derivative with respect to `x` is the identity.

  Example:
    >>> import jax, jax.numpy as jnp
    >>> from jaxblog import vq
    >>> f = lambda x: jnp.sum(vq.straight_through(x, jnp.round(x)) * 3.0)
    >>> float(f(jnp.asarray(0.7))), float(jax.grad(f)(jnp.asarray(0.7)))
    (3.0, 3.0)

  References:
    Su 2019, 《VQ-VAE的简明介绍：量子化自编码器》, https://kexue.fm/archives/6760
    (straight-through estimator).
  """
  if jnp.shape(x) != jnp.shape(y):
    raise ValueError(f"x and y must have the same shape, got {jnp.shape(x)} and {jnp.shape(y)}")
  return x + lax.stop_gradient(y - x)


def _safe_unit(v, eps):
  sq = jnp.sum(jnp.square(v), axis=-1, keepdims=True)
  norm = jnp.sqrt(jnp.maximum(sq, eps * eps))
  return v / norm, norm


def rotation_trick(z: jax.Array, quantized: jax.Array, *, eps: float = 1e-6) -> jax.Array:
  """Value of `quantized`, gradient through the rotation-and-scale taking `z` to it.

  Args:
    z: `[..., D]` encoder outputs (receive the gradient).
    quantized: `[..., D]` chosen codes (no gradient flows to them).
    eps: norms are clamped to at least `eps`; when `z` and `quantized` are
      antipodal the reflection term is dropped (the rotation is not unique).

  Returns:
    `[..., D]` equal to `quantized`; `d out / d z = λR` with `R` orthogonal and
    `λ = ‖quantized‖ / ‖z‖`.

  References:
    Fifty et al. 2024 (rotation trick, arXiv:2410.06424), applied to the
    quantizer of https://kexue.fm/archives/6760.
  """
  _checks.require_floating("z", z)
  _checks.require_floating("quantized", quantized)
  if jnp.shape(z) != jnp.shape(quantized):
    raise ValueError(
        f"z and quantized must have the same shape, got {jnp.shape(z)} and {jnp.shape(quantized)}")
  _checks.require_min_rank("z", z, 1, "[..., D]")
  dtype = _checks.compute_dtype(jnp.result_type(z))
  zf = z.astype(dtype)
  q = lax.stop_gradient(quantized.astype(dtype))
  z_hat, z_norm = _safe_unit(lax.stop_gradient(zf), eps)
  q_hat, q_norm = _safe_unit(q, eps)
  s = z_hat + q_hat
  s_sq = jnp.sum(jnp.square(s), axis=-1, keepdims=True)
  ok = s_sq > eps
  r = jnp.where(ok, s * lax.rsqrt(jnp.where(ok, s_sq, 1.0)), 0.0)
  dot_r = jnp.sum(r * zf, axis=-1, keepdims=True)
  dot_z = jnp.sum(z_hat * zf, axis=-1, keepdims=True)
  rotated = (q_norm / z_norm) * (zf - 2.0 * r * dot_r + 2.0 * q_hat * dot_z)
  return straight_through(rotated, q).astype(jnp.result_type(z))
