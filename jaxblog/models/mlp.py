"""A plain MLP classifier (the MNIST experiments of the optimizer articles)."""
from __future__ import annotations

from typing import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
import optax


class MLP(nn.Module):
  """Flattens the input, then Dense+ReLU layers and a linear classifier.

  Attributes:
    hidden_sizes: widths of the hidden layers.
    num_classes: number of output logits.
  """
  hidden_sizes: Sequence[int] = (256,)
  num_classes: int = 10

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    x = x.reshape(x.shape[0], -1)
    for width in self.hidden_sizes:
      x = nn.relu(nn.Dense(width)(x))
    return nn.Dense(self.num_classes)(x)


def classification_loss(model: nn.Module):
  """`loss_fn(params, batch, rng)` for `loop.fit`: mean softmax CE + accuracy.

  `batch` is a dict with `x` (inputs) and `y` (int labels).
  """

  def loss_fn(params, batch, rng):
    del rng
    logits = model.apply({"params": params}, batch["x"])
    loss = optax.softmax_cross_entropy_with_integer_labels(logits, batch["y"]).mean()
    acc = jnp.mean(jnp.argmax(logits, -1) == batch["y"])
    return loss, {"accuracy": acc}

  return loss_fn
