"""Lazy (row-sparse) updates for embedding-like parameters.

Momentum optimizers keep moving embedding rows of tokens absent from the
batch. For leaves selected by path-name regexes, a row (slice along all
but the last axis; the last axis holds the features) counts as *touched*
iff its raw gradient row is not all zero; untouched rows get a zero update.

* `freeze_state=False` (default, the reference): the inner state still moves
  for every row (Adam moments decay everywhere); only the params are gated.
* `freeze_state=True` (LazyAdam, TF-Addons semantics): inner-state leaves
  that have the param's shape also keep their old values on untouched rows.
  Inner-state subtrees are recognised as "param-like" when they have the
  params' tree structure (e.g. Adam's `mu`, `nu`).

The mask comes from the gradient entering this wrapper (computed once per
leaf as `any(g != 0, axis=-1)`), so it is exact unless a touched row's
gradient is exactly zero. Cost is dense: one extra read of the gradient.
With `freeze_state=True`, XLA:CPU copies each frozen state tree once per
step (the update and the selected state both read the old state, so it
cannot be overwritten in place); see BUILD_NOTES.md for the measured cost.

References:
  SPEC.md §1.6 (《6个派生优化器的简单介绍及其实现》, lazy optimization;
  kexue.fm 6869).
"""
from __future__ import annotations

from typing import Sequence

import jax
import jax.numpy as jnp
import optax

from jaxblog.optim import _names


def _row_mask(g, fused_reduce=True):
  """[..., 1] bool: rows whose gradient is not all zero (NaN counts as touched).

  `max|g| != 0` fuses with its producer on XLA:CPU, whereas a bool
  `any(g != 0)` goes through a [..., d] temporary; but with frozen state the
  bool form happens to save one copied state tree, so both are kept (see
  BUILD_NOTES.md, bench_optim).
  """
  if g.ndim == 0:
    return g != 0
  if fused_reduce:
    return jnp.max(jnp.abs(g), axis=-1, keepdims=True) != 0
  return jnp.any(g != 0, axis=-1, keepdims=True)


def _freeze(old_state, new_state, params_def, masks):
  """Keeps `old` on untouched rows in every params-shaped inner-state subtree."""
  def is_param_like(x):
    return jax.tree.structure(x) == params_def

  def select(old, new):
    if jax.tree.structure(old) != params_def:
      return new
    def leaf(mask, o, n):
      # Counters (integer leaves) always advance; moments of the param's
      # shape (any rank, scalars included) keep their old untouched rows.
      if mask is None or o is None or jnp.shape(o) != jnp.shape(n) or \
          jnp.ndim(o) != jnp.ndim(mask) or \
          not jnp.issubdtype(jnp.result_type(o), jnp.floating):
        return n
      return jnp.where(mask, n, o)
    return jax.tree.map(leaf, masks, old, new, is_leaf=lambda x: x is None)

  return jax.tree.map(select, old_state, new_state, is_leaf=is_param_like)


def lazy(inner: optax.GradientTransformation, include: Sequence[str] = (".*",),
         freeze_state: bool = False) -> optax.GradientTransformation:
  """Gates the updates of untouched rows of the selected leaves.

  Args:
    inner: a complete transformation (already scaled by the learning rate).
    include: regexes; leaves whose path name matches any (`re.search`) are
      lazy. Default: every leaf.
    freeze_state: also keep the inner state of untouched rows (true
      LazyAdam) where the inner state has the param's shape.

  Returns:
    An `optax.GradientTransformation`; the state is the inner state
    unchanged in structure (lazy adds no arrays).

  Raises:
    ValueError: an invalid pattern.

  Example:
    >>> import optax, jax.numpy as jnp
    >>> from jaxblog import optim
    >>> tx = optim.lazy(optax.adam(1e-3), include=("embedding",))
    >>> params = {"embedding": jnp.ones((10, 4)), "w": jnp.ones(4)}
    >>> state = tx.init(params)

  References:
    SPEC.md §1.6; kexue.fm 6869.
  """
  patterns = _names.compile_patterns("include", include)
  inner = optax.with_extra_args_support(inner)
  freeze_state = bool(freeze_state)

  def init_fn(params):
    return inner.init(params)

  def update_fn(updates, state, params=None, **extra):
    masks = _names.map_with_names(
        lambda name, g: _row_mask(g, not freeze_state) if _names.matches(patterns, name) else None,
        updates)
    new_updates, new_state = inner.update(updates, state, params, **extra)

    def gate(mask, u):
      if mask is None or u is None:
        return u
      return jnp.where(mask, u, jnp.zeros((), u.dtype))

    new_updates = jax.tree.map(gate, masks, new_updates, is_leaf=lambda x: x is None)
    if freeze_state:
      new_state = _freeze(state, new_state, jax.tree.structure(updates), masks)
    return new_updates, new_state

  return optax.GradientTransformationExtraArgs(init_fn, update_fn)
