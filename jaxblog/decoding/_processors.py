"""Logits processors: per-step rewrites of the logits that see the prefix so far.

A processor is a function `processor(logits [N, V], tokens int32 [N, L], index)
-> logits [N, V]`, with `index` an int32 scalar (or `[N]`, one per row). The
searches call it inside their loop on every step's raw logits, before any
normalisation, temperature or truncation; `tokens[:, :index]` is each row's
sequence so far (forced prompt tokens included, `bos_id` excluded) and the
columns from `index` on hold padding that a processor must ignore. Everything
here runs on device with static shapes: the prefix becomes a `[N, V]` mask
through one scatter of `N * L` ids, never an `[N, L, V]` one-hot.

Example:
  >>> import jax.numpy as jnp
  >>> from jaxblog import decoding
  >>> logits = jnp.array([[2.0, -1.0, 0.5, 3.0]])
  >>> tokens = jnp.array([[0, 1, 0, 3]], jnp.int32)  # only [0, 1, 0] is the prefix
  >>> decoding.repetition_penalty(2.0)(logits, tokens, 3)
  Array([[ 1. , -2. ,  0.5,  3. ]], dtype=float32)
  >>> decoding.no_repeat_ngram(2)(logits, tokens, 3)  # "0 1" seen, suffix is 0
  Array([[ 2. , -inf,  0.5,  3. ]], dtype=float32)

References: Keskar et al. 2019, "CTRL: A Conditional Transformer Language Model
  for Controllable Generation" (arXiv:1909.05858), repetition penalty; Paulus
  et al. 2017, "A Deep Reinforced Model for Abstractive Summarization"
  (arXiv:1705.04304), n-gram blocking; Hugging Face `transformers`
  `RepetitionPenaltyLogitsProcessor` / `NoRepeatNGramLogitsProcessor`, whose
  outputs these match.
"""
from __future__ import annotations

import numbers
from typing import Callable, Optional

import jax
import jax.numpy as jnp
from jax import lax

from jaxblog.decoding import _common

LogitsProcessor = Callable[[jax.Array, jax.Array, jax.Array], jax.Array]


def _check_inputs(logits, tokens) -> None:
  if jnp.ndim(logits) != 2 or jnp.ndim(tokens) != 2 or (
      jnp.shape(logits)[0] != jnp.shape(tokens)[0]):
    raise ValueError(f"a logits processor takes logits [N, V] and tokens [N, L] with the "
                     f"same N, got {jnp.shape(logits)} and {jnp.shape(tokens)}")
  if not jnp.issubdtype(jnp.result_type(logits), jnp.floating):
    raise TypeError(f"logits must be floating, got {jnp.result_type(logits)}")
  if not jnp.issubdtype(jnp.result_type(tokens), jnp.integer):
    raise TypeError(f"tokens must be an integer array, got {jnp.result_type(tokens)}")


def _index_column(index, rows: int) -> jax.Array:
  """`index` (scalar or `[N]`) as int32 `[1, 1]` or `[N, 1]`."""
  index = jnp.asarray(index)
  if not jnp.issubdtype(index.dtype, jnp.integer) or index.ndim > 1 or (
      index.ndim == 1 and index.shape[0] != rows):
    raise ValueError(f"index must be an integer scalar or [N] = [{rows}] array, got "
                     f"{index.dtype} {index.shape}")
  return index.astype(jnp.int32).reshape(-1, 1)


def _mark(ids: jax.Array, hit: jax.Array, vocab: int) -> jax.Array:
  """bool `[N, V]`: `True` at `ids[r, j]` for every `j` with `hit[r, j]`.

  One scatter of the `[N, J]` ids; misses are sent out of range and dropped.
  """
  rows = lax.broadcasted_iota(jnp.int32, ids.shape, 0)
  cols = jnp.where(hit, ids.astype(jnp.int32), vocab)
  return jnp.zeros((ids.shape[0], vocab), bool).at[rows, cols].set(True, mode="drop")


