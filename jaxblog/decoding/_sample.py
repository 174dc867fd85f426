"""Ancestral sampling with temperature, top-k and nucleus (top-p) truncation.

One `lax.while_loop` over positions; each row stops being extended after its
`eos_id` (later positions are filled with `eos_id`) and the loop ends when all
rows have ended. Truncation follows bert4keras' `random_sample` (as used in
https://kexue.fm/archives/6933):
temperature divides the logits, top-k keeps the `k` most likely tokens, and the
nucleus then keeps the most likely tokens up to and including the first at
which the cumulative (renormalised) mass reaches `p`. With `top_k > 0` the
nucleus is computed on the `k` survivors only, so no full-vocabulary sort runs.
"""
from __future__ import annotations

from typing import Callable, Optional

import jax
import jax.numpy as jnp
from jax import lax

from jaxblog.decoding import _common, _processors
from jaxblog.decoding._processors import LogitsProcessor


def truncate_logits(logits: jax.Array, *, temperature=1.0, top_k: int = 0,
                    top_p: float = 1.0):
  """Tempered, truncated logits over candidate ids.

  Args:
    logits: float `[N, V]`.
    temperature: > 0.
    top_k: keep the `top_k` largest logits (0 = all).
    top_p: nucleus mass in (0, 1] (1 = no nucleus).

  Returns:
    `(logits [N, C], ids int32 [N, C] or None)`: `C = top_k` candidate columns
    with their vocabulary ids, or all `V` columns (ids `None`) without top-k.
    Dropped candidates have logit `-inf`.

  References: bert4keras `random_sample(n, topk, topp)`, as used in
    https://kexue.fm/archives/6933; Holtzman et al. 2019, "The Curious Case of
    Neural Text Degeneration" (arXiv:1904.09751), nucleus sampling.
  """
  logits = logits.astype(jnp.float32) / jnp.asarray(temperature, jnp.float32)
  ids = None
  if top_k:
    logits, ids = _common.top_k(logits, top_k)  # sorted, best first
  if top_p < 1.0:
    if ids is None:
      order = jnp.argsort(-logits, axis=-1)
      sorted_logits = jnp.take_along_axis(logits, order, axis=-1)
    else:
      sorted_logits = logits
    probs = jax.nn.softmax(sorted_logits, axis=-1)
    mass_before = jnp.cumsum(probs, axis=-1) - probs
    # Keep every token whose predecessors hold < p; the first always survives.
    cut = jnp.where(mass_before < top_p, sorted_logits, -jnp.inf)
    cut = cut.at[:, 0].set(sorted_logits[:, 0])
    if ids is None:
      logits = jnp.zeros_like(logits).at[
          jnp.arange(logits.shape[0])[:, None], order].set(cut)
    else:
      logits = cut
  return logits, ids


