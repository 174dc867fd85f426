"""beam_search: exhaustive agreement, greedy, min_len, prompts, reference rule."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from tests.decoding._decoding_toys import ToyRNN, exhaustive
from jaxblog.decoding import Stationary, beam_search, length_penalty_factor, sample, tile_rows

BOS, EOS = 0, 1


def _hyp(seqs, scores, b, k):
  """Slot k of input b as a tuple cut after its first EOS."""
  seq = [int(t) for t in seqs[b, k]]
  if EOS in seq:
    seq = seq[:seq.index(EOS) + 1]
  return float(scores[b, k]), tuple(seq)


@pytest.mark.parametrize("alpha,min_len,gather", [
    (0.0, 0, "take"), (0.6, 0, "one_hot"), (1.0, 2, "take"), (-0.5, 1, "take")])
def test_full_width_beam_is_exhaustive_search(alpha, min_len, gather):
  vocab, length, batch = 4, 4, 2
  model = ToyRNN(seed=3, vocab=vocab, max_len=length)
  state = model.init(batch)
  truth = [exhaustive(model, jax.tree.map(lambda x: x[b:b + 1], state),
                      max_len=length, bos=BOS, eos=EOS, alpha=alpha, min_len=min_len)
           for b in range(batch)]
  width = max(len(t) for t in truth) + 2  # wider than the space: -inf tail
  run = jax.jit(lambda s: beam_search(
      model.step, s, batch_size=batch, beam_size=width, max_len=length, bos_id=BOS,
      eos_id=EOS, length_penalty=alpha, min_len=min_len, gather=gather))
  seqs, scores = run(state)
  assert seqs.shape == (batch, width, length) and seqs.dtype == jnp.int32
  seqs, scores = np.asarray(seqs), np.asarray(scores)
  for b in range(batch):
    n = len(truth[b])
    got = [_hyp(seqs, scores, b, k) for k in range(n)]
    assert [h for _, h in got] == [h for _, h in truth[b]]
    np.testing.assert_allclose([s for s, _ in got], [s for s, _ in truth[b]],
                               rtol=1e-5, atol=1e-5)
    assert np.all(np.isneginf(scores[b, n:]))
    assert np.all(np.diff(scores[b, :n]) <= 0)


def test_beam_one_is_greedy_and_early_exit_is_invisible():
  vocab, length, batch = 7, 6, 8
  model = ToyRNN(seed=0, vocab=vocab, max_len=length)
  state = model.init(batch)
  kw = dict(batch_size=batch, max_len=length, bos_id=BOS, eos_id=EOS)
  # Greedy decoding by hand, recording the hypotheses that end one step off the
  # greedy path (EOS as the runner-up: beam 1 keeps 2 candidates a step).
  st, tok = state, jnp.full((batch,), BOS, jnp.int32)
  greedy, total, alive = [], np.zeros(batch), np.ones(batch, bool)
  step = jax.jit(model.step)
  off_path = np.full(batch, -np.inf)
  for t in range(length):
    logits, st = step(tok, st, t)
    logp = np.asarray(jax.nn.log_softmax(logits))
    runner_up = np.argsort(-logp, axis=-1)[:, 1]
    off_path = np.where(alive & (runner_up == EOS),
                        np.maximum(off_path, total + logp[:, EOS]), off_path)
    tok = jnp.asarray(logp.argmax(-1), jnp.int32)
    total += np.where(alive, logp[np.arange(batch), np.asarray(tok)], 0.0)
    greedy.append(np.where(alive, np.asarray(tok), EOS))
    alive &= np.asarray(tok) != EOS
  greedy = np.stack(greedy, 1)
  # reference rule, beam 1 == greedy exactly
  seqs1, scores1 = beam_search(model.step, state, beam_size=1, stop_rule="reference",
                               **kw)
  np.testing.assert_array_equal(seqs1[:, 0], greedy)
  np.testing.assert_allclose(scores1[:, 0], total, rtol=1e-5)
  # exact rule, beam 1 == greedy, unless an off-path ended hypothesis beats it
  seqs1, scores1 = beam_search(model.step, state, beam_size=1, **kw)
  np.testing.assert_allclose(scores1[:, 0], np.maximum(total, off_path), rtol=1e-5)
  wins = total >= off_path
  np.testing.assert_array_equal(np.asarray(seqs1[wins, 0]), greedy[wins])
  assert not wins.all() and wins.any()  # both cases occur in this toy batch
  # early exit never changes the answer
  for alpha in (0.0, 0.8):
    a = beam_search(model.step, state, beam_size=3, length_penalty=alpha, **kw)
    b = beam_search(model.step, state, beam_size=3, length_penalty=alpha,
                    early_exit=False, **kw)
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_allclose(a[1], b[1])


def test_length_penalty_factor_is_gnmt():
  got = jax.jit(length_penalty_factor)(jnp.array([1, 7]), 0.6)
  np.testing.assert_allclose(got, [1.0, 2.0 ** 0.6], rtol=1e-6)


def test_min_len_and_eos_padding():
  model = ToyRNN(seed=5, vocab=4, max_len=6, scale=3.0)
  state = model.init(2)
  seqs, scores = beam_search(model.step, state, batch_size=2, beam_size=4,
                             max_len=6, bos_id=BOS, eos_id=EOS, min_len=3)
  seqs = np.asarray(seqs)
  for b in range(2):
    for k in range(4):
      if np.isfinite(scores[b, k]):
        first = list(seqs[b, k]).index(EOS) if EOS in seqs[b, k] else 6
        assert first >= 3
        assert np.all(seqs[b, k, first:] == EOS)


def test_prompt_forced_and_scores_exclude_it():
  vocab, length = 4, 4
  model = ToyRNN(seed=8, vocab=vocab, max_len=length)
  state = model.init(2)
  prompt = jnp.array([[2, 3], [3, 0]], jnp.int32)
  lengths = jnp.array([2, 1], jnp.int32)
  seqs, scores = jax.jit(lambda s, p, n: beam_search(
      model.step, s, batch_size=2, beam_size=40, max_len=length, bos_id=BOS,
      eos_id=EOS, prompt=p, prompt_lengths=n))(state, prompt, lengths)
  for b, pre in enumerate([(2, 3), (3,)]):
    truth = exhaustive(model, jax.tree.map(lambda x: x[b:b + 1], state),
                       max_len=length, bos=BOS, eos=EOS, prefix=pre)
    got = [_hyp(np.asarray(seqs), np.asarray(scores), b, k) for k in range(len(truth))]
    assert [h for _, h in got] == [h for _, h in truth]
    np.testing.assert_allclose([s for s, _ in got], [s for s, _ in truth], rtol=1e-5)


def _reference_beam(step_fn, state_row, topk, max_len):
  """bert4keras' current `beam_search` rule, one input, host loop, numpy scores."""
  ids = np.zeros((1, 0), np.int32)
  scores = np.zeros(1)
  st = state_row
  tokens = jnp.full((1,), BOS, jnp.int32)
  for step in range(max_len):
    logits, st = step_fn(tokens, st, step)
    cand = scores[:, None] + np.asarray(jax.nn.log_softmax(logits), np.float64)
    flat = np.argsort(-cand, axis=None, kind="stable")[:topk]
    parent, tok = flat // cand.shape[1], flat % cand.shape[1]
    ids = np.concatenate([ids[parent], tok[:, None]], axis=1)
    scores = cand.reshape(-1)[flat]
    st = jax.tree.map(lambda x: x[parent], st)
    tokens = jnp.asarray(tok, jnp.int32)
    if tok[0] == EOS:  # candidates are sorted: index 0 is the overall best
      return ids[0], scores[0]
    keep = tok != EOS
    ids, scores, tokens, topk = ids[keep], scores[keep], tokens[keep], keep.sum()
    st = jax.tree.map(lambda x: x[keep], st)
  return ids[0], scores[0]


