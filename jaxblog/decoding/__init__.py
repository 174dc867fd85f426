"""Search over autoregressive step functions: beam search, sampling, and
synchronous bidirectional beam search — all jitted `lax.while_loop`s with
static shapes and no host round-trips.

A model plugs in through a step function `step_fn(tokens int32 [N], state,
index int32) -> (logits [N, V], state)`, where `N` is the number of rows being
decoded and every leaf of `state` has leading axis `N`. The searches tile the
user's `[batch, ...]` state to `N = batch * copies` rows (row `b * copies + k`,
see `tile_rows`) and, after choosing which hypotheses survive, reorder every
leaf along the copy axis, so recurrent states and KV caches work unchanged.
The reorder is either a batched `take` (`gather="take"`, one read of the
state) or an exact one-hot matmul (`gather="one_hot"`, a dot, friendliest to
partitioners). Parts of a state wrapped in `Stationary` are never reordered.

Each search takes an optional `logits_processor(logits [N, V], tokens int32
[N, max_len], index) -> logits` that rewrites every step's logits before
normalisation; `repetition_penalty`, `no_repeat_ngram`, `chain` and
`with_prefix` build them.

Example:
  >>> import jax, jax.numpy as jnp
  >>> from jaxblog import decoding
  >>> table = jnp.log(jnp.array([[0.1, 0.2, 0.7],    # after token 0 (bos)
  ...                            [0.8, 0.1, 0.1],    # after token 1
  ...                            [0.3, 0.6, 0.1]]))  # after token 2
  >>> step_fn = lambda tokens, state, index: (table[tokens], state)
  >>> seqs, scores = decoding.beam_search(
  ...     step_fn, {}, batch_size=1, beam_size=2, max_len=3, bos_id=0, eos_id=0)
  >>> seqs[0, 0].tolist()  # 2 (0.7), 1 (0.6), 0 = eos (0.8)
  [2, 1, 0]

References: Su 2019, "从语言模型到Seq2Seq：Transformer如戏，全靠Mask"
  (https://kexue.fm/archives/6933), the bert4keras `AutoRegressiveDecoder`
  beam search and sampling it uses; Su 2019, "seq2seq之双向解码"
  (https://kexue.fm/archives/6877) after Zhou, Zhang & Zong 2019,
  "Synchronous Bidirectional Neural Machine Translation" (arXiv:1905.04847).
"""
from jaxblog.decoding._beam import beam_search, length_penalty_factor
from jaxblog.decoding._bidirectional import (BidirectionalResult,
                                             bidirectional_beam_search)
from jaxblog.decoding._common import Stationary, tile_rows, top_k
from jaxblog.decoding._processors import (LogitsProcessor, chain, no_repeat_ngram,
                                          repetition_penalty, with_prefix)
from jaxblog.decoding._sample import sample, truncate_logits

__all__ = ["beam_search", "sample", "bidirectional_beam_search",
           "BidirectionalResult", "length_penalty_factor", "truncate_logits",
           "LogitsProcessor", "repetition_penalty", "no_repeat_ngram", "chain", "with_prefix",
           "Stationary", "tile_rows", "top_k"]
