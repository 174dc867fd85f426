"""bidirectional_beam_search vs a direct NumPy transcription of the reference
search of Su's "seq2seq之双向解码" (https://kexue.fm/archives/6877)."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from tests.decoding._decoding_toys import np_no_repeat, np_repetition
from jaxblog.decoding import bidirectional_beam_search, no_repeat_ngram, repetition_penalty

PAD, UNK, START, END = 0, 1, 2, 3  # reference ids: L2R 2 -> 3, R2L 3 -> 2
L2R_BAN, R2L_BAN = (PAD, UNK, START), (PAD, UNK, END)
KW = dict(l2r_bos_id=START, l2r_eos_id=END, r2l_bos_id=END, r2l_eos_id=START,
          pad_id=PAD, l2r_banned_ids=L2R_BAN, r2l_banned_ids=R2L_BAN)


class ToyPair:
  """Each direction's logits: table[index, own last token] + (sum of the other
  prefix's embeddings up to `index`) @ G + a per-input bias.

  `step` reads the full prefixes; `cached_step` keeps the two running sums in
  its state instead, which only works if the search gathers the state along
  both beam axes correctly.
  """

  def __init__(self, seed, vocab=7, length=6, dim=4, end_bias=0.0):
    r = np.random.default_rng(seed)
    self.vocab, self.length = vocab, length
    self.tab_l = r.normal(size=(length, vocab, vocab)).astype(np.float32)
    self.tab_r = r.normal(size=(length, vocab, vocab)).astype(np.float32)
    self.emb = r.normal(size=(vocab, dim)).astype(np.float32)
    self.g_l = r.normal(size=(dim, vocab)).astype(np.float32) * 0.5
    self.g_r = r.normal(size=(dim, vocab)).astype(np.float32) * 0.5
    self.bias = r.normal(size=(2, vocab)).astype(np.float32)
    self.bias[:, [START, END]] += end_bias

  def state(self):
    return {"bias": jnp.asarray(self.bias)}

  def _logits(self, index, l_last, r_last, sum_l, sum_r, bias):
    logits_l = jnp.asarray(self.tab_l)[index, l_last] + sum_r @ self.g_l + bias
    logits_r = jnp.asarray(self.tab_r)[index, r_last] + sum_l @ self.g_r + bias
    return logits_l, logits_r

  def step(self, l_pre, r_pre, state, index):
    seen = (jnp.arange(self.length) <= index)[None, :, None]
    emb = jnp.asarray(self.emb)
    sum_l = jnp.where(seen, emb[l_pre], 0.0).sum(1)
    sum_r = jnp.where(seen, emb[r_pre], 0.0).sum(1)
    logits_l, logits_r = self._logits(index, l_pre[:, index], r_pre[:, index],
                                      sum_l, sum_r, state["bias"])
    return logits_l, logits_r, state

  def cached_state(self, batch):
    zeros = jnp.zeros((batch, self.emb.shape[1]), jnp.float32)
    return {"bias": jnp.asarray(self.bias[:batch]), "sum_l": zeros, "sum_r": zeros}

  def cached_step(self, l_pre, r_pre, state, index):
    emb = jnp.asarray(self.emb)
    l_last, r_last = l_pre[:, index], r_pre[:, index]
    sum_l, sum_r = state["sum_l"] + emb[l_last], state["sum_r"] + emb[r_last]
    logits_l, logits_r = self._logits(index, l_last, r_last, sum_l, sum_r,
                                      state["bias"])
    return logits_l, logits_r, {"bias": state["bias"], "sum_l": sum_l, "sum_r": sum_r}

  def numpy_logits(self, l_pre, r_pre, index, b):
    emb = self.emb.astype(np.float64)
    sum_l, sum_r = emb[l_pre].sum(0), emb[r_pre].sum(0)
    return (self.tab_l[index, l_pre[-1]] + sum_r @ self.g_l + self.bias[b],
            self.tab_r[index, r_pre[-1]] + sum_l @ self.g_r + self.bias[b])


def _softmax(z):
  z = np.asarray(z, np.float64)
  e = np.exp(z - z.max())
  return e / e.sum()


def numpy_bidirectional(model, b, beams, length, eps=1e-6, procs=(None, None)):
  """The reference search step by step for input `b`; returns (tokens, score,
  from_r2l). `procs` rewrite (logits, own generated tokens) per direction."""
  beams_l, beams_r = [([], 0.0)], [([], 0.0)]
  for i in range(length):
    p_l = np.zeros((len(beams_l), model.vocab))
    p_r = np.zeros((len(beams_r), model.vocab))
    for a, (seq_l, _) in enumerate(beams_l):
      for c, (seq_r, _) in enumerate(beams_r):
        z_l, z_r = model.numpy_logits([START] + seq_l, [END] + seq_r, i, b)
        if procs[0] is not None:
          z_l = procs[0](z_l, seq_l)
        if procs[1] is not None:
          z_r = procs[1](z_r, seq_r)
        p_l[a] += _softmax(z_l) / len(beams_r)
        p_r[c] += _softmax(z_r) / len(beams_l)
    new = []
    for probs, old, banned in ((p_l, beams_l, L2R_BAN), (p_r, beams_r, R2L_BAN)):
      logp = np.log(probs + eps)
      logp[:, list(banned)] = -np.inf
      cands = []
      for (seq, score), row in zip(old, logp):
        for tok in np.argsort(-row)[:beams]:  # each prefix's top-B tokens
          cands.append((score + row[tok], seq + [int(tok)]))
      cands.sort(key=lambda x: -x[0])
      new.append([(seq, score) for score, seq in cands[:beams]])
    beams_l, beams_r = new
    (best_l, s_l), (best_r, s_r) = beams_l[0], beams_r[0]
    if best_l[-1] == END and s_l >= s_r:
      return best_l[:-1], s_l, False
    if best_r[-1] == START and s_r >= s_l:
      return best_r[:-1][::-1], s_r, True
  if s_l >= s_r:
    return best_l, s_l, False
  return best_r[::-1], s_r, True


@pytest.mark.parametrize("beams,gather,cached", [
    (1, "take", False), (2, "one_hot", True), (3, "take", True), (3, "take", False)])
def test_matches_numpy_reference(beams, gather, cached):
  length, batch = 6, 2
  outcomes = set()
  for seed, end_bias in [(0, 1.0), (1, 2.5), (2, 0.0)]:
    model = ToyPair(seed, length=length, end_bias=end_bias)
    step = model.cached_step if cached else model.step
    state = model.cached_state(batch) if cached else model.state()
    res = jax.jit(lambda s: bidirectional_beam_search(
        step, s, batch_size=batch, beam_size=beams, max_len=length, gather=gather,
        **KW))(state)
    assert res.sequences.shape == (batch, length) and res.sequences.dtype == jnp.int32
    for b in range(batch):
      tokens, score, from_r2l = numpy_bidirectional(model, b, beams, length)
      want = tokens + [END] * (length - len(tokens))
      np.testing.assert_array_equal(res.sequences[b], want)
      np.testing.assert_allclose(res.scores[b], score, rtol=1e-4)
      assert bool(res.from_r2l[b]) == from_r2l
      outcomes.add((from_r2l, len(tokens) < length))
  if beams > 1:  # the toy cases exercise both directions and early stops
    assert {True, False} <= {o[0] for o in outcomes}
    assert True in {o[1] for o in outcomes}


def _np_proc(fn, *args):
  """A NumPy processor over one row's logits and its generated tokens."""
  def proc(z, seq):
    return fn(np.asarray(z)[None], np.asarray([seq], np.int64).reshape(1, -1),
              len(seq), *args)[0]
  return proc


