"""Lazy (row-sparse) updates for embedding-like parameters.

Momentum optimizers keep moving embedding rows of tokens absent from the
batch. For leaves selected by path-name regexes, a row (slice along all
but the last axis; the last axis holds the features) counts as *touched*
iff its raw gradient row is not all zero; untouched rows get a zero update.
The mask comes from the gradient entering the transformation (computed once
per leaf over the last axis, NaN counting as touched), so it is exact unless
a touched row's gradient is exactly zero. Cost is dense: one extra read of
the gradient.

Two ways in:

* `lazy(inner, include, freeze_state)` wraps *any* complete transformation.
  `freeze_state=False` (default, the reference) gates only the params; the
  inner state still moves for every row (Adam moments decay everywhere).
  `freeze_state=True` also keeps the old values of untouched rows in every
  inner-state subtree that has the params' tree structure (e.g. Adam's `mu`,
  `nu`). It runs the inner update and then selects old/new state rows, so on
  XLA:CPU the moment trees are read twice and copied every step (about 2x
  plain Adam, see docs/optim.md).
* `scale_by_lazy_adam` / `lazy_adam` are LazyAdam written out: the moments
  are selected first and the direction is computed from the *selected*
  moments, so each moment element is read once and written once in place,
  like plain Adam, and no state copy is made. `lazy_adam(lr, ...)` equals
  `lazy(optax.adam(lr, ...), freeze_state=True)` (touched rows bit for bit up
  to float rounding of the fused loops); inside `derive`, pass
  `scale_by_lazy_adam(...)` as the base together with `lazy=...`.

References:
  Su, 《6个派生优化器的简单介绍及其实现》 (lazy optimization),
  https://kexue.fm/archives/7094, and
  https://kexue.fm/archives/6869 (Lookahead + LazyOptimizer);
  TF-Addons `LazyAdam` (frozen moments).
"""
from __future__ import annotations

from typing import Any, Callable, Sequence

import jax
import jax.numpy as jnp
import optax

from jaxblog.optim import _names
from jaxblog.optim._weight_decay import weight_decay as weight_decay_tx


def _row_mask(g: jax.Array, fused_reduce: bool = True) -> jax.Array:
  """[..., 1] bool: rows whose gradient is not all zero (NaN counts as touched).

  `max|g| != 0` fuses with its producer on XLA:CPU, whereas a bool
  `any(g != 0)` goes through a [..., d] temporary; but on the general
  frozen-state path the bool form happens to save one copied state tree, so
  both are kept (docs/optim.md). NaN propagates through `max`, so both forms
  count a row holding a NaN as touched.
  """
  if g.ndim == 0:
    return g != 0
  if fused_reduce:
    return jnp.max(jnp.abs(g), axis=-1, keepdims=True) != 0
  return jnp.any(g != 0, axis=-1, keepdims=True)


def _row_masks(patterns: _names.Patterns, updates: Any, fused_reduce: bool) -> Any:
  """Per-leaf row masks for the leaves matched by `patterns`, None elsewhere."""
  return _names.map_with_names(
      lambda name, g: _row_mask(g, fused_reduce)
      if g is not None and _names.matches(patterns, name) else None, updates)


def _keep_old_rows(mask, old, new):
  """`where(mask, new, old)` for a moment leaf; `new` where freezing does not apply."""
  # Counters (integer leaves) always advance; moments of the param's shape
  # (any rank, scalars included) keep their old untouched rows.
  if mask is None or old is None or new is None or jnp.shape(old) != jnp.shape(new) or \
      jnp.ndim(old) != jnp.ndim(mask) or \
      not jnp.issubdtype(jnp.result_type(old), jnp.floating):
    return new
  return jnp.where(mask, new, old)


def _gate(mask, u):
  if mask is None or u is None:
    return u
  return jnp.where(mask, u, jnp.zeros((), u.dtype))


def _freeze(old_state, new_state, params_def, masks):
  """Keeps `old` on untouched rows in every params-shaped inner-state subtree."""
  def is_param_like(x):
    return jax.tree.structure(x) == params_def

  def select(old, new):
    if jax.tree.structure(old) != params_def:
      return new
    return jax.tree.map(_keep_old_rows, masks, old, new, is_leaf=lambda x: x is None)

  return jax.tree.map(select, old_state, new_state, is_leaf=is_param_like)


