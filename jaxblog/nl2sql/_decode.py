"""From the four heads' probabilities to a query: the baseline's decoding rules.

Positions follow the encoder input `[CLS] q_1 … q_Q [SEP] …`: position `i`
holds question unit `question[i - 1]`, position 0 is `[CLS]`. A unit is a
character for a string question (the Chinese setting) or one entry of a
sequence of strings (e.g. word pieces with their trailing spaces, the English
setting; values are then stripped of surrounding whitespace).

The rules, in order (Su 2019, https://kexue.fm/archives/6771):

1. Selection: per header, the arg-max of its 7 classes; class 6 means "not
   selected", classes 0-5 select the column with that aggregation.
2. Values: the arg-max tag per position `0 … Q`. A maximal run of one non-4
   tag is one value (a change of tag starts a new value at once); its column
   is the arg-max of the column distributions averaged over the run. In the
   reference code a run still open at the end of the scan (a value touching
   the last question unit) is never emitted; that quirk is the default, and
   `fix_trailing_span=True` emits it. A non-4 tag at position 0 starts a value
   with `question[-1]` (Python index wrap-around), again as in the reference.
3. Per condition, the post-processing rules (each can be switched off for an
   ablation through `rules`):
   `numeric_op`: a value with any character besides digits and '.' gets op `==`;
   `snap_value`: an `==` value that is no cell of the table becomes the nearest
   cell string by `distance`; `move_column`: if the value is not a cell of the
   predicted column, the column becomes the first (in header order) that holds it.
4. `dedupe`: conditions are deduplicated (first occurrence kept).
5. `conn_rule`: connector 0 for at most one condition, else `1 + argmax` of
   `conn_probs[1:]`; without the rule the connector is `argmax(conn_probs)`.
"""
from __future__ import annotations

import re
from typing import Callable, Collection, Mapping, Sequence

import numpy as np

from jaxblog.nl2sql._sql import cell_text, check_table

RULES = ("numeric_op", "snap_value", "move_column", "dedupe", "conn_rule")
_NON_NUMERIC = re.compile(r"[^\d.]")


def edit_distance(a: str, b: str) -> int:
  """Levenshtein distance (unit-cost insert, delete, substitute)."""
  if len(a) < len(b):
    a, b = b, a
  previous = list(range(len(b) + 1))
  for i, ca in enumerate(a, 1):
    current = [i]
    for j, cb in enumerate(b, 1):
      current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (ca != cb)))
    previous = current
  return previous[-1]


def nearest(value: str, candidates: Sequence[str],
            distance: Callable[[str, str], float] = edit_distance) -> str:
  """The candidate closest to `value` (first one on ties); `value` if none."""
  best, best_d = value, None
  for c in candidates:
    d = distance(value, c)
    if best_d is None or d < best_d:
      best, best_d = c, d
  return best


def _array(name: str, x, shape: tuple, layout: str) -> np.ndarray:
  x = np.asarray(x)
  if not np.issubdtype(x.dtype, np.floating):
    raise TypeError(f"{name} must be a floating array, got dtype {x.dtype}")
  if x.shape != shape:
    raise ValueError(f"{name} must have shape {layout} = {shape}, got {x.shape}")
  return x


def _join(units: Sequence[str], is_text: bool) -> str:
  return "".join(units) if is_text else "".join(units).strip()