def sample(step_fn: Callable, state, rng: jax.Array, *, batch_size: int,
           max_len: int, bos_id: int, eos_id: int, temperature=1.0,
           top_k: int = 0, top_p: float = 1.0, num_samples: int | None = None,
           min_len: int = 0, prompt=None, prompt_lengths=None,
           logits_processor: Optional[LogitsProcessor] = None) -> jax.Array:
  """Samples continuations from a step function; jittable and batched.

  Args:
    step_fn: `step_fn(tokens int32 [N], state, index int32) -> (logits [N, V],
      state)` as in `beam_search`, with `N = batch_size * num_samples`.
    state: initial state, leaves with leading axis `batch_size`; tiled to `N`
      rows (row `b * num_samples + s`).
    rng: a PRNG key.
    batch_size: number of inputs `B`.
    max_len: generated positions (>= 1).
    bos_id: first input token; not part of the output.
    eos_id: end token; positions after it are filled with `eos_id`.
    temperature: > 0; logits are divided by it.
    top_k: sample among the `top_k` most likely tokens (0 = no limit,
      must be <= V).
    top_p: nucleus mass in (0, 1].
    num_samples: samples per input. `None` (default) draws one and returns
      `[B, max_len]`; an int `S` returns `[B, S, max_len]`.
    min_len: `eos_id` is forbidden at positions `< min_len`.
    prompt: optional int `[B, P]` forced prefix, as in `beam_search`.
    prompt_lengths: optional int `[B]`.
    logits_processor: optional `processor(logits [N, V], tokens int32 [N,
      max_len], index) -> logits [N, V]` applied to each step's float32 logits
      before temperature and truncation; row `r` of `tokens` holds sample
      `r`'s tokens so far in `[:, :index]` (prompt included) and `eos_id`
      after them. `None` compiles exactly the sampler without one. A row
      whose every token is banned (`-inf`) draws id 0.

  Returns:
    int32 `[B, max_len]` (or `[B, S, max_len]` when `num_samples` is given).

  References: bert4keras `random_sample`, as used in https://kexue.fm/archives/6933.
  """
  batch = _common.static_int("batch_size", batch_size, 1)
  length = _common.static_int("max_len", max_len, 1)
  copies = 1 if num_samples is None else _common.static_int("num_samples",
                                                            num_samples, 1)
  min_len = _common.static_int("min_len", min_len, 0)
  top_k = _common.static_int("top_k", top_k, 0)
  if min_len > length:
    raise ValueError(f"min_len={min_len} exceeds max_len={length}")
  if not isinstance(top_p, (int, float)) or not 0.0 < top_p <= 1.0:
    raise ValueError(f"top_p must be a Python float in (0, 1], got {top_p!r}")
  if isinstance(temperature, (int, float)) and not temperature > 0:
    raise ValueError(f"temperature must be > 0, got {temperature!r}")
  rows = batch * copies
  state = _common.tile_rows(state, batch, copies)
  vocab = _common.check_step(step_fn, (jnp.zeros((rows,), jnp.int32), state,
                                       jnp.int32(0)), rows)
  if top_k > vocab:
    raise ValueError(f"top_k={top_k} exceeds the vocabulary size V={vocab}")
  bos_id = _common.token_id("bos_id", bos_id, vocab)
  eos_id = _common.token_id("eos_id", eos_id, vocab)
  prompt, prompt_lengths = _common.prompt_args(prompt, prompt_lengths, batch, length)
  _common.check_ids_concrete("prompt", prompt, vocab)
  _processors.check_processor(logits_processor, rows, vocab, length)

  def body(carry):
    index, tokens, state, seqs, ended = carry
    logits, state = step_fn(tokens, state, index)
    logits = logits.astype(jnp.float32)
    if logits_processor is not None:
      logits = logits_processor(logits, seqs, index)
    # Greedy (top_k=1): the arg-max of the logits is that of the
    # log-probabilities, so skip the normaliser and the draw (about 5 % of a
    # small decoder's step on CPU).
    greedy = top_k == 1
    scores = logits if greedy else jax.nn.log_softmax(logits, axis=-1)
    if logits_processor is not None and not greedy:
      scores = jnp.where(jnp.isnan(scores), -jnp.inf, scores)  # every token banned
    scores = _common.constrain_logp(scores.reshape(batch, copies, vocab), index,
                                    eos_id=eos_id, min_len=min_len, prompt=prompt,
                                    prompt_lengths=prompt_lengths).reshape(rows, vocab)
    if greedy:  # first index of the maximum, like `lax.top_k`
      top = jnp.max(scores, axis=-1, keepdims=True)
      col = lax.broadcasted_iota(jnp.int32, scores.shape, 1)
      choice = jnp.min(jnp.where(scores == top, col, vocab), axis=-1)
    else:
      cand, ids = truncate_logits(scores, temperature=temperature, top_k=top_k,
                                  top_p=top_p)
      choice = jax.random.categorical(jax.random.fold_in(rng, index), cand, axis=-1)
      if ids is not None:
        choice = jnp.take_along_axis(ids, choice[:, None], axis=-1)[:, 0]
    token = jnp.where(ended, eos_id, choice).astype(jnp.int32)
    col = lax.broadcasted_iota(jnp.int32, (1, length), 1)
    seqs = jnp.where(col == index, token[:, None], seqs)
    return index + 1, token, state, seqs, ended | (token == eos_id)

  init = (jnp.int32(0), jnp.full((rows,), bos_id, jnp.int32), state,
          jnp.full((rows, length), eos_id, jnp.int32), jnp.zeros((rows,), bool))
  out = lax.while_loop(lambda c: (c[0] < length) & ~jnp.all(c[4]), body, init)
  seqs = out[3]
  return seqs if num_samples is None else seqs.reshape(batch, copies, length)
