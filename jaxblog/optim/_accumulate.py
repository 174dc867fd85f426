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

Like `MultiSteps`, `mode="optax"` also takes a schedule `gradient_step -> k`
(the number of micro-steps of the current cycle may change between real
updates, e.g. to grow the batch) and a `should_skip_update_fn` with optax's
signature (`optax.skip_not_finite`, `optax.skip_large_updates`): a skipped
micro-step leaves the whole state as it was, as if it never happened.

Unlike `MultiSteps`, the inner update sits in a `lax.cond` that is taken only
on the emitting micro-step, so an expensive inner optimizer costs 1/k per
micro-step, and the state holds a single accumulator tree (no separate
"new inner state" selected with `jnp.where` over the whole state).

References:
  Su, 《6个派生优化器的简单介绍及其实现》, https://kexue.fm/archives/7094, and
  the 2019 post on gradient accumulation, https://kexue.fm/archives/6794.
"""
from __future__ import annotations

from typing import Any, Callable, NamedTuple

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
    gradient_step: int32 scalar, real updates made so far (the argument of
      a `steps` schedule and of `should_skip_update_fn`).
  """
  micro_step: jax.Array
  acc: Any
  inner_state: Any
  gradient_step: jax.Array


def _increment(count):
  return jnp.where(count < jnp.iinfo(jnp.int32).max, count + 1, count)


def _set_counters(inner_state, step):
  """Every integer scalar leaf of the inner state := `step`."""
  def set_leaf(x):
    if isinstance(x, jax.Array) and x.ndim == 0 and jnp.issubdtype(x.dtype, jnp.integer):
      return step.astype(x.dtype)
    return x
  return jax.tree.map(set_leaf, inner_state)


