"""Derived optimizers (article: 《6个派生优化器的简单介绍及其实现》) as optax transformations.

Chain elements act on the update direction before the learning-rate scaling
(`weight_decay`, `layer_adaptation`); `piecewise_linear` is an optax
schedule; wrappers take a complete inner transformation and keep the user's
params a plain pytree (`accumulate`, `lookahead`, `lazy`, `ema`); `derive`
stacks them in the reference's order. Every state is a NamedTuple of arrays,
so it jits, checkpoints and shards like the params.

References:
  SPEC.md §1 and §9.1.

State classes (`AccumulateState`, `LookaheadState`, `EmaState`) live in the
private modules; the public names are exactly those of API.md.
"""
from jaxblog.optim._accumulate import accumulate
from jaxblog.optim._derive import derive
from jaxblog.optim._ema import ema, ema_params
from jaxblog.optim._layer_adaptation import layer_adaptation
from jaxblog.optim._lazy import lazy
from jaxblog.optim._lookahead import lookahead
from jaxblog.optim._schedule import piecewise_linear
from jaxblog.optim._weight_decay import weight_decay

__all__ = [
    "weight_decay",
    "layer_adaptation",
    "piecewise_linear",
    "accumulate",
    "lookahead",
    "lazy",
    "ema",
    "ema_params",
    "derive",
]
