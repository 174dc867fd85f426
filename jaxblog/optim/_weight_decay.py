"""Decoupled weight decay as a chain element.

Adds `rate * θ_t` (the pre-update parameter) to the update direction, before
the learning-rate scaling, so the final step is `-γ_t (h_t + λ θ_t)`: the
reference's `extend_with_weight_decay`, and exactly what `optax.adamw` does.
Excluded leaves (path-name regexes) pass through untouched; the selection is
resolved at trace time, so excluded leaves cost nothing.

References:
  Su, 《6个派生优化器的简单介绍及其实现》, https://kexue.fm/archives/7094
  (weight decay).
"""
from __future__ import annotations

from typing import Sequence

import optax

from jaxblog.optim import _names


def weight_decay(rate: float, exclude: Sequence[str] = ()) -> optax.GradientTransformation:
  """Adds `rate * param` to the update of every leaf not excluded.

  Args:
    rate: the decay rate λ (a Python/NumPy scalar, >= 0).
    exclude: regexes; leaves whose path name matches any of them (with
      `re.search`) are not decayed, e.g. `("bias", "Norm")`.

  Returns:
    An `optax.GradientTransformation` with an empty state. Its `update`
    requires `params`.

  Raises:
    ValueError: `rate` is negative or not finite, or a pattern is invalid.

  Example:
    >>> import optax, jax.numpy as jnp
    >>> from jaxblog import optim
    >>> tx = optax.chain(optax.scale_by_adam(), optim.weight_decay(0.01, exclude=("bias",)),
    ...                  optax.scale(-1e-3))
    >>> params = {"w": jnp.ones(3), "bias": jnp.ones(3)}
    >>> state = tx.init(params)

  References:
    Su, https://kexue.fm/archives/7094; Loshchilov & Hutter, "Decoupled
    Weight Decay Regularization" (arXiv:1711.05101).
  """
  try:
    rate_f = float(rate)
  except TypeError as e:
    raise TypeError(f"rate must be a number, got {rate!r}") from e
  if not rate_f >= 0.0 or rate_f == float("inf"):
    raise ValueError(f"rate must be a finite number >= 0, got {rate!r}")
  patterns = _names.compile_patterns("exclude", exclude)

  def init_fn(params):
    del params
    return optax.EmptyState()

  def update_fn(updates, state, params=None):
    if params is None:
      raise ValueError("weight_decay needs `params` in update(updates, state, params)")

    def decay(name, u, p):
      if u is None or _names.matches(patterns, name):
        return u
      return u + rate * p

    return _names.map_with_names(decay, updates, params), state

  return optax.GradientTransformation(init_fn, update_fn)
