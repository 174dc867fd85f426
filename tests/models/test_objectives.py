"""MLM corruption, UniLM seq2seq targets, token cross-entropy, char BERT inputs."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxblog.data import char_bert
from jaxblog.data.vocab import BERT_SPECIALS, Vocab
from jaxblog.models.objectives import mlm_corrupt, seq2seq_targets, token_cross_entropy


def test_mlm_corrupt_budget_and_only_maskable():
  ids = jnp.arange(5, 45, dtype=jnp.int32).reshape(2, 20)
  maskable = jnp.ones((2, 20), bool).at[:, :2].set(False).at[1, 5:].set(False)
  inputs, positions, weights = jax.jit(
      lambda r: mlm_corrupt(r, ids, maskable, mask_id=4, vocab_size=50, num_predictions=6,
                            first_regular=5))(jax.random.key(0))
  assert positions.shape == weights.shape == (2, 6)
  assert bool(weights[0].all()) and int(weights[1].sum()) == 3  # row 1 has 3 maskable
  picked = np.asarray(positions)[np.asarray(weights)]
  assert np.asarray(maskable)[np.repeat([0, 1], [6, 3]), picked].all()
  assert len(set(np.asarray(positions[0]).tolist())) == 6
  changed = np.asarray(inputs != ids)
  chosen = np.zeros((2, 20), bool)
  for row in range(2):
    chosen[row, np.asarray(positions[row])[np.asarray(weights[row])]] = True
  assert not changed[~chosen].any()


def test_mlm_corrupt_rates():
  ids = jnp.full((64, 100), 7, jnp.int32)
  inputs, positions, _ = jax.jit(
      lambda r: mlm_corrupt(r, ids, jnp.ones_like(ids, bool), mask_id=4, vocab_size=1000,
                            num_predictions=15, first_regular=5))(jax.random.key(1))
  at = np.asarray(jnp.take_along_axis(inputs, positions, axis=1))
  assert 0.75 < np.mean(at == 4) < 0.85
  assert 0.06 < np.mean((at != 4) & (at != 7)) < 0.14


def test_mlm_corrupt_errors():
  ids = jnp.zeros((2, 5), jnp.int32)
  with pytest.raises(ValueError, match="num_predictions"):
    mlm_corrupt(jax.random.key(0), ids, ids > 0, mask_id=4, vocab_size=9, num_predictions=6)
  with pytest.raises(TypeError, match="maskable"):
    mlm_corrupt(jax.random.key(0), ids, ids, mask_id=4, vocab_size=9, num_predictions=2)


def test_seq2seq_targets_cover_target_and_final_sep():
  ids = jnp.array([[2, 10, 11, 3, 20, 21, 3, 0]])
  seg = jnp.array([[0, 0, 0, 0, 1, 1, 1, 0]])
  targets, weights = jax.jit(seq2seq_targets)(ids, seg, ids != 0)
  np.testing.assert_array_equal(weights[0], [0, 0, 0, 1, 1, 1, 0, 0])
  np.testing.assert_array_equal(targets[0, 3:6], [20, 21, 3])


def test_token_cross_entropy_matches_numpy_and_empty_is_zero():
  logits = jax.random.normal(jax.random.key(0), (3, 4, 7))
  targets = jnp.array([[1, 2, 3, 4], [0, 0, 6, 5], [1, 1, 1, 1]])
  weights = jnp.array([[1, 1, 0, 0], [1, 0, 1, 0], [0, 0, 0, 1]], bool)
  loss, _ = jax.jit(token_cross_entropy)(logits, targets, weights)
  logp = jax.nn.log_softmax(logits)
  nll = -np.take_along_axis(np.asarray(logp), np.asarray(targets)[..., None], -1)[..., 0]
  np.testing.assert_allclose(loss, nll[np.asarray(weights)].mean(), rtol=1e-5)
  empty, acc = token_cross_entropy(logits, targets, jnp.zeros_like(weights))
  assert float(empty) == 0.0 and float(acc) == 0.0


def test_char_vocab_pairs_truncate_the_longer_side():
  vocab = Vocab.build(["甲乙丙丁戊己", "甲乙"])
  assert vocab.tokens[:5] == list(BERT_SPECIALS) and vocab.tokens[5] in "甲乙"
  ids, seg, valid = char_bert.encode_pairs(vocab, ["甲乙丙丁戊己"], ["乙丙"], max_len=8)
  # 8 - 3 specials = 5 chars: the source loses 3, the title keeps both.
  assert vocab.decode(ids[0, 1:], stop=char_bert.SEP) == "甲乙丙"
  np.testing.assert_array_equal(seg[0], [0, 0, 0, 0, 0, 1, 1, 1])
  assert valid.all()
  assert vocab.decode(char_bert.encode(vocab, ["丁戊"], 6)[0][0, 1:], stop=char_bert.SEP) == "丁戊"
  assert char_bert.windows(["一二三四五六七八九十"], 4) == []
  assert char_bert.windows(["一二三四五六七八九十"], 8) == ["一二三四五六七八"]
