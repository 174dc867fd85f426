"""Toy step functions shared by the decoding tests (a tiny RNN LM) and
brute-force NumPy logits processors."""
import itertools

import jax
import jax.numpy as jnp
import numpy as np


class ToyRNN:
  """`h' = tanh(h W + E[token])`, `logits = h' U + b[index]`; state = h.

  The hidden state is a cache in the sense of the step-function contract:
  a search that gathers it wrongly along the beam axis gets wrong logits.
  """

  def __init__(self, seed, vocab, hidden=8, max_len=8, scale=1.5):
    r = np.random.default_rng(seed)
    self.vocab, self.hidden = vocab, hidden
    self.w = (r.normal(size=(hidden, hidden)) / np.sqrt(hidden)).astype(np.float32)
    self.e = r.normal(size=(vocab, hidden)).astype(np.float32)
    self.u = (scale * r.normal(size=(hidden, vocab))).astype(np.float32)
    self.b = r.normal(size=(max_len, vocab)).astype(np.float32)

  def init(self, batch, seed=0):
    h = np.random.default_rng(seed + 100).normal(size=(batch, self.hidden))
    return {"h": jnp.asarray(h, jnp.float32), "steps": jnp.zeros((batch,), jnp.int32)}

  def step(self, tokens, state, index):
    h = jnp.tanh(state["h"] @ self.w + jnp.asarray(self.e)[tokens])
    logits = h @ self.u + jnp.asarray(self.b)[index][None, :]
    return logits, {"h": h, "steps": state["steps"] + 1}

  def logp_table(self, state, seqs, bos):
    """Teacher-forced log-probs `[N, L, V]` of each row of `seqs [N, L]`."""
    n, length = seqs.shape
    st = state
    tokens = jnp.full((n,), bos, jnp.int32)
    out = []
    for t in range(length):
      logits, st = self.step(tokens, st, t)
      out.append(jax.nn.log_softmax(logits, axis=-1))
      tokens = jnp.asarray(seqs[:, t], jnp.int32)
    return np.asarray(jnp.stack(out, axis=1))


def exhaustive(model, state_row, *, max_len, bos, eos, alpha=0.0, min_len=0,
               prefix=()):
  """All hypotheses of one input, best first: list of (score, tuple tokens).

  A hypothesis ends at its first `eos` (not before `min_len`) or at
  `max_len`; forced `prefix` tokens add 0 to the score.
  """
  full = np.array(list(itertools.product(range(model.vocab), repeat=max_len)),
                  np.int32)
  keep = np.all(full[:, :len(prefix)] == np.array(prefix, np.int32), axis=1)
  full = full[keep]
  state = jax.tree.map(lambda x: jnp.repeat(x, len(full), axis=0), state_row)
  table = model.logp_table(state, full, bos)
  hyps = {}
  for row, seq in enumerate(full):
    total = 0.0
    for t, tok in enumerate(seq):
      if t >= len(prefix):
        total += table[row, t, tok]
      if tok == eos and t < min_len and t >= len(prefix):
        break
      if tok == eos or t == max_len - 1:
        length = t + 1
        hyps[tuple(seq[:length])] = total / ((5 + length) / 6) ** alpha
        break
  return sorted(((s, h) for h, s in hyps.items()), key=lambda x: -x[0])


def np_repetition(logits, tokens, index, penalty):
  """Repetition penalty, one seen id at a time."""
  out = np.array(logits, np.float64)
  for r in range(out.shape[0]):
    for t in set(tokens[r, :index].tolist()):
      z = out[r, t]
      out[r, t] = z / penalty if z > 0 else z * penalty
  return out


def np_no_repeat(logits, tokens, index, n):
  """n-gram blocking by comparing every earlier window with the suffix."""
  out = np.array(logits, np.float64)
  for r in range(out.shape[0]):
    prefix = tokens[r, :index].tolist()
    for s in range(len(prefix) - n + 1):
      if prefix[s:s + n - 1] == prefix[len(prefix) - n + 1:]:
        out[r, prefix[s + n - 1]] = -np.inf
  return out