def lazy(inner: optax.GradientTransformation, include: str | Sequence[str] = (".*",),
         freeze_state: bool = False) -> optax.GradientTransformationExtraArgs:
  """Gates the updates of untouched rows of the selected leaves.

  Args:
    inner: a complete transformation (already scaled by the learning rate).
    include: regexes; leaves whose path name matches any (`re.search`) are
      lazy. Default: every leaf.
    freeze_state: also keep the inner state of untouched rows (true
      LazyAdam) where the inner state has the param's shape. For Adam,
      `lazy_adam` gives the same result without copying the moment trees.

  Returns:
    An `optax.GradientTransformation`; the state is the inner state
    unchanged in structure (lazy adds no arrays). A leaf `[..., d]` has
    row mask `[..., 1]`.

  Raises:
    ValueError: an invalid pattern.

  Example:
    >>> import optax, jax.numpy as jnp
    >>> from jaxblog import optim
    >>> tx = optim.lazy(optax.adam(0.1), include=("embedding",))
    >>> params = {"embedding": jnp.ones((3, 2)), "w": jnp.ones(2)}
    >>> grads = {"embedding": jnp.zeros((3, 2)).at[1].set(1.0), "w": jnp.ones(2)}
    >>> updates, _ = tx.update(grads, tx.init(params), params)
    >>> [round(x, 4) for x in updates["embedding"][:, 0].tolist()]  # rows 0, 2: no gradient
    [0.0, -0.1, 0.0]

  References:
    Su, https://kexue.fm/archives/7094 (lazy optimization);
    https://kexue.fm/archives/6869.
  """
  patterns = _names.compile_patterns("include", include)
  freeze_state = bool(freeze_state)
  # The frozen-state path keeps the bool `any` mask (one copied tree fewer).
  fused_reduce = not freeze_state
  inner = optax.with_extra_args_support(inner)

  def init_fn(params):
    return inner.init(params)

  def update_fn(updates, state, params=None, **extra):
    masks = _row_masks(patterns, updates, fused_reduce)
    new_updates, new_state = inner.update(updates, state, params, **extra)
    new_updates = jax.tree.map(_gate, masks, new_updates, is_leaf=lambda x: x is None)
    if freeze_state:
      new_state = _freeze(state, new_state, jax.tree.structure(updates), masks)
    return new_updates, new_state

  return optax.GradientTransformationExtraArgs(init_fn, update_fn)


def scale_by_lazy_adam(
    b1: float = 0.9,
    b2: float = 0.999,
    eps: float = 1e-8,
    eps_root: float = 0.0,
    mu_dtype: Any = None,
    *,
    nesterov: bool = False,
    include: str | Sequence[str] = (".*",),
) -> optax.GradientTransformation:
  """`optax.scale_by_adam` with moments and direction frozen on untouched rows.

  For leaves matched by `include`, rows whose incoming gradient row is all
  zero keep their `mu` and `nu` and get a zero direction; every other row
  (and every other leaf) is exactly `optax.scale_by_adam`. The step count
  advances for all. Put it first in a chain (the mask must come from the
  raw gradient) and wrap the complete chain in `lazy(..., include)` when
  later steps (weight decay) must not move those rows either; `lazy_adam`
  and `derive(scale_by_lazy_adam(...), lr, lazy=include)` do that.

  Args:
    b1: decay of the first moment.
    b2: decay of the second moment.
    eps: added to `sqrt(nu_hat)` (outside the root).
    eps_root: added to `nu_hat` inside the root.
    mu_dtype: optional dtype of the stored first moment.
    nesterov: Nesterov momentum (as `optax.scale_by_adam`).
    include: regexes of the lazy leaves' path names (`re.search`).

  Returns:
    An `optax.GradientTransformation` whose state is an
    `optax.ScaleByAdamState` (the same as `optax.scale_by_adam`'s), so
    checkpoints of plain Adam load.

  Raises:
    ValueError: an invalid pattern.

  Example:
    >>> import optax, jax.numpy as jnp
    >>> from jaxblog import optim
    >>> tx = optim.scale_by_lazy_adam(include=("embedding",))
    >>> params = {"embedding": jnp.ones((3, 2))}
    >>> state = tx.init(params)
    >>> u, state = tx.update({"embedding": jnp.zeros((3, 2)).at[0].set(2.0)}, state)
    >>> [round(x, 4) for x in state.mu["embedding"][:, 0].tolist()]
    [0.2, 0.0, 0.0]
    >>> [round(x, 4) for x in u["embedding"][:, 0].tolist()]
    [1.0, 0.0, 0.0]

  References:
    TF-Addons `LazyAdam`; Su, https://kexue.fm/archives/6869.
  """
  patterns = _names.compile_patterns("include", include)
  adam = optax.scale_by_adam(b1, b2, eps, eps_root, mu_dtype, nesterov=nesterov)
  is_none = lambda x: x is None

  def update_fn(updates, state, params=None):
    del params
    masks = _row_masks(patterns, updates, True)
    # Mirrors optax.scale_by_adam operation for operation (touched rows are
    # identical to it); only the moments are selected before the direction.
    mu = optax.tree.update_moment(updates, state.mu, b1, 1)
    nu = optax.tree.update_moment_per_elem_norm(updates, state.nu, b2, 2)
    count_inc = optax.safe_increment(state.count)
    # Select in the computation dtype; casting to the stored dtype afterwards
    # equals selecting after the cast (old values upcast and back exactly).
    mu = jax.tree.map(_keep_old_rows, masks, state.mu, mu, is_leaf=is_none)
    nu = jax.tree.map(_keep_old_rows, masks, state.nu, nu, is_leaf=is_none)
    if nesterov:
      mu_hat = jax.tree.map(
          lambda m, g: b1 * m + (1 - b1) * g,
          optax.tree.bias_correction(mu, b1, optax.safe_increment(count_inc)),
          optax.tree.bias_correction(updates, b1, count_inc))
    else:
      mu_hat = optax.tree.bias_correction(mu, b1, count_inc)
    nu_hat = optax.tree.bias_correction(nu, b2, count_inc)
    direction = jax.tree.map(
        lambda m, v: None if m is None else m / (jnp.sqrt(v + eps_root) + eps),
        mu_hat, nu_hat, is_leaf=is_none)
    direction = jax.tree.map(_gate, masks, direction, is_leaf=is_none)
    new_state = optax.ScaleByAdamState(
        count=count_inc, mu=optax.tree.cast(mu, mu_dtype),
        nu=optax.tree.cast_like(nu, state.nu))
    return direction, new_state

  return optax.GradientTransformation(adam.init, update_fn)


