"""A character-embedding text classifier (the lazy-optimization experiment).

Embedding → one width-3 convolution (character trigrams, as a matmul) → masked max- and
mean-pooling → ReLU layer → logits. The embedding table is the parameter the
lazy optimizer targets (path name `.../embedding/embedding`): rare characters
appear in few batches, so their rows get zero gradient most of the time.
Small enough to train in seconds per epoch on 2 CPU cores; an LSTM like the
article's would not be.

References:
  Su 2019, 《Keras实现两个优化器：Lookahead和LazyOptimizer》
  https://kexue.fm/archives/6869 (lazy optimization; an IMDB LSTM example);
  《6个派生优化器的简单介绍及其实现》 https://kexue.fm/archives/7094.
"""
from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp


class CharClassifier(nn.Module):
  """`apply(variables, ids [B, T] int32, mask [B, T] bool) -> logits [B, C]`.

  Attributes:
    vocab_size: number of character ids (0 = padding).
    embedding_size: embedding width.
    hidden_size: convolution and hidden-layer width.
    num_classes: number of output logits.
  """
  vocab_size: int
  embedding_size: int = 64
  hidden_size: int = 128
  num_classes: int = 2

  @nn.compact
  def __call__(self, ids: jax.Array, mask: jax.Array) -> jax.Array:
    m = mask[..., None].astype(jnp.float32)
    x = nn.Embed(self.vocab_size, self.embedding_size, name="embedding")(ids) * m
    # Width-3 convolution as one matmul over [x_{t-1}, x_t, x_{t+1}]: XLA:CPU
    # runs convolutions inside `lax.scan` bodies ~30x slower than a dot.
    pad = jnp.zeros_like(x[:, :1])
    tri = jnp.concatenate([jnp.concatenate([pad, x[:, :-1]], 1), x,
                           jnp.concatenate([x[:, 1:], pad], 1)], -1)
    h = nn.relu(nn.Dense(self.hidden_size, name="conv")(tri))
    count = jnp.maximum(jnp.sum(m, axis=1), 1.0)
    mean = jnp.sum(h * m, axis=1) / count
    # h >= 0 after ReLU, so zeroing padded positions keeps the max valid
    # (and 0 for an empty text).
    peak = jnp.max(h * m, axis=1)
    z = nn.relu(nn.Dense(self.hidden_size, name="hidden")(jnp.concatenate([mean, peak], -1)))
    return nn.Dense(self.num_classes, name="out")(z)
