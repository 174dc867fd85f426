"""Runs every experiment and writes one report.

Usage: `python experiments/reproduce.py` (quick mode, a few minutes each on
2 CPU cores), `--full`, or `--smoke` (toy size, seconds each: a check that
every script runs). Every `experiments/*.py` except `bench_*`,
`reproduce.py` and `_*` is an experiment; each runs in its own process with
`--out runs/<timestamp>/<name>` and leaves `result.json` + `report.md` there.
The gathered `runs/<timestamp>/report.md` starts with a summary table of the
articles' claims. Exit status: 0 if every experiment succeeded or was skipped
for missing optional data (exit code 3), 1 otherwise.

The experiments run under `jaxblog.training.benchmark.MALLOC_TUNABLES` (glibc
keeps freed memory instead of unmapping it, so XLA:CPU's per-step
temporaries are not page-faulted in again on every step: 1.26-1.55x the
training steps/s of `bidirectional_decoding` here, same results, +8% peak
memory); `--malloc default` runs them with the environment unchanged.
"""
from __future__ import annotations

import argparse
import json
import os
import pathlib
import subprocess
import sys
import time

HERE = pathlib.Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT))

from jaxblog.training import benchmark, cli, report  # noqa: E402


def discover() -> list[str]:
  return sorted(p.stem for p in HERE.glob("*.py")
                if not p.stem.startswith(("bench_", "_")) and p.stem != "reproduce")


def run_one(name: str, out: pathlib.Path, full: bool, seed: int,
            smoke: bool = False, malloc: str = "tuned") -> tuple[str, float]:
  cmd = [sys.executable, str(HERE / f"{name}.py"), "--out", str(out), "--seed", str(seed)]
  if full and smoke:
    raise ValueError("run_one: full and smoke are exclusive")
  if full:
    cmd.append("--full")
  if smoke:
    cmd.append("--smoke")
  t0 = time.perf_counter()
  log = out / "log.txt"
  out.mkdir(parents=True, exist_ok=True)
  with log.open("w") as f:
    env = benchmark.malloc_env(os.environ) if malloc == "tuned" else None
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True, bufsize=1, env=env)
    for line in proc.stdout:
      f.write(line)
      sys.stdout.write(f"  [{name}] {line}" if not line.startswith("\r") else line)
      sys.stdout.flush()
    code = proc.wait()
  seconds = time.perf_counter() - t0
  if code == 0 and (out / "result.json").exists():
    return "ok", seconds
  if code == cli.MISSING_DATA_EXIT:
    return "skipped (missing data)", seconds
  return f"failed (exit {code}, see {log.relative_to(out.parent)})", seconds


def gather(run_dir: pathlib.Path, statuses: dict, full: bool = False,
           smoke: bool = False) -> pathlib.Path:
  claims, sections, status_rows = [], [], []
  for name, (status, seconds) in statuses.items():
    result_path = run_dir / name / "result.json"
    if status != "ok":
      status_rows.append((name, status, f"{seconds:.0f}", ""))
      continue
    result = json.loads(result_path.read_text())
    status_rows.append((name, status, f"{seconds:.0f}", result.get("scope", "")))
    for c in result["claims"]:
      claims.append((name, c["claim"], c["article"], c["ours"], report.holds_text(c["holds"])))
    body = (run_dir / name / "report.md").read_text()
    # Re-root the experiment's relative image links at the run folder.
    for p in result["plots"]:
      body = body.replace(f"]({p})", f"]({name}/{p})")
    sections.append(body)
  mode = ("full" if full else
          "smoke: toy size, checks that every script runs; no numbers mean anything" if smoke
          else "quick: smoke scale, every verdict withheld; `--full` for the real runs")
  parts = ["# jaxblog reproduction report", "",
           f"Run folder `{run_dir}`; {time.strftime('%Y-%m-%d %H:%M:%S')}; mode {mode}.", "",
           "## Experiments", "", report.markdown_table(
               ["experiment", "status", "seconds", "what this run can show"], status_rows), ""]
  claims_table = report.markdown_table(["experiment", "claim", "article", "ours", "holds?"],
                                       claims) if claims else ""
  if claims:
    parts += ["## Claims", "", claims_table, ""]
  parts += sections
  path = run_dir / "report.md"
  path.write_text("\n".join(parts))
  if full and claims:
    results = ROOT / "docs" / "results.md"
    results.write_text("\n".join([
        "# Claims summary (full runs)", "",
        f"Written by `python experiments/reproduce.py --full` on "
        f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}; the per-experiment tables, "
        "commands and machine load are in BUILD_NOTES.md.", "",
        report.markdown_table(["experiment", "status", "seconds"],
                              [r[:3] for r in status_rows]), "",
        claims_table, ""]))
  return path


def main(argv=None) -> int:
  parser = argparse.ArgumentParser(description=__doc__,
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
  mode = parser.add_mutually_exclusive_group()
  mode.add_argument("--quick", dest="full", action="store_false", default=False)
  mode.add_argument("--full", dest="full", action="store_true")
  mode.add_argument("--smoke", action="store_true", help="toy size, seconds per experiment")
  parser.add_argument("--only", nargs="*", default=None, help="experiment names to run")
  parser.add_argument("--out", type=pathlib.Path, default=None)
  parser.add_argument("--seed", type=int, default=0)
  parser.add_argument("--malloc", choices=("tuned", "default"), default="tuned",
                      help="glibc allocator settings of the experiment processes (see above)")
  args = parser.parse_args(argv)
  names = discover()
  if args.only:
    unknown = sorted(set(args.only) - set(names))
    if unknown:
      parser.error(f"unknown experiments {unknown}; known: {names}")
    names = [n for n in names if n in args.only]
  run_dir = args.out or ROOT / "runs" / time.strftime("%Y%m%d-%H%M%S")
  run_dir.mkdir(parents=True, exist_ok=True)
  statuses = {}
  for i, name in enumerate(names, 1):
    kind = "full" if args.full else "smoke" if args.smoke else "quick"
    print(f"[{i}/{len(names)}] {name} ({kind})", flush=True)
    statuses[name] = run_one(name, run_dir / name, args.full, args.seed, args.smoke,
                            args.malloc)
    print(f"[{i}/{len(names)}] {name}: {statuses[name][0]} in {statuses[name][1]:.0f}s", flush=True)
  path = gather(run_dir, statuses, args.full, args.smoke)
  print(f"report: {path}")
  failed = [n for n, (s, _) in statuses.items() if s.startswith("failed")]
  if failed:
    print(f"failed: {', '.join(failed)}", file=sys.stderr)
    return 1
  return 0


if __name__ == "__main__":
  sys.exit(main())
