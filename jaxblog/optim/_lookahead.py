"""Drop-in Lookahead: slow weights live in the optimizer state.

The user keeps one plain parameter pytree (no `LookaheadParams(fast, slow)`
as in optax). Each call runs the inner (fast) optimizer; on a sync step the
returned update moves the params to the new slow weights instead:

    fast = θ + u;   diff = fast − Φ
    Φ ← Φ + α·s·diff;   update = u − s·(1 − α)·diff     (s = 1 on sync)

which is branch-free, one fused elementwise pass, and gives exactly the fast
parameters of `optax.lookahead` (that formula is the paper's rule).

`slow_init="params"` (paper): Φ₀ = θ₀ and a sync after every `sync_period`
completed fast steps. `slow_init="zeros"` (reference quirk): Φ₀ = 0 and a
sync whenever the 0-based step count `t` satisfies `t mod k == 0` — so after
the very first step all weights become `α·θ₁`.

References:
  Su, 《6个派生优化器的简单介绍及其实现》, https://kexue.fm/archives/7094, and
  https://kexue.fm/archives/6869 (Lookahead);
  Zhang, Lucas, Hinton, Ba, "Lookahead Optimizer: k steps forward, 1 step back".
"""
from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax

_SLOW_INITS = ("params", "zeros")


class LookaheadState(NamedTuple):
  """State of `lookahead`.

  Attributes:
    count: int32 scalar, fast steps taken so far (0-based step of the next call).
    slow: the slow weights Φ (params' structure and dtypes).
    inner_state: the fast optimizer's state.
  """
  count: jax.Array
  slow: Any
  inner_state: Any


def lookahead(inner: optax.GradientTransformation, sync_period: int = 5,
              alpha: float = 0.5, slow_init: str = "params") -> optax.GradientTransformation:
  """Wraps a complete optimizer with Lookahead, keeping params a plain pytree.

  Args:
    inner: the fast optimizer, a complete transformation (already scaled by
      the learning rate).
    sync_period: k, fast steps per slow step (int >= 1).
    alpha: slow step size α in (0, 1].
    slow_init: `"params"` (paper semantics, Φ₀ = θ₀, sync after every k
      completed fast steps) or `"zeros"` (the reference's quirk: Φ₀ = 0 and a
      sync at steps t = 0, k, 2k, …).

  Returns:
    An `optax.GradientTransformation` whose state is a `LookaheadState`;
    `update` requires `params`.

  Raises:
    ValueError: `sync_period < 1`, `alpha` outside (0, 1], unknown `slow_init`.

  Example:
    >>> import optax, jax.numpy as jnp
    >>> from jaxblog import optim
    >>> tx = optim.lookahead(optax.adam(1e-3), sync_period=5, alpha=0.5)
    >>> params = {"w": jnp.ones(3)}
    >>> state = tx.init(params)
    >>> updates, state = tx.update({"w": jnp.ones(3)}, state, params)

  References:
    Su, https://kexue.fm/archives/7094; Zhang et al. 2019 (arXiv:1907.08610).
  """
  if isinstance(sync_period, bool) or not isinstance(sync_period, int) or sync_period < 1:
    raise ValueError(f"sync_period must be an int >= 1, got {sync_period!r}")
  try:
    alpha = float(alpha)
  except TypeError as e:
    raise ValueError(f"alpha must be a number in (0, 1], got {alpha!r}") from e
  if not 0.0 < alpha <= 1.0:
    raise ValueError(f"alpha must be in (0, 1], got {alpha!r}")
  if slow_init not in _SLOW_INITS:
    raise ValueError(f"slow_init must be one of {_SLOW_INITS}, got {slow_init!r}")
  inner = optax.with_extra_args_support(inner)

  def init_fn(params):
    if slow_init == "params":
      slow = jax.tree.map(jnp.array, params)
    else:
      slow = jax.tree.map(jnp.zeros_like, params)
    return LookaheadState(jnp.zeros([], jnp.int32), slow, inner.init(params))

  def update_fn(updates, state, params=None, **extra):
    if params is None:
      raise ValueError("lookahead needs `params` in update(updates, state, params)")
    updates, inner_state = inner.update(updates, state.inner_state, params, **extra)
    t = state.count
    if slow_init == "params":
      sync = (t % sync_period) == sync_period - 1
    else:
      sync = (t % sync_period) == 0

    def blend(u, p, phi):
      cdt = jnp.promote_types(u.dtype, jnp.float32) if jnp.issubdtype(u.dtype, jnp.floating) else u.dtype
      s = sync.astype(cdt)
      diff = p.astype(cdt) + u.astype(cdt) - phi.astype(cdt)
      new_phi = phi.astype(cdt) + (alpha * s) * diff
      out = u.astype(cdt) - (s * (1.0 - alpha)) * diff
      return out.astype(u.dtype), new_phi.astype(phi.dtype)

    pairs = jax.tree.map(blend, updates, params, state.slow)
    treedef = jax.tree.structure(updates)
    out, slow = jax.tree.transpose(treedef, jax.tree.structure((0, 0)), pairs)
    count = jnp.where(t < jnp.iinfo(jnp.int32).max, t + 1, t)
    return out, LookaheadState(count, slow, inner_state)

  return optax.GradientTransformationExtraArgs(init_fn, update_fn)
