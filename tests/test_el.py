"""Tests of jaxblog.el: matching, behaviour statistics, records, channels, decoding."""
import json
import random

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxblog import el


def brute_max_match(text, aliases, word_boundary=False):
  def ok(s, e):
    if not word_boundary:
      return True
    return (s == 0 or not text[s - 1].isalnum()) and (e == len(text) or not text[e].isalnum())
  spans, i = [], 0
  while i < len(text):
    ends = [i + len(a) for a in aliases if a and text.startswith(a, i) and ok(i, i + len(a))]
    if ends:
      spans.append((i, max(ends)))
      i = max(ends)
    else:
      i += 1
  return spans


# ---------------------------------------------------------------- max_match

def test_max_match_prefers_longest_and_jumps():
  assert el.max_match("new york city", ["new", "new york", "york city"]) == [(0, 8)]
  assert el.max_match("abcd", ["ab", "bcd", "c"]) == [(0, 2), (2, 3)]


def test_max_match_chinese_character_scan():
  assert el.max_match("高清视频在线观看", ["高清", "高清视频", "视频", "在线"]) == [(0, 4), (4, 6)]


@pytest.mark.parametrize("word_boundary", [False, True])
def test_max_match_matches_brute_force(word_boundary):
  rng = random.Random(0)
  for _ in range(200):
    text = "".join(rng.choice("ab c") for _ in range(rng.randint(0, 15)))
    aliases = {"".join(rng.choice("abc") for _ in range(rng.randint(1, 3)))
               for _ in range(rng.randint(0, 6))}
    assert el.max_match(text, aliases, word_boundary=word_boundary) == \
        brute_max_match(text, aliases, word_boundary), (text, aliases)


def test_max_match_word_boundary_and_edge_cases():
  assert el.max_match("party art", ["art"]) == [(1, 4), (6, 9)]
  assert el.max_match("party art", ["art"], word_boundary=True) == [(6, 9)]
  # The longest alias that ends at a boundary wins, not just the longest.
  assert el.max_match("new yorker", ["new", "new york"], word_boundary=True) == [(0, 3)]
  assert el.max_match("", ["a"]) == []
  assert el.max_match("abc", []) == []
  assert el.max_match("abc", ["", "b"]) == [(1, 2)]
  index = el.AliasIndex(["b", "b", ""])
  assert len(index) == 1 and el.max_match("abc", index) == [(1, 2)]


def test_max_match_bad_input():
  with pytest.raises(TypeError, match="text must be a string"):
    el.max_match(None, ["a"])
  with pytest.raises(TypeError, match="not a single string"):
    el.max_match("abc", "abc")
  with pytest.raises(TypeError, match="aliases must be strings"):
    el.max_match("abc", ["a", 3])


# ---------------------------------------------------------------- behaviour

def test_alias_ratios_counts_texts_once_with_smoothing():
  texts = ["a a b", "a", "b c", "c"]
  mentions = [[("a", 0)], [], [("b", 0), ("c", 2)], [("c", 0)]]
  r = el.alias_ratios(texts, mentions, ["a", "b", "c", "d"], word_boundary=True)
  # a: matched-unlabelled in text 1 only (text 0 labels it) -> (1+1)/(1+1).
  # b: unlabelled in text 0, labelled in text 2 -> 2/2; c: 1/3; d: never seen -> 1.
  assert r == {"a": 1.0, "b": 1.0, "c": 1 / 3, "d": 1.0}


def test_alias_ratios_labelled_but_unmatched_alias_counts_as_labelled():
  # "ab" is labelled although max-matching prefers "abc" there.
  r = el.alias_ratios(["abc"], [[("ab", 0)]], ["ab", "abc"])
  assert r == {"ab": 0.5, "abc": 2.0}


def test_prune_aliases_threshold_is_strict():
  texts = ["x"] * 4 + ["y"] * 5
  mentions = [[]] * 9
  # x: ratio 5 (dropped at threshold 5), y: ratio 6.
  assert el.prune_aliases(["x", "y", "z"], texts, mentions) == {"z"}
  assert el.prune_aliases(["x", "y", "z"], texts, mentions, threshold=5.5) == {"x", "z"}
  assert el.prune_aliases([], [], []) == set()
  with pytest.raises(ValueError, match="same length"):
    el.prune_aliases(["x"], ["x"], [])
  with pytest.raises(ValueError, match="threshold"):
    el.prune_aliases(["x"], ["x"], [[]], threshold=0)


