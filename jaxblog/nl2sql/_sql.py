"""TableQA tables and SQL: validation, sqlite execution and the two metrics.

A table is `{"id", "header": [str], "types": ["text"|"real"], "rows": [[cell]]}`;
a query is `{"sel": [col], "agg": [agg], "cond_conn_op": conn, "conds":
[[col, op, value_str]]}` with the integer codes of `AGG`, `OPS` and `CONN`.
Queries run on an in-memory sqlite copy of the table. Values always travel as
bound parameters; column identifiers are double-quoted with embedded quotes
doubled, so no header or value can change the query's structure.
"""
from __future__ import annotations

import math
import numbers
import sqlite3
from typing import Any, Mapping, Sequence

AGG = ("", "AVG", "MAX", "MIN", "COUNT", "SUM")
OPS = (">", "<", "==", "!=")
CONN = ("", "and", "or")
TYPES = ("text", "real")


def cell_text(cell: Any) -> str:
  """A cell as the string compared with question values (`3.0` -> `"3"`; None -> `""`)."""
  if cell is None:
    return ""
  if isinstance(cell, numbers.Real) and not isinstance(cell, bool):
    value = float(cell)
    if math.isfinite(value) and value == int(value):
      return str(int(value))
    return repr(value)
  return str(cell)


def check_table(table: Mapping) -> None:
  """Raises ValueError/TypeError naming the offending part of a malformed table."""
  if not isinstance(table, Mapping):
    raise TypeError(f"table must be a mapping with header/types/rows, got {type(table).__name__}")
  for key in ("header", "types", "rows"):
    if key not in table:
      raise ValueError(f"table lacks the key {key!r}")
  header, types, rows = table["header"], table["types"], table["rows"]
  if not header:
    raise ValueError("table['header'] is empty")
  seen = set()
  for j, name in enumerate(header):
    if not isinstance(name, str) or not name.strip():
      raise ValueError(f"table['header'][{j}] must be a non-empty string, got {name!r}")
    if name.casefold() in seen:
      raise ValueError(f"table['header'][{j}] = {name!r} repeats an earlier header")
    seen.add(name.casefold())
  if len(types) != len(header):
    raise ValueError(f"table['types'] has {len(types)} entries, table['header'] has {len(header)}")
  for j, kind in enumerate(types):
    if kind not in TYPES:
      raise ValueError(f"table['types'][{j}] = {kind!r} is not one of {TYPES}")
  for i, row in enumerate(rows):
    if len(row) != len(header):
      raise ValueError(f"table['rows'][{i}] has {len(row)} cells, the header has {len(header)}")
    for j, cell in enumerate(row):
      if cell is None:
        continue
      if types[j] == "real" and (not isinstance(cell, numbers.Real) or isinstance(cell, bool)):
        raise ValueError(f"table['rows'][{i}][{j}] = {cell!r} is not a number "
                         f"but column {header[j]!r} is 'real'")
      if types[j] == "text" and not isinstance(cell, str):
        raise ValueError(f"table['rows'][{i}][{j}] = {cell!r} is not a string "
                         f"but column {header[j]!r} is 'text'")


def check_sql(sql: Mapping, num_columns: int, name: str = "sql") -> None:
  """Raises ValueError naming the field of `sql` whose codes are out of range."""
  for key in ("sel", "agg", "cond_conn_op", "conds"):
    if key not in sql:
      raise ValueError(f"{name} lacks the key {key!r}")
  if len(sql["sel"]) != len(sql["agg"]):
    raise ValueError(f"{name}['sel'] has {len(sql['sel'])} entries, {name}['agg'] has "
                     f"{len(sql['agg'])}")
  for k, (col, agg) in enumerate(zip(sql["sel"], sql["agg"])):
    if not 0 <= int(col) < num_columns:
      raise ValueError(f"{name}['sel'][{k}] = {col} is outside the table's "
                       f"{num_columns} columns")
    if not 0 <= int(agg) < len(AGG):
      raise ValueError(f"{name}['agg'][{k}] = {agg} is not an aggregation code 0..{len(AGG) - 1}")
  if not 0 <= int(sql["cond_conn_op"]) < len(CONN):
    raise ValueError(f"{name}['cond_conn_op'] = {sql['cond_conn_op']} is not a connector "
                     f"code 0..{len(CONN) - 1}")
  for k, cond in enumerate(sql["conds"]):
    if len(cond) != 3:
      raise ValueError(f"{name}['conds'][{k}] must be [col, op, value], got {cond!r}")
    col, op, _ = cond
    if not 0 <= int(col) < num_columns:
      raise ValueError(f"{name}['conds'][{k}] column {col} is outside the table's "
                       f"{num_columns} columns")
    if not 0 <= int(op) < len(OPS):
      raise ValueError(f"{name}['conds'][{k}] op {op} is not an operator code 0..{len(OPS) - 1}")


def quote(identifier: str) -> str:
  """An sqlite identifier in double quotes, embedded quotes doubled."""
  return '"' + identifier.replace('"', '""') + '"'


def _param(value: str, kind: str):
  if kind == "real":
    try:
      return float(value)
    except ValueError:
      return str(value)
  return str(value)


