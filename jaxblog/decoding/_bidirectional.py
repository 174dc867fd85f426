"""Synchronous bidirectional beam search (Su 2019, after Zhou, Zhang & Zong 2019).

An L2R beam and an R2L beam of `K` prefixes each advance together. The model
is evaluated on all `K x K` (L2R prefix, R2L prefix) pairs, so each direction
can attend to the other's partial output; each direction's next-token
probabilities are then averaged over its `K` partners, which reduces the
`K^3` (token x L2R path x R2L path) combinations to `K^2` per direction, and
each direction keeps its own top `K`. The search stops by the reference rule
of Su's article (https://kexue.fm/archives/6877) and returns the winner in
reading order.

Design: the step function receives the two full prefix buffers (so a model
without a cache, like the reference's, just re-reads them) and a state whose
leaves have `N = B * K * K` rows; a model that caches may update its state,
which is gathered along both beam axes every step (pair `(a, c)` inherits from
`(parent_l2r[a], parent_r2l[c])`). Everything is one `lax.while_loop` with
static shapes; the `K^2` model rows are the cost, as in the reference.
"""
from __future__ import annotations

from typing import Callable, NamedTuple, Optional, Sequence, Tuple, Union

import jax
import jax.numpy as jnp
from jax import lax

from jaxblog.decoding import _common, _processors
from jaxblog.decoding._processors import LogitsProcessor


class BidirectionalResult(NamedTuple):
  """Output of `bidirectional_beam_search`.

  Attributes:
    sequences: int32 `[B, max_len]`, the chosen hypothesis in left-to-right
      reading order, then `l2r_eos_id` if it ended, padded with `l2r_eos_id`.
    scores: float32 `[B]`, its summed `log(P + prob_eps)`.
    from_r2l: bool `[B]`, whether the R2L beam won (and was reversed).
    steps: int32 `[B]`, tokens generated when the row stopped.
  """
  sequences: jax.Array
  scores: jax.Array
  from_r2l: jax.Array
  steps: jax.Array


def _gather_pairs(state, parent_l, parent_r, method):
  """Leaves `[B*K*K, ...]`: pair `(a, c)` takes pair `(parent_l[a], parent_r[c])`."""
  batch, beams = parent_l.shape
  parent_r_rows = jnp.repeat(parent_r, beams, axis=0)  # [B*K, K], row b*K + a

  def one(leaf):
    rest = leaf.shape[1:]
    x = leaf.reshape((batch, beams, beams) + rest)
    x = _common.gather_beams(x, parent_l, method)
    x = x.reshape((batch * beams, beams) + rest)
    return _common.gather_beams(x, parent_r_rows, method).reshape(leaf.shape)

  return jax.tree.map(one, state)


