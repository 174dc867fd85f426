"""Forward maximum matching over an alias dictionary.

Matching walks a character trie from each position, so the cost per text is
the text length times the longest partial match there, not times the
dictionary size. `AliasIndex` builds the trie once; `max_match` accepts it
(or any iterable of strings, indexed on the fly) so that a corpus of many
texts pays for the trie once.

For languages written with spaces, `word_boundary=True` only lets a match
start after and end before a non-alphanumeric character (or the text's
edge), so `art` never matches inside `party`. The article's Chinese texts
have no such boundaries, and the default is the plain character scan.

References:
  Su 2019, 百度实体链接比赛后记：行为建模和实体链接,
  https://kexue.fm/archives/6919 (forward maximum matching as the recall step).
"""
from __future__ import annotations

from typing import Iterable, List, Tuple

_END = ""  # trie key marking "an alias ends here" (aliases are non-empty)


class AliasIndex:
  """A character trie over a set of aliases (empty strings are ignored).

  Args:
    aliases: any iterable of strings.

  Example:
    >>> index = AliasIndex(["New York", "New"])
    >>> len(index), "New" in index
    (2, True)
  """

  def __init__(self, aliases: Iterable[str]):
    self._root: dict = {}
    self._aliases = set()
    for alias in aliases:
      if not isinstance(alias, str):
        raise TypeError(f"aliases must be strings, got {alias!r}")
      if not alias or alias in self._aliases:
        continue
      self._aliases.add(alias)
      node = self._root
      for ch in alias:
        node = node.setdefault(ch, {})
      node[_END] = True

  def __len__(self) -> int:
    return len(self._aliases)

  def __contains__(self, alias: object) -> bool:
    return alias in self._aliases

  def __iter__(self):
    return iter(self._aliases)

  def longest_at(self, text: str, start: int, word_boundary: bool = False) -> int:
    """End (exclusive) of the longest alias starting at `start`, or -1."""
    node, best = self._root, -1
    for i in range(start, len(text)):
      node = node.get(text[i])
      if node is None:
        break
      if _END in node and (not word_boundary or _boundary_after(text, i + 1)):
        best = i + 1
    return best


def _boundary_after(text: str, end: int) -> bool:
  return end >= len(text) or not text[end].isalnum()


def _boundary_before(text: str, start: int) -> bool:
  return start == 0 or not text[start - 1].isalnum()


def as_index(aliases) -> AliasIndex:
  """`aliases` itself if it is an `AliasIndex`, else a new one over it."""
  if isinstance(aliases, AliasIndex):
    return aliases
  if isinstance(aliases, str):
    raise TypeError("aliases must be a collection of strings, not a single string")
  return AliasIndex(aliases)


def max_match(text: str, aliases, *, word_boundary: bool = False) -> List[Tuple[int, int]]:
  """Forward maximum matching of `aliases` in `text`.

  Scans left to right; at each position takes the longest alias starting
  there and jumps past it, otherwise moves one character. Spans never
  overlap.

  Args:
    text: the text to scan.
    aliases: an `AliasIndex` or an iterable of alias strings (may be empty).
    word_boundary: only match whole words (see the module docstring).

  Returns:
    `[(start, end)]` character spans, end exclusive, in increasing order.

  Example:
    >>> max_match("new york city", ["new", "new york", "york city"])
    [(0, 8)]
    >>> max_match("party art", ["art"], word_boundary=True)
    [(6, 9)]

  References:
    https://kexue.fm/archives/6919
  """
  if not isinstance(text, str):
    raise TypeError(f"text must be a string, got {type(text).__name__}")
  index = as_index(aliases)
  spans, i = [], 0
  while i < len(text):
    end = -1
    if not word_boundary or _boundary_before(text, i):
      end = index.longest_at(text, i, word_boundary)
    if end > i:
      spans.append((i, end))
      i = end
    else:
      i += 1
  return spans
