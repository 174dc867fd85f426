"""Layer adaptation: the LAMB-style trust ratio as a chain element.

Each leaf's update direction `u` is rescaled to `‖θ‖ · u / ‖u‖` (ratio 1
where either norm is 0 or the leaf is excluded). Placed after the base
direction and weight decay and before the learning-rate scaling, so that
with Adam as the base the chain is LAMB.

Two things the peers lack: a regex exclusion list for the ratio itself, and
`layer_axis`, which gives one ratio per slice of a stacked (`nn.scan`-style)
parameter `[L, ...]` instead of one ratio for the whole stack. Norms are taken
once, in float32, as `sqrt(sum(x*x))` so XLA can fuse the reductions with the
producer of `u` and no parameter-sized temporary is needed for the norm.
Like the reference, a leaf whose squared norm underflows to 0 (entries below
~1e-19 in float32) counts as zero and keeps ratio 1.

References:
  Su, 《6个派生优化器的简单介绍及其实现》, https://kexue.fm/archives/7094
  (layer adaptation);
  You et al., "Large Batch Optimization for Deep Learning: Training BERT in
  76 minutes" (LAMB).
"""
from __future__ import annotations

from typing import Mapping, Sequence

import jax.numpy as jnp
import optax

from jaxblog import _checks
from jaxblog.optim import _names


def _sq_norm(x, axis):
  xf = x.astype(_checks.compute_dtype(x.dtype))
  return jnp.sum(xf * xf, axis=axis, keepdims=True)


def _resolve_axis(layer_axis, name, ndim):
  if layer_axis is None:
    return None
  if isinstance(layer_axis, int):
    axis = layer_axis
  else:
    axis = None
    for pattern, ax in layer_axis:
      if pattern.search(name):
        axis = ax
        break
    if axis is None:
      return None
  if not -ndim <= axis < ndim:
    raise ValueError(
        f"layer_axis={axis} is out of range for leaf {name!r} of rank {ndim}")
  return axis % ndim


def layer_adaptation(
    exclude: Sequence[str] = (),
    *,
    layer_axis: int | Mapping[str, int] | None = None,
) -> optax.GradientTransformation:
  """Rescales each leaf's update to `‖θ‖ · u / ‖u‖` (the trust ratio).

  Args:
    exclude: regexes; matching leaves (by path name, `re.search`) keep ratio 1.
    layer_axis: `None` (one ratio per leaf), an int (every leaf is a stack of
      layers along that axis; one ratio per slice), or a mapping
      `{regex: axis}` applying the axis to leaves whose path name matches
      (first match wins; other leaves get one ratio per leaf).

  Returns:
    An `optax.GradientTransformation` with an empty state; `update` requires
    `params`. Updates keep their dtype.

  Raises:
    ValueError: an invalid pattern, or (at trace time) a `layer_axis` out of
      range for a leaf's rank.

  Example:
    >>> import optax, jax.numpy as jnp
    >>> from jaxblog import optim
    >>> lamb = optax.chain(optax.scale_by_adam(eps=1e-6), optim.weight_decay(0.01),
    ...                    optim.layer_adaptation(exclude=("bias",)), optax.scale(-1e-3))

  References:
    Su, https://kexue.fm/archives/7094; You et al. 2019 (LAMB,
    arXiv:1904.00962).
  """
  patterns = _names.compile_patterns("exclude", exclude)
  if layer_axis is not None and not isinstance(layer_axis, int):
    if not isinstance(layer_axis, Mapping):
      raise TypeError(f"layer_axis must be None, an int or a mapping, got {layer_axis!r}")
    layer_axis = tuple(
        (_names.compile_patterns("layer_axis", k)[0], int(v))
        for k, v in layer_axis.items())

  def init_fn(params):
    del params
    return optax.EmptyState()

  def update_fn(updates, state, params=None):
    if params is None:
      raise ValueError("layer_adaptation needs `params` in update(updates, state, params)")

    def adapt(name, u, p):
      if u is None or _names.matches(patterns, name):
        return u
      if u.shape != p.shape:
        raise ValueError(
            f"layer_adaptation: update {name!r} has shape {u.shape} but param has "
            f"shape {p.shape}")
      axis = _resolve_axis(layer_axis, name, u.ndim)
      reduce = None if axis is None else tuple(i for i in range(u.ndim) if i != axis)
      p2 = _sq_norm(p, reduce)
      u2 = _sq_norm(u, reduce)
      ok = (p2 > 0) & (u2 > 0)
      ratio = jnp.where(ok, jnp.sqrt(p2) / jnp.sqrt(jnp.where(ok, u2, 1.0)), 1.0)
      return (u * ratio).astype(u.dtype)

    return _names.map_with_names(adapt, updates, params), state

  return optax.GradientTransformation(init_fn, update_fn)