def test_filter_candidates_by_training_counts():
  counts = el.link_counts([("p", "a"), ("p", "a"), ("p", "b"), ("p", "c"), ("p", "c"),
                           ("p", "NIL"), ("p", "NIL"), ("p", "zz"), ("p", "zz")])
  assert "NIL" not in counts["p"]
  # "zz" is frequent but not a KB entry of this alias: ignored.
  assert el.filter_candidates("p", ["a", "b", "c"], counts) == ("a", "c")
  assert el.filter_candidates("p", ["b"], counts) == ("b",)
  assert el.filter_candidates("q", ["x", "y"], counts) == ("x", "y")
  assert el.filter_candidates("p", ["a", "b"], counts, min_count=1) == ("a", "b")
  assert el.filter_candidates("q", [], counts) == ()
  with pytest.raises(ValueError, match="min_count"):
    el.filter_candidates("p", ["a"], counts, min_count=0)


# ---------------------------------------------------------------- records

KB_LINE = {"subject_id": "n1", "subject": "Paris", "alias": ["Paris", "City of Light"],
           "type": ["city"], "data": [{"predicate": "definition", "object": "capital of France"},
                                      {"predicate": "part-of", "object": "France"}]}
TEXT_LINE = {"text_id": "7", "text": "Paris, France",
             "mention_data": [{"kb_id": "n2", "mention": "France", "offset": "7"},
                              {"kb_id": "n1", "mention": "Paris", "offset": "0"}]}


def test_parse_round_trip():
  e = el.parse_entity(json.dumps(KB_LINE), 3)
  assert e.alias == ("Paris", "City of Light") and e.data[1] == ("part-of", "France")
  assert el.parse_entity(el.entity_to_json(e)) == e
  t = el.parse_text(json.dumps(TEXT_LINE))
  assert [m.offset for m in t.mentions] == [0, 7]
  assert el.parse_text(el.text_to_json(t)) == t
  assert el.describe(e) == ("definition: capital of france\npart-of: france\n"
                            "name: paris, city of light")


def test_parse_empty_aliases_and_no_mentions_are_valid():
  e = el.parse_entity(dict(KB_LINE, alias=[]))
  assert e.alias == () and el.describe(e).endswith("name: paris")
  t = el.parse_text({"text_id": 1, "text": ""})
  assert t.mentions == () and t.text_id == "1"
  parsed = el.parse_lines(["", json.dumps(TEXT_LINE), "  "], el.parse_text)
  assert len(parsed) == 1


@pytest.mark.parametrize("change, message", [
    (lambda d: d.pop("subject_id"), "KB line 5: missing key 'subject_id'"),
    (lambda d: d.update(alias="Paris"), "KB line 5: 'alias' must be list"),
    (lambda d: d.update(alias=["Paris", 1]), "'alias' must hold strings"),
    (lambda d: d.update(data=[{"predicate": "p"}]), r"KB line 5 data\[0\]: missing key 'object'"),
    (lambda d: d.update(subject_id="NIL"), "not 'NIL'"),
])
def test_parse_entity_errors_name_the_line(change, message):
  d = json.loads(json.dumps(KB_LINE))
  change(d)
  with pytest.raises(ValueError, match=message):
    el.parse_entity(json.dumps(d), 5)


def _mention(**kw):
  d = json.loads(json.dumps(TEXT_LINE))
  d["mention_data"][0].update(kw)
  return d


@pytest.mark.parametrize("record, message", [
    ({"text": "x"}, "text line 9: missing key 'text_id'"),
    ({"text_id": "1"}, "text line 9: missing key 'text'"),
    (_mention(offset="12"), r"mention_data\[0\]: offset 12 \+ len\('France'\) is outside"),
    (_mention(offset="-1"), "is outside"),
    (_mention(offset="x"), "non-integer 'offset'"),
    (_mention(offset="6"), "'France' is not the text at offset 6"),
    (_mention(mention=""), "empty mention"),
    ({"text_id": "1", "text": "a", "mention_data": [{"mention": "a", "offset": 0}]},
     "missing key 'kb_id'"),
])
def test_parse_text_errors_name_the_line(record, message):
  with pytest.raises(ValueError, match=message):
    el.parse_text(json.dumps(record), 9)


def test_parse_bad_json_names_the_line():
  with pytest.raises(ValueError, match="text line 4: not a JSON object"):
    el.parse_lines(["{}", "{}", "{}", "{oops"], lambda l, n: el.parse_text(l, n) if n == 4 else n)
  with pytest.raises(ValueError, match="KB line 2: not a JSON object, got list"):
    el.parse_entity("[1]", 2)


