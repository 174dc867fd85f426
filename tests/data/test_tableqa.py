"""Tests for jaxblog.data.tableqa: determinism, the keep rules, dedup and the table split."""
import pytest

from jaxblog import nl2sql
from jaxblog.data import tableqa

TABLE = {"id": "cities", "title": "城市表", "header": ["城市", "省份", "人口", "建城年份"],
         "types": ["text", "text", "real", "real"],
         "rows": [[f"城{i}", f"省{i % 3}", float(10 + 7 * i), float(1900 + i)] for i in range(12)]}
EN = {"id": "cars", "title": "cars", "header": ["Name", "Origin", "Miles_per_Gallon"],
      "types": ["text", "text", "real"],
      "rows": [[f"car {i}", ["USA", "Japan"][i % 2], float(15 + i)] for i in range(10)]}


def test_column_kinds():
  assert tableqa.column_kinds(TABLE) == ["entity", "category", "measure", "ordinal"]


@pytest.mark.parametrize("table, lang", [(TABLE, "zh"), (EN, "en")])
def test_generated_queries_obey_the_rules(table, lang):
  examples = tableqa.generate([table], lang=lang, per_table=25, seed=3)
  assert examples == tableqa.generate([table], lang=lang, per_table=25, seed=3)
  assert examples != tableqa.generate([table], lang=lang, per_table=25, seed=4)
  assert 10 <= len(examples) <= 25
  kinds = tableqa.column_kinds(table)
  n = len(table["rows"])
  keys = set()
  db = nl2sql.TableDB(table)
  for e in examples:
    sql = e["sql"]
    nl2sql.check_sql(sql, len(table["header"]))
    assert 1 <= len(sql["sel"]) <= 2 and 1 <= len(sql["conds"]) <= 3
    assert (sql["cond_conn_op"] == 0) == (len(sql["conds"]) == 1)
    assert all(a in tableqa.SELECT_AGGS[kinds[c]] for c, a in zip(sql["sel"], sql["agg"]))
    cells = [{nl2sql.cell_text(r[j]) for r in table["rows"]} for j in range(len(table["header"]))]
    for c, o, v in sql["conds"]:
      assert o in tableqa.COND_OPS[kinds[c]] and v in cells[c] and v in e["question"]
    assert 1 <= db.count(sql["conds"], sql["cond_conn_op"]) <= n - 1
    answer = nl2sql.execute(sql, table)
    assert answer and any(v is not None for row in answer for v in row)
    key = tableqa._canonical(table["id"], sql)
    assert key not in keys
    keys.add(key)
    # Every condition value can be labelled.
    assert nl2sql.make_labels(e["question"], sql, len(table["header"])).conds


def test_benchmark_split_is_by_table():
  tables = [dict(TABLE, id=f"t{i}") for i in range(10)]
  parts = tableqa.benchmark(tables, lang="zh", per_table=5, seed=0, valid=0.2, test=0.2)
  ids = [{e["table_id"] for e in part} for part in parts]
  assert not (ids[0] & ids[1]) and not (ids[0] & ids[2]) and not (ids[1] & ids[2])
  c = tableqa.counts(parts)
  assert c["test"]["tables"] == 2 and sum(v["examples"] for v in c.values()) == 50


def test_bad_arguments():
  with pytest.raises(ValueError, match="lang"):
    tableqa.generate([TABLE], lang="fr", per_table=3)
  with pytest.raises(ValueError, match="per_table"):
    tableqa.generate([TABLE], lang="zh", per_table=0)