def accumulate(
    inner: optax.GradientTransformation,
    steps: int | Callable[[jax.Array], Any],
    mode: str = "optax",
    *,
    should_skip_update_fn: Callable[..., tuple[jax.Array, Any]] | None = None,
) -> optax.GradientTransformationExtraArgs:
  """Accumulates `steps` micro-step gradients per real update of `inner`.

  Args:
    inner: a complete transformation (it already scales by the learning
      rate), e.g. `optax.adamw(1e-3)`.
    steps: micro-steps per real update, an int >= 1, or (`mode="optax"`) a
      schedule `gradient_step -> k` (int32 scalar in, integer >= 1 out) as
      `MultiSteps`' `every_k_schedule`.
    mode: `"optax"` (same trajectory as `optax.MultiSteps(inner, steps)`) or
      `"bert4keras"` (the reference's semantics, see the module docstring;
      constant `steps` only, no skipping).
    should_skip_update_fn: optional `fn(updates, gradient_step, params) ->
      (bool scalar, info)` as in `MultiSteps` (e.g. `optax.skip_not_finite`);
      a micro-step it flags is ignored (zero update, state unchanged). `info`
      is not stored.

  Returns:
    An `optax.GradientTransformation`; its state is an `AccumulateState`.
    Returned updates are the inner updates on real-update micro-steps and
    zeros (same dtypes) otherwise.

  Raises:
    ValueError: `steps < 1`, an unknown `mode`, a schedule or skip function
      with `mode="bert4keras"`, or (at trace time) a skip function that does
      not return a bool scalar.

  Example:
    >>> import optax, jax.numpy as jnp
    >>> from jaxblog import optim
    >>> tx = optim.accumulate(optax.sgd(1.0), 2, should_skip_update_fn=optax.skip_not_finite)
    >>> params = {"w": jnp.zeros(())}
    >>> state = tx.init(params)
    >>> for g in (1.0, jnp.nan, 3.0):  # the NaN micro-step is ignored
    ...   u, state = tx.update({"w": jnp.asarray(g)}, state, params)
    >>> float(u["w"]), int(state.gradient_step)  # -mean(1, 3)
    (-2.0, 1)

  References:
    Su, https://kexue.fm/archives/7094 and https://kexue.fm/archives/6794
    (gradient accumulation); optax `MultiSteps`.
  """
  scheduled = callable(steps)
  if not scheduled and (isinstance(steps, bool) or not isinstance(steps, int) or steps < 1):
    raise ValueError(f"steps must be an int >= 1 or a schedule, got {steps!r}")
  if mode not in _MODES:
    raise ValueError(f"mode must be one of {_MODES}, got {mode!r}")
  if mode == "bert4keras" and (scheduled or should_skip_update_fn is not None):
    raise ValueError(
        "accumulate(mode='bert4keras') takes a constant int `steps` and no "
        "`should_skip_update_fn` (the reference has neither); use mode='optax'")
  inner = optax.with_extra_args_support(inner)

  def init_fn(params):
    acc = jax.tree.map(
        lambda p: jnp.zeros(jnp.shape(p), _checks.compute_dtype(jnp.result_type(p))), params)
    # Two distinct buffers: a donated state must not hold one array twice.
    return AccumulateState(jnp.zeros([], jnp.int32), acc, inner.init(params),
                           jnp.zeros([], jnp.int32))

  def skip_flag(updates, state, params):
    skip, _ = should_skip_update_fn(updates, state.gradient_step, params)
    skip = jnp.asarray(skip)
    if (skip.dtype, skip.shape) != (jnp.bool_, ()):
      raise ValueError(
          "should_skip_update_fn must return a bool scalar first, got dtype "
          f"{skip.dtype} and shape {skip.shape}")
    return skip

  def run_inner(grads, inner_state, params, extra):
    return inner.update(grads, inner_state, params, **extra)

  def zeros_like_inner(grads, inner_state, params, extra):
    shapes, _ = jax.eval_shape(
        lambda g, s, p: run_inner(g, s, p, extra), grads, inner_state, params)
    return jax.tree.map(lambda s: jnp.zeros(s.shape, s.dtype), shapes)

  def update_optax(updates, state, params, extra):
    n = state.micro_step
    k = jnp.asarray(steps(state.gradient_step)).astype(jnp.int32) if scheduled else steps
    emit = n == k - 1
    skip = None
    if should_skip_update_fn is not None:
      skip = skip_flag(updates, state, params)
      emit = emit & ~skip
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
    if skip is not None:
      acc = jax.tree.map(lambda new, old: jnp.where(skip, old, new), acc, state.acc)

    def do(acc, inner_state, params):
      return run_inner(as_grads(acc), inner_state, params, extra)

    def pass_through(acc, inner_state, params):
      return zeros_like_inner(as_grads(acc), inner_state, params, extra), inner_state

    if steps == 1 and skip is None:
      out, inner_state = do(acc, state.inner_state, params)
    else:
      out, inner_state = jax.lax.cond(emit, do, pass_through, acc, state.inner_state, params)
    micro = jnp.where(emit, 0, n + 1).astype(jnp.int32)
    if skip is not None:
      micro = jnp.where(skip, n, micro)
    gradient_step = jnp.where(emit, _increment(state.gradient_step), state.gradient_step)
    return out, AccumulateState(micro, acc, inner_state, gradient_step)

  def update_bert4keras(updates, state, params, extra):
    t = state.micro_step
    emit = t % steps == 0

    def mean_grads(acc):
      return jax.tree.map(lambda a, g: (a / steps).astype(g.dtype), acc, updates)

    def do(acc, inner_state, params):
      out, inner_state = run_inner(
          mean_grads(acc), _set_counters(inner_state, t), params, extra)
      return out, inner_state

    def pass_through(acc, inner_state, params):
      return zeros_like_inner(mean_grads(acc), inner_state, params, extra), inner_state

    out, inner_state = jax.lax.cond(emit, do, pass_through, state.acc, state.inner_state, params)
    acc = jax.tree.map(
        lambda g, a: jnp.where(emit, g.astype(a.dtype), a + g.astype(a.dtype)),
        updates, state.acc)
    gradient_step = jnp.where(emit, _increment(state.gradient_step), state.gradient_step)
    return out, AccumulateState(_increment(t), acc, inner_state, gradient_step)

  def update_fn(updates, state, params=None, **extra):
    if mode == "optax":
      return update_optax(updates, state, params, extra)
    return update_bert4keras(updates, state, params, extra)

  return optax.GradientTransformationExtraArgs(init_fn, update_fn)