# ---------------------------------------------------------------- channels

def test_span_channels():
  ch = el.span_channels([(0, 2), (3, 4), (5, 9)], 6)
  assert ch[:, 0].tolist() == [1, 0, 0, 1, 0, 0]
  assert ch[:, 1].tolist() == [0, 1, 0, 1, 0, 0]  # (5, 9) is cut by the length
  assert el.span_channels([], 0).shape == (0, 2)
  with pytest.raises(ValueError, match="start < end"):
    el.span_channels([(2, 2)], 4)


def test_link_features_channels():
  f = el.link_features("Paris in France", (0, 5), "capital of france", ["France", "a long object value"],
                       length=20)
  assert f.shape == (20, 4) and f.dtype == np.float32
  assert f[:5, 0].all() and not f[5:, 0].any()
  assert f[1, 1] == 1 and f[5, 1] == 0  # 'a' is in the description, ' ' never counts
  assert f[9:15, 2].all() and not f[:9, 2].any()  # only "france" is a description word
  assert f[9:15, 3].all() and not f[:9, 3].any() and not f[15:].any()
  with pytest.raises(ValueError, match="not inside the text"):
    el.link_features("abc", (2, 5), "x")


# ---------------------------------------------------------------- decoding

def brute_span_decode(ps, pe, thr):
  out = []
  for i, p in enumerate(ps):
    if p > thr:
      ends = [j for j in range(i, len(pe)) if pe[j] > thr]
      if ends:
        out.append((i, ends[0]))
  return out


def test_span_decode_matches_brute_force():
  rng = np.random.default_rng(0)
  for _ in range(50):
    t = int(rng.integers(0, 12))
    ps, pe = rng.random(t).astype(np.float32), rng.random(t).astype(np.float32)
    assert el.span_decode(ps, pe, 0.6) == brute_span_decode(ps, pe, 0.6)
  assert el.span_decode([0.5, 0.5], [0.4, 0.4]) == []  # strictly greater than 0.4
  assert el.span_decode(jnp.zeros((0,)), jnp.zeros((0,))) == []


def test_nearest_end_jit_and_batch():
  ps = jnp.array([[0.9, 0.0, 0.9], [0.0, 0.9, 0.9]])
  pe = jnp.array([[0.0, 0.9, 0.0], [0.9, 0.0, 0.9]])
  out = jax.jit(el.nearest_end)(ps, pe)
  assert out.dtype == jnp.int32 and out.tolist() == [[1, -1, -1], [-1, 2, 2]]
  assert jax.vmap(el.nearest_end)(ps, pe).tolist() == out.tolist()
  with pytest.raises(ValueError, match="same shape"):
    el.nearest_end(ps, pe[:, :2])
  with pytest.raises(TypeError, match="p_start must be a floating"):
    el.nearest_end(jnp.ones((3,), jnp.int32), pe[0])
  with pytest.raises(ValueError, match=r"shape \[T\]"):
    el.span_decode(ps, pe)


def test_pooling_masks_and_empty():
  x = jnp.arange(12.0).reshape(2, 3, 2)
  m = jnp.array([[True, False, True], [False, False, False]])
  mean = jax.jit(el.span_mean)(x, m)
  mx = jax.jit(el.masked_max)(x, m)
  assert mean.tolist() == [[2.0, 3.0], [0.0, 0.0]]
  assert mx.tolist() == [[4.0, 5.0], [0.0, 0.0]]
  g = jax.grad(lambda x: el.span_mean(x, m).sum() + el.masked_max(x, m).sum())(x)
  assert np.isfinite(np.asarray(g)).all()
  with pytest.raises(ValueError, match="span must have shape"):
    el.span_mean(x, m[:, :2])
  with pytest.raises(TypeError, match="mask must be a bool"):
    el.masked_max(x, m.astype(jnp.float32))


def test_triple_f1():
  g = {("1", "a", 0, "x"), ("1", "b", 2, "y")}
  assert el.triple_f1(g, g) == (1.0, 1.0, 1.0)
  assert el.triple_f1([], []) == (1.0, 1.0, 1.0)
  assert el.triple_f1([], g) == (0.0, 0.0, 0.0)
  assert el.triple_f1(g, []) == (0.0, 0.0, 0.0)
  p, r, f = el.triple_f1([("1", "a", 0, "x"), ("1", "a", 0, "x"), ("1", "b", 2, "z")], g)
  assert (p, r) == (0.5, 0.5) and f == pytest.approx(0.5)
