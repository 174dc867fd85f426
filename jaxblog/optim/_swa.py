"""Stochastic weight averaging: a uniform average of the weights, in the optimizer state.

`swa(inner, period, start)` runs `inner` and, after the update that brings the
update count to `n`, adds the new params `θ + u` to a running mean when
`n ≥ start` and `(n − start) % period == 0` (and `n ≥ 1`): every `period`
updates once `start` updates have been made. The mean is updated in place as
`mean += (θ − mean) / (k + 1)` (no sum that could overflow in low precision),
stored in float32 for half-precision params. `swa_params(state)` returns it,
also when the SWA state sits inside other wrappers, like `ema_params`.

It is the uniform counterpart of `ema` (an exponential average); the usual
recipe trains normally for `start` updates, then keeps sampling every
`period` updates (often with a constant or cyclic learning rate).

References:
  Izmailov et al. 2018, "Averaging Weights Leads to Wider Optima and Better
  Generalization" (arXiv:1803.05407); Su, https://kexue.fm/archives/7094
  (the derived-optimizer family it joins).
"""
from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax

from jaxblog import _checks
from jaxblog.optim._ema import check_step, find_state, increment


class SwaState(NamedTuple):
  """State of `swa`.

  Attributes:
    count: int32 scalar, updates made so far.
    num_averaged: float32 scalar, params sets in the mean so far (a float,
      so `accumulate(mode="bert4keras")`, which sets the integer counters
      of its inner state to the micro-step, leaves it alone).
    mean: the running mean (params' structure; float32 for half params).
    inner_state: the wrapped transformation's state.
  """
  count: jax.Array
  num_averaged: jax.Array
  mean: Any
  inner_state: Any


def swa(inner: optax.GradientTransformation, period: int = 1,
        start: int = 0) -> optax.GradientTransformationExtraArgs:
  """Keeps the uniform average of the params every `period` updates after `start`.

  Args:
    inner: a complete transformation (already scaled by the learning rate).
    period: sample the params every this many updates (int >= 1).
    start: int >= 0; the params after update number `n` (1-based) are
      sampled when `n = start + j·period` for some `j >= 0` (and `n >= 1`).

  Returns:
    An `optax.GradientTransformation` whose state is a `SwaState`; `update`
    requires `params`. Updates are those of `inner`, unchanged.

  Raises:
    ValueError: `period < 1` or `start < 0`.

  Example:
    >>> import optax, jax.numpy as jnp
    >>> from jaxblog import optim
    >>> tx = optim.swa(optax.sgd(1.0), period=2, start=2)
    >>> params = {"w": jnp.zeros(())}
    >>> state = tx.init(params)
    >>> for _ in range(6):  # params after updates 1..6 are 1..6; samples at 2, 4, 6
    ...   u, state = tx.update({"w": -jnp.ones(())}, state, params)
    ...   params = optax.apply_updates(params, u)
    >>> float(optim.swa_params(state)["w"]), float(state.num_averaged)
    (4.0, 3.0)

  References:
    Izmailov et al. 2018 (SWA).
  """
  if isinstance(period, bool) or not isinstance(period, int) or period < 1:
    raise ValueError(f"period must be an int >= 1, got {period!r}")
  start = check_step("start", start)
  inner = optax.with_extra_args_support(inner)

  def init_fn(params):
    mean = jax.tree.map(
        lambda p: jnp.zeros(jnp.shape(p), _checks.compute_dtype(jnp.result_type(p))), params)
    return SwaState(jnp.zeros([], jnp.int32), jnp.zeros([], jnp.float32), mean,
                    inner.init(params))

  def update_fn(updates, state, params=None, **extra):
    if params is None:
      raise ValueError("swa needs `params` in update(updates, state, params)")
    updates, inner_state = inner.update(updates, state.inner_state, params, **extra)
    n = increment(state.count)
    take = (n >= start) & ((n - start) % period == 0)
    k = state.num_averaged
    weight = jnp.where(take, 1.0 / (k + 1.0), 0.0)

    def leaf(m, p, u):
      x = p.astype(m.dtype) + u.astype(m.dtype)
      return jnp.where(take, m + (x - m) * weight.astype(m.dtype), m)

    mean = jax.tree.map(leaf, state.mean, params, updates)
    num = jnp.where(take, k + 1.0, k)
    return updates, SwaState(n, num, mean, inner_state)

  return optax.GradientTransformationExtraArgs(init_fn, update_fn)


def swa_params(state: Any, params: Any = None) -> Any:
  """The SWA mean of the params, found anywhere inside `state`.

  Args:
    state: an optimizer state containing exactly one `SwaState`, e.g. the
      state of `swa(...)` or of `derive(..., swa=(start, period))`.
    params: optional; if given, the result casts to its dtypes and, before
      the first sample, equals `params`.

  Returns:
    The mean with the params' structure (float32 for half-precision leaves
    unless `params` is given). Before the first sample and without `params`:
    zeros.

  Raises:
    ValueError: `state` holds no `SwaState`, or more than one.

  References:
    Izmailov et al. 2018 (SWA).
  """
  st = find_state(state, SwaState, "swa_params")
  if params is None:
    return st.mean
  started = st.num_averaged > 0
  return jax.tree.map(
      lambda m, p: jnp.where(started, m.astype(jnp.result_type(p)), p), st.mean, params)