def repetition_penalty(penalty: float) -> LogitsProcessor:
  """Penalises every token id already in the prefix (the CTRL rule).

  A seen token's logit `z` becomes `z / penalty` if `z > 0`, else
  `z * penalty`; with `penalty > 1` repeated tokens become less likely
  whatever the sign of their logit. Each id is penalised once however often it
  occurs. `penalty = 1` returns the logits unchanged.

  Args:
    penalty: float > 0 (a Python number, checked, or a traced scalar).

  Returns:
    `processor(logits [N, V], tokens int [N, L], index) -> logits [N, V]`
    (same dtype) penalising the ids in `tokens[:, :index]`.

  References: Keskar et al. 2019, "CTRL" (arXiv:1909.05858), section 4.1.
  """
  if isinstance(penalty, numbers.Real) and not penalty > 0:
    raise ValueError(f"penalty must be > 0, got {penalty!r}")

  def processor(logits: jax.Array, tokens: jax.Array, index) -> jax.Array:
    _check_inputs(logits, tokens)
    pos = lax.broadcasted_iota(jnp.int32, tokens.shape, 1)
    seen = _mark(tokens, pos < _index_column(index, tokens.shape[0]), logits.shape[1])
    p = jnp.asarray(penalty, logits.dtype)
    return jnp.where(seen, jnp.where(logits > 0, logits / p, logits * p), logits)

  return processor


def no_repeat_ngram(n: int) -> LogitsProcessor:
  """Bans (`-inf`) every token that would complete an `n`-gram already in the prefix.

  At step `index` the last `n - 1` tokens of the prefix are compared with every
  earlier `(n - 1)`-gram `tokens[s : s + n - 1]` whose follower
  `tokens[s + n - 1]` is also in the prefix (`s + n <= index`); each match bans
  that follower. `n = 1` bans every token already generated; a prefix shorter
  than `n` bans nothing. The comparison is vectorised over all start positions
  `s` (a static loop over the `n - 1` offsets only), `O(N * L * n)` work.

  Args:
    n: static int >= 1.

  Returns:
    `processor(logits [N, V], tokens int [N, L], index) -> logits [N, V]`.

  References: Paulus et al. 2017, "A Deep Reinforced Model for Abstractive
    Summarization" (arXiv:1705.04304), trigram blocking.
  """
  n = _common.static_int("n", n, 1)

  def processor(logits: jax.Array, tokens: jax.Array, index) -> jax.Array:
    _check_inputs(logits, tokens)
    length = tokens.shape[1]
    starts = length - n + 1  # candidate start positions s of an n-gram
    if starts <= 0:
      return logits
    index = _index_column(index, tokens.shape[0])
    tokens = tokens.astype(jnp.int32)
    match = lax.broadcasted_iota(jnp.int32, (1, starts), 1) + n <= index
    # The current suffix tokens[index - n + 1 + j], j < n - 1. Whenever a start
    # is valid, index >= n and these are in range; otherwise they are clipped
    # and ignored.
    at = index - n + 1 + lax.broadcasted_iota(jnp.int32, (1, n - 1), 1)
    at = jnp.broadcast_to(jnp.clip(at, 0, length - 1), (tokens.shape[0], n - 1))
    suffix = jnp.take_along_axis(tokens, at, axis=1)
    for j in range(n - 1):
      match = match & (tokens[:, j:j + starts] == suffix[:, j:j + 1])
    banned = _mark(tokens[:, n - 1:], match, logits.shape[1])
    return jnp.where(banned, jnp.asarray(-jnp.inf, logits.dtype), logits)

  return processor


