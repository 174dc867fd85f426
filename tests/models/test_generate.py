"""KV-cache decoding equals full recomputation, for LM and UniLM, with padding."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxblog import decoding
from jaxblog.models.transformer import Transformer
from jaxblog.models.generate import cached_decoder, kv_bytes_per_token
from jaxblog.models.config import TransformerConfig
from jaxblog.models.layers import Attention, CopiesCache

BERT = TransformerConfig(vocab_size=40, hidden_size=16, num_layers=2, num_heads=2,
                         intermediate_size=32, max_position=24, with_mlm=True)
GPT = BERT.replace(pre_norm=True, type_vocab_size=0, mlm_transform=False, mlm_bias=False,
                   activation="gelu_new", application="lm")
PROMPT = np.array([[5, 6, 7, 8, 9], [11, 12, 13, 0, 0]], np.int32)
LENGTHS = np.array([5, 3])
CONT = np.array([[21, 22, 23, 24], [31, 32, 33, 34]], np.int32)


def _setup(config):
  model = Transformer(config)
  variables = jax.jit(model.init)(jax.random.PRNGKey(0), jnp.asarray(PROMPT))
  return model, variables


def _full_logits(model, variables, application, target_segment=None):
  """Row-wise recomputation over prompt[:len] + continuation, right-padded."""
  if target_segment is None:
    target_segment = 1 if application == "unilm" else 0
  total = PROMPT.shape[1] + CONT.shape[1]
  ids = np.zeros((2, total), np.int32)
  seg = np.zeros((2, total), np.int32)
  valid = np.zeros((2, total), bool)
  for b, n in enumerate(LENGTHS):
    ids[b, :n], ids[b, n:n + CONT.shape[1]] = PROMPT[b, :n], CONT[b]
    valid[b, :n + CONT.shape[1]] = True
    seg[b, n:n + CONT.shape[1]] = target_segment
  logits = jax.jit(lambda v: model.apply(v, ids, seg, valid, application=application))(
      variables)
  # logits for step i live at position len - 1 + i.
  return np.stack([np.asarray(logits[b, n - 1:n - 1 + CONT.shape[1]])
                   for b, n in enumerate(LENGTHS)])


# The pre-LN (GPT) cache path is covered by the beam/greedy test below.
# ("lm", 1): a causal LM over `[CLS] source [SEP] target` trained with the
# target in segment 1 (the UniLM experiment's baseline) must decode so too.
@pytest.mark.parametrize("config,application,target_segment", [
    (BERT, "lm", None), (BERT, "lm", 1), (BERT, "unilm", None),
    (BERT.replace(embedding_size=8, share_layers=True), "unilm", None)])
def test_cached_steps_equal_recompute(config, application, target_segment):
  model, variables = _setup(config)
  valid = PROMPT != 0
  step_fn, state = cached_decoder(model, variables, jnp.asarray(PROMPT), None,
                                  jnp.asarray(valid), max_new_tokens=CONT.shape[1],
                                  application=application, target_segment=target_segment)
  step = jax.jit(step_fn)
  expected = _full_logits(model, variables, application, target_segment)
  tokens = jnp.zeros((2,), jnp.int32)  # bos: ignored at step 0
  for i in range(CONT.shape[1]):
    logits, state = step(tokens, state, jnp.int32(i))
    np.testing.assert_allclose(logits, expected[:, i], atol=2e-5, rtol=1e-5)
    tokens = jnp.asarray(CONT[:, i])


def _recompute_step_fn(model, variables, prompt, lengths, max_len):
  """The naive decoder: keep a token buffer, rerun the whole model each step."""
  width = prompt.shape[1] + max_len
  buf = jnp.pad(prompt, ((0, 0), (0, max_len)))

  def step_fn(tokens, state, index):
    rows = jnp.arange(tokens.shape[0])
    where = state["length"] + index - 1
    buf = jnp.where(index > 0, state["buf"].at[rows, where].set(tokens), state["buf"])
    valid = jnp.arange(width)[None, :] < (state["length"] + index)[:, None]
    logits = model.apply(variables, buf, None, valid, application="lm")
    last = state["length"] + index - 1
    return logits[rows, last], {"buf": buf, "length": state["length"]}

  return step_fn, {"buf": buf, "length": jnp.asarray(lengths, jnp.int32)}


def test_beam_search_and_greedy_match_recompute():
  model, variables = _setup(GPT)
  max_len = 6
  kwargs = dict(batch_size=2, beam_size=3, max_len=max_len, bos_id=0, eos_id=1)

  @jax.jit
  def run(variables):
    cached = cached_decoder(model, variables, jnp.asarray(PROMPT), None,
                            jnp.asarray(PROMPT != 0), max_new_tokens=max_len)
    naive = _recompute_step_fn(model, variables, jnp.asarray(PROMPT), LENGTHS, max_len)
    beams = [decoding.beam_search(f, s, **kwargs) for f, s in (cached, naive)]
    greedy = [decoding.sample(f, s, jax.random.PRNGKey(0), batch_size=2, max_len=max_len,
                              bos_id=0, eos_id=1, top_k=1) for f, s in (cached, naive)]
    return beams, greedy

  (beam_c, beam_n), (greedy_c, greedy_n) = run(variables)
  np.testing.assert_array_equal(beam_c[0], beam_n[0])
  np.testing.assert_allclose(beam_c[1], beam_n[1], atol=1e-5)
  np.testing.assert_array_equal(greedy_c, greedy_n)


def test_logits_processor_with_cached_decoder():
  """A processor passed to the search next to the cached step function sees the
  generated tokens (the prefilled prompt is not part of them) and gives the same
  beams as the recomputing decoder."""
  model, variables = _setup(GPT)
  max_len = 8
  proc = decoding.chain(decoding.no_repeat_ngram(2), decoding.repetition_penalty(1.5))
  kwargs = dict(batch_size=2, beam_size=2, max_len=max_len, bos_id=0, eos_id=1,
                min_len=max_len, logits_processor=proc)

  @jax.jit
  def run(variables):
    cached = cached_decoder(model, variables, jnp.asarray(PROMPT), None,
                            jnp.asarray(PROMPT != 0), max_new_tokens=max_len)
    naive = _recompute_step_fn(model, variables, jnp.asarray(PROMPT), LENGTHS, max_len)
    return [decoding.beam_search(f, s, **kwargs) for f, s in (cached, naive)]

  (seqs_c, scores_c), (seqs_n, scores_n) = run(variables)
  np.testing.assert_array_equal(seqs_c, seqs_n)
  np.testing.assert_allclose(scores_c, scores_n, atol=1e-5)
  for row in np.asarray(seqs_c).reshape(-1, max_len).tolist():
    bigrams = list(zip(row, row[1:]))
    assert len(bigrams) == len(set(bigrams)), row


def test_processors_match_hugging_face_greedy_generate():
  """`with_prefix` + the processors reproduce greedy `generate(repetition_penalty=...,
  no_repeat_ngram_size=...)`, whose processors see prompt + generated tokens.

  Weights are drawn with a large `initializer_range` so that no two logits
  nearly tie (float differences between the frameworks would flip them). Beam
  search is not compared: Hugging Face applies processors to the
  log-softmaxed beam scores, these searches to the logits before it.
  """
  torch = pytest.importorskip("torch")
  transformers = pytest.importorskip("transformers")
  from jaxblog.models.hf_loader import gpt2_from_hf  # pylint: disable=import-outside-toplevel
  torch.manual_seed(0)
  config = transformers.GPT2Config(vocab_size=30, n_positions=32, n_embd=16, n_layer=2,
                                   n_head=2, eos_token_id=1, bos_token_id=1, pad_token_id=0,
                                   initializer_range=1.0)
  hf = transformers.GPT2LMHeadModel(config).eval()
  model, variables = gpt2_from_hf(config.to_dict(),
                                  {k: v.numpy() for k, v in hf.state_dict().items()})
  prompt = np.array([[5, 6, 5, 6, 7], [9, 9, 9, 8, 9]], np.int32)
  new = 12
  with torch.no_grad():
    want = hf.generate(torch.tensor(prompt, dtype=torch.long),
                       attention_mask=torch.ones(prompt.shape, dtype=torch.long),
                       max_new_tokens=new, min_new_tokens=new, do_sample=False,
                       repetition_penalty=1.3, no_repeat_ngram_size=2,
                       pad_token_id=0)[:, prompt.shape[1]:].numpy()
  proc = decoding.with_prefix(decoding.chain(decoding.repetition_penalty(1.3),
                                             decoding.no_repeat_ngram(2)), prompt)

  @jax.jit
  def run(variables):
    step_fn, state = cached_decoder(model, variables, jnp.asarray(prompt), max_new_tokens=new)
    return decoding.sample(step_fn, state, jax.random.PRNGKey(0), batch_size=2, max_len=new,
                           bos_id=0, eos_id=1, min_len=new, top_k=1, logits_processor=proc)

  np.testing.assert_array_equal(run(variables), want)


def test_kv_bytes_per_token():
  assert kv_bytes_per_token(GPT) == 2 * 2 * 16 * 4
  assert kv_bytes_per_token(GPT, jnp.bfloat16) == 2 * 2 * 16 * 2


def test_errors():
  model, variables = _setup(BERT)
  prompt = jnp.asarray(PROMPT)
  with pytest.raises(ValueError, match="'lm' or 'unilm'"):
    cached_decoder(model, variables, prompt, max_new_tokens=3, application="encoder")
  with pytest.raises(ValueError, match="max_new_tokens"):
    cached_decoder(model, variables, prompt, max_new_tokens=0, application="lm")
  with pytest.raises(ValueError, match="max_position"):
    cached_decoder(model, variables, prompt, max_new_tokens=30, application="lm")
  with pytest.raises(ValueError, match="LM head"):
    cached_decoder(Transformer(BERT.replace(with_mlm=False)), variables, prompt, max_new_tokens=3,
                   application="lm")


@pytest.mark.parametrize("dtype,tol", [(jnp.float32, 1e-5), (jnp.bfloat16, 2e-2)])
def test_copies_cache_attention_equals_per_row_cache(dtype, tol):
  """`CopiesCache` (slots per copy, the mask picks each slot's copy) gives the
  per-row cache's outputs, including padded slots and a row whose visible
  slots all sit in other copies."""
  config = GPT.replace(hidden_size=16, num_heads=2)
  batch, copies, slots, heads, dim = 2, 3, 7, 2, 8
  rows, slot = batch * copies, 5
  keys = jax.random.split(jax.random.PRNGKey(7), 4)
  x = jax.random.normal(keys[0], (rows, 1, 16)).astype(dtype)
  # entries: slot t of copy c at t * copies + c
  ck, cv = (jax.random.normal(k, (batch, heads, slots * copies, dim)).astype(dtype)
            for k in keys[1:3])
  own = np.arange(rows) % copies
  source = np.array(jax.random.randint(keys[3], (rows, slots), 0, copies))
  source[:, slot] = own
  source[-1, :slot] = (own[-1] + 1) % copies
  visible = np.arange(slots) <= slot
  visible = np.stack([visible] * (rows - 2) + [visible & (np.arange(slots) != 1)] * 2)
  b = np.arange(rows) // copies
  # Per-row reference cache: the row's history slot by slot.
  hist = np.arange(slots) * copies + source  # [N, T] entries
  ref_k = jnp.take_along_axis(ck[b], hist[:, None, :, None], 2)
  ref_v = jnp.take_along_axis(cv[b], hist[:, None, :, None], 2)
  attention = Attention(config)
  params = attention.init(jax.random.PRNGKey(0), x, jnp.asarray(visible[:, None]))
  want, (want_k, want_v) = jax.jit(attention.apply)(
      params, x, jnp.asarray(visible[:, None]), (ref_k, ref_v), jnp.int32(slot))
  seen = (source[:, :, None] == np.arange(copies)) & visible[:, :, None]
  cache = CopiesCache(jnp.swapaxes(ck, 2, 3), cv)
  got, new = jax.jit(attention.apply)(params, x, jnp.asarray(seen.reshape(rows, 1, -1)),
                                      cache, jnp.int32(slot))
  assert got.dtype == want.dtype and bool(jnp.all(jnp.isfinite(got)))
  np.testing.assert_allclose(np.asarray(got, np.float32), np.asarray(want, np.float32),
                             atol=tol, rtol=tol)
  # Each row wrote its keys/values into its own entry only.
  at = slot * copies + own
  np.testing.assert_array_equal(np.asarray(new.keys[b, :, :, at], np.float32),
                                np.asarray(want_k[:, :, slot], np.float32))
  np.testing.assert_array_equal(np.asarray(new.values[b, :, at], np.float32),
                                np.asarray(want_v[:, :, slot], np.float32))
  untouched = np.arange(slots * copies) // copies != slot
  np.testing.assert_array_equal(np.asarray(new.values[:, :, untouched], np.float32),
                                np.asarray(cv[:, :, untouched], np.float32))
