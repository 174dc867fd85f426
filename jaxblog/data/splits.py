"""One train/valid/test container and the seeded splits every loader uses.

Splits are a pure function of the seed, so every experiment (and every
re-run) sees the same items. `split_groups` keeps whole groups together
(a table, a question, an article), so nothing of a held-out group leaks
into training.
"""
from __future__ import annotations

from typing import Any, Hashable, NamedTuple, Sequence, Tuple, TypeVar

import numpy as np

T = TypeVar("T")


class Splits(NamedTuple):
  """`train`, `valid` and `test` parts of one data set (any type per part)."""
  train: Any
  valid: Any
  test: Any


def _check_fractions(valid: float, test: float) -> None:
  if not (0.0 <= valid < 1.0 and 0.0 <= test < 1.0 and valid + test < 1.0):
    raise ValueError(f"valid and test must be fractions in [0, 1) with valid + test < 1, "
                     f"got valid={valid}, test={test}")


def split_indices(n: int, seed: int, *, valid: float = 0.1, test: float = 0.1
                  ) -> Splits:
  """A seeded permutation of `range(n)` cut into train/valid/test index arrays.

  Args:
    n: number of items (>= 0).
    seed: NumPy seed of the permutation.
    valid: fraction of items for validation (rounded down).
    test: fraction of items for test (rounded down).

  Returns:
    `Splits` of int64 index arrays, disjoint, covering `range(n)`.
  """
  if n < 0:
    raise ValueError(f"n must be >= 0, got {n}")
  _check_fractions(valid, test)
  return split_counts(n, seed, int(n * valid), int(n * test))


def split_counts(n: int, seed: int, n_valid: int, n_test: int) -> Splits:
  """A seeded permutation of `range(n)` cut into `n - n_valid - n_test`, `n_valid`, `n_test` items.

  For loaders whose part sizes are counts (or fractions rounded their own
  way); `split_indices` is this with floored fractions.

  Args:
    n: number of items (>= 0).
    seed: NumPy seed of the permutation.
    n_valid: validation items.
    n_test: test items.

  Returns:
    `Splits` of int64 index arrays in permutation order, disjoint, covering
    `range(n)`.

  Raises:
    ValueError: negative counts, or more than `n` held out.
  """
  n_train = n - n_valid - n_test
  if n_valid < 0 or n_test < 0 or n_train < 0:
    raise ValueError(f"valid={n_valid} and test={n_test} must be >= 0 and fit in {n} items")
  order = np.random.default_rng(seed).permutation(n)
  return Splits(order[:n_train], order[n_train:n_train + n_valid], order[n_train + n_valid:])


def split_groups(groups: Sequence[Hashable], seed: int, *, valid: float = 0.1,
                 test: float = 0.1) -> Splits:
  """Item indices split so that every group lies wholly in one part.

  Args:
    groups: the group key of each item (e.g. a table id or an article id).
    seed: NumPy seed of the permutation of the distinct groups (sorted by
      `repr` first, so the result does not depend on item order).
    valid: fraction of *groups* for validation.
    test: fraction of *groups* for test.

  Returns:
    `Splits` of int64 item-index arrays, each in increasing order.
  """
  _check_fractions(valid, test)
  keys = sorted(set(groups), key=repr)
  parts = split_indices(len(keys), seed, valid=valid, test=test)
  where = {}
  for part, idx in enumerate(parts):
    for i in idx:
      where[keys[i]] = part
  label = np.fromiter((where[g] for g in groups), dtype=np.int64, count=len(groups))
  return Splits(*(np.flatnonzero(label == part) for part in range(3)))


def take(items: Sequence[T], indices: np.ndarray) -> Tuple[T, ...]:
  """`tuple(items[i] for i in indices)`."""
  return tuple(items[int(i)] for i in indices)
