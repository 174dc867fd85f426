"""sample / truncate_logits: greedy limit, frequencies (chi-square), options."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import stats

from tests.decoding._decoding_toys import ToyRNN
from jaxblog.decoding import sample, truncate_logits

BOS, EOS = 0, 1


def _expected(logits, temperature, top_k, top_p):
  """Independent NumPy version of the truncated distribution."""
  z = np.asarray(logits, np.float64) / temperature
  order = np.argsort(-z, kind="stable")
  keep = np.zeros_like(z, bool)
  n = len(z) if top_k == 0 else top_k
  keep[order[:n]] = True
  p = np.where(keep, np.exp(z - z.max()), 0.0)
  p /= p.sum()
  if top_p < 1.0:
    mass = 0.0
    nucleus = np.zeros_like(keep)
    for i in order[:n]:
      nucleus[i] = True
      mass += p[i]
      if mass >= top_p:
        break
    p = np.where(nucleus, p, 0.0)
    p /= p.sum()
  return p


@pytest.mark.parametrize("temperature,top_k,top_p", [
    (1.0, 0, 1.0), (0.7, 3, 1.0), (1.0, 0, 0.8), (1.5, 4, 0.7), (2.0, 0, 0.3)])
def test_frequencies_match_truncated_softmax(temperature, top_k, top_p):
  logits = jnp.array([[1.0, 0.2, -0.5, 2.0, 0.9, -1.3],
                      [0.0, 0.1, 0.3, -0.2, 1.5, 0.4]])

  def step(tokens, state, index):
    del tokens, index
    return state, state

  draws = 4000
  seqs = jax.jit(lambda r: sample(step, logits, r, batch_size=2, max_len=1,
                                  bos_id=BOS, eos_id=5, temperature=temperature,
                                  top_k=top_k, top_p=top_p, num_samples=draws))(
                                      jax.random.PRNGKey(0))
  assert seqs.shape == (2, draws, 1)
  for b in range(2):
    want = _expected(logits[b], temperature, top_k, top_p)
    counts = np.bincount(np.asarray(seqs[b, :, 0]), minlength=6)
    assert np.all(counts[want == 0] == 0)
    live = want > 0
    if live.sum() > 1:
      p = stats.chisquare(counts[live], draws * want[live]).pvalue
      assert p > 1e-4, (counts, draws * want)


def test_truncate_logits_matches_numpy():
  z = jax.random.normal(jax.random.PRNGKey(3), (5, 11)) * 2
  for temperature, top_k, top_p in [(1.0, 0, 0.5), (0.5, 5, 0.9), (1.3, 2, 1.0)]:
    cand, ids = jax.jit(lambda z: truncate_logits(
        z, temperature=temperature, top_k=top_k, top_p=top_p))(z)
    probs = np.zeros((5, 11))
    p = np.asarray(jax.nn.softmax(cand, axis=-1))
    if ids is None:
      probs = p
    else:
      np.put_along_axis(probs, np.asarray(ids), p, axis=-1)
    for r in range(5):
      np.testing.assert_allclose(probs[r], _expected(z[r], temperature, top_k, top_p),
                                 atol=1e-6)


def test_top_k_one_is_greedy_and_eos_pads():
  model = ToyRNN(seed=4, vocab=6, max_len=7)
  batch, length = 3, 7
  state = model.init(batch)
  got = sample(model.step, state, jax.random.PRNGKey(9), batch_size=batch,
               max_len=length, bos_id=BOS, eos_id=EOS, top_k=1, temperature=0.3)
  st, tok, alive, want = state, jnp.full((batch,), BOS, jnp.int32), np.ones(batch, bool), []
  step = jax.jit(model.step)
  for t in range(length):
    logits, st = step(tok, st, t)
    tok = jnp.argmax(logits, -1).astype(jnp.int32)
    want.append(np.where(alive, np.asarray(tok), EOS))
    alive &= np.asarray(tok) != EOS
  np.testing.assert_array_equal(got, np.stack(want, 1))


def test_top_k_one_with_prompt_and_min_len_is_constrained_greedy():
  model = ToyRNN(seed=5, vocab=5, max_len=7, scale=3.0)
  batch, length, min_len = 2, 7, 4
  prompt = jnp.array([[2, 3], [4, 4]], jnp.int32)
  lengths = jnp.array([2, 1])
  got = jax.jit(lambda r: sample(model.step, model.init(batch), r, batch_size=batch,
                                 max_len=length, bos_id=BOS, eos_id=EOS, top_k=1,
                                 min_len=min_len, prompt=prompt, prompt_lengths=lengths))(
                                     jax.random.PRNGKey(2))
  st, tok, alive, want = model.init(batch), jnp.full((batch,), BOS, jnp.int32), np.ones(batch, bool), []
  for t in range(length):
    logits, st = model.step(tok, st, t)
    logits = np.asarray(logits, np.float64).copy()
    if t < min_len:
      logits[:, EOS] = -np.inf
    pick = logits.argmax(-1)
    forced = t < np.asarray(lengths)
    pick = np.where(forced, np.asarray(prompt)[:, min(t, 1)], pick)
    tok = jnp.asarray(pick, jnp.int32)
    want.append(np.where(alive, pick, EOS))
    alive &= pick != EOS
  np.testing.assert_array_equal(got, np.stack(want, 1))


def test_min_len_prompt_and_padding():
  model = ToyRNN(seed=6, vocab=4, max_len=6, scale=3.0)
  prompt = jnp.array([[2, 3], [3, 3]], jnp.int32)
  seqs = jax.jit(lambda r: sample(
      model.step, model.init(2), r, batch_size=2, max_len=6, bos_id=BOS, eos_id=EOS,
      min_len=3, prompt=prompt, prompt_lengths=jnp.array([2, 1]),
      num_samples=50))(jax.random.PRNGKey(1))
  seqs = np.asarray(seqs)
  assert np.all(seqs[0, :, :2] == [2, 3]) and np.all(seqs[1, :, 0] == 3)
  assert not np.all(seqs[1, :, 1] == 3)  # only the first position is forced
  for row in seqs.reshape(-1, 6):
    if EOS in row:
      first = list(row).index(EOS)
      assert first >= 3 and np.all(row[first:] == EOS)


def test_samples_differ_and_single_sample_shape():
  model = ToyRNN(seed=6, vocab=8, max_len=5, scale=0.3)
  out = sample(model.step, model.init(2), jax.random.PRNGKey(0), batch_size=2,
               max_len=5, bos_id=BOS, eos_id=EOS)
  assert out.shape == (2, 5) and out.dtype == jnp.int32
  many = sample(model.step, model.init(2), jax.random.PRNGKey(0), batch_size=2,
                max_len=5, bos_id=BOS, eos_id=EOS, num_samples=16)
  assert len({tuple(r) for r in np.asarray(many[0])}) > 4


def test_bad_arguments():
  model = ToyRNN(seed=1, vocab=5, max_len=4)
  state = model.init(2)
  kw = dict(batch_size=2, max_len=4, bos_id=BOS, eos_id=EOS)
  cases = [
      (dict(top_p=0.0), ValueError, r"top_p must be a Python float in \(0, 1\]"),
      (dict(top_p=1.5), ValueError, "top_p"),
      (dict(top_k=-1), ValueError, "top_k must be >= 0"),
      (dict(top_k=6), ValueError, "top_k=6 exceeds the vocabulary size V=5"),
      (dict(temperature=0.0), ValueError, "temperature must be > 0"),
      (dict(max_len=0), ValueError, "max_len must be >= 1"),
      (dict(num_samples=0), ValueError, "num_samples must be >= 1"),
      (dict(bos_id=9), ValueError, "bos_id=9 is outside the vocabulary"),
  ]
  for extra, err, match in cases:
    with pytest.raises(err, match=match):
      sample(model.step, state, jax.random.PRNGKey(0), **{**kw, **extra})
  with pytest.raises(ValueError, match="leading axis 2"):
    sample(model.step, {"h": jnp.zeros((8,)), "steps": jnp.zeros(2, jnp.int32)},
           jax.random.PRNGKey(0), **kw)
