"""Per-experiment results: tables, plots and checked claims.

Each experiment writes `result.json` (machine-readable) and `report.md`
(human-readable) into its output folder; `experiments/reproduce.py` gathers
them into one report with a summary table of claims.
"""
from __future__ import annotations

import dataclasses
import json
import pathlib
from typing import Mapping, Sequence


@dataclasses.dataclass(frozen=True)
class Claim:
  """One claim of an article, checked by an experiment.

  Attributes:
    claim: what the article says, in a few words.
    article: the article's number or wording.
    ours: what we measured.
    holds: True/False, or None when the run cannot decide (e.g. quick mode).
  """
  claim: str
  article: str
  ours: str
  holds: bool | None


def _cell(value) -> str:
  if isinstance(value, float):
    return f"{value:.4g}"
  return str(value).replace("|", "\\|").replace("\n", " ")


def markdown_table(headers: Sequence[str], rows: Sequence[Sequence]) -> str:
  """A GitHub markdown table; floats printed with 4 significant digits."""
  lines = ["| " + " | ".join(map(str, headers)) + " |",
           "|" + "|".join("---" for _ in headers) + "|"]
  for row in rows:
    if len(row) != len(headers):
      raise ValueError(f"row {row!r} has {len(row)} cells, headers have {len(headers)}")
    lines.append("| " + " | ".join(_cell(v) for v in row) + " |")
  return "\n".join(lines)


def holds_text(holds: bool | None) -> str:
  return {True: "yes", False: "no", None: "n/a"}[holds]


QUICK_NOTE = ("Quick run (smoke scale): verdicts, speed included, are withheld (n/a). "
              "Full-scale results are in docs/results.md and BUILD_NOTES.md.")


def write(out: pathlib.Path, *, title: str, summary: str = "",
          tables: Mapping[str, str] | None = None, plots: Sequence[str] = (),
          claims: Sequence[Claim] = (), extra: Mapping | None = None,
          quick: bool = False, scope: str = "") -> pathlib.Path:
  """Writes `result.json` and `report.md` into `out`; returns the report path.

  Args:
    out: the experiment's output folder.
    title: a heading for the experiment.
    summary: markdown paragraph(s) describing setup and outcome.
    tables: name -> markdown table (see `markdown_table`).
    plots: PNG paths, relative to `out` (or absolute inside it).
    claims: the article's claims and what we measured.
    extra: any JSON-serialisable numbers worth keeping.
    quick: a smoke-scale run; every claim's verdict is withheld (`None`),
      whatever the script computed, so no quick run can print one.
    scope: one line saying what this run can and cannot show.
  """
  if quick:
    claims = [dataclasses.replace(c, holds=None) for c in claims]
  out = pathlib.Path(out)
  out.mkdir(parents=True, exist_ok=True)
  tables = dict(tables or {})
  plots = [str(pathlib.Path(p).relative_to(out)) if pathlib.Path(p).is_absolute()
           else str(p) for p in plots]
  for p in plots:
    if not (out / p).exists():
      raise FileNotFoundError(f"plot {p!r} is not in {out}")
  result = {"title": title, "summary": summary, "tables": tables, "plots": plots,
            "claims": [dataclasses.asdict(c) for c in claims], "extra": dict(extra or {}),
            "quick": quick, "scope": scope}
  (out / "result.json").write_text(json.dumps(result, indent=2, ensure_ascii=False))
  parts = [f"## {title}", ""]
  if scope:
    parts += [f"*What this run can show:* {scope}", ""]
  if quick:
    parts += [f"*{QUICK_NOTE}*", ""]
  parts += [summary, ""]
  if claims:
    parts += ["### Claims", "", markdown_table(
        ["claim", "article", "ours", "holds?"],
        [(c.claim, c.article, c.ours, holds_text(c.holds)) for c in claims]), ""]
  for name, table in tables.items():
    parts += [f"### {name}", "", table, ""]
  for p in plots:
    parts += [f"![{p}]({p})", ""]
  path = out / "report.md"
  path.write_text("\n".join(parts))
  return path
