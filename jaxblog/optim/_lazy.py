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
leaf over the last axis, NaN counting as touched), so it is exact unless a
touched row's gradient is exactly zero. Cost is dense: one extra read of
the gradient.

Two paths compute `freeze_state=True`, with identical results:

* the general path, for any inner transformation: run the inner update, then
  gate the update and select old/new state rows. The update is computed from
  the *unselected* new moments, so on XLA:CPU both the update and the
  selected state read the old moments and copy insertion copies the donated
  moment trees every step (1.9-2.8x plain Adam; BUILD_NOTES.md, bench_optim).
* a fused LazyAdam path, taken when the inner transformation is recognised
  as `optax.scale_by_adam` (non-Nesterov or Nesterov), alone or first in an
  `optax.chain` followed only by row-local, moment-free steps (`optax.scale`,
  `scale_by_schedule`/`scale_by_learning_rate`, `identity`, unmasked
  `add_decayed_weights`, our `weight_decay`) -- i.e. `optax.adam`,
  `optax.adamw` without a mask and `derive(scale_by_adam(...), ...)` without
  layer adaptation. It selects the moments first and computes the direction
  from the *selected* moments (equal to the new ones on touched rows; the
  other rows are gated to zero at the end), so each moment element is read
  once and written once in place, like plain Adam: no temporaries.
  Recognition inspects optax's closures; if optax changes them the general
  path is used (still correct), and a test pins that the fast path is taken.

References:
  SPEC.md §1.6 (《6个派生优化器的简单介绍及其实现》, lazy optimization;
  kexue.fm 6869).
