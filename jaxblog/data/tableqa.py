"""A TableQA-format question/SQL benchmark generated from real tables.

Each table's columns get a kind that decides what makes sense to ask:

| kind | what | select aggregations | condition ops |
|---|---|---|---|
| entity | text, mostly distinct (names) | none, COUNT | `==` |
| category | text, few distinct values | none, COUNT | `==`, `!=` |
| code | digit strings, dates | none | `==` |
| measure | real | none, AVG, MAX, MIN, SUM | `>`, `<`, `==` |
| ordinal | whole numbers such as years | none, MAX, MIN | `>`, `<`, `==` |

A query has 1-2 selected columns (all plain or all aggregated) and 1-3
conditions joined by and/or; every condition value is a cell of a real row
(also for `>`/`<`). A query is kept only if its WHERE clause matches between
1 and N-1 of the N rows and its answer is not NULL; queries are deduplicated
on their canonical form. The question is written from several surface
templates per slot, in Chinese or English, with the values verbatim.

`generate` is a pure function of the tables and the seed; `benchmark` splits
by table with `split_groups`, so valid/test tables are never seen in training
(as in WikiSQL).
"""
from __future__ import annotations

import random
import re
from typing import Dict, List, Mapping, Sequence

from jaxblog.data.splits import Splits, split_groups
from jaxblog.nl2sql import TableDB, cell_text

KINDS = ("entity", "category", "code", "measure", "ordinal")
SELECT_AGGS = {"entity": (0, 4), "category": (0, 4), "code": (0,), "measure": (0, 1, 2, 3, 5),
               "ordinal": (0, 2, 3)}
COND_OPS = {"entity": (2,), "category": (2, 3), "code": (2,), "measure": (0, 1, 2),
            "ordinal": (0, 1, 2)}
_CODE = re.compile(r"^[\d\-/:+. ]+$")
_YEARISH = re.compile(r"year|年|yr|age|month|月", re.I)

TEMPLATES = {
    "zh": {
        "sel": {0: ("{c}是什么", "{c}有哪些", "列出{c}", "{c}分别是多少"),
                1: ("{c}的平均值是多少", "平均{c}是多少", "{c}平均有多少"),
                2: ("最大的{c}是多少", "{c}最高是多少", "{c}的最大值"),
                3: ("最小的{c}是多少", "{c}最低是多少", "{c}的最小值"),
                4: ("有多少个{c}", "{c}的数量是多少", "一共有几个{c}"),
                5: ("{c}的总和是多少", "{c}加起来是多少", "{c}合计多少")},
        "cond": {0: ("{c}大于{v}", "{c}超过{v}", "{c}高于{v}", "{c}在{v}以上"),
                 1: ("{c}小于{v}", "{c}低于{v}", "{c}不到{v}", "{c}在{v}以下"),
                 2: ("{c}是{v}", "{c}为{v}", "{c}等于{v}"),
                 3: ("{c}不是{v}", "{c}不为{v}", "{c}不等于{v}")},
        "conn": {1: ("并且", "而且", "且", "，同时"), 2: ("或者", "或", "，或者")},
        "sel_join": ("，", "以及", "和"),
        "frame": ("{conds}的{title}中，{sels}？", "请问{conds}的{title}，{sels}？",
                  "在{title}里，{conds}的{sels}", "{conds}时，{sels}？",
                  "{title}中{sels}，要求{conds}"),
    },
    "en": {
        "sel": {0: ("what is the {c}", "list the {c}", "which {c}", "show the {c}"),
                1: ("what is the average {c}", "the mean {c}"),
                2: ("what is the highest {c}", "the maximum {c}"),
                3: ("what is the lowest {c}", "the minimum {c}"),
                4: ("how many {c} are there", "the number of {c}"),
                5: ("what is the total {c}", "the sum of {c}")},
        "cond": {0: ("{c} is greater than {v}", "{c} above {v}", "{c} more than {v}"),
                 1: ("{c} is less than {v}", "{c} below {v}", "{c} under {v}"),
                 2: ("{c} is {v}", "{c} equals {v}", "the {c} is {v}"),
                 3: ("{c} is not {v}", "{c} other than {v}")},
        "conn": {1: (" and ",), 2: (" or ",)},
        "sel_join": (" and ", ", "),
        "frame": ("{sels} for rows where {conds}?", "In {title}, {sels} where {conds}?",
                  "{sels} when {conds}", "For {title} with {conds}, {sels}?",
                  "{sels}, given {conds}."),
    },
}