def test_reference_stop_rule_matches_host_loop():
  model = ToyRNN(seed=20, vocab=5, max_len=7, scale=1.0)
  batch, beams, length = 6, 3, 7
  state = model.init(batch)
  step = jax.jit(model.step)
  seqs, scores = jax.jit(lambda s: beam_search(
      model.step, s, batch_size=batch, beam_size=beams, max_len=length, bos_id=BOS,
      eos_id=EOS, stop_rule="reference"))(state)
  for b in range(batch):
    want, want_score = _reference_beam(
        step, jax.tree.map(lambda x: x[b:b + 1], state), beams, length)
    np.testing.assert_array_equal(np.asarray(seqs[b, 0, :len(want)]), want)
    np.testing.assert_allclose(scores[b, 0], want_score, rtol=1e-5)
    row = np.asarray(scores[b])
    assert np.all(row[:-1] >= row[1:])


@pytest.mark.multi_device
def test_sharded_state_gives_the_same_result():
  devices = np.array(jax.devices()[:4])
  mesh = Mesh(devices, ("batch",))
  model = ToyRNN(seed=2, vocab=9, max_len=5)
  state = model.init(4)
  sharded = jax.device_put(state, NamedSharding(mesh, PartitionSpec("batch")))
  for gather in ("take", "one_hot"):
    run = jax.jit(lambda s: beam_search(model.step, s, batch_size=4, beam_size=3,
                                        max_len=5, bos_id=BOS, eos_id=EOS,
                                        length_penalty=0.6, gather=gather))
    a, b = run(state), run(sharded)
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_allclose(a[1], b[1], rtol=1e-6)


def test_no_retrace_on_second_call():
  model = ToyRNN(seed=1, vocab=5, max_len=4)
  traces = []

  def step(tokens, state, index):
    traces.append(1)
    return model.step(tokens, state, index)

  run = jax.jit(lambda s: beam_search(step, s, batch_size=2, beam_size=2, max_len=4,
                                      bos_id=BOS, eos_id=EOS))
  run(model.init(2))
  n = len(traces)
  run(model.init(2, seed=7))
  assert len(traces) == n


