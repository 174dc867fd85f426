"""ChineseTokenizer: BERT WordPiece over a Chinese vocab, pairs, truncation, keep_tokens."""
import sys

import jax
import numpy as np
import pytest

from jaxblog.data.packages import MissingPackageError
from jaxblog.data.tokenizer import ChineseTokenizer, albert_tiny_zh_dir

pytest.importorskip("tokenizers")

VOCAB = ["[PAD]", "[unused1]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "，", "。", "我", "爱", "北",
         "京", "天", "安", "门", "头", "发", "頭", "髮", "hello", "world", "un", "##aff", "##able",
         "1", "##9", "##99"]


@pytest.fixture(scope="module")
def tok():
  return ChineseTokenizer(VOCAB)


def test_tokenize_and_specials(tok):
  assert (tok.pad_id, tok.unk_id, tok.cls_id, tok.sep_id, tok.mask_id) == (0, 2, 3, 4, 5)
  assert tok.vocab_size == len(tok) == len(VOCAB)
  assert tok.tokenize("我爱北京，天安门。") == list("我爱北京，天安门。")
  # Lowercased, CJK split from ASCII, WordPiece continuations, unknowns.
  assert tok.tokenize("HELLO我World unaffable 1999 ☃x") == [
      "hello", "我", "world", "un", "##aff", "##able", "1", "##99", "##9", "[UNK]"]


def test_encode_single_and_pair(tok):
  ids, seg = tok.encode("我爱北京")
  assert ids == [3, 8, 9, 10, 11, 4] and seg == [0] * 6
  ids, seg = tok.encode("我爱", "北京天")
  assert ids == [3, 8, 9, 4, 10, 11, 12, 4] and seg == [0, 0, 0, 0, 1, 1, 1, 1]
  # bert4keras truncation: pop from the end of the longer side, the first on ties.
  ids, seg = tok.encode("我爱北京天安", "门头发", max_len=9)  # 6 + 3 -> 3 + 3
  assert tok.decode(ids) == "我爱北门头发" and sum(seg) == 4
  ids, _ = tok.encode("我爱北京", "天安门头", max_len=8)  # 4+4 -> 3+4 -> 3+3 -> 2+3
  assert ids == [3, 8, 9, 4, 12, 13, 14, 4]
  ids, _ = tok.encode("我爱北京天安门", max_len=5)
  assert ids == [3, 8, 9, 10, 4]


def test_truncation_matches_brute_force(tok):
  rng = np.random.default_rng(0)
  chars = "我爱北京天安门头发"
  for _ in range(50):
    a = "".join(rng.choice(list(chars), rng.integers(0, 9)))
    b = "".join(rng.choice(list(chars), rng.integers(0, 9)))
    max_len = int(rng.integers(3, 20))
    ids, seg = tok.encode(a, b, max_len=max_len)
    la, lb = len(a), len(b)
    while la + lb > max_len - 3:
      if la >= lb:
        la -= 1
      else:
        lb -= 1
    assert tok.decode(ids) == a[:la] + b[:lb]
    assert len(ids) == la + lb + 3 and sum(seg) == lb + 1


def test_encode_batch(tok):
  ids, seg, valid = tok.encode_batch(["我爱", "北京天安门"], ["天", "头发"], max_len=8)
  assert ids.dtype == seg.dtype == np.int32 and valid.dtype == bool and ids.shape == (2, 8)
  np.testing.assert_array_equal(ids[0], [3, 8, 9, 4, 12, 4, 0, 0])
  np.testing.assert_array_equal(seg[0], [0, 0, 0, 0, 1, 1, 0, 0])
  np.testing.assert_array_equal(valid[0], [1] * 6 + [0] * 2)
  assert valid[1].all() and tok.decode(ids[1]) == "北京天头发"
  single, single_seg, single_valid = tok.encode_batch(["我爱北京"], max_len=4)
  np.testing.assert_array_equal(single, [[3, 8, 9, 4]])
  assert not single_seg.any() and single_valid.all()
  # The arrays feed a jitted function as they are.
  assert int(jax.jit(lambda x, v: (x * v).sum())(ids, valid)) == int((ids * valid).sum())


