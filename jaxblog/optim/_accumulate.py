"""Gradient accumulation that runs the inner optimizer only when it updates.

`accumulate(inner, k)` averages `k` micro-step gradients and hands the mean
to `inner` once per `k` calls. Two semantics:

* `mode="optax"` — the trajectory of `optax.MultiSteps(inner, k)`: the mean
  of micro-steps `nk … nk+k-1` is applied on micro-step `nk+k-1`, zeros are
  returned otherwise, and the inner state advances once per real update.
* `mode="bert4keras"` — the reference's `extend_with_gradient_accumulation`:
  real updates at micro-steps `0, k, 2k, …` using the mean of the *previous*
  `k` gradients (one-micro-step lag, a zero-gradient first update), the inner
  state frozen between updates, and every integer scalar in the inner state
  (optax's `count` fields, our lookahead/EMA counters) reading the micro-step
  number when the update runs, so bias corrections and schedules count
  micro-steps as in the reference.

Unlike `MultiSteps`, the inner update sits in a `lax.cond` that is taken only
on the emitting micro-step, so an expensive inner optimizer costs 1/k per
micro-step, and the state holds a single accumulator tree (no separate
"new inner state" selected with `jnp.where` over the whole state).

References:
  SPEC.md §1.4 (《6个派生优化器的简单介绍及其实现》 and the 2019 post on
  gradient accumulation, kexue.fm 6794).
"""
from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax

from jaxblog import _checks

_MODES = ("optax", "bert4keras")


class AccumulateState(NamedTuple):
  """State of `accumulate`.

  Attributes:
    micro_step: int32 scalar. `mode="optax"`: micro-steps since the last real
      update (0 … k-1). `mode="bert4keras"`: micro-steps since the start.
    acc: accumulator with the params' structure (float32 for half-precision
      params). `mode="optax"`: running mean of the current cycle (it still
      holds the last cycle's mean right after an update, and is overwritten
      by the next gradient); `"bert4keras"`: running sum.
    inner_state: the wrapped transformation's state.
  """
  micro_step: jax.Array
  acc: Any
  inner_state: Any


def _increment(count):
  return jnp.where(count < jnp.iinfo(jnp.int32).max, count + 1, count)


def _set_counters(inner_state, step):
  """Every integer scalar leaf of the inner state := `step`."""
  def set_leaf(x):
    if isinstance(x, jax.Array) and x.ndim == 0 and jnp.issubdtype(x.dtype, jnp.integer):
      return step.astype(x.dtype)
    return x
  return jax.tree.map(set_leaf, inner_state)


def accumulate(inner: optax.GradientTransformation, steps: int,
               mode: str = "optax") -> optax.GradientTransformation:
  """Accumulates `steps` micro-step gradients per real update of `inner`.

  Args:
    inner: a complete transformation (it already scales by the learning
      rate), e.g. `optax.adamw(1e-3)`.
    steps: micro-steps per real update, an int >= 1.
    mode: `"optax"` (same trajectory as `optax.MultiSteps(inner, steps)`) or
      `"bert4keras"` (the reference semantics of SPEC.md §1.4, see the module
      docstring).

  Returns:
    An `optax.GradientTransformation`; its state is an `AccumulateState`.
    Returned updates are the inner updates on real-update micro-steps and
    zeros (same dtypes) otherwise.

  Raises:
    ValueError: `steps < 1` or an unknown `mode`.

  Example:
    >>> import optax, jax.numpy as jnp
    >>> from jaxblog import optim
    >>> tx = optim.accumulate(optax.adam(1e-3), 4)
    >>> state = tx.init({"w": jnp.zeros(3)})

  References:
    SPEC.md §1.4; kexue.fm 6794 (gradient accumulation).
  """
  if isinstance(steps, bool) or not isinstance(steps, int) or steps < 1:
    raise ValueError(f"steps must be an int >= 1, got {steps!r}")
  if mode not in _MODES:
    raise ValueError(f"mode must be one of {_MODES}, got {mode!r}")
  inner = optax.with_extra_args_support(inner)

  def init_fn(params):
    acc = jax.tree.map(
        lambda p: jnp.zeros(jnp.shape(p), _checks.compute_dtype(jnp.result_type(p))), params)
    return AccumulateState(jnp.zeros([], jnp.int32), acc, inner.init(params))

  def run_inner(grads, inner_state, params, extra):
    return inner.update(grads, inner_state, params, **extra)

  def zeros_like_inner(grads, inner_state, params, extra):
    shapes, _ = jax.eval_shape(
        lambda g, s, p: run_inner(g, s, p, extra), grads, inner_state, params)
    return jax.tree.map(lambda s: jnp.zeros(s.shape, s.dtype), shapes)

  def update_optax(updates, state, params, extra):
    n = state.micro_step
    emit = n == steps - 1
    scale = 1.0 / (n + 1).astype(jnp.float32)

    def running_mean(acc):
      # Welford running mean (stable in low precision, as MultiSteps); the
      # first micro-step of a cycle takes g exactly, so `acc` never needs a
      # reset write after an update.
      def leaf(g, a):
        g = g.astype(a.dtype)
        return jnp.where(n == 0, g, a + (g - a) * scale.astype(a.dtype))
      return jax.tree.map(leaf, updates, acc)

    def as_grads(acc):
      return jax.tree.map(lambda a, g: a.astype(g.dtype), acc, updates)

    # The running mean is written once, in place, on every micro-step; the
    # emitting branch reads the finished mean. No branch writes `acc`, so XLA
    # keeps one accumulator buffer and copies nothing.
    acc = running_mean(state.acc)

    def do(acc, inner_state, params):
      return run_inner(as_grads(acc), inner_state, params, extra)

    def skip(acc, inner_state, params):
      return zeros_like_inner(as_grads(acc), inner_state, params, extra), inner_state

    if steps == 1:
      out, inner_state = do(acc, state.inner_state, params)
    else:
      out, inner_state = jax.lax.cond(emit, do, skip, acc, state.inner_state, params)
    micro = jnp.where(emit, 0, n + 1).astype(jnp.int32)
    return out, AccumulateState(micro, acc, inner_state)

  def update_bert4keras(updates, state, params, extra):
    t = state.micro_step
    emit = t % steps == 0

    def mean_grads(acc):
      return jax.tree.map(lambda a, g: (a / steps).astype(g.dtype), acc, updates)

    def do(acc, inner_state, params):
      out, inner_state = run_inner(
          mean_grads(acc), _set_counters(inner_state, t), params, extra)
      return out, inner_state

    def skip(acc, inner_state, params):
      return zeros_like_inner(mean_grads(acc), inner_state, params, extra), inner_state

    out, inner_state = jax.lax.cond(emit, do, skip, state.acc, state.inner_state, params)
    acc = jax.tree.map(
        lambda g, a: jnp.where(emit, g.astype(a.dtype), a + g.astype(a.dtype)),
        updates, state.acc)
    return out, AccumulateState(_increment(t), acc, inner_state)

  def update_fn(updates, state, params=None, **extra):
    if mode == "optax":
      return update_optax(updates, state, params, extra)
    return update_bert4keras(updates, state, params, extra)

  return optax.GradientTransformationExtraArgs(init_fn, update_fn)
