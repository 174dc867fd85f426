"""Derived optimizers (《6个派生优化器的简单介绍及其实现》) as optax transformations.

Chain elements act on the update direction before the learning-rate scaling
(`weight_decay`, `layer_adaptation`, `scale_by_lazy_adam`); multipliers act on
the scaled step (`scale_by_name`, `layerwise_lr_decay`); `piecewise_linear` is
an optax schedule; wrappers take a complete inner transformation and keep the
user's params a plain pytree (`accumulate`, `lookahead`, `lazy`, `ema`,
`swa`); `lazy_adam` is a complete LazyAdam; `derive` stacks the pieces in the
reference's order. Every state is a NamedTuple of arrays, so it jits,
checkpoints and shards like the params; the state classes are exported as
optax exports its own.

References:
  Su, 《6个派生优化器的简单介绍及其实现》, https://kexue.fm/archives/7094;
  bert4keras `optimizers.py` (the `extend_with_*` family).
"""
from jaxblog.optim._accumulate import AccumulateState, accumulate
from jaxblog.optim._derive import derive
from jaxblog.optim._ema import EmaState, ema, ema_params
from jaxblog.optim._layer_adaptation import layer_adaptation
from jaxblog.optim._lazy import lazy, lazy_adam, scale_by_lazy_adam
from jaxblog.optim._lookahead import LookaheadState, lookahead
from jaxblog.optim._multipliers import layerwise_lr_decay, scale_by_name
from jaxblog.optim._schedule import piecewise_linear
from jaxblog.optim._swa import SwaState, swa, swa_params
from jaxblog.optim._weight_decay import weight_decay

__all__ = [
    "AccumulateState",
    "EmaState",
    "LookaheadState",
    "SwaState",
    "accumulate",
    "derive",
    "ema",
    "ema_params",
    "layer_adaptation",
    "layerwise_lr_decay",
    "lazy",
    "lazy_adam",
    "lookahead",
    "piecewise_linear",
    "scale_by_lazy_adam",
    "scale_by_name",
    "swa",
    "swa_params",
    "weight_decay",
]