def test_decode(tok):
  ids, _ = tok.encode("hello world我爱unaffable")
  assert tok.decode(ids) == "hello world我爱unaffable"
  assert tok.decode(ids, skip_special=False).startswith("[CLS]hello")
  assert tok.decode([2, 8]) == "[UNK]我"
  with pytest.raises(ValueError, match="token id 99 is outside"):
    tok.decode([99])


def test_keep_tokens(tok):
  corpus = ["我爱北京", "头发 unaffable"]
  small, kept = tok.keep_tokens(corpus)
  assert kept == sorted(kept) and kept[0] == 0
  assert {2, 3, 4, 5} <= set(kept) and 1 not in kept and VOCAB.index("天") not in kept
  assert [small.tokens[i] for i in range(len(small))] == [VOCAB[i] for i in kept]
  for text in corpus:  # same tokens, renumbered
    old, _ = tok.encode(text)
    new, _ = small.encode(text)
    assert [kept[i] for i in new] == old
  assert small.tokenize("天") == ["[UNK]"]
  assert (small.pad_id, small.cls_id) == (0, kept.index(3))


def test_errors(tok, monkeypatch):
  with pytest.raises(ValueError, match=r"lacks the special tokens \['\[MASK\]'\]"):
    ChineseTokenizer([t for t in VOCAB if t != "[MASK]"])
  with pytest.raises(ValueError, match="1 duplicate"):
    ChineseTokenizer(VOCAB + ["我"])
  with pytest.raises(ValueError, match="max_len must be an int >= 3"):
    tok.encode_batch(["我"], ["爱"], max_len=2)
  with pytest.raises(ValueError, match="same length, got 2 and 1"):
    tok.encode_batch(["我", "爱"], ["北"], max_len=8)
  with pytest.raises(ValueError, match="no room for the special tokens"):
    tok.encode("我", "爱", max_len=2)
  with pytest.raises(TypeError, match="single str"):
    tok.ids("我爱")
  monkeypatch.setitem(sys.modules, "opencc", None)
  with pytest.raises(ModuleNotFoundError, match="pip install opencc-python-reimplemented"):
    ChineseTokenizer(VOCAB, traditional=True)


def test_traditional_conversion():
  pytest.importorskip("opencc")
  tok = ChineseTokenizer(VOCAB, traditional=True)
  assert tok.traditional == "s2t"
  assert tok.tokenize("头发") == ["頭", "髮"]
  assert ChineseTokenizer(VOCAB).tokenize("头发") == ["头", "发"]


def _real():
  try:
    return albert_tiny_zh_dir()
  except MissingPackageError as e:
    pytest.skip(str(e))


def test_real_vocab_matches_transformers_bert_tokenizer():
  directory = _real()
  transformers = pytest.importorskip("transformers")
  ours = ChineseTokenizer.from_vocab_file(directory / "vocab.txt")
  theirs = transformers.AutoTokenizer.from_pretrained(str(directory))
  assert len(ours) == 21128 and (ours.pad_id, ours.unk_id, ours.cls_id, ours.sep_id,
                                 ours.mask_id) == (0, 100, 101, 102, 103)
  texts = ["花呗如何还款？", "我的iPhone 12 Pro屏幕碎了，Apple Store能修吗", "ＡＢＣ全角ａｂｃ１２３",
           "Hello, WORLD!!! 中文 mixed 😀 text\u3000tab\there"]
  for a, b in zip(texts, texts[1:] + texts[:1]):
    assert ours.encode(a)[0] == theirs(a)["input_ids"]
    enc = theirs(a, b)
    assert ours.encode(a, b) == (enc["input_ids"], enc["token_type_ids"])


def test_albert_tiny_zh_defaults_to_traditional():
  _real()
  pytest.importorskip("opencc")
  tok = ChineseTokenizer.albert_tiny_zh()
  assert tok.traditional == "s2t"
  assert tok.decode(tok.encode("这个软件怎么样")[0]) == "這個軟件怎麼樣"
