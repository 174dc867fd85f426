"""Exponential moving average of the weights, kept in the optimizer state.

`ema(inner, decay)` runs `inner` and then folds the *post-update* params into
`ema ← decay·ema + (1 − decay)·(θ + u)` (zero init, as the reference's
`extend_with_exponential_moving_average`). `ema_params(state)` returns the
bias-corrected average `ema / (1 − decay^n)` over the `n` averaged updates;
it searches the whole state pytree, so it also works when the EMA sits inside
other wrappers (e.g. under `accumulate`, where it advances only on real
updates). optax's `ema` averages *updates*, not weights, which is why this
exists.

Warm-up: with `start_step=s` the params after updates `0 … s−1` (0-based)
are not averaged; the average (and its bias correction) starts with the
params after update `s`, so the early, far-from-converged weights never
enter it. `start_step=0` (default) is the reference behaviour.

The average is stored in float32 for half-precision params (a 0.999 decay is
invisible in bf16) and returned in the params' dtypes.

References:
  bert4keras `extend_with_exponential_moving_average`; Su,
  https://kexue.fm/archives/7094 (the derived-optimizer family it joins).
"""
from __future__ import annotations

from typing import Any, NamedTuple, Type

import jax
import jax.numpy as jnp
import optax

from jaxblog import _checks


class EmaState(NamedTuple):
  """State of `ema`.

  Attributes:
    decay_power: float32 scalar `decay^n` after `n` averaged updates (the
      bias correction is `1 − decay_power`).
    ema: the (biased, zero-initialised) average; float32 for half params.
    inner_state: the wrapped transformation's state.
    count: int32 scalar, updates seen so far (compared with `start_step`).
  """
  decay_power: jax.Array
  ema: Any
  inner_state: Any
  count: jax.Array


def ema(inner: optax.GradientTransformation, decay: float = 0.999, *,
        start_step: int = 0) -> optax.GradientTransformationExtraArgs:
  """Keeps an EMA of the params after each update of `inner`.

  Args:
    inner: a complete transformation (already scaled by the learning rate).
    decay: the EMA momentum in [0, 1).
    start_step: the first (0-based) update whose result is averaged; earlier
      updates leave the average (and its bias correction) untouched.

  Returns:
    An `optax.GradientTransformation` whose state is an `EmaState`; `update`
    requires `params`. Updates are those of `inner`, unchanged.

  Raises:
    ValueError: `decay` outside [0, 1), or `start_step` not an int >= 0.

  Example:
    >>> import optax, jax.numpy as jnp
    >>> from jaxblog import optim
    >>> tx = optim.ema(optax.sgd(0.1), decay=0.9)
    >>> params = {"w": jnp.ones(2)}
    >>> state = tx.init(params)
    >>> updates, state = tx.update({"w": jnp.ones(2)}, state, params)
    >>> [round(float(x), 4) for x in optim.ema_params(state)["w"]]  # 1 - 0.1
    [0.9, 0.9]

  References:
    bert4keras `extend_with_exponential_moving_average`.
  """
  try:
    decay = float(decay)
  except TypeError as e:
    raise ValueError(f"decay must be a number in [0, 1), got {decay!r}") from e
  if not 0.0 <= decay < 1.0:
    raise ValueError(f"decay must be in [0, 1), got {decay!r}")
  start_step = check_step("start_step", start_step)
  inner = optax.with_extra_args_support(inner)

  def init_fn(params):
    avg = jax.tree.map(
        lambda p: jnp.zeros(jnp.shape(p), _checks.compute_dtype(jnp.result_type(p))), params)
    return EmaState(jnp.ones([], jnp.float32), avg, inner.init(params), jnp.zeros([], jnp.int32))

  def update_fn(updates, state, params=None, **extra):
    if params is None:
      raise ValueError("ema needs `params` in update(updates, state, params)")
    updates, inner_state = inner.update(updates, state.inner_state, params, **extra)
    avg = jax.tree.map(
        lambda a, p, u: decay * a + (1.0 - decay) * (p.astype(a.dtype) + u.astype(a.dtype)),
        state.ema, params, updates)
    decay_power = state.decay_power * decay
    if start_step > 0:
      on = state.count >= start_step
      avg = jax.tree.map(lambda new, old: jnp.where(on, new, old), avg, state.ema)
      decay_power = jnp.where(on, decay_power, state.decay_power)
    return updates, EmaState(decay_power, avg, inner_state, increment(state.count))

  return optax.GradientTransformationExtraArgs(init_fn, update_fn)


def increment(count: jax.Array) -> jax.Array:
  """`count + 1`, saturating at the int32 maximum."""
  return jnp.where(count < jnp.iinfo(jnp.int32).max, count + 1, count)


def check_step(arg: str, value: int) -> int:
  if isinstance(value, bool) or not isinstance(value, int) or value < 0:
    raise ValueError(f"{arg} must be an int >= 0, got {value!r}")
  return value


def find_state(state: Any, cls: Type[Any], caller: str) -> Any:
  """The single instance of `cls` anywhere inside the pytree `state`."""
  found = []

  def visit(x):
    if isinstance(x, cls):
      found.append(x)
    return x

  jax.tree.map(visit, state, is_leaf=lambda x: isinstance(x, cls))
  if len(found) != 1:
    raise ValueError(
        f"{caller}: state must contain exactly one {cls.__name__}, found {len(found)}")
  return found[0]


def ema_params(state: Any, params: Any = None) -> Any:
  """The bias-corrected EMA of the params, found anywhere inside `state`.

  Args:
    state: an optimizer state containing exactly one `EmaState`, e.g. the
      state of `ema(...)` or of `derive(..., ema=0.999, grad_accum_steps=4)`.
    params: optional; if given, the result casts to its dtypes and, before
      the first averaged update (nothing averaged yet), equals `params`.

  Returns:
    `ema / (1 − decay^n)` with the params' structure (in the params' dtypes
    when `params` is given; float32 for half-precision leaves otherwise).
    Before the first averaged update and without `params`: zeros.

  Raises:
    ValueError: `state` holds no `EmaState`, or more than one.

  References:
    bert4keras `apply_ema_weights(bias_correction=True)`.
  """
  st = find_state(state, EmaState, "ema_params")
  started = st.decay_power < 1.0
  denom = jnp.where(started, 1.0 - st.decay_power, 1.0)
  avg = jax.tree.map(lambda a: a / denom.astype(a.dtype), st.ema)
  if params is None:
    return avg
  return jax.tree.map(
      lambda a, p: jnp.where(started, a.astype(jnp.result_type(p)), p), avg, params)
