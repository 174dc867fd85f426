"""Real tables from installed data packages, in the TableQA table format.

No question/SQL corpus ships in a package (and the TableQA data may not be
redistributed), so the NL2SQL benchmark is built from real tables plus
template questions (`jaxblog.data.tableqa`). Every table is a dict
`{"id", "header", "types", "rows", "title", "source"}`, types `"text"` or
`"real"`, missing cells `None`.

Chinese (`chinese_tables`):
  * `world-countries` (`countries_ch.json`, names/capitals/regions in
    Chinese) joined on ISO alpha-3 with `countryinfo` (population, area,
    latitude/longitude), one table per continent (大洲);
  * `china-region` (`region.csv`): one table of counties per province;
  * `adata` (`stock/cache/code.csv`): A-share listings, one table per board
    (板块, from the code prefix) with the listing year and month derived.
English (`english_tables`): the R data sets of `pydataset` (its tarball read
with `tarfile`, the package is never imported) and the local tables of
`vega_datasets`.

Kept: tables with 5-2,000 rows, at least one text and one numeric column,
readable unique headers (at most `MAX_COLUMNS`, extra columns dropped).
"""
from __future__ import annotations

import csv
import functools
import io
import json
import os
import re
import tarfile
from typing import Dict, List, Optional, Sequence

from jaxblog.data.packages import INSTALL_HINT, MissingPackageError, package_file

MIN_ROWS, MAX_ROWS, MAX_COLUMNS = 5, 2000, 10
_ENGLISH_HEADER = re.compile(r"^[A-Za-z][A-Za-z0-9_.]{0,24}$")
_NA = {"", "NA", "NaN", "nan", "null", "None"}

CHINESE_SOURCES = (("world-countries", "world_countries/data/countries_ch.json"),
                   ("countryinfo", "countryinfo/data"),
                   ("china-region", "china_region/region.csv"),
                   ("adata", "adata/stock/cache/code.csv"))
ENGLISH_SOURCES = (("pydataset", "pydataset/resources.tar.gz"),
                   ("vega_datasets", "vega_datasets/local_datasets.json"))


def available(lang: str) -> bool:
  """Whether every package of `lang` ("zh" or "en") is installed."""
  try:
    for dist, rel in CHINESE_SOURCES if lang == "zh" else ENGLISH_SOURCES:
      package_file(dist, rel)
  except MissingPackageError:
    return False
  return True


def _number(text) -> Optional[float]:
  if text is None or isinstance(text, bool):
    return None
  if isinstance(text, (int, float)):
    return float(text)
  text = str(text).strip()
  if text in _NA:
    return None
  try:
    value = float(text)
  except ValueError:
    return None
  return value if value == value and abs(value) != float("inf") else None


def _is_number(cell) -> bool:
  return cell is None or (isinstance(cell, str) and cell.strip() in _NA) or _number(cell) is not None


def make_table(table_id: str, header: Sequence[str], columns: Sequence[Sequence], *,
               title: str, source: str, text: Sequence[int] = ()) -> Optional[dict]:
  """A table from raw columns: types inferred, NA -> None; None if not keepable.

  A column is `real` when every non-missing cell parses as a number, else
  (and always for the column indices in `text`, e.g. codes) `text`. The table is kept when it has `MIN_ROWS`-`MAX_ROWS` rows, a text
  and a real column.
  """
  header, columns = list(header)[:MAX_COLUMNS], list(columns)[:MAX_COLUMNS]
  n = len(columns[0]) if columns else 0
  if not MIN_ROWS <= n <= MAX_ROWS:
    return None
  types, cols = [], []
  for col in columns:
    numeric = all(_is_number(c) for c in col) and any(_number(c) is not None for c in col)
    if numeric and len(types) not in text:
      types.append("real")
      cols.append([_number(c) for c in col])
    else:
      types.append("text")
      cols.append([None if c is None or str(c).strip() in _NA else str(c).strip() for c in col])
  if "real" not in types or "text" not in types:
    return None
  rows = [list(r) for r in zip(*cols)]
  return {"id": table_id, "header": list(header), "types": types, "rows": rows,
          "title": title, "source": source}


