"""Batched beam search in one `lax.while_loop` with fixed shapes.

Design: every buffer has a static shape (`[B, K, max_len]` token buffers filled
with `eos_id`, `[B, K]` scores), hypotheses are chosen with `lax.top_k`, and the
user's state (e.g. a KV cache) is gathered along the beam axis every step, so
the step function only ever sees `N = B * K` rows. Two stopping rules:

* `stop_rule="exact"` (default): keep `K` live and `K` finished hypotheses;
  each step proposes the best `2K` extensions (at most `K` of them end, so the
  live set never starves), merges ended ones into the finished set and stops a
  row once its `K`-th finished score beats the best score any live hypothesis
  can still reach. With a beam as wide as the search space this is exhaustive
  search, and the output is an n-best list.
* `stop_rule="reference"`: bert4keras' `AutoRegressiveDecoder.beam_search`
  (as used in https://kexue.fm/archives/6933) — keep the top `k` of the `k x V`
  extensions; return as soon as
  the overall best one has ended; otherwise drop the ended ones and shrink `k`.

What it leaves out: logits processors other than `min_len` and forced prompt
tokens (apply them inside `step_fn`), parallel prompt prefill (prefill your
cache outside and start from it), and encoder-state de-duplication.
"""
from __future__ import annotations

from typing import Any, Callable, NamedTuple, Optional, Tuple

import jax
import jax.numpy as jnp
from jax import lax

from jaxblog.decoding import _common, _processors
from jaxblog.decoding._processors import LogitsProcessor

STOP_RULES = ("exact", "reference")


class _Carry(NamedTuple):
  index: jax.Array       # int32 [], position of the token generated next
  tokens: jax.Array      # int32 [B*K], the step function's next input
  state: Any             # user state, leaves [B*K, ...]
  live_seqs: jax.Array   # int32 [B, K, L]
  live_logp: jax.Array   # f32 [B, K], -inf for empty slots
  k_alive: jax.Array     # int32 [B], live slots left (reference rule)
  out_seqs: jax.Array    # int32 [B, K, L], finished / returned hypotheses
  out_scores: jax.Array  # f32 [B, K]
  done: jax.Array        # bool [B]


def length_penalty_factor(length, alpha) -> jax.Array:
  """GNMT brevity penalty `((5 + length) / 6) ** alpha`."""
  return ((5.0 + jnp.asarray(length, jnp.float32)) / 6.0) ** alpha