def column_kinds(table: Mapping) -> List[str]:
  """The kind of each column (see the module docstring)."""
  kinds = []
  for j, (name, kind) in enumerate(zip(table["header"], table["types"])):
    values = [r[j] for r in table["rows"] if r[j] is not None]
    if kind == "real":
      integral = all(float(v) == int(v) for v in values)
      kinds.append("ordinal" if integral and _YEARISH.search(name) else "measure")
      continue
    texts = [str(v) for v in values]
    distinct = len(set(texts))
    if texts and all(_CODE.match(t) for t in texts):
      kinds.append("code")
    elif distinct <= max(2, min(30, len(texts) // 3)):
      kinds.append("category")
    else:
      kinds.append("entity")
  return kinds


def _spoken(header: str, lang: str) -> str:
  return header.replace("_", " ").replace(".", " ") if lang == "en" else header


def _question(rng: random.Random, sql: Mapping, table: Mapping, lang: str) -> str:
  t = TEMPLATES[lang]
  names = [_spoken(h, lang) for h in table["header"]]
  sels = [rng.choice(t["sel"][a]).format(c=names[c]) for c, a in zip(sql["sel"], sql["agg"])]
  sel_text = rng.choice(t["sel_join"]).join(sels) if len(sels) > 1 else sels[0]
  conds = [rng.choice(t["cond"][o]).format(c=names[c], v=v) for c, o, v in sql["conds"]]
  cond_text = conds[0]
  for c in conds[1:]:
    cond_text += rng.choice(t["conn"][sql["cond_conn_op"]]) + c
  text = rng.choice(t["frame"]).format(conds=cond_text, sels=sel_text, title=table["title"])
  return text[0].upper() + text[1:] if lang == "en" else text


def _canonical(table_id: str, sql: Mapping) -> tuple:
  return (table_id, tuple(sorted(zip(sql["sel"], sql["agg"]))), sql["cond_conn_op"],
          tuple(sorted((c, o, v) for c, o, v in sql["conds"])))


def _sample_sql(rng: random.Random, table: Mapping, kinds: Sequence[str]):
  n_cols = len(table["header"])
  aggregated = rng.random() < 0.5
  n_sel = 1 if rng.random() < 0.8 else 2
  sel, agg = [], []
  for c in rng.sample(range(n_cols), n_cols):
    choices = [a for a in SELECT_AGGS[kinds[c]] if (a != 0) == aggregated]
    if choices and len(sel) < n_sel:
      sel.append(c)
      agg.append(rng.choice(choices))
  if not sel:
    return None
  n_conds = rng.choices((1, 2, 3), weights=(0.5, 0.35, 0.15))[0]
  conn = 0 if n_conds == 1 else rng.choice((1, 2))
  conds = []
  for c in rng.sample(range(n_cols), min(n_conds, n_cols)):
    cells = [r[c] for r in table["rows"] if r[c] is not None and cell_text(r[c])]
    if not cells:
      continue
    conds.append([c, rng.choice(COND_OPS[kinds[c]]), cell_text(rng.choice(cells))])
  if not conds:
    return None
  conn = 0 if len(conds) == 1 else (conn or 1)
  return {"sel": sel, "agg": agg, "cond_conn_op": conn, "conds": conds}


def generate(tables: Sequence[Mapping], *, lang: str, per_table: int, seed: int = 0
             ) -> List[dict]:
  """Up to `per_table` examples per table, `{"question", "table_id", "sql"}`.

  Args:
    tables: table dicts (`id`, `header`, `types`, `rows`, `title`).
    lang: "zh" or "en" (the question templates).
    per_table: the number of distinct queries sought per table (fewer when
      `20 * per_table` draws do not find them).
    seed: the generator's seed; each table draws from its own seeded stream.

  Returns:
    The examples, table by table in the given order.
  """
  if lang not in TEMPLATES:
    raise ValueError(f"lang must be one of {sorted(TEMPLATES)}, got {lang!r}")
  if per_table < 1:
    raise ValueError(f"per_table must be >= 1, got {per_table}")
  examples = []
  for table in tables:
    rng = random.Random(f"tableqa/{seed}/{table['id']}")
    kinds = column_kinds(table)
    db = TableDB(table)
    seen = set()
    n = len(table["rows"])
    try:
      for _ in range(20 * per_table):
        if len(seen) == per_table:
          break
        sql = _sample_sql(rng, table, kinds)
        if sql is None:
          continue
        key = _canonical(table["id"], sql)
        if key in seen or not 1 <= db.count(sql["conds"], sql["cond_conn_op"]) <= n - 1:
          continue
        answer = db.execute(sql)
        if not answer or all(v is None for row in answer for v in row):
          continue
        seen.add(key)
        examples.append({"question": _question(rng, sql, table, lang), "table_id": table["id"],
                         "sql": sql})
    finally:
      db.close()
  return examples


def benchmark(tables: Sequence[Mapping], *, lang: str, per_table: int, seed: int = 0,
              valid: float = 0.1, test: float = 0.2) -> Splits:
  """`generate`, then a split by table: `Splits` of example lists.

  Every table lies wholly in one part, so the valid and test tables are
  never seen in training.
  """
  examples = generate(tables, lang=lang, per_table=per_table, seed=seed)
  parts = split_groups([e["table_id"] for e in examples], seed, valid=valid, test=test)
  return Splits(*([examples[int(i)] for i in idx] for idx in parts))


def counts(splits: Splits) -> Dict[str, Dict[str, int]]:
  """Examples and tables per part."""
  return {name: {"examples": len(part), "tables": len({e["table_id"] for e in part})}
          for name, part in zip(Splits._fields, splits)}
