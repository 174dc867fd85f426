"""Cached incremental decoding: a `step_fn` for `jaxblog.decoding`.

`cached_decoder` runs the prompt once (`Transformer.prefill`) under the model's
application mask — causal for an LM, the UniLM seq2seq mask for a source
segment — keeps every layer's keys/values in a fixed-size cache, and returns
the `step_fn(tokens [N], state, index) -> (logits [N, V], state)` that
`jaxblog.decoding.beam_search` / `sample` drive. Each step embeds one token,
writes its keys/values into cache slot `P + index - 1` (`P` = padded prompt
length) and attends over the cache, so no prefix is ever recomputed.

Step 0 returns the logits the prefill already computed at each row's last
prompt token (the token fed at step 0, `bos_id`, is ignored): for UniLM the
source's final `[SEP]` must be seen bidirectionally by the source, so it cannot
be deferred to a decoding step. To stay branch-free, step 0 still runs the
model once into a scratch cache slot that no query ever sees (1 wasted step
of `max_len`; a `lax.cond` instead cost ~30 % per step on CPU). Prompts are
right-padded; generated tokens get position ids `length + index - 1` per row,
exactly as in training where the target follows the source without gaps.

The cache is never reordered (the search would otherwise gather all of it
every beam step, which cost as much as a third of the step on CPU): it is a
`transformer.CopiesCache` per layer in `Stationary` parts of the state, which
the search repeats per copy (beam or sample) once and then leaves alone. Each
row writes only its own copy's entries; the one ordinary leaf the search
reorders is `source [N, P + max_new_tokens]`, which copy holds the row's token
at each slot, and the attention mask is built from it. The step function
assumes the searches' row order `b * copies + k`. Cache memory per token and
sequence is `2 * num_layers * hidden_size * itemsize` bytes
(`kv_bytes_per_token`).

References: Su 2019, "从语言模型到Seq2Seq：Transformer如戏，全靠Mask"
(https://kexue.fm/archives/6933), seq2seq decoding with the UniLM mask; the
t5x/flax decoders' cache layout and prompt prefill.
"""
from __future__ import annotations

from typing import Any, Callable, Dict, Optional, Tuple

import jax
import jax.numpy as jnp

from jaxblog import _checks
from jaxblog.decoding import Stationary
from jaxblog.models.config import TransformerConfig
from jaxblog.models.layers import CopiesCache
from jaxblog.models.transformer import Transformer

StepFn = Callable[[jax.Array, Any, jax.Array], Tuple[jax.Array, Any]]


def kv_bytes_per_token(config: TransformerConfig, dtype=jnp.float32) -> int:
  """Bytes of key/value cache one token of one sequence occupies."""
  return 2 * config.num_layers * config.hidden_size * jnp.dtype(dtype).itemsize