def bidirectional_beam_search(
    step_fn: Callable, state, *, batch_size: int, beam_size: int, max_len: int,
    l2r_bos_id: int, l2r_eos_id: int, r2l_bos_id: int, r2l_eos_id: int,
    pad_id: int = 0, l2r_banned_ids: Sequence[int] = (),
    r2l_banned_ids: Sequence[int] = (), prob_eps: float = 1e-6,
    gather: str = "take",
    logits_processor: Union[None, LogitsProcessor,
                            Tuple[Optional[LogitsProcessor], Optional[LogitsProcessor]]] = None
) -> BidirectionalResult:
  """Synchronous bidirectional beam search with the reference's stop rule.

  Each step `i` (0-based), for every input:
  1. `step_fn` scores all `K x K` pairs (L2R prefix `a`, R2L prefix `c`).
  2. `P_l2r[a] = mean_c softmax(l2r_logits[a, c])`,
     `P_r2l[c] = mean_a softmax(r2l_logits[a, c])`.
  3. Banned ids get probability 0; a token's log-score is `log(P + prob_eps)`.
  4. Each direction keeps its best `K` of `K x V` extensions (prefix score +
     log-score); at `i = 0` only prefix 0 exists.
  5. With `l*`, `r*` each direction's best: if `l*` just produced
     `l2r_eos_id` and `score(l*) >= score(r*)`, return `l*`; else if `r*`
     just produced `r2l_eos_id` and `score(r*) >= score(l*)`, return `r*`
     reversed. After `max_len` steps return the better of the two.
  As in the reference, hypotheses that ended but were not returned stay in
  their beam and keep being extended, and there is no length normalisation.
  One difference: the reference relabels R2L's terminator as the L2R end id
  when appending it; here the generated id is kept in the R2L prefix.

  Args:
    step_fn: `step_fn(l2r_prefix int32 [N, max_len], r2l_prefix int32
      [N, max_len], state, index int32) -> (l2r_logits [N, V], r2l_logits
      [N, V], state)` with `N = batch_size * beam_size ** 2` and row
      `(b * K + a) * K + c` holding L2R prefix `a` and R2L prefix `c` of input
      `b`. Prefix position 0 is the direction's bos id, positions `1..index`
      the tokens generated so far, the rest `pad_id`; the logits are for the
      token at output position `index`. A cross-direction-causal model reads
      only positions `<= index` of the other prefix.
    state: leaves with leading axis `batch_size` (e.g. encoder outputs);
      tiled to `N` rows and gathered along both beam axes every step.
    batch_size: inputs `B`.
    beam_size: `K` per direction (the reference uses 3).
    max_len: maximum generated tokens (terminator included).
    l2r_bos_id, l2r_eos_id: L2R start / end ids (reference: 2, 3).
    r2l_bos_id, r2l_eos_id: R2L start / end ids (reference: 3, 2).
    pad_id: filler of the prefix buffers.
    l2r_banned_ids: ids L2R may not generate (reference: pad, unk, 2).
    r2l_banned_ids: ids R2L may not generate (reference: pad, unk, 3).
    prob_eps: added to the averaged probability before the log (1e-6).
    gather: `"take"` or `"one_hot"` state gather (see `beam_search`).
    logits_processor: `None`, one processor used for both directions, or a
      pair `(l2r_processor, r2l_processor)` (either may be `None`). A
      direction's processor rewrites its `[N, V]` logits before the softmax
      and the partner average, and sees that direction's own tokens in its
      own generation order: row `(b * K + a) * K + c` of the L2R call holds
      L2R prefix `a`, of the R2L call R2L prefix `c` (so the R2L tokens are
      the sentence read backwards from its end), without the bos id, `pad_id`
      from `index` on. Repetition and n-gram bans read the same either way, as
      a repeated n-gram is repeated in the reversed sentence too. A direction
      whose every token is banned gets probability 0 (score `log(prob_eps)`).

  Returns:
    A `BidirectionalResult`.

  References: Su 2019, "seq2seq之双向解码" (https://kexue.fm/archives/6877);
    Zhou, Zhang & Zong 2019, "Synchronous Bidirectional Neural Machine Translation"
    (arXiv:1905.04847).
  """
  batch = _common.static_int("batch_size", batch_size, 1)
  beams = _common.static_int("beam_size", beam_size, 1)
  length = _common.static_int("max_len", max_len, 1)
  gather = _common.check_gather(gather)
  if not isinstance(prob_eps, (int, float)) or prob_eps < 0:
    raise ValueError(f"prob_eps must be a float >= 0, got {prob_eps!r}")
  pairs = beams * beams
  rows = batch * pairs
  state = _common.tile_rows(state, batch, pairs)
  prefix0 = jnp.zeros((rows, length), jnp.int32)
  vocab = _common.check_step(step_fn, (prefix0, prefix0, state, jnp.int32(0)),
                             rows, n_logits=2)
  ids = {name: _common.token_id(name, value, vocab) for name, value in [
      ("l2r_bos_id", l2r_bos_id), ("l2r_eos_id", l2r_eos_id),
      ("r2l_bos_id", r2l_bos_id), ("r2l_eos_id", r2l_eos_id), ("pad_id", pad_id)]}
  banned = []
  for name, group in (("l2r_banned_ids", l2r_banned_ids),
                      ("r2l_banned_ids", r2l_banned_ids)):
    allowed = jnp.ones((vocab,), bool)
    for t in group:
      allowed = allowed.at[_common.token_id(name, t, vocab)].set(False)
    banned.append(allowed)
  allowed_l, allowed_r = banned
  if logits_processor is None or callable(logits_processor):
    proc_l = proc_r = logits_processor
  elif isinstance(logits_processor, tuple) and len(logits_processor) == 2:
    proc_l, proc_r = logits_processor
  else:
    raise TypeError("logits_processor must be None, a callable or a pair of them, got "
                    f"{type(logits_processor).__name__}")
  _processors.check_processor(proc_l, rows, vocab, length, name="l2r logits_processor")
  _processors.check_processor(proc_r, rows, vocab, length, name="r2l logits_processor")

  def direction(probs, allowed, scores, seqs, index):
    """Top-K extensions of one direction from averaged probs `[B, K, V]`."""
    logp = jnp.where(allowed[None, None, :], jnp.log(probs + prob_eps), -jnp.inf)
    cand = (scores[:, :, None] + logp).reshape(batch, beams * vocab)
    top, flat = lax.top_k(cand, beams)
    parent, token = flat // vocab, flat % vocab
    seqs = jnp.take_along_axis(seqs, parent[:, :, None], axis=1)
    col = lax.broadcasted_iota(jnp.int32, (1, 1, length), 2)
    return top, parent, token, jnp.where(col == index, token[:, :, None], seqs)

  def prefixes(seqs, bos, repeat_axis):
    """Generated `[B, K, L]` -> step-function prefixes `[B*K*K, L]`."""
    pre = jnp.concatenate(
        [jnp.full((batch, beams, 1), bos, jnp.int32), seqs[:, :, :length - 1]], axis=2)
    return pair_rows(pre, repeat_axis)

  def pair_rows(seqs, repeat_axis):
    """`[B, K, L]` -> `[B*K*K, L]`, repeated over the partner axis."""
    seqs = jnp.expand_dims(seqs, repeat_axis)
    return jnp.broadcast_to(seqs, (batch, beams, beams, length)).reshape(rows, length)

  def probs(logits, processor, seqs, repeat_axis, index):
    """Processed logits `[B*K*K, V]` -> probabilities `[B, K, K, V]`."""
    logits = logits.astype(jnp.float32)
    if processor is None:
      return jax.nn.softmax(logits, axis=-1).reshape(batch, beams, beams, vocab)
    logits = processor(logits, pair_rows(seqs, repeat_axis), index)
    p = jax.nn.softmax(logits, axis=-1)
    return jnp.where(jnp.isnan(p), 0.0, p).reshape(batch, beams, beams, vocab)

  def body(c):
    index, state, seq_l, seq_r, score_l, score_r = c[:6]
    logits_l, logits_r, new_state = step_fn(
        prefixes(seq_l, ids["l2r_bos_id"], 2), prefixes(seq_r, ids["r2l_bos_id"], 1),
        state, index)
    p_l = probs(logits_l, proc_l, seq_l, 2, index)
    p_r = probs(logits_r, proc_r, seq_r, 1, index)
    top_l, par_l, tok_l, seq_l = direction(p_l.mean(axis=2), allowed_l, score_l,
                                           seq_l, index)
    top_r, par_r, tok_r, seq_r = direction(p_r.mean(axis=1), allowed_r, score_r,
                                           seq_r, index)
    best_l, best_r = top_l[:, 0], top_r[:, 0]
    last = index == length - 1
    take_l = ((tok_l[:, 0] == ids["l2r_eos_id"]) | last) & (best_l >= best_r)
    take_r = ~take_l & (((tok_r[:, 0] == ids["r2l_eos_id"]) & (best_r >= best_l)) | last)
    stop = (take_l | take_r) & ~c[6]
    res_seq = jnp.where(stop[:, None], jnp.where(take_l[:, None], seq_l[:, 0],
                                                 seq_r[:, 0]), c[7])
    res_score = jnp.where(stop, jnp.where(take_l, best_l, best_r), c[8])
    res_r2l = jnp.where(stop, take_r, c[9])
    res_steps = jnp.where(stop, index + 1, c[10])
    new_state = _gather_pairs(new_state, par_l, par_r, gather)
    return (index + 1, new_state, seq_l, seq_r, top_l, top_r, c[6] | stop,
            res_seq, res_score, res_r2l, res_steps)

  start = jnp.full((batch, beams), -jnp.inf, jnp.float32).at[:, 0].set(0.0)
  buf = jnp.full((batch, beams, length), ids["pad_id"], jnp.int32)
  init = (jnp.int32(0), state, buf, buf, start, start, jnp.zeros((batch,), bool),
          jnp.zeros((batch, length), jnp.int32), jnp.zeros((batch,), jnp.float32),
          jnp.zeros((batch,), bool), jnp.zeros((batch,), jnp.int32))
  out = lax.while_loop(lambda c: (c[0] < length) & ~jnp.all(c[6]), body, init)
  raw, scores, from_r2l, steps = out[7:]
  return BidirectionalResult(_reading_order(raw, from_r2l, steps, ids, length),
                             scores, from_r2l, steps)


def _reading_order(raw, from_r2l, steps, ids, length):
  """Winner tokens -> content in reading order, `l2r_eos_id`, `l2r_eos_id` padding."""
  col = lax.broadcasted_iota(jnp.int32, (1, length), 1)
  last_tok = jnp.take_along_axis(raw, (steps - 1)[:, None], axis=1)[:, 0]
  end_id = jnp.where(from_r2l, ids["r2l_eos_id"], ids["l2r_eos_id"])
  ended = last_tok == end_id
  n = steps - ended.astype(jnp.int32)  # content tokens before the terminator
  src = jnp.where(from_r2l[:, None], n[:, None] - 1 - col, col)
  content = jnp.take_along_axis(raw, jnp.clip(src, 0, length - 1), axis=1)
  return jnp.where(col < n[:, None], content, ids["l2r_eos_id"]).astype(jnp.int32)
