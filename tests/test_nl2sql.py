"""Tests for jaxblog.nl2sql: decoding rules one by one, labels, sqlite, the loss."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxblog import nl2sql

TABLE = {"id": "t1", "header": ["城市", "人口", "代码"], "types": ["text", "real", "text"],
         "rows": [["北京", 21.5, "A1"], ["上海", 24.0, "B2"], ["广州", 15.0, "C3"],
                  ["深圳", 17.5, "D4"]]}


def onehot(indices, k):
  return np.eye(k)[list(indices)].astype(np.float32)


def probs(question, tag_at=(), col_at=(), sel=(6, 6, 6), conn=(1.0, 0.0, 0.0)):
  """One-hot head outputs: `tag_at`/`col_at` map position -> tag/column."""
  n = len(question) + 1
  tags = [4] * n
  cols = [0] * n
  for i, t in dict(tag_at).items():
    tags[i] = t
  for i, c in dict(col_at).items():
    cols[i] = c
  return (np.asarray(conn, np.float32), onehot(sel, 7), onehot(tags, 5),
          onehot(cols, len(TABLE["header"])))


def decode(question, fix=False, rules=nl2sql.RULES, **kw):
  return nl2sql.decode_sql(*probs(question, **kw), question, TABLE, fix_trailing_span=fix,
                           rules=rules)


def test_select_argmax_and_not_selected_class():
  out = decode("北京的人口？", sel=(6, 1, 4))
  assert out["sel"] == [1, 2] and out["agg"] == [1, 4]


def test_value_run_and_its_column_average():
  q = "北京的人口？"
  # positions 1, 2 <-> "北", "京"; the column average picks column 0.
  out = decode(q, tag_at={1: 2, 2: 2}, col_at={1: 0, 2: 2}, sel=(6, 0, 6))
  assert out["conds"] == [[0, 2, "北京"]]


def test_column_average_over_probabilities():
  q = "北京的人口？"
  conn, sel, tags, cols = probs(q, tag_at={1: 2, 2: 2}, sel=(6, 0, 6))
  cols[1] = [0.4, 0.0, 0.6]
  cols[2] = [0.9, 0.0, 0.1]
  out = nl2sql.decode_sql(conn, sel, tags, cols, q, TABLE, rules=())
  assert out["conds"] == [[0, 2, "北京"]]  # mean [0.65, 0, 0.35]


def test_tag_change_starts_new_value():
  q = "人口2115以上"
  out = decode(q, tag_at={3: 0, 4: 0, 5: 1, 6: 1}, col_at={i: 1 for i in range(3, 7)}, rules=())
  assert out["conds"] == [[1, 0, "21"], [1, 1, "15"]]


def test_trailing_run_dropped_unless_fixed():
  q = "城市是北京"
  kw = dict(tag_at={4: 2, 5: 2}, sel=(4, 6, 6))
  assert decode(q, **kw)["conds"] == []
  assert decode(q, fix=True, **kw)["conds"] == [[0, 2, "北京"]]


def test_position_zero_wraps_to_last_character():
  q = "北京吗京"
  out = decode(q, tag_at={0: 2}, rules=())
  assert out["conds"] == [[0, 2, "京"]]


def test_numeric_op_rule():
  q = "人口大于21.5或北京吗"
  kw = dict(tag_at={5: 0, 6: 0, 7: 0, 8: 0, 10: 0, 11: 0}, col_at={5: 1, 6: 1, 7: 1, 8: 1})
  out = decode(q, rules=("numeric_op",), **kw)
  assert out["conds"] == [[1, 0, "21.5"], [0, 2, "北京"]]
  assert decode(q, rules=(), **kw)["conds"] == [[1, 0, "21.5"], [0, 0, "北京"]]


def test_snap_value_only_for_equality():
  q = "北景和上梅吗"
  kw = dict(tag_at={1: 2, 2: 2, 4: 3, 5: 3})
  out = decode(q, rules=("snap_value",), **kw)
  assert out["conds"] == [[0, 2, "北京"], [0, 3, "上梅"]]
  assert decode(q, rules=(), **kw)["conds"][0] == [0, 2, "北景"]


def test_snap_value_uses_pluggable_distance_and_integral_reals():
  q = "人口是24吗"
  conn, sel, tags, cols = probs(q, tag_at={4: 2, 5: 2}, col_at={4: 1, 5: 1})
  out = nl2sql.decode_sql(conn, sel, tags, cols, q, TABLE, rules=("snap_value",))
  assert out["conds"] == [[1, 2, "24"]]  # the cell 24.0 reads "24"
  always_last = lambda a, b: 0 if b == "D4" else 1
  out = nl2sql.decode_sql(conn, sel, tags, cols, "人口是23吗", TABLE, rules=("snap_value",),
                          distance=always_last)
  assert out["conds"] == [[1, 2, "D4"]]


def test_move_column_to_first_holder():
  q = "代码是上海吗"
  out = decode(q, tag_at={4: 2, 5: 2}, col_at={4: 2, 5: 2}, rules=("move_column",))
  assert out["conds"] == [[0, 2, "上海"]]
  assert decode(q, tag_at={4: 2, 5: 2}, col_at={4: 2, 5: 2}, rules=())["conds"] == [[2, 2, "上海"]]


def test_dedupe_and_connector_rule():
  q = "北京和北京吗"
  kw = dict(tag_at={1: 2, 2: 2, 4: 2, 5: 2}, conn=(0.0, 0.3, 0.7))
  out = decode(q, **kw)
  assert out["conds"] == [[0, 2, "北京"]] and out["cond_conn_op"] == 0
  raw = decode(q, rules=(), **kw)
  assert raw["conds"] == [[0, 2, "北京"]] * 2 and raw["cond_conn_op"] == 2
  two = decode("北京和上海吗", tag_at={1: 2, 2: 2, 4: 2, 5: 2}, conn=(0.9, 0.3, 0.1))
  assert two["cond_conn_op"] == 1  # the model's "none" class is ignored


def test_sequence_questions_strip_units():
  table = {"header": ["city", "pop"], "types": ["text", "real"],
           "rows": [["New York", 8.0], ["Rome", 3.0]]}
  q = ["pop ", "of ", "New ", "York", "?"]
  tags = onehot([4, 4, 4, 2, 2, 4], 5)
  out = nl2sql.decode_sql(np.array([1.0, 0, 0]), onehot([6, 0], 7), tags, onehot([0] * 6, 2),
                          q, table)
  assert out == {"sel": [1], "agg": [0], "cond_conn_op": 0, "conds": [[0, 2, "New York"]]}


@pytest.mark.parametrize("arg, shape, match", [
    ("conn", (2,), "conn_probs"), ("sel", (2, 7), "sel_probs"), ("tag", (3, 5), "tag_probs"),
    ("col", (6, 2), "col_probs")])
def test_decode_shape_errors(arg, shape, match):
  q = "北京的人口"
  args = dict(zip(("conn", "sel", "tag", "col"), probs(q)))
  args[arg] = np.zeros(shape, np.float32)
  with pytest.raises(ValueError, match=match):
    nl2sql.decode_sql(args["conn"], args["sel"], args["tag"], args["col"], q, TABLE)
  with pytest.raises(ValueError, match="unknown"):
    nl2sql.decode_sql(*probs(q), q, TABLE, rules=("bogus",))


@pytest.mark.parametrize("table, match", [
    ({"header": ["a", "b"], "types": ["text", "real"], "rows": [["x"]]}, r"rows'\]\[0\]"),
    ({"header": ["a", ""], "types": ["text", "real"], "rows": []}, r"header'\]\[1\]"),
    ({"header": ["a", "b"], "types": ["text", "int"], "rows": []}, r"types'\]\[1\]"),
    ({"header": ["a", "A"], "types": ["text", "real"], "rows": []}, "repeats"),
    ({"header": ["a", "b"], "types": ["text", "real"], "rows": [["x", "3"]]}, "not a number"),
])
def test_bad_tables(table, match):
  with pytest.raises(ValueError, match=match):
    nl2sql.check_table(table)


def sql(sel=(0,), agg=(0,), conn=0, conds=()):
  return {"sel": list(sel), "agg": list(agg), "cond_conn_op": conn, "conds": [list(c) for c in conds]}


def test_execute_with_parameters_and_aggregations():
  assert nl2sql.execute(sql(conds=[(1, 0, "20")]), TABLE) == [("北京",), ("上海",)]
  assert nl2sql.execute(sql(sel=[1], agg=[1], conn=2, conds=[(0, 2, "北京"), (0, 2, "广州")]),
                        TABLE) == [(18.25,)]
  assert nl2sql.execute(sql(sel=[1, 0], agg=[2, 4], conn=1,
                            conds=[(1, 1, "24"), (0, 3, "深圳")]), TABLE) == [(21.5, 2)]
  query, params = nl2sql.to_sql(sql(conds=[(0, 2, "x' OR 1=1 --")]), TABLE)
  assert "OR 1=1" not in query and params == ("x' OR 1=1 --",)
  assert nl2sql.execute(sql(conds=[(0, 2, "x' OR 1=1 --")]), TABLE) == []


def test_quoted_headers():
  table = {"header": ['we"ird', "b b"], "types": ["text", "real"], "rows": [["x", 1.0]]}
  assert nl2sql.execute(sql(sel=[0, 1], agg=[0, 5]), table) == [("x", 1.0)]
  assert nl2sql.quote('a"b') == '"a""b"'


@pytest.mark.parametrize("bad, match", [
    (sql(sel=[3]), r"sel'\]\[0\]"), (sql(agg=[6]), r"agg'\]\[0\]"),
    (sql(conn=3), "cond_conn_op"), (sql(conds=[(5, 0, "1")]), r"conds'\]\[0\] column"),
    (sql(conds=[(0, 4, "1")]), r"conds'\]\[0\] op"), (sql(sel=[], agg=[]), "empty")])
def test_bad_sql(bad, match):
  with pytest.raises(ValueError, match=match):
    nl2sql.to_sql(bad, TABLE)


def test_execution_and_logic_form_match():
  a = sql(sel=[1], agg=[5], conds=[(1, 0, "17.5")])
  b = sql(sel=[1], agg=[5], conds=[(1, 0, "20")])
  assert nl2sql.execution_match(a, b, TABLE) and not nl2sql.logic_form_match(a, b)
  c = sql(sel=[0, 1], agg=[0, 0], conn=1, conds=[(0, 3, "北京"), (1, 1, "30")])
  d = sql(sel=[1, 0], agg=[0, 0], conn=1, conds=[(1, 1, "30"), (0, 3, "北京")])
  assert nl2sql.logic_form_match(c, d)
  assert not nl2sql.logic_form_match(c, dict(d, cond_conn_op=2))
  assert not nl2sql.execution_match(sql(sel=[], agg=[]), b, TABLE)
  assert not nl2sql.execution_match(sql(sel=[1], agg=[3]), sql(sel=[1], agg=[2]), TABLE)


def test_build_inputs():
  ids, segs, pos = nl2sql.build_inputs([10, 11, 12], [[20, 21], [22]], cls_id=1, sep_id=2)
  assert ids.tolist() == [1, 10, 11, 12, 2, 1, 20, 21, 2, 1, 22, 2]
  assert pos.tolist() == [5, 9] and not segs.any()
  with pytest.raises(ValueError, match=r"header_ids\[1\]"):
    nl2sql.build_inputs([10], [[20], []], cls_id=1, sep_id=2)


def test_make_labels_first_occurrence_and_sel():
  q = "北京和北京的人口"
  lab = nl2sql.make_labels(q, sql(sel=[1], agg=[2], conds=[(0, 2, "北京")]), 3)
  assert lab.sel.tolist() == [6, 2, 6] and lab.conn == 0
  assert lab.tags.tolist() == [4, 2, 2, 4, 4, 4, 4, 4, 4]
  assert lab.cols.tolist() == [0] * 9 and lab.conds == [[0, 2, "北京"]]
  lab = nl2sql.make_labels(q, sql(sel=[1], agg=[0], conds=[(2, 3, "人口")]), 3)
  assert lab.tags.tolist() == [4, 4, 4, 4, 4, 4, 4, 3, 3] and lab.cols.tolist()[7:] == [2, 2]


def test_make_labels_nearest_ngram_and_drop():
  q = "人口超过21.50的城市"
  lab = nl2sql.make_labels(q, sql(conds=[(1, 0, "21.6")]), 3)
  assert lab.conds == [[1, 0, "21.50"]]
  assert lab.tags.tolist()[5:10] == [0] * 5
  dropped = nl2sql.make_labels(q, sql(conds=[(1, 0, "9")]), 3, matcher=lambda v, q: None)
  assert dropped.conds == [] and (dropped.tags == 4).all()
  assert nl2sql.nearest_ngram("New Yrok", ["in ", "New ", "York", "?"]) == "New York"
  assert nl2sql.nearest_ngram("x", "") is None


def test_loss_matches_numpy_and_masks():
  rng = np.random.default_rng(0)
  b, h, p = 3, 4, 6
  logits = [rng.normal(size=s).astype(np.float32) for s in ((b, 3), (b, h, 7), (b, p, 5), (b, p, h))]
  conn = rng.integers(0, 3, b)
  sel = rng.integers(0, 7, (b, h))
  tags = rng.integers(0, 5, (b, p))
  cols = rng.integers(0, h, (b, p))
  hm = np.array([[1, 1, 1, 1], [1, 1, 0, 0], [1, 0, 0, 0]], bool)
  cols = np.minimum(cols, hm.sum(1, keepdims=True) - 1)
  qm = np.array([[0, 1, 1, 1, 0, 0], [0, 1, 1, 1, 1, 1], [0, 1, 0, 0, 0, 0]], bool)
  loss, parts = jax.jit(nl2sql.nl2sql_loss)(*logits, conn, sel, tags, cols, hm, qm)

  def ce(x, y):
    x = x - x.max(-1, keepdims=True)
    return np.log(np.exp(x).sum(-1)) - np.take_along_axis(x, y[..., None], -1)[..., 0]

  col_l = np.where(hm[:, None, :], logits[3], -1e10)
  expect = {"conn": ce(logits[0], conn).mean(),
            "sel": ce(logits[1], sel)[hm].mean(),
            "tag": ce(logits[2], tags)[qm].mean(),
            "col": ce(col_l, cols)[qm & (tags != 4)].mean()}
  for k, v in expect.items():
    np.testing.assert_allclose(parts[k], v, rtol=1e-5)
  np.testing.assert_allclose(loss, sum(expect.values()), rtol=1e-5)
  empty, _ = nl2sql.nl2sql_loss(*logits, conn, sel, np.full_like(tags, 4), cols, hm,
                                np.zeros_like(qm))
  assert np.isfinite(empty)
  with pytest.raises(ValueError, match="header_mask"):
    nl2sql.nl2sql_loss(*logits, conn, sel, tags, cols, hm[:, :2], qm)
  with pytest.raises(TypeError, match="tags"):
    nl2sql.nl2sql_loss(*logits, conn, sel, tags.astype(np.float32), cols, hm, qm)
