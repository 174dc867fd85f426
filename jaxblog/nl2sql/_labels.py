"""Encoder inputs and training labels of the baseline.

Input layout: `[CLS] q_1 … q_Q [SEP] [CLS] h_1 [SEP] [CLS] h_2 [SEP] …`, every
header its own little sentence, all segment ids 0; `header_pos[j]` is the
index of header j's `[CLS]`.

Labels (Su 2019, https://kexue.fm/archives/6771): select class per header
(its aggregation 0-5 if selected, else 6); the connector; and per position
`0 … Q` a tag (op 0-3 on a value, 4 elsewhere) and a condition column (0
where the tag is 4). A condition's value is tagged at its first occurrence
in the question. A value that does not occur is replaced by the closest
1/2/3-gram of question words (the reference segments with jieba; here the
segmentation is injectable and defaults to a regex: runs of digits, runs of
Latin letters, any other single character); if it still does not occur, the
condition is dropped from the labels.
"""
from __future__ import annotations

import re
from typing import Callable, List, NamedTuple, Optional, Sequence, Tuple

import numpy as np

from jaxblog.nl2sql._decode import edit_distance
from jaxblog.nl2sql._sql import AGG, CONN, OPS

_WORD = re.compile(r"\d+(?:\.\d+)?|[A-Za-z]+|\S")


def build_inputs(question_ids: Sequence[int], header_ids: Sequence[Sequence[int]], *,
                 cls_id: int, sep_id: int) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
  """Token ids, segment ids and header `[CLS]` positions of one example.

  Args:
    question_ids: the Q token ids of the question (one per question unit).
    header_ids: per header, its token ids (at least one each).
    cls_id: the `[CLS]` id.
    sep_id: the `[SEP]` id.

  Returns:
    `(ids int32 [T], segments int32 [T] (zeros), header_pos int32 [H])` with
    `T = Q + 2 + sum(len(h) + 2)`.

  Example:
    >>> ids, segs, pos = build_inputs([7, 8], [[5], [6, 6]], cls_id=1, sep_id=2)
    >>> ids.tolist(), pos.tolist()
    ([1, 7, 8, 2, 1, 5, 2, 1, 6, 6, 2], [4, 7])
  """
  if not header_ids:
    raise ValueError("header_ids is empty: a table needs at least one header")
  ids = [cls_id, *question_ids, sep_id]
  pos = []
  for j, h in enumerate(header_ids):
    if len(h) == 0:
      raise ValueError(f"header_ids[{j}] is empty")
    pos.append(len(ids))
    ids += [cls_id, *h, sep_id]
  ids = np.asarray(ids, np.int32)
  return ids, np.zeros_like(ids), np.asarray(pos, np.int32)


def find_span(question: str | Sequence[str], value: str) -> Optional[Tuple[int, int]]:
  """The first `(start, end)` units (end exclusive) spelling `value`, or None.

  For a sequence of units the joined units are stripped of surrounding
  whitespace before comparing.
  """
  if not value:
    return None
  if isinstance(question, str):
    k = question.find(value)
    return None if k < 0 else (k, k + len(value))
  for s in range(len(question)):
    text = ""
    for e in range(s, len(question)):
      text += question[e]
      stripped = text.strip()
      if stripped == value and question[s].strip():
        return s, e + 1
      if len(stripped) > len(value):
        break
  return None


def words(question: str | Sequence[str]) -> List[Tuple[int, int]]:
  """Default segmentation: unit spans of regex words (each unit for a sequence)."""
  if isinstance(question, str):
    return [m.span() for m in _WORD.finditer(question)]
  return [(i, i + 1) for i, u in enumerate(question) if u.strip()]


def nearest_ngram(value: str, question: str | Sequence[str], *,
                  segment: Callable = words,
                  distance: Callable[[str, str], float] = edit_distance) -> Optional[str]:
  """The 1/2/3-gram of question words closest to `value` (first on ties), or None.

  Args:
    value: a condition value absent from the question.
    question: string or sequence of units.
    segment: `segment(question) -> [(start, end)]` word spans in units.
    distance: string distance.
  """
  spans = segment(question)
  best, best_d = None, None
  for n in (1, 2, 3):
    for k in range(len(spans) - n + 1):
      s, e = spans[k][0], spans[k + n - 1][1]
      text = "".join(question[s:e])
      text = text if isinstance(question, str) else text.strip()
      d = distance(value, text)
      if best_d is None or d < best_d:
        best, best_d = text, d
  return best


class Labels(NamedTuple):
  """Training targets of one example.

  Attributes:
    sel: int32 `[H]`, the aggregation (0-5) of a selected header, else 6.
    conn: the connector code.
    tags: int32 `[Q+1]`, op (0-3) on value units, 4 elsewhere (position 0 = `[CLS]`).
    cols: int32 `[Q+1]`, the condition column on value units, 0 elsewhere.
    conds: the conditions that were labelled, values as tagged.
  """
  sel: np.ndarray
  conn: int
  tags: np.ndarray
  cols: np.ndarray
  conds: list


def make_labels(question: str | Sequence[str], sql, num_headers: int, *,
                matcher: Optional[Callable[[str, str | Sequence[str]], Optional[str]]] = None
                ) -> Labels:
  """The four heads' targets for one (question, query) pair.

  Args:
    question: string (units = characters) or sequence of unit strings.
    sql: the gold query dict.
    num_headers: H, the table's header count.
    matcher: `matcher(value, question) -> replacement or None` for values absent
      from the question; default `nearest_ngram`.

  Returns:
    `Labels`.
  """
  matcher = nearest_ngram if matcher is None else matcher
  sel = np.full((num_headers,), 6, np.int32)
  for k, (col, agg) in enumerate(zip(sql["sel"], sql["agg"])):
    if not (0 <= int(col) < num_headers and 0 <= int(agg) < len(AGG)):
      raise ValueError(f"sql sel/agg pair {k} = ({col}, {agg}) is out of range for "
                       f"{num_headers} headers and {len(AGG)} aggregations")
    sel[int(col)] = int(agg)
  conn = int(sql["cond_conn_op"])
  if not 0 <= conn < len(CONN):
    raise ValueError(f"sql['cond_conn_op'] = {conn} is not a connector code")
  tags = np.full((len(question) + 1,), 4, np.int32)
  cols = np.zeros((len(question) + 1,), np.int32)
  kept = []
  for col, op, value in sql["conds"]:
    if not (0 <= int(col) < num_headers and 0 <= int(op) < len(OPS)):
      raise ValueError(f"sql condition {[col, op, value]!r} is out of range for "
                       f"{num_headers} headers and {len(OPS)} operators")
    value = str(value)
    span = find_span(question, value)
    if span is None:
      replacement = matcher(value, question)
      span = None if replacement is None else find_span(question, replacement)
      value = replacement
    if span is None:
      continue
    tags[span[0] + 1:span[1] + 1] = int(op)
    cols[span[0] + 1:span[1] + 1] = int(col)
    kept.append([int(col), int(op), value])
  return Labels(sel, conn, tags, cols, kept)