def _load_json(dist: str, rel: str):
  with open(package_file(dist, rel), encoding="utf-8") as f:
    return json.load(f)


def country_tables() -> List[dict]:
  """Countries per continent: 国家/首都/地区/区号/货币 with 人口/面积/纬度/经度."""
  countries = _load_json("world-countries", "world_countries/data/countries_ch.json")
  info_dir = package_file("countryinfo", "countryinfo/data")
  info = {}
  for name in sorted(os.listdir(info_dir)):
    if name.endswith(".json"):
      with open(info_dir / name, encoding="utf-8") as f:
        record = json.load(f)
      iso3 = record.get("ISO", {}).get("alpha3")
      if iso3:
        info[iso3] = record
  header = ["国家", "首都", "地区", "区号", "货币", "人口", "面积", "纬度", "经度"]
  by_continent: Dict[str, list] = {}
  for c in countries:
    extra = info.get(c.get("iso3"), {})
    latlng = extra.get("latlng") or [None, None]
    row = [c.get("name"), c.get("capital") or None, c.get("region") or None,
           c.get("phone_code") or None, c.get("currency") or None, extra.get("population"),
           extra.get("area"), latlng[0] if len(latlng) > 1 else None,
           latlng[1] if len(latlng) > 1 else None]
    by_continent.setdefault(c.get("continent") or "其他", []).append(row)
  tables = []
  for continent in sorted(by_continent):
    rows = by_continent[continent]
    t = make_table(f"countries/{continent}", header, list(zip(*rows)),
                   title=f"{continent}国家", source="world-countries + countryinfo", text=(3,))
    if t is not None:
      tables.append(t)
  return tables


def _read_csv(path) -> List[dict]:
  with open(path, encoding="utf-8", newline="") as f:
    return [r for r in csv.DictReader(f) if any(v for v in r.values())]


def region_tables() -> List[dict]:
  """Counties per province: 城市/区县/经度/纬度/邮编."""
  rows = _read_csv(package_file("china-region", "china_region/region.csv"))
  by_province: Dict[str, list] = {}
  for r in rows:
    by_province.setdefault(r["province"], []).append(
        [r["city"], r["county"], r["longitude"], r["latitude"], r["zipCode"]])
  tables = []
  for province in sorted(by_province):
    t = make_table(f"china_region/{province}", ["城市", "区县", "经度", "纬度", "邮编"],
                   list(zip(*by_province[province])), title=f"{province}区县",
                   source="china-region", text=(4,))
    if t is not None:
      tables.append(t)
  return tables


BOARDS = (("688", "科创板"), ("689", "科创板"), ("60", "沪市主板"), ("300", "创业板"),
          ("301", "创业板"), ("00", "深市主板"), ("4", "北交所"), ("8", "北交所"),
          ("92", "北交所"))


def board(code: str) -> str:
  """The A-share board of a 6-digit stock code (first matching prefix)."""
  return next((name for prefix, name in BOARDS if code.startswith(prefix)), "其他")


def stock_tables() -> List[dict]:
  """A-share listings per board: 代码/简称/上市日期/上市年份/上市月份."""
  rows = _read_csv(package_file("adata", "adata/stock/cache/code.csv"))
  by_board: Dict[str, list] = {}
  for r in rows:
    code, name, date = r["stock_code"].strip(), re.sub(r"\s+", "", r["short_name"]), r["list_date2"]
    m = re.match(r"^(\d{4})-(\d{2})-(\d{2})$", date or "")
    by_board.setdefault(board(code), []).append(
        [code, name, date if m else None, m.group(1) if m else None, m.group(2) if m else None])
  tables = []
  for name in sorted(by_board):
    t = make_table(f"adata/{name}", ["代码", "简称", "上市日期", "上市年份", "上市月份"],
                   list(zip(*by_board[name])), title=f"{name}股票", source="adata",
                   text=(0,))
    if t is not None:
      tables.append(t)
  return tables


def chinese_tables() -> List[dict]:
  """All Chinese tables (countries, counties, stocks), in a fixed order."""
  return country_tables() + region_tables() + stock_tables()