def test_bad_arguments():
  model = ToyRNN(seed=1, vocab=5, max_len=4)
  state = model.init(2)
  kw = dict(batch_size=2, beam_size=2, max_len=4, bos_id=BOS, eos_id=EOS)
  cases = [
      (dict(beam_size=0), ValueError, "beam_size must be >= 1"),
      (dict(max_len=0), ValueError, "max_len must be >= 1"),
      (dict(beam_size=1.5), TypeError, "beam_size must be a static"),
      (dict(eos_id=5), ValueError, r"eos_id=5 is outside the vocabulary .*V=5"),
      (dict(bos_id=-1), ValueError, "bos_id must be >= 0"),
      (dict(min_len=5), ValueError, "min_len=5 exceeds max_len=4"),
      (dict(stop_rule="fast"), ValueError, "stop_rule must be one of"),
      (dict(stop_rule="reference", length_penalty=0.6), ValueError, "length_penalty"),
      (dict(gather="index"), ValueError, "gather must be one of"),
      (dict(prompt=jnp.array([[7], [1]])), ValueError, "prompt holds ids outside"),
      (dict(prompt=jnp.array([[1.0], [2.0]])), TypeError, "prompt must be an integer"),
      (dict(prompt=jnp.zeros((2, 5), jnp.int32)), ValueError, "exceeds max_len"),
  ]
  for extra, err, match in cases:
    with pytest.raises(err, match=match):
      beam_search(model.step, state, **{**kw, **extra})
  with pytest.raises(ValueError, match=r"leaf 'h' has shape \(3, 8\)"):
    beam_search(model.step, {"h": jnp.zeros((3, 8)), "steps": jnp.zeros(2, jnp.int32)},
                **kw)
  with pytest.raises(ValueError, match="step_fn changed state leaf 'h'"):
    beam_search(lambda t, s, i: (model.step(t, s, i)[0], {"h": s["h"][:, :2],
                                                         "steps": s["steps"]}),
                state, **kw)


class _StationaryRNN:
  """`ToyRNN` keeping its hidden states in `Stationary` per-copy history blocks.

  The search never moves the history; the step finds a hypothesis' previous
  hidden state through `src` (which copy wrote each position), the one
  ordinary leaf, which the search reorders. The initial hidden state is
  shared by all copies (a `Stationary` without `copy_axis`).
  """

  def __init__(self, toy, batch, max_len):
    self.toy, self.batch, self.max_len = toy, batch, max_len

  def init(self, state):
    h0 = state["h"]
    return {"h0": Stationary(h0),
            "hist": Stationary(jnp.zeros((self.batch, self.max_len, h0.shape[1])), copy_axis=1),
            "src": jnp.zeros((self.batch, self.max_len), jnp.int32)}

  def step(self, tokens, state, index):
    rows = tokens.shape[0]
    copies = rows // self.batch
    hist = state["hist"].value  # [B, L * C, hidden], position t of copy c at t * C + c
    b = jnp.arange(rows) // copies
    prev = jnp.maximum(index - 1, 0)
    where = prev * copies + state["src"][:, prev]
    h_prev = jnp.where(index == 0, state["h0"].value[b], hist[b, where])
    h = jnp.tanh(h_prev @ self.toy.w + jnp.asarray(self.toy.e)[tokens])
    logits = h @ self.toy.u + jnp.asarray(self.toy.b)[index][None, :]
    own = jnp.arange(rows) % copies
    hist = hist.at[b, index * copies + own].set(h)
    src = state["src"].at[:, index].set(own)
    return logits, {**state, "hist": state["hist"].replace(hist), "src": src}


def test_stationary_state_is_neither_tiled_nor_reordered():
  batch, beams, length = 3, 3, 6
  toy = ToyRNN(seed=4, vocab=6, max_len=length)
  plain = toy.init(batch)
  moved = _StationaryRNN(toy, batch, length)
  state = moved.init(plain)
  tiled = tile_rows(state, batch, beams)
  assert tiled["h0"].value.shape == (batch, toy.hidden)  # shared
  assert tiled["hist"].value.shape == (batch, length * beams, toy.hidden)
  assert tiled["src"].shape == (batch * beams, length)
  kw = dict(batch_size=batch, beam_size=beams, max_len=length, bos_id=BOS, eos_id=EOS)
  for extra in (dict(length_penalty=0.7), dict(stop_rule="reference"), dict(gather="one_hot")):
    want = beam_search(toy.step, plain, **kw, **extra)
    got = jax.jit(lambda s, extra=extra: beam_search(moved.step, s, **kw, **extra))(state)
    np.testing.assert_array_equal(got[0], want[0])
    np.testing.assert_allclose(got[1], want[1], rtol=1e-5)
  rng = jax.random.PRNGKey(3)
  kw = dict(batch_size=batch, max_len=length, bos_id=BOS, eos_id=EOS, num_samples=2)
  np.testing.assert_array_equal(sample(moved.step, state, rng, **kw),
                                sample(toy.step, plain, rng, **kw))
