"""`derive`: the reference's `extend_with_*` stacking in one call.

bert4keras builds e.g. "AdamWLRGA" by nesting class extensions; the
extension closest to the base optimizer acts first. Here the same stack is
an `optax.chain` plus wrappers, always in this order (innermost first):

    base → weight decay → layer adaptation → scale by −lr·ρ(step)
         → parameter-wise multipliers → lazy → lookahead → ema → swa
         → accumulation (outermost)

so `derive(optax.scale_by_adam(eps=1e-6), lr, weight_decay=wd)` is
`optax.adamw(lr, eps=1e-6, weight_decay=wd)` and adding
`layer_adaptation=True` gives `optax.lamb(lr, weight_decay=wd)`. Any
direction transformation works as the base, e.g. `optax.contrib`'s
`scale_by_muon`, or `scale_by_lazy_adam` for LazyAdam.

References:
  Su, 《6个派生优化器的简单介绍及其实现》, https://kexue.fm/archives/7094
  (the stacking order of the extensions).
"""
from __future__ import annotations

from typing import Any, Callable, Mapping, Sequence

import jax
import optax

from jaxblog.optim._accumulate import accumulate
from jaxblog.optim._ema import ema as ema_wrapper
from jaxblog.optim._layer_adaptation import layer_adaptation as layer_adaptation_tx
from jaxblog.optim._lazy import lazy as lazy_wrapper
from jaxblog.optim._lookahead import lookahead as lookahead_wrapper
from jaxblog.optim._multipliers import scale_by_name
from jaxblog.optim._schedule import piecewise_linear
from jaxblog.optim._swa import swa as swa_wrapper
from jaxblog.optim._weight_decay import weight_decay as weight_decay_tx


def derive(
    base: optax.GradientTransformation,
    learning_rate: float | Callable[[jax.Array], jax.Array],
    *,
    weight_decay: float | None = None,
    exclude_from_weight_decay: Sequence[str] = (),
    layer_adaptation: bool = False,
    exclude_from_layer_adaptation: Sequence[str] = (),
    lr_schedule: Mapping[int, float] | None = None,
    grad_accum_steps: int | Callable[[jax.Array], Any] | None = None,
    lookahead: tuple[int, float] | None = None,
    lazy: Sequence[str] | None = None,
    ema: float | None = None,
    grad_accum_mode: str = "optax",
    lookahead_slow_init: str = "params",
    lazy_freeze_state: bool = False,
    layer_axis: int | Mapping[str, int] | None = None,
    lr_multipliers: Mapping[str, float] | optax.GradientTransformation | None = None,
    ema_start_step: int = 0,
    swa: tuple[int, int] | None = None,
    grad_accum_should_skip: Callable[..., tuple[jax.Array, Any]] | None = None,
) -> optax.GradientTransformation:
  """Stacks the derived optimizers around a base direction.

  Args:
    base: a direction transformation (no learning rate), e.g.
      `optax.scale_by_adam(eps=1e-6)`.
    learning_rate: γ, a float or an optax schedule `count -> lr`.
    weight_decay: λ for decoupled decay (`None`: no decay).
    exclude_from_weight_decay: regexes of path names not decayed.
    layer_adaptation: add the LAMB trust ratio.
    exclude_from_layer_adaptation: regexes of path names with ratio 1.
    lr_schedule: step → multiplier knots for `piecewise_linear` (the LR is
      `learning_rate · ρ(step)`; step counts real updates, or micro-steps
      with `grad_accum_mode="bert4keras"` as in the reference).
    grad_accum_steps: accumulate this many micro-steps per update, or a
      schedule `real update -> k` (see `accumulate`).
    lookahead: `(sync_period, alpha)`.
    lazy: include patterns for lazy row updates (e.g. `("embedding",)`).
    ema: EMA decay of the weights (read with `ema_params(state)`).
    grad_accum_mode: `mode` of `accumulate` (`"optax"` or `"bert4keras"`).
    lookahead_slow_init: `slow_init` of `lookahead`.
    lazy_freeze_state: `freeze_state` of `lazy` (the general path; for Adam,
      pass `scale_by_lazy_adam(..., include=lazy)` as `base` instead, which
      freezes the moments at plain-Adam speed).
    layer_axis: `layer_axis` of `layer_adaptation`.
    lr_multipliers: parameter-wise multipliers of the scaled step: a
      `{regex: multiplier}` mapping (`scale_by_name`) or a transformation
      such as `layerwise_lr_decay(0.8, num_layers=12)`.
    ema_start_step: `start_step` of `ema`.
    swa: `(period, start)` of `swa` (read with `swa_params(state)`).
    grad_accum_should_skip: `should_skip_update_fn` of `accumulate`, e.g.
      `optax.skip_not_finite`.

  Returns:
    An `optax.GradientTransformation` with plain-pytree params.

  Raises:
    ValueError: any invalid argument of the stacked pieces (e.g. a schedule
      or skip function with `grad_accum_mode="bert4keras"`).

  Example:
    >>> import optax, jax.numpy as jnp
    >>> from jaxblog import optim
    >>> tx = optim.derive(optax.scale_by_adam(eps=1e-6), 1e-3, weight_decay=0.01,
    ...                   exclude_from_weight_decay=("bias", "Norm"),
    ...                   lr_schedule={1000: 1.0}, grad_accum_steps=4)
    >>> state = tx.init({"w": jnp.ones(3), "bias": jnp.zeros(3)})
    >>> int(state.micro_step)
    0

  References:
    Su, https://kexue.fm/archives/7094.
  """
  parts = [base]
  if weight_decay is not None:
    parts.append(weight_decay_tx(weight_decay, exclude=exclude_from_weight_decay))
  if layer_adaptation:
    parts.append(layer_adaptation_tx(exclude_from_layer_adaptation, layer_axis=layer_axis))
  if lr_schedule is not None:
    rho = piecewise_linear(lr_schedule)
    if callable(learning_rate):
      lr = learning_rate
      parts.append(optax.scale_by_learning_rate(lambda count: lr(count) * rho(count)))
    else:
      lr = float(learning_rate)
      parts.append(optax.scale_by_learning_rate(lambda count: lr * rho(count)))
  else:
    parts.append(optax.scale_by_learning_rate(learning_rate))
  if lr_multipliers is not None:
    if isinstance(lr_multipliers, optax.GradientTransformation):
      parts.append(lr_multipliers)
    else:
      parts.append(scale_by_name(lr_multipliers))
  tx = optax.chain(*parts)
  if lazy is not None:
    tx = lazy_wrapper(tx, include=lazy, freeze_state=lazy_freeze_state)
  if lookahead is not None:
    try:
      sync_period, alpha = lookahead
    except (TypeError, ValueError) as e:
      raise ValueError(f"lookahead must be a (sync_period, alpha) pair, got {lookahead!r}") from e
    tx = lookahead_wrapper(tx, sync_period, alpha, slow_init=lookahead_slow_init)
  if ema is not None:
    tx = ema_wrapper(tx, ema, start_step=ema_start_step)
  if swa is not None:
    try:
      period, start = swa
    except (TypeError, ValueError) as e:
      raise ValueError(f"swa must be a (period, start) pair, got {swa!r}") from e
    tx = swa_wrapper(tx, period, start)
  if grad_accum_steps is not None:
    tx = accumulate(tx, grad_accum_steps, mode=grad_accum_mode,
                    should_skip_update_fn=grad_accum_should_skip)
  elif grad_accum_should_skip is not None:
    raise ValueError("grad_accum_should_skip needs grad_accum_steps")
  return tx