def decode_sql(conn_probs, sel_probs, tag_probs, col_probs, question: str | Sequence[str],
               table: Mapping, *, fix_trailing_span: bool = False,
               rules: Collection[str] = RULES,
               distance: Callable[[str, str], float] = edit_distance) -> dict:
  """Decodes one question's head outputs into a query (rules in the module docstring).

  Args:
    conn_probs: `[3]` connector probabilities (none, and, or).
    sel_probs: `[H, 7]` select+aggregation probabilities per header.
    tag_probs: `[Q+1, 5]` value/operator tag probabilities per position.
    col_probs: `[Q+1, H]` condition-column probabilities per position.
    question: the question, a string (one unit per character) or a sequence
      of Q unit strings.
    table: the table dict (`header`, `types`, `rows`), H headers.
    fix_trailing_span: also emit a value run that reaches the last unit.
    rules: the post-processing rules to apply (default all of `RULES`).
    distance: string distance used by `snap_value`.

  Returns:
    `{"sel", "agg", "cond_conn_op", "conds"}`, conds as `[col, op, value]`.

  Raises:
    ValueError: a shape disagrees with the table or the question, or an
      unknown rule is named.

  Example:
    >>> table = {"header": ["city", "pop"], "types": ["text", "real"],
    ...          "rows": [["Rome", 3.0], ["Oslo", 1.0]]}
    >>> tags = np.eye(5)[[4, 2, 2, 2, 2, 4]]      # "Oslo" tagged ==, then "?"
    >>> cols = np.eye(2)[[0] * 6]
    >>> decode_sql(np.array([1., 0, 0]), np.eye(7)[[6, 0]], tags, cols, "Oslo?", table)
    {'sel': [1], 'agg': [0], 'cond_conn_op': 0, 'conds': [[0, 2, 'Oslo']]}
  """
  check_table(table)
  unknown = set(rules) - set(RULES)
  if unknown:
    raise ValueError(f"rules has unknown names {sorted(unknown)}; known: {RULES}")
  is_text = isinstance(question, str)
  n_q, n_h = len(question), len(table["header"])
  conn_probs = _array("conn_probs", conn_probs, (3,), "[3]")
  sel_probs = _array("sel_probs", sel_probs, (n_h, 7), "[H, 7] (H = headers of table)")
  tag_probs = _array("tag_probs", tag_probs, (n_q + 1, 5), "[Q+1, 5] (Q = len(question))")
  col_probs = _array("col_probs", col_probs, (n_q + 1, n_h),
                     "[Q+1, H] (Q = len(question), H = headers of table)")

  sel, agg = [], []
  for j, a in enumerate(np.argmax(sel_probs, axis=-1)):
    if a != 6:
      sel.append(j)
      agg.append(int(a))

  raw = []
  tags = np.argmax(tag_probs, axis=-1)

  def flush(start: int, end: int, op: int):
    units = [question[i - 1] for i in range(start, end)]
    value = _join(units, is_text)
    if value:
      raw.append((int(np.argmax(col_probs[start:end].mean(axis=0))), op, value))

  op, start = -1, 0
  for i, t in enumerate(tags):
    if t != 4 and t == op:
      continue
    if op != -1:
      flush(start, i, op)
    op, start = (int(t), i) if t != 4 else (-1, 0)
  if op != -1 and fix_trailing_span:
    flush(start, len(tags), op)

  cells = [[cell_text(row[j]) for row in table["rows"]] for j in range(n_h)]
  column_sets = [set(c) - {""} for c in cells]
  all_cells = list(dict.fromkeys(c for row in table["rows"] for c in map(cell_text, row) if c))
  all_set = set(all_cells)
  conds = []
  for col, op, value in raw:
    if "numeric_op" in rules and _NON_NUMERIC.search(value):
      op = 2
    if "snap_value" in rules and op == 2 and value not in all_set:
      value = nearest(value, all_cells, distance)
    if "move_column" in rules and value not in column_sets[col]:
      col = next((j for j in range(n_h) if value in column_sets[j]), col)
    conds.append([col, op, value])
  if "dedupe" in rules:
    conds = [list(c) for c in dict.fromkeys(tuple(c) for c in conds)]
  if "conn_rule" in rules:
    conn = 0 if len(conds) <= 1 else 1 + int(np.argmax(conn_probs[1:]))
  else:
    conn = int(np.argmax(conn_probs))
  return {"sel": sel, "agg": agg, "cond_conn_op": conn, "conds": conds}