def beam_search(step_fn: Callable, state, *, batch_size: int, beam_size: int,
                max_len: int, bos_id: int, eos_id: int, length_penalty=0.0,
                min_len: int = 0, prompt=None, prompt_lengths=None,
                stop_rule: str = "exact", early_exit: bool = True,
                gather: str = "take", logits_processor: Optional[LogitsProcessor] = None
                ) -> Tuple[jax.Array, jax.Array]:
  """Beam search over a step function; jittable, batched, KV-cache friendly.

  Args:
    step_fn: `step_fn(tokens int32 [N], state, index int32) -> (logits [N, V],
      state)` with `N = batch_size * beam_size`; `index` is the 0-based
      position of the token being generated and `tokens` the previous token
      (`bos_id` at index 0). Every state leaf has leading axis `N`.
    state: initial state, every leaf with leading axis `batch_size`; it is
      tiled to `N` rows (row `b * beam_size + k`) and gathered along the beam
      axis after every step.
    batch_size: number of inputs `B`.
    beam_size: beams per input `K` (>= 1).
    max_len: generated positions `L` (>= 1), the prompt included.
    bos_id: first input token; not part of the output.
    eos_id: end token.
    length_penalty: GNMT `alpha`; a score is the summed log-probability
      (the `eos_id` step included) divided by `((5 + length) / 6) ** alpha`,
      where `length` counts the positions up to and including `eos_id` (or
      `max_len`), prompt included.
    min_len: `eos_id` is forbidden at positions `< min_len`, so every
      hypothesis has at least `min_len` tokens before its `eos_id`.
    prompt: optional int `[B, P]` forced prefix (`P <= max_len`); position
      `t < prompt_lengths[b]` is forced to `prompt[b, t]`. Forced tokens are
      written to `sequences` and count towards `length` but add 0 to scores.
    prompt_lengths: optional int `[B]`, default `P` for every row.
    stop_rule: `"exact"` (n-best with the bound test above; with
      `beam_size=1` it is greedy unless a hypothesis ending one step off the
      greedy path, EOS as runner-up, scores higher) or `"reference"`
      (bert4keras; requires `length_penalty == 0`; slot 0 is the hypothesis
      the reference returns, the other slots are the beam at that step, and a
      hypothesis returned before it ended shows `eos_id` padding only).
    early_exit: stop rows as soon as their result cannot change (exact rule).
      `False` runs all `max_len` steps (same result).
    gather: `"take"` (a batched gather) or `"one_hot"` (an exact one-hot
      matmul) for reordering the state; see the `jaxblog.decoding` notes.
    logits_processor: optional `processor(logits [N, V], tokens int32 [N,
      max_len], index) -> logits [N, V]` applied to each step's float32 logits
      before the log-softmax; row `b * K + k` of `tokens` is hypothesis `k`'s
      sequence so far in `[:, :index]` (prompt included, `bos_id` excluded)
      and `eos_id` after it. `None` compiles exactly the search without one.
      A hypothesis whose every extension is banned (`-inf`) drops out.

  Returns:
    `(sequences int32 [B, K, max_len], scores float32 [B, K])`, best first.
    `sequences` exclude `bos_id`, hold `eos_id` where a hypothesis ended and
    after it. Slots that the search space cannot fill score `-inf`.

  References: Su 2019, "从语言模型到Seq2Seq：Transformer如戏，全靠Mask"
    (https://kexue.fm/archives/6933) and bert4keras' `AutoRegressiveDecoder`; the
    t5x/flax `decoding.beam_search` layout (2K candidates, live and finished sets); Wu et
    al. 2016, "Google's Neural Machine Translation System" (arXiv:1609.08144),
    length penalty.
  """
  batch = _common.static_int("batch_size", batch_size, 1)
  beams = _common.static_int("beam_size", beam_size, 1)
  length = _common.static_int("max_len", max_len, 1)
  min_len = _common.static_int("min_len", min_len, 0)
  if min_len > length:
    raise ValueError(f"min_len={min_len} exceeds max_len={length}")
  if stop_rule not in STOP_RULES:
    raise ValueError(f"stop_rule must be one of {STOP_RULES}, got {stop_rule!r}")
  if stop_rule == "reference" and not (isinstance(length_penalty, (int, float))
                                       and length_penalty == 0):
    raise ValueError("stop_rule='reference' has no length normalisation; "
                     f"length_penalty must be 0, got {length_penalty!r}")
  gather = _common.check_gather(gather)
  rows = batch * beams
  state = _common.tile_rows(state, batch, beams)
  tokens0 = jnp.full((rows,), 0, jnp.int32)
  vocab = _common.check_step(step_fn, (tokens0, state, jnp.int32(0)), rows)
  bos_id = _common.token_id("bos_id", bos_id, vocab)
  eos_id = _common.token_id("eos_id", eos_id, vocab)
  prompt, prompt_lengths = _common.prompt_args(prompt, prompt_lengths, batch, length)
  _common.check_ids_concrete("prompt", prompt, vocab)
  _processors.check_processor(logits_processor, rows, vocab, length)
  alpha = jnp.asarray(length_penalty, jnp.float32)
  reference = stop_rule == "reference"

  def expand(c: _Carry):
    """Log-probs of all `K * V` extensions and the new state."""
    logits, new_state = step_fn(c.tokens, c.state, c.index)
    logits = logits.astype(jnp.float32)
    if logits_processor is None:
      logp = jax.nn.log_softmax(logits, axis=-1)
    else:
      logits = logits_processor(logits, c.live_seqs.reshape(rows, length), c.index)
      logp = jax.nn.log_softmax(logits, axis=-1)
      logp = jnp.where(jnp.isnan(logp), -jnp.inf, logp)  # every token banned
    logp = _common.constrain_logp(
        logp.reshape(batch, beams, vocab), c.index, eos_id=eos_id,
        min_len=min_len, prompt=prompt, prompt_lengths=prompt_lengths)
    return c.live_logp[:, :, None] + logp, new_state

  def pick(cand, count, c: _Carry):
    """Best `count` extensions: scores, parent beams, tokens, sequences."""
    top_logp, flat = _common.top_k(cand.reshape(batch, beams * vocab), count)
    parent, token = flat // vocab, flat % vocab
    seqs = jnp.take_along_axis(c.live_seqs, parent[:, :, None], axis=1)
    col = lax.broadcasted_iota(jnp.int32, (1, 1, length), 2)
    seqs = jnp.where(col == c.index, token[:, :, None], seqs)
    return top_logp, parent, token, seqs

  def advance(c, new_state, parent, token, logp, seqs, k_alive, out_seqs,
              out_scores, done):
    frozen = c.done  # rows that stopped earlier keep their result
    keep = lambda new, old: jnp.where(
        frozen.reshape(frozen.shape + (1,) * (new.ndim - 1)), old, new)
    return _Carry(
        index=c.index + 1,
        tokens=token.reshape(rows),
        state=_common.gather_state(new_state, parent, gather),
        live_seqs=seqs, live_logp=logp, k_alive=k_alive,
        out_seqs=keep(out_seqs, c.out_seqs), out_scores=keep(out_scores, c.out_scores),
        done=c.done | done)

  def exact_body(c: _Carry) -> _Carry:
    cand, new_state = expand(c)
    top_logp, parent, token, seqs = pick(cand, 2 * beams, c)
    last = c.index == length - 1
    ended = (token == eos_id) | last
    fin_new = jnp.where(ended, top_logp / length_penalty_factor(c.index + 1, alpha),
                        -jnp.inf)
    live_logp, sel = lax.top_k(jnp.where(token == eos_id, -jnp.inf, top_logp), beams)
    live_seqs = jnp.take_along_axis(seqs, sel[:, :, None], axis=1)
    all_scores = jnp.concatenate([c.out_scores, fin_new], axis=1)
    all_seqs = jnp.concatenate([c.out_seqs, seqs], axis=1)
    fin_scores, fsel = lax.top_k(all_scores, beams)
    fin_seqs = jnp.take_along_axis(all_seqs, fsel[:, :, None], axis=1)
    # Log-probs only fall, so a live beam's best final score is its current
    # log-prob over the largest penalty among the lengths it can still reach.
    reach = jnp.maximum(length_penalty_factor(c.index + 2, alpha),
                        length_penalty_factor(length, alpha))
    hopeless = fin_scores[:, -1] >= live_logp[:, 0] / reach
    done = (hopeless & early_exit) | last
    return advance(c, new_state, jnp.take_along_axis(parent, sel, axis=1),
                   jnp.take_along_axis(token, sel, axis=1), live_logp, live_seqs,
                   c.k_alive, fin_seqs, fin_scores, done)

  def reference_body(c: _Carry) -> _Carry:
    cand, new_state = expand(c)
    top_logp, parent, token, seqs = pick(cand, beams, c)
    slot = lax.broadcasted_iota(jnp.int32, (1, beams), 1)
    top_logp = jnp.where(slot < c.k_alive[:, None], top_logp, -jnp.inf)
    ended = (token == eos_id) & jnp.isfinite(top_logp)
    done = ended[:, 0] | (c.index == length - 1)
    live_logp = jnp.where(ended, -jnp.inf, top_logp)
    k_alive = c.k_alive - ended.sum(axis=1, dtype=jnp.int32)
    return advance(c, new_state, parent, token, live_logp, seqs, k_alive,
                   seqs, top_logp, done)

  neg = jnp.full((batch, beams), -jnp.inf, jnp.float32)
  init = _Carry(
      index=jnp.int32(0),
      tokens=jnp.full((rows,), bos_id, jnp.int32),
      state=state,
      live_seqs=jnp.full((batch, beams, length), eos_id, jnp.int32),
      live_logp=neg.at[:, 0].set(0.0),  # one live beam: no duplicate expansions
      k_alive=jnp.full((batch,), beams, jnp.int32),
      out_seqs=jnp.full((batch, beams, length), eos_id, jnp.int32),
      out_scores=neg,
      done=jnp.zeros((batch,), bool))
  out = lax.while_loop(lambda c: (c.index < length) & ~jnp.all(c.done),
                       reference_body if reference else exact_body, init)
  return out.out_seqs, out.out_scores
