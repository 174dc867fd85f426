"""KB entries and linked texts in the CCKS 2019 format, parsed and checked.

KB line: `{"subject_id", "subject", "alias": [str], "type": [str],
"data": [{"predicate", "object"}]}`. Text line: `{"text_id", "text",
"mention_data": [{"kb_id", "mention", "offset"}]}` with `offset` a character
offset into `text` and `kb_id` possibly `"NIL"`. Parsing checks every field
a later step relies on, so a bad line fails here with its line number
instead of deep inside training. An empty alias list and a text without
mentions are valid.

References:
  Su 2019, 百度实体链接比赛后记：行为建模和实体链接,
  https://kexue.fm/archives/6919 (data format; the entity description as all
  `predicate：object` lines plus a name line).
"""
from __future__ import annotations

import json
from typing import Iterable, List, NamedTuple, Tuple


class Entity(NamedTuple):
  """One KB entry; `data` holds `(predicate, object)` pairs."""
  subject_id: str
  subject: str
  alias: Tuple[str, ...]
  type: Tuple[str, ...]
  data: Tuple[Tuple[str, str], ...]


class Mention(NamedTuple):
  """One labelled mention: `text[offset:offset + len(mention)] == mention`."""
  kb_id: str
  mention: str
  offset: int


class LinkedText(NamedTuple):
  """One text with its labelled mentions."""
  text_id: str
  text: str
  mentions: Tuple[Mention, ...]


def _load(line, where: str) -> dict:
  if isinstance(line, dict):
    return line
  try:
    record = json.loads(line)
  except (TypeError, json.JSONDecodeError) as e:
    raise ValueError(f"{where}: not a JSON object ({e})") from None
  if not isinstance(record, dict):
    raise ValueError(f"{where}: not a JSON object, got {type(record).__name__}")
  return record


def _field(record: dict, key: str, kind, where: str):
  if key not in record:
    raise ValueError(f"{where}: missing key {key!r}")
  value = record[key]
  if not isinstance(value, kind) or isinstance(value, bool):
    raise ValueError(f"{where}: {key!r} must be {kind.__name__}, got {value!r}")
  return value


def _strings(record: dict, key: str, where: str) -> Tuple[str, ...]:
  values = _field(record, key, list, where)
  for v in values:
    if not isinstance(v, str):
      raise ValueError(f"{where}: {key!r} must hold strings, got {v!r}")
  return tuple(values)


def parse_entity(line, lineno: int = 0) -> Entity:
  """Parses and checks one KB line (a JSON string or an already-loaded dict).

  Args:
    line: the JSON line.
    lineno: 1-based line number for error messages (0: unknown).

  Returns:
    An `Entity`.

  Raises:
    ValueError: invalid JSON, a missing key, or a field of the wrong type;
      the message names the line.

  Example:
    >>> parse_entity('{"subject_id": "n1", "subject": "Paris", "alias": [],'
    ...              ' "type": [], "data": [{"predicate": "p", "object": "o"}]}').data
    (('p', 'o'),)
  """
  where = f"KB line {lineno}"
  record = _load(line, where)
  data = []
  for i, pair in enumerate(_field(record, "data", list, where)):
    if not isinstance(pair, dict):
      raise ValueError(f"{where}: data[{i}] must be an object, got {pair!r}")
    data.append((_field(pair, "predicate", str, f"{where} data[{i}]"),
                 _field(pair, "object", str, f"{where} data[{i}]")))
  subject_id = _field(record, "subject_id", str, where)
  if not subject_id or subject_id == "NIL":
    raise ValueError(f"{where}: subject_id must be non-empty and not 'NIL', got {subject_id!r}")
  return Entity(subject_id, _field(record, "subject", str, where),
                _strings(record, "alias", where), _strings(record, "type", where), tuple(data))


def parse_text(line, lineno: int = 0) -> LinkedText:
  """Parses and checks one text line (a JSON string or a dict).

  `mention_data` may be absent (a text to predict on).

  Args:
    line: the JSON line.
    lineno: 1-based line number for error messages (0: unknown).

  Returns:
    A `LinkedText` with mentions sorted by offset.

  Raises:
    ValueError: invalid JSON, a missing key, a wrong type, an offset outside
      the text, or a mention that is not the text at its offset; the message
      names the line.

  Example:
    >>> parse_text('{"text_id": "1", "text": "to Paris", "mention_data":'
    ...            ' [{"kb_id": "n1", "mention": "Paris", "offset": "3"}]}').mentions
    (Mention(kb_id='n1', mention='Paris', offset=3),)
  """
  where = f"text line {lineno}"
  record = _load(line, where)
  text_id = record.get("text_id")
  if not isinstance(text_id, (str, int)) or isinstance(text_id, bool):
    raise ValueError(f"{where}: missing key 'text_id' or not a string, got {text_id!r}")
  text = _field(record, "text", str, where)
  mentions = []
  for i, m in enumerate(record.get("mention_data", [])):
    at = f"{where} mention_data[{i}]"
    if not isinstance(m, dict):
      raise ValueError(f"{at}: must be an object, got {m!r}")
    kb_id, mention = _field(m, "kb_id", str, at), _field(m, "mention", str, at)
    offset = m.get("offset")
    try:
      offset = int(offset)  # the competition files store offsets as strings
    except (TypeError, ValueError):
      raise ValueError(f"{at}: missing or non-integer 'offset', got {offset!r}") from None
    if not mention:
      raise ValueError(f"{at}: empty mention")
    if offset < 0 or offset + len(mention) > len(text):
      raise ValueError(f"{at}: offset {offset} + len({mention!r}) is outside the text "
                       f"of length {len(text)}")
    if text[offset:offset + len(mention)] != mention:
      raise ValueError(f"{at}: mention {mention!r} is not the text at offset {offset} "
                       f"(found {text[offset:offset + len(mention)]!r})")
    mentions.append(Mention(kb_id, mention, offset))
  return LinkedText(str(text_id), text, tuple(sorted(mentions, key=lambda m: m.offset)))


def parse_lines(lines: Iterable, parse) -> List:
  """`[parse(line, lineno)]` over non-blank lines, numbered from 1."""
  return [parse(line, n) for n, line in enumerate(lines, 1)
          if not (isinstance(line, str) and not line.strip())]


def entity_to_json(entity: Entity) -> str:
  """The KB line of `entity` (inverse of `parse_entity`)."""
  return json.dumps({"subject_id": entity.subject_id, "subject": entity.subject,
                     "alias": list(entity.alias), "type": list(entity.type),
                     "data": [{"predicate": p, "object": o} for p, o in entity.data]},
                    ensure_ascii=False)


def text_to_json(text: LinkedText) -> str:
  """The text line of `text` (inverse of `parse_text`; offsets as strings)."""
  return json.dumps({"text_id": text.text_id, "text": text.text,
                     "mention_data": [{"kb_id": m.kb_id, "mention": m.mention,
                                       "offset": str(m.offset)} for m in text.mentions]},
                    ensure_ascii=False)


def describe(entity: Entity) -> str:
  """The entity's description: every `predicate: object` line and a name line.

  Lowercased, lines joined by newlines, the name line last listing the
  subject and its aliases (deduplicated, order kept).

  Example:
    >>> describe(Entity("n1", "Paris", ("Paris", "City of Light"), (),
    ...                 (("definition", "capital of France"),)))
    'definition: capital of france\\nname: paris, city of light'
  """
  names = list(dict.fromkeys((entity.subject,) + entity.alias))
  lines = [f"{p}: {o}" for p, o in entity.data] + ["name: " + ", ".join(names)]
  return "\n".join(lines).lower()