def chain(*processors: Optional[LogitsProcessor]) -> LogitsProcessor:
  """One processor applying `processors` left to right; `None`s are skipped.

  Args:
    *processors: logits processors (or `None`).

  Returns:
    `processor(logits, tokens, index) -> logits`; the identity when no
    processor is given.
  """
  present = [p for p in processors if p is not None]
  for i, p in enumerate(present):
    if not callable(p):
      raise TypeError(f"processors[{i}] must be callable, got {type(p).__name__}")

  def processor(logits: jax.Array, tokens: jax.Array, index) -> jax.Array:
    for p in present:
      logits = p(logits, tokens, index)
    return logits

  return processor


def with_prefix(processor: LogitsProcessor, prefix: jax.Array,
                prefix_lengths: Optional[jax.Array] = None) -> LogitsProcessor:
  """`processor` also shown a per-input prefix the search never sees.

  With a prompt prefilled outside the search (`jaxblog.models.generate.
  cached_decoder`), the search's `tokens` hold the generated tokens only. The
  wrapped processor sees `prefix[b, :prefix_lengths[b]]` followed by them,
  with the per-row index `prefix_lengths[b] + index`, as Hugging Face's
  `generate` shows its processors prompt + generated tokens.

  Args:
    processor: a logits processor accepting a per-row `[N]` index (all of
      this module's do).
    prefix: int `[B, P]`, right-padded.
    prefix_lengths: int `[B]`, default `P` for every row.

  Returns:
    `processor(logits [N, V], tokens int [N, L], index)` for `N = B * copies`
    rows in the searches' order `b * copies + k`.
  """
  if not jnp.issubdtype(jnp.result_type(prefix), jnp.integer) or jnp.ndim(prefix) != 2:
    raise ValueError(f"prefix must be an integer array [B, P], got "
                     f"{jnp.result_type(prefix)} {jnp.shape(prefix)}")
  batch, width = jnp.shape(prefix)
  lengths = (jnp.full((batch,), width, jnp.int32) if prefix_lengths is None
             else jnp.asarray(prefix_lengths, jnp.int32))
  if lengths.shape != (batch,):
    raise ValueError(f"prefix_lengths must have shape [B] = [{batch}], got {lengths.shape}")

  def wrapped(logits: jax.Array, tokens: jax.Array, index) -> jax.Array:
    _check_inputs(logits, tokens)
    rows, length = tokens.shape
    if rows % batch:
      raise ValueError(f"rows N={rows} must be a multiple of the prefix batch B={batch}")
    copies = rows // batch
    pre = jnp.repeat(jnp.asarray(prefix, jnp.int32), copies, axis=0)
    n = jnp.repeat(lengths, copies)[:, None]  # [N, 1]
    both = jnp.concatenate([pre, tokens.astype(jnp.int32)], axis=1)
    col = lax.broadcasted_iota(jnp.int32, (1, width + length), 1)
    src = jnp.clip(jnp.where(col < n, col, width + col - n), 0, width + length - 1)
    joined = jnp.take_along_axis(both, jnp.broadcast_to(src, both.shape), axis=1)
    return processor(logits, joined, n[:, 0] + _index_column(index, rows)[:, 0])

  return wrapped


def check_processor(processor: Optional[LogitsProcessor], rows: int, vocab: int,
                    length: int, dtype=jnp.float32, name: str = "logits_processor") -> None:
  """Abstractly evaluates a search's processor; errors name the bad output."""
  if processor is None:
    return
  if not callable(processor):
    raise TypeError(f"{name} must be callable or None, got {type(processor).__name__}")
  out = jax.eval_shape(processor, jax.ShapeDtypeStruct((rows, vocab), dtype),
                       jax.ShapeDtypeStruct((rows, length), jnp.int32),
                       jax.ShapeDtypeStruct((), jnp.int32))
  if getattr(out, "shape", None) != (rows, vocab) or not jnp.issubdtype(
      out.dtype, jnp.floating):
    raise ValueError(f"{name} must return floating logits of shape [N, V] = "
                     f"{(rows, vocab)}, got {getattr(out, 'shape', type(out).__name__)}")