"""
from __future__ import annotations

from typing import Any, Callable, NamedTuple, Sequence

import jax
import jax.numpy as jnp
import optax

from jaxblog.optim import _names


def _row_mask(g, fused_reduce=True):
  """[..., 1] bool: rows whose gradient is not all zero (NaN counts as touched).

  `max|g| != 0` fuses with its producer on XLA:CPU, whereas a bool
  `any(g != 0)` goes through a [..., d] temporary; but on the general
  frozen-state path the bool form happens to save one copied state tree, so
  both are kept (see BUILD_NOTES.md, bench_optim). NaN propagates through
  `max`, so both forms count a row holding a NaN as touched.
  """
  if g.ndim == 0:
    return g != 0
  if fused_reduce:
    return jnp.max(jnp.abs(g), axis=-1, keepdims=True) != 0
  return jnp.any(g != 0, axis=-1, keepdims=True)


def _keep_old_rows(mask, old, new):
  """`where(mask, new, old)` for a moment leaf; `new` where freezing does not apply."""
  # Counters (integer leaves) always advance; moments of the param's shape
  # (any rank, scalars included) keep their old untouched rows.
  if mask is None or old is None or new is None or jnp.shape(old) != jnp.shape(new) or \
      jnp.ndim(old) != jnp.ndim(mask) or \
      not jnp.issubdtype(jnp.result_type(old), jnp.floating):
    return new
  return jnp.where(mask, new, old)


def _freeze(old_state, new_state, params_def, masks):
  """Keeps `old` on untouched rows in every params-shaped inner-state subtree."""
  def is_param_like(x):
    return jax.tree.structure(x) == params_def

  def select(old, new):
    if jax.tree.structure(old) != params_def:
      return new
    return jax.tree.map(_keep_old_rows, masks, old, new, is_leaf=lambda x: x is None)

  return jax.tree.map(select, old_state, new_state, is_leaf=is_param_like)


# --- recognising a fusable Adam -------------------------------------------

class _AdamConfig(NamedTuple):
  """Hyperparameters of a recognised `optax.scale_by_adam`, plus the chain tail."""
  b1: Any
  b2: Any
  eps: Any
  eps_root: Any
  mu_dtype: Any
  nesterov: bool
  tail: tuple[Callable[..., Any], ...]  # update fns applied after Adam
  chained: bool  # state is (adam_state, *tail_states) rather than adam_state


# Row-local steps with no params-shaped state: applying them to a direction
# whose untouched rows differ cannot change the touched rows' result.
_ROW_LOCAL = {
    ("optax._src.transform", "scale.<locals>.update_fn"),
    ("optax._src.transform", "scale_by_schedule.<locals>.update_fn"),
    ("optax._src.base", "identity.<locals>.update_fn"),
    ("optax.transforms._adding", "add_decayed_weights.<locals>.update_fn"),
    ("jaxblog.optim._weight_decay", "weight_decay.<locals>.update_fn"),
}


def _closure(fn) -> dict[str, Any]:
  code = getattr(fn, "__code__", None)
  cells = getattr(fn, "__closure__", None) or ()
  if code is None:
    return {}
  try:
    return {k: c.cell_contents for k, c in zip(code.co_freevars, cells)}
  except ValueError:  # an empty cell
    return {}


def _kind(fn) -> tuple[str, str]:
  return getattr(fn, "__module__", None), getattr(fn, "__qualname__", None)


def _unwrap(fn):
  """Follows `optax.with_extra_args_support` wrappers to the raw update fn."""
  while _kind(fn) == ("optax._src.base", "with_extra_args_support.<locals>.update"):
    tx = _closure(fn).get("tx")
    if tx is None:
      break
    fn = tx.update
  return fn


def _adam_hparams(fn):
  if _kind(fn) != ("optax._src.transform", "scale_by_adam.<locals>.update_fn"):
    return None
  c = _closure(fn)
  keys = ("b1", "b2", "eps", "eps_root", "mu_dtype", "nesterov")
  if not all(k in c for k in keys):
    return None
  return tuple(c[k] for k in keys)


def _fused_adam(inner: optax.GradientTransformation) -> _AdamConfig | None:
  """The fusable-Adam description of `inner`, or None (general path)."""
  fn = _unwrap(inner.update)
  hp = _adam_hparams(fn)
  if hp is not None:
    return _AdamConfig(*hp[:5], bool(hp[5]), tail=(), chained=False)
  if _kind(fn) != ("optax.transforms._combining", "chain.<locals>.update_fn"):
    return None
  fns = _closure(fn).get("update_fns")
  if not isinstance(fns, tuple) or not fns:
    return None
  fns = tuple(_unwrap(f) for f in fns)
  hp = _adam_hparams(fns[0])
  if hp is None or not all(_kind(f) in _ROW_LOCAL for f in fns[1:]):
    return None
  return _AdamConfig(*hp[:5], bool(hp[5]), tail=fns[1:], chained=True)


def _lazy_adam_update(cfg: _AdamConfig, masks, updates, state, params):
  """LazyAdam with frozen moments in one elementwise pass per leaf.

  Mirrors `optax.scale_by_adam` operation for operation (so touched rows are
  bit-identical to the general path), except that the direction is computed
  from the selected moments.
  """
  if cfg.chained:
    if not isinstance(state, tuple) or len(state) != 1 + len(cfg.tail):
      raise ValueError("lazy: the state does not match the inner chain; call init first")
    adam_state, tail_states = state[0], state[1:]
  else:
    adam_state, tail_states = state, ()
  b1, b2 = cfg.b1, cfg.b2
  mu = optax.tree.update_moment(updates, adam_state.mu, b1, 1)
  nu = optax.tree.update_moment_per_elem_norm(updates, adam_state.nu, b2, 2)
  count_inc = optax.safe_increment(adam_state.count)
  is_none = lambda x: x is None
  # Select in the computation dtype; casting to the stored dtype afterwards
  # equals selecting after the cast (old values upcast and back exactly).
  mu = jax.tree.map(_keep_old_rows, masks, adam_state.mu, mu, is_leaf=is_none)
  nu = jax.tree.map(_keep_old_rows, masks, adam_state.nu, nu, is_leaf=is_none)
  if cfg.nesterov:
    mu_hat = jax.tree.map(
        lambda m, g: b1 * m + (1 - b1) * g,
        optax.tree.bias_correction(mu, b1, optax.safe_increment(count_inc)),
        optax.tree.bias_correction(updates, b1, count_inc))
  else:
    mu_hat = optax.tree.bias_correction(mu, b1, count_inc)
  nu_hat = optax.tree.bias_correction(nu, b2, count_inc)
  eps, eps_root = cfg.eps, cfg.eps_root
  direction = jax.tree.map(
      lambda m, v: None if m is None else m / (jnp.sqrt(v + eps_root) + eps),
      mu_hat, nu_hat, is_leaf=is_none)
  new_adam = optax.ScaleByAdamState(
      count=count_inc, mu=optax.tree.cast(mu, cfg.mu_dtype),
      nu=optax.tree.cast_like(nu, adam_state.nu))
  new_tail = []
  for fn, s in zip(cfg.tail, tail_states):
    direction, s = fn(direction, s, params)
    new_tail.append(s)
  if cfg.chained:
    return direction, (new_adam, *new_tail)
  return direction, new_adam


def lazy(inner: optax.GradientTransformation, include: Sequence[str] = (".*",),
         freeze_state: bool = False) -> optax.GradientTransformation:
  """Gates the updates of untouched rows of the selected leaves.

  With `freeze_state=True` and an inner Adam that is recognised (see the
  module docstring: `optax.adam`, unmasked `optax.adamw`, `derive` without
  layer adaptation), a fused LazyAdam update is used; it gives the same
  results as the general path without copying the moment trees.

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
  freeze_state = bool(freeze_state)
  fused = _fused_adam(inner) if freeze_state else None
  # The general frozen path keeps the bool `any` mask (one copied tree fewer).
  fused_reduce = fused is not None or not freeze_state
  inner = optax.with_extra_args_support(inner)

  def init_fn(params):
    return inner.init(params)

  def update_fn(updates, state, params=None, **extra):
    masks = _names.map_with_names(
        lambda name, g: _row_mask(g, fused_reduce)
        if g is not None and _names.matches(patterns, name) else None, updates)
    if fused is not None:
      new_updates, new_state = _lazy_adam_update(fused, masks, updates, state, params)
    else:
      new_updates, new_state = inner.update(updates, state, params, **extra)

    def gate(mask, u):
      if mask is None or u is None:
        return u
      return jnp.where(mask, u, jnp.zeros((), u.dtype))

    new_updates = jax.tree.map(gate, masks, new_updates, is_leaf=lambda x: x is None)
    if freeze_state and fused is None:
      new_state = _freeze(state, new_state, jax.tree.structure(updates), masks)
    return new_updates, new_state

  return optax.GradientTransformationExtraArgs(init_fn, update_fn)
