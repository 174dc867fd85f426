"""Behaviour modelling: fit the annotators' habits with training-set counts.

Annotations in the competition data say more about what annotators chose
to mark than about meaning: some dictionary words are almost never labelled
even where they occur. Two statistics model this.

- Alias pruning: for each alias, compare the texts where max-matching finds
  it but nobody labelled it with the texts where it is labelled, smoothed by
  +1 on both sides; aliases matched far more often than labelled leave the
  dictionary.
- Candidate filtering: a mention string's gold entities in the training set
  are counted; ids seen at least `min_count` times that are also entries of
  that alias become its only candidates.

References:
  Su 2019, 百度实体链接比赛后记：行为建模和实体链接,
  https://kexue.fm/archives/6919 (dictionary pruning with ratio >= 5 and +1
  smoothing; candidates seen >= 2 times).
"""
from __future__ import annotations

import collections
from typing import Dict, Iterable, Mapping, Sequence, Set, Tuple

from jaxblog.el._match import as_index, max_match

Mentions = Sequence[Tuple[str, int]]


def _check_parallel(texts: Sequence[str], mentions: Sequence[Mentions]) -> None:
  if len(texts) != len(mentions):
    raise ValueError(f"texts and mentions must have the same length, got "
                     f"{len(texts)} texts and {len(mentions)} mention lists")


def alias_ratios(texts: Sequence[str], mentions: Sequence[Mentions], aliases, *,
                 word_boundary: bool = False) -> Dict[str, float]:
  """How often each alias is matched-but-unlabelled relative to labelled.

  `ratio(w) = (#texts where w is max-matched but not labelled + 1)
  / (#texts where w is labelled + 1)`; each text counts at most once per
  alias (sets, not occurrences).

  Args:
    texts: the training texts.
    mentions: `mentions[i]` = the labelled `(mention, offset)` pairs of
      `texts[i]` (NIL-linked mentions included: they were labelled).
    aliases: the dictionary (`AliasIndex` or iterable of strings).
    word_boundary: passed to `max_match`.

  Returns:
    `{alias: ratio}` for every alias of the dictionary (1.0 for an alias
    never seen).

  Example:
    >>> alias_ratios(["a b", "a", "b"], [[("a", 0)], [], [("b", 0)]], ["a", "b"],
    ...              word_boundary=True)
    {'a': 1.0, 'b': 1.0}
  """
  _check_parallel(texts, mentions)
  index = as_index(aliases)
  unlabelled, labelled = collections.Counter(), collections.Counter()
  for text, marks in zip(texts, mentions):
    matched = {text[s:e] for s, e in max_match(text, index, word_boundary=word_boundary)}
    marked = {m for m, _ in marks}
    unlabelled.update(matched - marked)
    labelled.update(marked)
  return {w: (unlabelled[w] + 1.0) / (labelled[w] + 1.0) for w in sorted(index)}


def prune_aliases(aliases, texts: Sequence[str], mentions: Sequence[Mentions],
                  threshold: float = 5.0, *, word_boundary: bool = False) -> Set[str]:
  """The aliases whose `alias_ratios` value is below `threshold`.

  Args:
    aliases: the dictionary (`AliasIndex` or iterable of strings).
    texts, mentions: the training texts and their labelled mentions.
    threshold: aliases with ratio `>= threshold` are dropped (article: 5).
    word_boundary: passed to `max_match`.

  Returns:
    The kept aliases as a set.

  Example:
    >>> texts = ["the cat"] * 5 + ["a cat"]
    >>> sorted(prune_aliases(["the", "cat"], texts, [[("cat", 4)]] * 5 + [[]],
    ...                      word_boundary=True))
    ['cat']
  """
  if not threshold > 0:
    raise ValueError(f"threshold must be > 0, got {threshold!r}")
  ratios = alias_ratios(texts, mentions, aliases, word_boundary=word_boundary)
  return {w for w, r in ratios.items() if r < threshold}


def link_counts(links: Iterable[Tuple[str, str]]) -> Dict[str, collections.Counter]:
  """`{mention: Counter(kb_id)}` from `(mention, kb_id)` training links.

  `NIL` links are skipped: they name no entity.
  """
  counts: Dict[str, collections.Counter] = collections.defaultdict(collections.Counter)
  for mention, kb_id in links:
    if kb_id != "NIL":
      counts[mention][kb_id] += 1
  return dict(counts)


def filter_candidates(mention: str, candidates: Sequence[str],
                      counts: Mapping[str, Mapping[str, int]], min_count: int = 2
                      ) -> Tuple[str, ...]:
  """Restricts a mention's candidates to those its training links favour.

  Args:
    mention: the mention string.
    candidates: all KB ids with this alias, in KB order.
    counts: `link_counts` of the training set.
    min_count: keep ids linked at least this often (article: 2).

  Returns:
    The candidates linked `>= min_count` times, if any; otherwise all of
    them (order kept).

  Example:
    >>> counts = link_counts([("paris", "n1"), ("paris", "n1"), ("paris", "n2")])
    >>> filter_candidates("paris", ["n1", "n2", "n3"], counts)
    ('n1',)
    >>> filter_candidates("rome", ["n4", "n5"], counts)
    ('n4', 'n5')
  """
  if min_count < 1:
    raise ValueError(f"min_count must be >= 1, got {min_count}")
  seen = counts.get(mention, {})
  kept = tuple(c for c in candidates if seen.get(c, 0) >= min_count)
  return kept if kept else tuple(candidates)