def lazy_adam(
    learning_rate: float | Callable[[jax.Array], jax.Array],
    b1: float = 0.9,
    b2: float = 0.999,
    eps: float = 1e-8,
    eps_root: float = 0.0,
    mu_dtype: Any = None,
    *,
    nesterov: bool = False,
    weight_decay: float | None = None,
    exclude_from_weight_decay: str | Sequence[str] = (),
    include: str | Sequence[str] = (".*",),
) -> optax.GradientTransformationExtraArgs:
  """LazyAdam (AdamW with `weight_decay`): untouched rows keep params and moments.

  Equals `lazy(optax.adam(learning_rate, ...), include, freeze_state=True)`
  (or `optax.adamw` with `weight_decay`, decoupled as in `weight_decay`),
  computed in one pass over the moments instead of a select after a full
  Adam update, so it is as fast as plain Adam.

  Args:
    learning_rate: γ, a float or an optax schedule `count -> lr`.
    b1: decay of the first moment.
    b2: decay of the second moment.
    eps: added to `sqrt(nu_hat)`.
    eps_root: added to `nu_hat` inside the root.
    mu_dtype: optional dtype of the stored first moment.
    nesterov: Nesterov momentum.
    weight_decay: decoupled decay λ (`None`: plain Adam); untouched rows of
      lazy leaves are not decayed either.
    exclude_from_weight_decay: regexes of path names not decayed.
    include: regexes of the lazy leaves' path names (`re.search`).

  Returns:
    An `optax.GradientTransformation`; its state has the structure of
    `optax.adam`'s (with an extra `EmptyState` when `weight_decay` is set).

  Raises:
    ValueError: an invalid pattern or weight decay.

  Example:
    >>> import optax, jax.numpy as jnp
    >>> from jaxblog import optim
    >>> tx = optim.lazy_adam(0.1, include=("embedding",))
    >>> params = {"embedding": jnp.ones((3, 2))}
    >>> grads = {"embedding": jnp.zeros((3, 2)).at[1].set(1.0)}
    >>> updates, state = tx.update(grads, tx.init(params), params)
    >>> [round(x, 4) for x in updates["embedding"][:, 0].tolist()]
    [0.0, -0.1, 0.0]

  References:
    TF-Addons `LazyAdam`; Su, https://kexue.fm/archives/7094 (lazy
    optimization) and https://kexue.fm/archives/6869.
  """
  parts = [scale_by_lazy_adam(b1, b2, eps, eps_root, mu_dtype, nesterov=nesterov,
                              include=include)]
  if weight_decay is not None:
    parts.append(weight_decay_tx(weight_decay, exclude=exclude_from_weight_decay))
  parts.append(optax.scale_by_learning_rate(learning_rate))
  return lazy(optax.chain(*parts), include=include)
