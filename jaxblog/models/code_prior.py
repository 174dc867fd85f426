"""Autoregressive prior over a VQ-VAE code grid (the article's "PixelAtt").

The reference flattens the m×m code matrix row-major, shifts it by one with a
start token, adds learned token + row + column embeddings, and runs a stack of
pre-LN causal self-attention blocks with a softmax over the K codes, trained
by next-code cross-entropy and sampled one position at a time.

Here the blocks are `jaxblog.models.layers.Block` (pre-LN, ReLU FFN) under
the mask `jaxblog.masks.causal`, and the start token is the extra id K. The
same parameters run the whole grid for training (`__call__`) and one position
per call with a key/value cache for sampling (`step`), which plugs into
`jaxblog.decoding.sample` through `sample_codes`. The row/column embedding of
input position t is that of the code predicted there (t), so the model always
knows where the code it is about to emit sits in the image.
"""
from __future__ import annotations

from typing import Tuple

import flax.linen as nn
import jax
import jax.numpy as jnp
from jax import lax

from jaxblog import decoding, masks
from jaxblog.models.config import TransformerConfig
from jaxblog.models.layers import Block


class CodePrior(nn.Module):
  """Causal Transformer over a flattened `[rows, cols]` code grid.

  Attributes:
    num_codes: K; ids `0..K-1` are codes, `K` is the start token.
    grid: `(rows, cols)` of the code grid.
    hidden_size, num_layers, num_heads, intermediate_size: Transformer sizes
      (reference: 256, 4, 8, 256).

  References:
    Su 2019, 《VQ-VAE的简明介绍：量子化自编码器》 https://kexue.fm/archives/6760
    (the PixelAtt prior).
  """
  num_codes: int
  grid: Tuple[int, int] = (7, 7)
  hidden_size: int = 128
  num_layers: int = 4
  num_heads: int = 4
  intermediate_size: int = 256

  @property
  def length(self) -> int:
    return self.grid[0] * self.grid[1]

  def _config(self):
    return TransformerConfig(
        vocab_size=self.num_codes + 1, hidden_size=self.hidden_size,
        num_layers=self.num_layers, num_heads=self.num_heads,
        intermediate_size=self.intermediate_size, max_position=self.length, type_vocab_size=0,
        pre_norm=True, activation="relu", layer_norm_eps=1e-6, application="lm")

  def setup(self):
    init = nn.initializers.normal(0.02)
    self.token_embed = nn.Embed(self.num_codes + 1, self.hidden_size, embedding_init=init)
    self.row_embed = nn.Embed(self.grid[0], self.hidden_size, embedding_init=init)
    self.col_embed = nn.Embed(self.grid[1], self.hidden_size, embedding_init=init)
    self.blocks = [Block(self._config(), name=f"block_{i}") for i in range(self.num_layers)]
    self.final_norm = nn.LayerNorm(1e-6)
    self.head = nn.Dense(self.num_codes)

  def _embed(self, tokens, positions):
    """Token + row + column embeddings; `positions` broadcasts against `tokens`."""
    cols = self.grid[1]
    return (self.token_embed(tokens) + self.row_embed(positions // cols)
            + self.col_embed(positions % cols))

  def __call__(self, tokens):
    """Next-code logits for a teacher-forced grid.

    Args:
      tokens: int `[B, T]` inputs, `T <= rows·cols`: the start id K then the
        first `T − 1` codes (see `shift_codes`).

    Returns:
      `[B, T, K]` logits of the code at each position.
    """
    length = tokens.shape[-1]
    x = self._embed(tokens, jnp.arange(length)[None])
    mask = masks.causal(length)[None]
    for block in self.blocks:
      x, _ = block(x, mask)
    return self.head(self.final_norm(x))

  def step(self, tokens, cache, index):
    """One decoding position with a KV cache.

    Args:
      tokens: int `[N]` input at position `index` (start id at 0).
      cache: tuple over layers of `(keys, values)` from `init_cache`.
      index: int32 scalar position.

    Returns:
      `(logits [N, K], cache)`.
    """
    x = self._embed(tokens[:, None], jnp.full((1, 1), index))
    visible = lax.dynamic_slice_in_dim(masks.causal(self.length), index, 1, axis=0)[None]
    new_cache = []
    for block, kv in zip(self.blocks, cache):
      x, kv = block(x, visible, cache=kv, slot=index)
      new_cache.append(kv)
    return self.head(self.final_norm(x))[:, 0], tuple(new_cache)

  def init_cache(self, batch_size: int):
    """Zero KV cache for `batch_size` rows (call with `method=`).

    Shapes come from the blocks' own prefill output, so the cache follows
    whatever layout `transformer.Attention` keeps.
    """
    x = jnp.zeros((batch_size, self.length, self.hidden_size))
    mask = masks.causal(self.length)[None]
    cache = []
    for block in self.blocks:
      kv = jax.eval_shape(lambda x: block(x, mask)[1], x)
      cache.append(tuple(jnp.zeros(a.shape, a.dtype) for a in kv))
    return tuple(cache)


def shift_codes(codes, num_codes: int):
  """`[B, rows, cols]` codes → `[B, T]` inputs (start id K, codes shifted right)."""
  flat = codes.reshape(codes.shape[0], -1)
  start = jnp.full((flat.shape[0], 1), num_codes, flat.dtype)
  return jnp.concatenate([start, flat[:, :-1]], axis=1)


def code_nll(model: CodePrior, params, codes: jax.Array) -> jax.Array:
  """Next-code cross-entropy of each grid (nats per code): `[B, rows, cols]` codes -> `[B]`."""
  logits = model.apply(params, shift_codes(codes, model.num_codes))
  targets = codes.reshape(codes.shape[0], -1)
  logp = jax.nn.log_softmax(logits.astype(jnp.float32), axis=-1)
  return -jnp.mean(jnp.take_along_axis(logp, targets[..., None], axis=-1)[..., 0], axis=-1)


def prior_loss(model: CodePrior, params, codes: jax.Array) -> jax.Array:
  """Mean next-code cross-entropy (nats per code) of `[B, rows, cols]` codes."""
  return jnp.mean(code_nll(model, params, codes))


def sample_codes(model: CodePrior, params, rng, batch_size: int, *, temperature: float = 1.0,
                 top_k: int = 0, top_p: float = 1.0):
  """Ancestral samples of code grids via `jaxblog.decoding.sample`.

  The step function's vocabulary is the K codes plus the start id K, whose
  logit is pinned to a large negative value, so it serves as `bos_id` and as
  the (never emitted) `eos_id` and all `rows·cols` positions are sampled.

  Args:
    model: the `CodePrior`.
    params: its variables.
    rng: PRNG key.
    batch_size: number of grids.
    temperature, top_k, top_p: as in `jaxblog.decoding.sample`.

  Returns:
    int32 `[batch_size, rows, cols]` code grids.
  """
  cache = model.apply(params, batch_size, method=CodePrior.init_cache)
  k = model.num_codes

  def step_fn(tokens, cache, index):
    logits, cache = model.apply(params, tokens, cache, index, method=CodePrior.step)
    start = jnp.full(logits.shape[:-1] + (1,), -1e9, logits.dtype)
    return jnp.concatenate([logits, start], axis=-1), cache

  seqs = decoding.sample(step_fn, cache, rng, batch_size=batch_size, max_len=model.length,
                         bos_id=k, eos_id=k, temperature=temperature, top_k=top_k, top_p=top_p)
  return jnp.minimum(seqs, k - 1).reshape(batch_size, *model.grid)
