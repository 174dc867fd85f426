"""`derive`: the reference's `extend_with_*` stacking in one call.

bert4keras builds e.g. "AdamWLRGA" by nesting class extensions; the
extension closest to the base optimizer acts first. Here the same stack is
an `optax.chain` plus wrappers, always in this order (innermost first):

    base → weight decay → layer adaptation → scale by −lr·ρ(step)
         → lazy → lookahead → ema → accumulation (outermost)

so `derive(optax.scale_by_adam(eps=1e-6), lr, weight_decay=wd)` is
`optax.adamw(lr, eps=1e-6, weight_decay=wd)` and adding
`layer_adaptation=True` gives `optax.lamb(lr, weight_decay=wd)`.

References:
  SPEC.md §1.7 (composition mechanism and order) and §1.8.
"""
from __future__ import annotations

from typing import Callable, Mapping, Sequence

import optax

from jaxblog.optim._accumulate import accumulate
from jaxblog.optim._ema import ema as ema_wrapper
from jaxblog.optim._layer_adaptation import layer_adaptation as layer_adaptation_tx
from jaxblog.optim._lazy import lazy as lazy_wrapper
from jaxblog.optim._lookahead import lookahead as lookahead_wrapper
from jaxblog.optim._schedule import piecewise_linear
from jaxblog.optim._weight_decay import weight_decay as weight_decay_tx


def derive(
    base: optax.GradientTransformation,
    learning_rate: float | Callable,
    *,
    weight_decay: float | None = None,
    exclude_from_weight_decay: Sequence[str] = (),
    layer_adaptation: bool = False,
    exclude_from_layer_adaptation: Sequence[str] = (),
    lr_schedule: Mapping[int, float] | None = None,
    grad_accum_steps: int | None = None,
    lookahead: tuple[int, float] | None = None,
    lazy: Sequence[str] | None = None,
    ema: float | None = None,
    grad_accum_mode: str = "optax",
    lookahead_slow_init: str = "params",
    lazy_freeze_state: bool = False,
    layer_axis=None,
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
    grad_accum_steps: accumulate this many micro-steps per update.
    lookahead: `(sync_period, alpha)`.
    lazy: include patterns for lazy row updates (e.g. `("embedding",)`).
    ema: EMA decay of the weights (read with `ema_params(state)`).
    grad_accum_mode: `mode` of `accumulate` (`"optax"` or `"bert4keras"`).
    lookahead_slow_init: `slow_init` of `lookahead`.
    lazy_freeze_state: `freeze_state` of `lazy`.
    layer_axis: `layer_axis` of `layer_adaptation`.

  Returns:
    An `optax.GradientTransformation` with plain-pytree params.

  Raises:
    ValueError: any invalid argument of the stacked pieces.

  Example:
    >>> import optax
    >>> from jaxblog import optim
    >>> tx = optim.derive(optax.scale_by_adam(eps=1e-6), 1e-3, weight_decay=0.01,
    ...                   exclude_from_weight_decay=("bias", "Norm"),
    ...                   lr_schedule={1000: 1.0}, grad_accum_steps=4)

  References:
    SPEC.md §1.7–1.8.
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
    tx = ema_wrapper(tx, ema)
  if grad_accum_steps is not None:
    tx = accumulate(tx, grad_accum_steps, mode=grad_accum_mode)
  return tx