@pytest.mark.parametrize("pair", [False, True])
def test_processors_see_their_own_direction(pair):
  length, batch, beams = 6, 2, 3
  if pair:  # L2R: no repeated bigram; R2L: a repetition penalty
    procs = (no_repeat_ngram(2), repetition_penalty(2.0))
    np_procs = (_np_proc(np_no_repeat, 2), _np_proc(np_repetition, 2.0))
  else:
    procs = no_repeat_ngram(1)
    np_procs = (_np_proc(np_no_repeat, 1),) * 2
  for seed in (0, 1):
    model = ToyPair(seed, length=length, end_bias=-1.0)
    res = jax.jit(lambda s: bidirectional_beam_search(
        model.cached_step, s, batch_size=batch, beam_size=beams, max_len=length,
        logits_processor=procs, **KW))(model.cached_state(batch))
    for b in range(batch):
      tokens, score, from_r2l = numpy_bidirectional(model, b, beams, length,
                                                    procs=np_procs)
      want = tokens + [END] * (length - len(tokens))
      np.testing.assert_array_equal(res.sequences[b], want)
      np.testing.assert_allclose(res.scores[b], score, rtol=1e-4)
      assert bool(res.from_r2l[b]) == from_r2l
      if not pair:  # no token twice, whichever direction won
        assert len(set(tokens)) == len(tokens), tokens


def test_bad_arguments():
  model = ToyPair(0)
  kw = dict(batch_size=2, beam_size=2, max_len=6, **KW)
  cases = [
      (dict(beam_size=0), ValueError, "beam_size must be >= 1"),
      (dict(max_len=0), ValueError, "max_len must be >= 1"),
      (dict(l2r_eos_id=7), ValueError, r"l2r_eos_id=7 is outside the vocabulary"),
      (dict(r2l_banned_ids=(9,)), ValueError, "r2l_banned_ids=9 is outside"),
      (dict(prob_eps=-1.0), ValueError, "prob_eps"),
      (dict(gather="x"), ValueError, "gather must be one of"),
  ]
  for extra, err, match in cases:
    with pytest.raises(err, match=match):
      bidirectional_beam_search(model.step, model.state(), **{**kw, **extra})
  with pytest.raises(ValueError, match="leading axis 2"):
    bidirectional_beam_search(model.step, {"bias": jnp.zeros((3, 7))}, **kw)
  with pytest.raises(TypeError, match="a callable or a pair"):
    bidirectional_beam_search(model.step, model.state(), logits_processor=[None], **kw)
  with pytest.raises(ValueError, match="r2l logits_processor must return"):
    bidirectional_beam_search(model.step, model.state(),
                              logits_processor=(None, lambda z, t, i: z[:1]), **kw)
  with pytest.raises(TypeError, match="2 logits"):
    bidirectional_beam_search(lambda lp, rp, s, i: (lp, s), model.state(), **kw)
