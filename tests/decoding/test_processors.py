"""Logits processors: Hugging Face and brute-force NumPy agreement, jit, edge
cases, and the searches applying them."""
import doctest
import importlib.util

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from tests.decoding._decoding_toys import ToyRNN, np_no_repeat, np_repetition
from jaxblog import decoding
from jaxblog.decoding import (_processors, beam_search, chain, no_repeat_ngram,
                              repetition_penalty, sample, with_prefix)

BOS, EOS = 0, 1
HAVE_HF = all(importlib.util.find_spec(m) is not None for m in ("torch", "transformers"))
needs_hf = pytest.mark.skipif(not HAVE_HF, reason="torch and transformers (the `test` "
                              "extra) are needed for the Hugging Face comparison")


def _inputs(seed, rows=6, vocab=9, length=12):
  """Logits of both signs and small-vocabulary tokens (many repeats)."""
  r = np.random.default_rng(seed)
  logits = (r.normal(size=(rows, vocab)) * 2).astype(np.float32)
  tokens = r.integers(0, vocab // 2, size=(rows, length)).astype(np.int32)
  return logits, tokens


def _has_repeated_ngram(seq, n):
  grams = [tuple(seq[i:i + n]) for i in range(len(seq) - n + 1)]
  return len(grams) != len(set(grams))


@pytest.mark.parametrize("penalty", [1.0, 1.3, 0.7, 2.0])
def test_repetition_penalty_matches_numpy_and_jit(penalty):
  logits, tokens = _inputs(0)
  proc = jax.jit(repetition_penalty(penalty))
  for index in range(tokens.shape[1] + 1):
    got = np.asarray(proc(logits, tokens, jnp.int32(index)))
    np.testing.assert_allclose(got, np_repetition(logits, tokens, index, penalty), rtol=1e-6)
    if penalty == 1.0 or index == 0:
      np.testing.assert_array_equal(got, logits)


@pytest.mark.parametrize("n", [1, 2, 3, 4, 13, 20])
def test_no_repeat_ngram_matches_numpy_and_jit(n):
  logits, tokens = _inputs(1)
  tokens[0] = [2, 3, 2, 3, 2, 3, 2, 3, 2, 3, 2, 3]  # periodic: bans at every n
  proc = jax.jit(no_repeat_ngram(n))
  for index in range(tokens.shape[1] + 1):
    got = np.asarray(proc(logits, tokens, jnp.int32(index)))
    np.testing.assert_array_equal(got, np_no_repeat(logits, tokens, index, n))
    if index < n:  # no complete n-gram in the prefix yet
      np.testing.assert_array_equal(got, logits)


@needs_hf
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_equal_to_hugging_face(seed):
  import torch  # pylint: disable=import-outside-toplevel
  from transformers import (NoRepeatNGramLogitsProcessor,  # pylint: disable=import-outside-toplevel
                            RepetitionPenaltyLogitsProcessor)
  logits, tokens = _inputs(seed, rows=8, vocab=11, length=10)
  for index in range(tokens.shape[1] + 1):
    ids = torch.tensor(tokens[:, :index], dtype=torch.long)
    for penalty in (1.0, 1.5, 0.8):
      want = RepetitionPenaltyLogitsProcessor(penalty)(ids, torch.tensor(logits)).numpy()
      got = repetition_penalty(penalty)(logits, tokens, index)
      np.testing.assert_allclose(got, want, rtol=1e-6)
    for n in (1, 2, 3, 5):
      want = NoRepeatNGramLogitsProcessor(n)(ids, torch.tensor(logits)).numpy()
      np.testing.assert_array_equal(no_repeat_ngram(n)(logits, tokens, index), want)


def test_per_row_index_dtype_and_chain():
  logits, tokens = _inputs(2)
  index = np.array([0, 3, 5, 12, 7, 1], np.int32)
  proc = jax.jit(chain(no_repeat_ngram(2), None, repetition_penalty(1.5)))
  got = np.asarray(proc(logits, tokens, index))
  for r, i in enumerate(index):
    want = np_repetition(np_no_repeat(logits[r:r + 1], tokens[r:r + 1], i, 2),
                         tokens[r:r + 1], i, 1.5)
    np.testing.assert_allclose(got[r:r + 1], want, rtol=1e-6)
  half = repetition_penalty(1.5)(jnp.asarray(logits, jnp.bfloat16), tokens, 5)
  assert half.dtype == jnp.bfloat16
  np.testing.assert_array_equal(chain()(logits, tokens, 5), logits)


def test_with_prefix_shows_prompt_then_generated_tokens():
  logits, tokens = _inputs(3, rows=6, length=5)  # 3 inputs x 2 copies
  prefix = np.array([[4, 2, 4, 0], [1, 1, 0, 0], [3, 2, 1, 2]], np.int32)
  lengths = np.array([3, 2, 4], np.int32)
  inner = chain(no_repeat_ngram(2), repetition_penalty(1.7))
  proc = jax.jit(with_prefix(inner, prefix, lengths))
  for index in range(tokens.shape[1] + 1):
    got = np.asarray(proc(logits, tokens, jnp.int32(index)))
    for r in range(6):
      b = r // 2
      seq = np.concatenate([prefix[b, :lengths[b]], tokens[r, :index]])[None]
      want = np_repetition(np_no_repeat(logits[r:r + 1], seq, seq.shape[1], 2), seq,
                           seq.shape[1], 1.7)
      np.testing.assert_allclose(got[r:r + 1], want, rtol=1e-6)
  with pytest.raises(ValueError, match="prefix_lengths must have shape"):
    with_prefix(inner, prefix, lengths[:2])
  with pytest.raises(ValueError, match="multiple of the prefix batch"):
    with_prefix(inner, prefix)(logits[:4], tokens[:4], 0)


def test_bad_arguments():
  logits, tokens = _inputs(0)
  with pytest.raises(ValueError, match="penalty must be > 0"):
    repetition_penalty(0.0)
  with pytest.raises(ValueError, match="n must be >= 1"):
    no_repeat_ngram(0)
  with pytest.raises(TypeError, match="n must be a static Python int"):
    no_repeat_ngram(2.0)
  with pytest.raises(TypeError, match=r"processors\[1\] must be callable"):
    chain(repetition_penalty(1.2), 3)
  with pytest.raises(ValueError, match=r"logits \[N, V\] and tokens \[N, L\]"):
    repetition_penalty(1.2)(logits, tokens[:2], 3)
  with pytest.raises(TypeError, match="tokens must be an integer"):
    no_repeat_ngram(2)(logits, tokens.astype(np.float32), 3)
  with pytest.raises(ValueError, match=r"index must be an integer scalar or \[N\]"):
    no_repeat_ngram(2)(logits, tokens, np.arange(3))
  model = ToyRNN(seed=0, vocab=5, max_len=4)
  kw = dict(batch_size=2, beam_size=2, max_len=4, bos_id=BOS, eos_id=EOS)
  with pytest.raises(ValueError, match=r"logits_processor must return floating logits"):
    beam_search(model.step, model.init(2), logits_processor=lambda z, t, i: z[:, :3], **kw)
  with pytest.raises(TypeError, match="logits_processor must be callable"):
    beam_search(model.step, model.init(2), logits_processor="x", **kw)


def test_docstring_examples():
  result = doctest.testmod(_processors, verbose=False)
  assert result.attempted > 0 and result.failed == 0
  result = doctest.testmod(decoding, verbose=False)
  assert result.attempted > 0 and result.failed == 0


class _Repeater(ToyRNN):
  """A ToyRNN that strongly prefers re-emitting the token it was fed."""

  def step(self, tokens, state, index):
    logits, state = super().step(tokens, state, index)
    return logits + 4.0 * jax.nn.one_hot(tokens, self.vocab), state


def test_beam_search_with_no_repeat_bigram_never_repeats_one():
  vocab, length, batch, beams = 6, 10, 3, 4
  model = _Repeater(seed=5, vocab=vocab, max_len=length)
  state = model.init(batch)
  kw = dict(batch_size=batch, beam_size=beams, max_len=length, bos_id=BOS, eos_id=EOS,
            min_len=length)  # no EOS: full-length hypotheses
  run = jax.jit(lambda s, proc: beam_search(model.step, s, logits_processor=proc, **kw),
                static_argnums=1)
  plain, _ = run(state, None)
  assert any(_has_repeated_ngram(list(row), 2) for row in np.asarray(plain).reshape(-1, length))
  proc = no_repeat_ngram(2)
  seqs, scores = run(state, proc)
  assert np.all(np.isfinite(scores))
  for row in np.asarray(seqs).reshape(-1, length):
    assert not _has_repeated_ngram(list(row), 2), row
  # Each hypothesis' score is its sum of log-softmaxed processed logits.
  seqs, scores = np.asarray(seqs), np.asarray(scores)
  flat = seqs.reshape(batch * beams, length)
  st = jax.tree.map(lambda x: jnp.repeat(x, beams, axis=0), state)
  tok, total = jnp.full((batch * beams,), BOS, jnp.int32), np.zeros(batch * beams)
  for t in range(length):
    logits, st = model.step(tok, st, t)
    z = np_no_repeat(np.asarray(logits), flat, t, 2)  # min_len acts after the softmax
    top = z.max(1, keepdims=True)
    logp = z - top - np.log(np.exp(z - top).sum(1, keepdims=True))
    total += logp[np.arange(len(flat)), flat[:, t]]
    tok = jnp.asarray(flat[:, t])
  np.testing.assert_allclose(scores.reshape(-1), total, rtol=1e-4, atol=1e-4)


def test_greedy_and_sampling_with_processors():
  vocab, length, batch = 7, 8, 4
  model = _Repeater(seed=6, vocab=vocab, max_len=length)
  state = model.init(batch)
  proc = chain(repetition_penalty(3.0), no_repeat_ngram(2))
  kw = dict(batch_size=batch, max_len=length, bos_id=BOS, eos_id=EOS, min_len=length,
            logits_processor=proc)
  greedy = np.asarray(jax.jit(lambda s: sample(model.step, s, jax.random.PRNGKey(0),
                                               top_k=1, **kw))(state))
  st, tok = state, jnp.full((batch,), BOS, jnp.int32)
  want = np.zeros((batch, length), np.int32)
  for t in range(length):
    logits, st = model.step(tok, st, t)
    z = np_no_repeat(np_repetition(np.asarray(logits), want, t, 3.0), want, t, 2)
    z[:, EOS] = -np.inf
    want[:, t] = np.argmax(z, axis=1)
    tok = jnp.asarray(want[:, t])
  np.testing.assert_array_equal(greedy, want)
  drawn = np.asarray(jax.jit(lambda s: sample(
      model.step, s, jax.random.PRNGKey(1), num_samples=16,
      **{**kw, "logits_processor": no_repeat_ngram(2)}))(state))
  for row in drawn.reshape(-1, length):
    assert not _has_repeated_ngram(list(row), 2), row