def _where(conds, conn: int, table: Mapping):
  if not conds:
    return "", ()
  header, types = table["header"], table["types"]
  joiner = " OR " if conn == 2 else " AND "  # connector 0 with several conditions: AND
  parts = [f"{quote(header[int(c)])} {OPS[int(o)]} ?" for c, o, _ in conds]
  params = tuple(_param(v, types[int(c)]) for c, _, v in conds)
  return " WHERE " + joiner.join(parts), params


def to_sql(sql: Mapping, table: Mapping, *, table_name: str = "t") -> tuple[str, tuple]:
  """A parameterised sqlite query for `sql` on `table`.

  Args:
    sql: `{"sel", "agg", "cond_conn_op", "conds"}` with integer codes.
    table: a table dict (see the module docstring).
    table_name: the sqlite table name used in the query text.

  Returns:
    `(query, params)`: values are `?` placeholders bound from `params`
    (floats for `real` columns when the value parses as a number).

  Example:
    >>> to_sql({"sel": [0], "agg": [4], "cond_conn_op": 0, "conds": [[1, 0, "3"]]},
    ...        {"header": ["name", "n"], "types": ["text", "real"], "rows": []})
    ('SELECT COUNT("name") FROM "t" WHERE "n" > ?', (3.0,))
  """
  check_table(table)
  check_sql(sql, len(table["header"]))
  if not sql["sel"]:
    raise ValueError("sql['sel'] is empty: nothing to select")
  header = table["header"]
  columns = [f"{AGG[int(a)]}({quote(header[int(c)])})" if int(a) else quote(header[int(c)])
             for c, a in zip(sql["sel"], sql["agg"])]
  where, params = _where(sql["conds"], int(sql["cond_conn_op"]), table)
  return f"SELECT {', '.join(columns)} FROM {quote(table_name)}{where}", params


class TableDB:
  """One table loaded into an in-memory sqlite database, for many queries.

  Args:
    table: a table dict (validated).
  """

  def __init__(self, table: Mapping):
    check_table(table)
    self.table = table
    self.connection = sqlite3.connect(":memory:")
    columns = ", ".join(f"{quote(h)} {'REAL' if k == 'real' else 'TEXT'}"
                        for h, k in zip(table["header"], table["types"]))
    self.connection.execute(f"CREATE TABLE {quote('t')} ({columns})")
    marks = ", ".join("?" * len(table["header"]))
    self.connection.executemany(f"INSERT INTO {quote('t')} VALUES ({marks})",
                                [tuple(row) for row in table["rows"]])

  def execute(self, sql: Mapping) -> list:
    """The result rows of `sql` (a list of tuples)."""
    query, params = to_sql(sql, self.table)
    return self.connection.execute(query, params).fetchall()

  def count(self, conds: Sequence, conn: int) -> int:
    """How many rows the WHERE clause of `conds` joined by `conn` matches."""
    check_sql({"sel": [], "agg": [], "cond_conn_op": conn, "conds": conds},
              len(self.table["header"]), "conds")
    where, params = _where(conds, int(conn), self.table)
    return self.connection.execute(f"SELECT COUNT(*) FROM {quote('t')}{where}",
                                   params).fetchone()[0]

  def execution_match(self, pred: Mapping, gold: Mapping) -> bool:
    """`execution_match(pred, gold, table)` on this table."""
    check_sql(pred, len(self.table["header"]), "pred")
    check_sql(gold, len(self.table["header"]), "gold")
    if not pred["sel"]:
      return False
    a, b = self.execute(pred), self.execute(gold)
    if len(a) != len(b) or any(len(r) != len(s) for r, s in zip(a, b)):
      return False
    key = lambda row: tuple(_sort_key(v) for v in row)
    return all(_same(x, y) for r, s in zip(sorted(a, key=key), sorted(b, key=key))
               for x, y in zip(r, s))

  def close(self) -> None:
    self.connection.close()


def execute(sql: Mapping, table: Mapping) -> list:
  """Runs `sql` on an in-memory sqlite copy of `table`; returns the rows."""
  db = TableDB(table)
  try:
    return db.execute(sql)
  finally:
    db.close()


def _sort_key(value):
  if value is None:
    return (0, 0.0, "")
  if isinstance(value, (int, float)):
    return (1, round(float(value), 6), "")
  return (2, 0.0, str(value))


def _same(a, b) -> bool:
  if isinstance(a, (int, float)) and isinstance(b, (int, float)):
    return math.isclose(float(a), float(b), rel_tol=1e-9, abs_tol=1e-6)
  return a == b


def execution_match(pred: Mapping, gold: Mapping, table: Mapping) -> bool:
  """Whether `pred` and `gold` return the same multiset of rows (floats to 1e-6).

  A prediction that selects nothing matches nothing. (`TableDB.execution_match`
  does the same on an already loaded table.)
  """
  db = TableDB(table)
  try:
    return db.execution_match(pred, gold)
  finally:
    db.close()


def _conds_set(sql: Mapping) -> set:
  return {(int(c), int(o), str(v)) for c, o, v in sql["conds"]}


def logic_form_match(pred: Mapping, gold: Mapping) -> bool:
  """Full match: same connector, same set of (sel, agg), same set of (col, op, value)."""
  return (int(pred["cond_conn_op"]) == int(gold["cond_conn_op"])
          and {(int(s), int(a)) for s, a in zip(pred["sel"], pred["agg"])}
          == {(int(s), int(a)) for s, a in zip(gold["sel"], gold["agg"])}
          and _conds_set(pred) == _conds_set(gold))
