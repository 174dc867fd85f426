"""Generation / extraction metrics against hand-computed cases."""
import math

import pytest

from jaxblog.training import metrics


def test_bleu_hand_computed():
  # p1 = 4/6, p2 = 3/5, p3 = 2/4, p4 = 1/3; equal lengths, so no brevity penalty.
  expected = (4 / 6 * 3 / 5 * 2 / 4 * 1 / 3) ** 0.25
  assert metrics.bleu("今天天气很好", ["今天天气不错"]) == pytest.approx(expected)
  assert metrics.bleu("今天天气很好", "今天天气很好") == pytest.approx(1.0)


def test_bleu_smoothing_and_brevity():
  # "今天" vs a 6-char reference: p1 = p2 = 1, no 3-/4-grams -> epsilon / 1 each,
  # brevity penalty exp(1 - 6/2).
  expected = math.exp(1 - 3) * (1 * 1 * 0.1 * 0.1) ** 0.25
  assert metrics.bleu("今天", ["今天天气很好"]) == pytest.approx(expected)
  # A missing 4-gram order is smoothed instead of zeroing the score.
  assert metrics.bleu("abcxbc", ["abcybc"]) > 0.0


def test_bleu_multiple_references_clip_and_closest_length():
  # Clipping: "aaaa" against "aa" matches 2 of 4 unigrams.
  assert metrics.bleu("aaaa", ["aa"], max_n=1) == pytest.approx(0.5)
  # The closest reference length (4, not 1) sets the brevity penalty.
  assert metrics.bleu("abcd", ["x", "abcd"]) == pytest.approx(1.0)
  # Equal distance: the shorter reference wins (as in NLTK).
  assert metrics.bleu("ab", ["a", "abc"], max_n=1) == pytest.approx(1.0)


def test_bleu_zero_cases_and_errors():
  assert metrics.bleu("", ["abc"]) == 0.0
  assert metrics.bleu("xyz", ["abc"]) == 0.0
  assert metrics.bleu(["我", "们"], [["我", "们"]], max_n=2) == pytest.approx(1.0)
  with pytest.raises(ValueError, match="references"):
    metrics.bleu("a", [])
  with pytest.raises(ValueError, match="max_n"):
    metrics.bleu("a", ["a"], max_n=0)
  with pytest.raises(TypeError, match="candidate"):
    metrics.bleu(3, ["a"])


def test_rouge_l_and_lcs():
  assert metrics.lcs_length("abcbdab", "bdcaba") == 4
  # LCS 今天天气 = 4: P = R = 4/6.
  assert metrics.rouge_l("今天天气很好", "今天天气不错") == pytest.approx(2 / 3)
  # LCS "ac" = 2, P = 2/2, R = 2/4 -> F = 2/3.
  assert metrics.rouge_l("ac", "abcd") == pytest.approx(2 * 1 * 0.5 / 1.5)
  assert metrics.rouge_l("", "abc") == 0.0
  assert metrics.rouge_l("xy", "abc") == 0.0
  with pytest.raises(TypeError, match="reference"):
    metrics.rouge_l("a", None)


def test_distinct_n():
  assert metrics.distinct_n(["好好", "好"], 1) == pytest.approx(1 / 3)
  # Bigrams: ab, bc, ab -> 2 distinct of 3.
  assert metrics.distinct_n(["abc", "ab"], 2) == pytest.approx(2 / 3)
  assert metrics.distinct_n(["a", ""], 2) == 0.0
  with pytest.raises(ValueError, match="n must"):
    metrics.distinct_n(["a"], 0)


def test_tag_spans_bio():
  tags = ["B-PER", "I-PER", "O", "I-LOC", "I-LOC", "B-ORG", "B-ORG", "I-PER"]
  assert metrics.tag_spans(tags, "bio") == {
      (0, 2, "PER"), (3, 5, "LOC"), (5, 6, "ORG"), (6, 7, "ORG"), (7, 8, "PER")}
  assert metrics.tag_spans(["B-LOC", "I-LOC"], "bio") == {(0, 2, "LOC")}
  assert metrics.tag_spans([], "bio") == set()
  with pytest.raises(ValueError, match="BIO"):
    metrics.tag_spans(["E-LOC"], "bio")


def test_tag_spans_bmes():
  tags = ["B-LOC", "M-LOC", "E-LOC", "S-PER", "O", "B-ORG", "E-PER", "M-LOC", "E-LOC",
          "B-ORG", "I-ORG", "E-ORG", "B-PER"]
  # Unclosed or mismatched fragments are dropped; I counts as M (BIOES).
  assert metrics.tag_spans(tags, "bmes") == {(0, 3, "LOC"), (3, 4, "PER"), (9, 12, "ORG")}
  with pytest.raises(ValueError, match="scheme"):
    metrics.tag_spans(["O"], "iob2")
  with pytest.raises(ValueError, match="not 'O'"):
    metrics.tag_spans(["X-PER"], "bmes")


def test_span_prf():
  p, r, f = metrics.span_prf([{(0, 2, "PER")}, {(1, 3, "LOC"), (4, 5, "ORG")}],
                             [{(0, 2, "PER"), (3, 4, "LOC")}, {(1, 3, "LOC")}])
  assert (p, r) == pytest.approx((2 / 3, 2 / 3))
  assert f == pytest.approx(2 / 3)
  assert metrics.span_prf([set()], [set()]) == (1.0, 1.0, 1.0)
  assert metrics.span_prf([set()], [{(0, 1, "PER")}]) == (0.0, 0.0, 0.0)
  assert metrics.span_prf([{(0, 1, "PER")}], [set()]) == (0.0, 0.0, 0.0)
  with pytest.raises(ValueError, match="same number"):
    metrics.span_prf([set()], [])


def test_mean_se_and_format():
  import math as _math
  from jaxblog.training.metrics import format_mean_se, mean_se
  m, se = mean_se([1.0, 2.0, 3.0])
  assert m == 2.0 and abs(se - 1.0 / _math.sqrt(3.0)) < 1e-12
  assert _math.isnan(mean_se([5.0])[1])
  assert format_mean_se([1.0, 2.0, 3.0]) == "2.00 ± 0.58" and format_mean_se(iter([5.0])) == "5.00"
  with pytest.raises(ValueError, match="at least one"):
    mean_se([])


def test_format_estimate_never_prints_nan():
  from jaxblog.training.metrics import format_estimate, mean_se
  assert format_estimate(*mean_se([0.5, 1.5]), signed=True) == "+1.00 ± 0.50"
  one = format_estimate(*mean_se([-2.0]), digits=1, signed=True)
  assert one == "-2.0 (1 run, no s.e.)" and "nan" not in one
  assert format_estimate(3.0, 0.25, digits=1) == "3.0 ± 0.2"
