"""Every script in `experiments/` runs end to end at toy size.

Experiments run with `--smoke` (seconds of compute each) and must leave a
`result.json` whose claims carry no verdict (a smoke run decides nothing);
benchmarks run with `--smoke` (tiny sizes, one round) and must print their
table. Each script runs in its own process, as `reproduce.py` runs it, so an
experiment cannot break unnoticed between full runs.
"""
from __future__ import annotations

import json
import os
import pathlib
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
SCRIPTS = sorted(p.stem for p in (ROOT / "experiments").glob("*.py")
                 if not p.stem.startswith("_") and p.stem != "reproduce")
EXPERIMENTS = [s for s in SCRIPTS if not s.startswith("bench_")]
BENCHMARKS = [s for s in SCRIPTS if s.startswith("bench_")]
MISSING_DATA_EXIT = 3
TIMEOUT = 600


def _run(args, tmp_path):
  env = dict(os.environ)
  # One host device, as a user's plain `python experiments/x.py` has.
  env["XLA_FLAGS"] = " ".join(f for f in env.get("XLA_FLAGS", "").split()
                              if "device_count" not in f)
  env["PYTHONPATH"] = os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")])
  proc = subprocess.run([sys.executable, *args], cwd=tmp_path, env=env, text=True,
                        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=TIMEOUT)
  return proc.returncode, proc.stdout


def test_every_script_is_covered():
  assert "mnist_mlp" in EXPERIMENTS and "bench_crf" in BENCHMARKS
  assert len(EXPERIMENTS) + len(BENCHMARKS) == len(SCRIPTS)


@pytest.mark.parametrize("name", EXPERIMENTS)
def test_experiment_smoke(name, tmp_path):
  out = tmp_path / "out"
  code, log = _run([str(ROOT / "experiments" / f"{name}.py"), "--smoke", "--out", str(out)],
                   tmp_path)
  if code == MISSING_DATA_EXIT:
    pytest.skip(f"{name}: optional data not installed ({log.strip().splitlines()[-1]})")
  assert code == 0, f"{name} --smoke failed (exit {code}):\n{log[-4000:]}"
  result = json.loads((out / "result.json").read_text())
  assert result["quick"] is True
  assert (out / "report.md").read_text().strip()
  for claim in result["claims"]:
    assert claim["holds"] is None, f"{name}: a smoke run printed a verdict: {claim}"
  for plot in result["plots"]:
    assert (out / plot).stat().st_size > 0


@pytest.mark.parametrize("name", BENCHMARKS)
def test_benchmark_smoke(name, tmp_path):
  code, log = _run([str(ROOT / "experiments" / f"{name}.py"), "--smoke", "--out",
                    str(tmp_path / "out")], tmp_path)
  assert code == 0, f"{name} --smoke failed (exit {code}):\n{log[-4000:]}"
  assert "|" in log, f"{name} printed no table:\n{log[-2000:]}"


def test_crf_vs_memm_speed_only(tmp_path):
  """`--speed-only` times the heads without training: a throughput table, no F1 table."""
  out = tmp_path / "out"
  code, log = _run([str(ROOT / "experiments" / "crf_vs_memm.py"), "--smoke", "--speed-only",
                    "--out", str(out)], tmp_path)
  if code == MISSING_DATA_EXIT:
    pytest.skip("crf_vs_memm: optional data not installed")
  assert code == 0, log[-4000:]
  result = json.loads((out / "result.json").read_text())
  assert result["extra"]["runs"] == [] and set(result["extra"]["speed_seconds"]) == {"albert1/bimemm", "albert1/crf"}
  report_text = (out / "report.md").read_text()
  assert "throughput" in report_text and "test F1" not in report_text
  assert all(c["holds"] is None for c in result["claims"])