def _readable(header: Sequence[str], columns: Sequence[Sequence]):
  keep_h, keep_c, seen = [], [], set()
  for h, c in zip(header, columns):
    h = h.strip()
    if _ENGLISH_HEADER.match(h) and h.casefold() not in seen:
      seen.add(h.casefold())
      keep_h.append(h)
      keep_c.append(c)
  return keep_h, keep_c


@functools.lru_cache(maxsize=1)
def pydataset_tables() -> tuple:
  """R data sets from `pydataset`'s tarball (row names kept as `name` when textual)."""
  path = package_file("pydataset", "pydataset/resources.tar.gz")
  tables = []
  texts = {}
  with tarfile.open(path) as tar:  # one pass in archive order (gzip cannot seek back cheaply)
    for member in tar:
      if member.isfile() and not os.path.basename(member.name).startswith("._") and (
          member.name.endswith(".csv")):
        texts[member.name] = tar.extractfile(member).read().decode("utf-8", errors="replace")
  index = texts.pop("resources/rdata/datasets.csv")
  titles = {(r["Package"], r["Item"]): r["Title"] for r in csv.DictReader(io.StringIO(index))}
  for name in sorted(texts):
    m = re.match(r"^resources/rdata/csv/([^/]+)/([^/]+)\.csv$", name)
    if not m:
      continue
    text = texts[name]
    lines = list(csv.reader(io.StringIO(text)))
    if len(lines) < MIN_ROWS + 1 or len(lines) > MAX_ROWS + 1:
      continue
    header, body = lines[0], lines[1:]
    if any(len(r) != len(header) for r in body):
      continue
    columns = [list(c) for c in zip(*body)]
    if header and header[0] == "":
      if all(_number(v) is not None for v in columns[0]):
        header, columns = header[1:], columns[1:]
      else:
        header = ["name"] + header[1:]
    header, columns = _readable(header, columns)
    if not columns:
      continue
    key = (m.group(1), m.group(2))
    t = make_table(f"pydataset/{key[0]}/{key[1]}", header, columns,
                   title=titles.get(key, key[1]), source=f"pydataset (R package {key[0]})")
    if t is not None:
      tables.append(t)
  return tuple(tables)


def vega_tables() -> List[dict]:
  """The local (non-downloading) tables of `vega_datasets`."""
  local = _load_json("vega_datasets", "vega_datasets/local_datasets.json")
  tables = []
  for name in sorted(local):
    path = package_file("vega_datasets", f"vega_datasets/{local[name]}")
    if path.suffix == ".json":
      with open(path, encoding="utf-8") as f:
        records = json.load(f)
      if not isinstance(records, list) or not records or not isinstance(records[0], dict):
        continue
      header = list(records[0])
      columns = [[r.get(h) for r in records] for h in header]
    else:
      with open(path, encoding="utf-8", newline="") as f:
        lines = list(csv.reader(f))
      header, body = lines[0], lines[1:]
      if any(len(r) != len(header) for r in body):
        continue
      columns = [list(c) for c in zip(*body)]
    header, columns = _readable(header, columns)
    if columns:
      t = make_table(f"vega/{name}", header, columns, title=name.replace("-", " "),
                     source="vega_datasets")
      if t is not None:
        tables.append(t)
  return tables


def english_tables() -> List[dict]:
  """All English tables (pydataset, then vega_datasets)."""
  return [dict(t, rows=[list(r) for r in t["rows"]]) for t in pydataset_tables()] + vega_tables()


def load_tables(lang: str) -> List[dict]:
  """`chinese_tables()` for "zh", `english_tables()` for "en".

  Raises:
    MissingPackageError: a package is missing (names it and `INSTALL_HINT`).
  """
  if lang == "zh":
    return chinese_tables()
  if lang == "en":
    return english_tables()
  raise ValueError(f"lang must be 'zh' or 'en', got {lang!r}")


__all__ = ["INSTALL_HINT", "available", "board", "chinese_tables", "country_tables",
           "english_tables", "load_tables", "make_table", "pydataset_tables", "region_tables",
           "stock_tables", "vega_tables"]