def cached_decoder(model: Transformer, variables, input_ids: jax.Array,
                   segment_ids: Optional[jax.Array] = None,
                   attention_mask: Optional[jax.Array] = None, *,
                   max_new_tokens: int, application: Optional[str] = None,
                   target_segment: Optional[int] = None) -> Tuple[StepFn, Dict[str, Any]]:
  """Prefills the prompt and returns `(step_fn, state)` for `jaxblog.decoding`.

  Args:
    model: a `Transformer` whose config has `with_mlm=True`.
    variables: its variables.
    input_ids: int `[B, P]` right-padded prompts (for UniLM: `[CLS] src [SEP]`).
    segment_ids: int `[B, P]` prompt segment ids (default zeros).
    attention_mask: `[B, P]` nonzero at real prompt tokens (default all).
    max_new_tokens: the `max_len` the search will run for.
    application: `lm` or `unilm` (default `model.config.application`).
    target_segment: segment id of generated tokens; default 1 for `unilm`
      (the target segment), 0 for `lm`.

  Returns:
    `(step_fn, state)`; pass `state` to `beam_search` / `sample` with
    `batch_size=B` and `max_len <= max_new_tokens`. A `logits_processor`
    given to the search sees the generated tokens only, as the prompt is
    prefilled here; wrap it in `decoding.with_prefix(processor, input_ids,
    lengths)` to show it the prompt too, as Hugging Face's `generate` does.

  References: https://kexue.fm/archives/6933.
  """
  c = model.config
  app = application or c.application
  if app not in ("lm", "unilm"):
    raise ValueError(f"cached decoding needs application 'lm' or 'unilm', got {app!r}")
  if not c.with_mlm:
    raise ValueError("cached decoding needs a model with an LM head (with_mlm=True)")
  if not c.mlm_transform and c.embed_dim != c.hidden_size:
    raise ValueError("cached decoding with mlm_transform=False needs "
                     "embedding_size == hidden_size")
  _checks.require_integer("input_ids", input_ids)
  if jnp.ndim(input_ids) != 2:
    raise ValueError(f"input_ids must have shape [B, P], got {jnp.shape(input_ids)}")
  if not isinstance(max_new_tokens, int) or max_new_tokens < 1:
    raise ValueError(f"max_new_tokens must be a positive int, got {max_new_tokens!r}")
  batch, prompt = input_ids.shape
  total = prompt + max_new_tokens  # the last slot is step 0's scratch slot
  if total - 1 > c.max_position:
    raise ValueError(f"prompt length {prompt} + max_new_tokens {max_new_tokens} exceeds "
                     f"max_position={c.max_position}")
  if segment_ids is None:
    segment_ids = jnp.zeros_like(input_ids)
  valid = (jnp.ones(input_ids.shape, bool) if attention_mask is None
           else jnp.asarray(attention_mask) != 0)
  if target_segment is None:
    target_segment = 1 if app == "unilm" else 0

  logits, kvs = model.apply(variables, input_ids, segment_ids, valid,
                            application=app, method=Transformer.prefill)
  # The prefill logits stay out of the state: the search would otherwise
  # gather them every step although only step 0 reads them.
  first_logits = logits.astype(jnp.float32)
  # Keys transposed to [B, heads, head_dim, T] (see `CopiesCache`); the
  # prompt, then `max_new_tokens` generated slots, the last of which is step
  # 0's scratch slot.
  none, grow = (0, 0), (0, max_new_tokens)
  keys = tuple(jnp.pad(jnp.swapaxes(k, 2, 3), (none, none, none, grow)) for k, _ in kvs)
  values = tuple(jnp.pad(v, (none, none, grow, none)) for _, v in kvs)
  state = {
      # Repeated per copy by the search (entry t * copies + c), never reordered.
      "keys": Stationary(keys, copy_axis=3),
      "values": Stationary(values, copy_axis=2),
      # source[r, t]: the copy whose entries hold row r's token of slot t; an
      # ordinary leaf, so a beam search reorders it with the hypotheses. It
      # stays 0 on the prompt, which every copy holds.
      "source": jnp.zeros((batch, total), jnp.int32),
      "valid": jnp.pad(valid, ((0, 0), (0, max_new_tokens))),
      "length": jnp.sum(valid, axis=-1).astype(jnp.int32),
  }
  slot_ids = jnp.arange(total, dtype=jnp.int32)
  # The tied output projection, transposed once here rather than read against
  # its layout every step.
  output_kernel = jnp.swapaxes(variables["params"]["token_embed"]["embedding"], 0, 1)

  def step_fn(tokens, state, index):
    rows = tokens.shape[0]
    if rows % batch:
      raise ValueError(f"step_fn rows N={rows} must be a multiple of the batch "
                       f"size B={batch} (rows b * copies + k)")
    copies = rows // batch
    # Step 0 writes into the last slot, which no later query can see (step
    # `max_new_tokens - 1` writes slot `total - 2`), and its logits are
    # replaced by the prefill's: branch-free, unlike a `lax.cond` that costs
    # a copy of the whole cache every step on CPU.
    first = index == 0
    slot = jnp.where(first, total - 1, prompt + index - 1)
    own = jnp.arange(rows, dtype=jnp.int32) % copies
    source = jnp.where(slot_ids[None, :] == slot, own[:, None], state["source"])
    visible = state["valid"] | ((slot_ids >= prompt) & (slot_ids <= slot))[None, :]
    seen = ((source[:, :, None] == jnp.arange(copies, dtype=jnp.int32)[None, None, :])
            & visible[:, :, None])  # [N, total, copies]
    key_mask = seen.reshape(rows, total * copies)
    positions = jnp.maximum(state["length"] + index - 1, 0)
    segment = jnp.full(tokens.shape, target_segment, jnp.int32)
    cache = tuple(CopiesCache(k, v) for k, v in zip(state["keys"].value,
                                                    state["values"].value))
    logits, cache = model.apply(variables, tokens, segment, positions, key_mask,
                                cache, slot, output_kernel, method=Transformer.decode_step)
    tiled = jnp.repeat(first_logits, copies, axis=0)
    logits = jnp.where(first, tiled, logits.astype(jnp.float32))
    return logits, {**state, "source": source,
                    "keys": state["keys"].replace(tuple(c.keys for c in cache)),
                    "values": state["values"].replace(tuple(c.values for c in cache))}

  return step_fn, state
