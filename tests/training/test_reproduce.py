"""experiments/reproduce.py: discovery, exit codes and the gathered report."""
import importlib.util
import pathlib

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def reproduce():
  spec = importlib.util.spec_from_file_location("reproduce", ROOT / "experiments" / "reproduce.py")
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module


def _fake_experiment(reproduce, tmp_path, monkeypatch, body):
  (tmp_path / "fake.py").write_text(body)
  monkeypatch.setattr(reproduce, "HERE", tmp_path)
  return reproduce.run_one("fake", tmp_path / "run" / "fake", full=False, seed=0)


def _checking_experiment(check: str) -> str:
  """A fake experiment that asserts `check` (it sees `args` and `os`), then reports."""
  return ("import os, sys\n" f"sys.path.insert(0, {str(ROOT)!r})\n"
          "from jaxblog.training import benchmark, cli, report\n"
          "args = cli.parse_args('fake')\n"
          f"{check}\n"
          "report.write(args.out, title='Fake', claims=[report.Claim('c', '1', '2', True)],\n"
          "             quick=args.quick)\n")


def test_smoke_flag_reaches_the_experiment(reproduce, tmp_path, monkeypatch):
  (tmp_path / "fake.py").write_text(_checking_experiment("assert args.smoke and args.quick, args"))
  monkeypatch.setattr(reproduce, "HERE", tmp_path)
  status, _ = reproduce.run_one("fake", tmp_path / "run" / "fake", False, 0, smoke=True)
  assert status == "ok"
  text = reproduce.gather(tmp_path / "run", {"fake": (status, 1.0)}, smoke=True).read_text()
  assert "| fake | c | 1 | 2 | n/a |" in text and "mode smoke" in text
  with pytest.raises(ValueError, match="exclusive"):
    reproduce.run_one("fake", tmp_path / "x", True, 0, smoke=True)


def test_discovery_skips_benchmarks_and_itself(reproduce):
  names = reproduce.discover()
  assert "mnist_mlp" in names
  assert not any(n.startswith("bench_") or n == "reproduce" for n in names)


def test_statuses_and_report(reproduce, tmp_path, monkeypatch):
  ok_body = (
      "import sys, pathlib\n"
      f"sys.path.insert(0, {str(ROOT)!r})\n"
      "from jaxblog.training import cli, report\n"
      "args = cli.parse_args('fake')\n"
      "report.write(args.out, title='Fake', claims=[report.Claim('c', '1', '2', True)])\n")
  status, _ = _fake_experiment(reproduce, tmp_path, monkeypatch, ok_body)
  assert status == "ok"
  path = reproduce.gather(tmp_path / "run", {"fake": (status, 1.0)})
  text = path.read_text()
  assert "| fake | c | 1 | 2 | yes |" in text and "## Fake" in text

  missing = ("import sys\n" f"sys.path.insert(0, {str(ROOT)!r})\n"
             "from jaxblog.training import cli\ncli.missing_data('pip install x')\n")
  assert _fake_experiment(reproduce, tmp_path, monkeypatch, missing)[0].startswith("skipped")
  failing = "raise RuntimeError('boom')\n"
  assert _fake_experiment(reproduce, tmp_path, monkeypatch, failing)[0].startswith("failed")


def test_experiments_run_under_the_malloc_tunables(reproduce, tmp_path, monkeypatch):
  monkeypatch.delenv("GLIBC_TUNABLES", raising=False)
  (tmp_path / "fake.py").write_text(_checking_experiment(
      "want = benchmark.MALLOC_TUNABLES if os.environ['WANT'] == 'tuned' else None\n"
      "assert os.environ.get('GLIBC_TUNABLES') == want, os.environ.get('GLIBC_TUNABLES')"))
  monkeypatch.setattr(reproduce, "HERE", tmp_path)
  for mode in ("tuned", "default"):
    monkeypatch.setenv("WANT", mode)
    status, _ = reproduce.run_one("fake", tmp_path / mode / "fake", False, 0, malloc=mode)
    assert status == "ok", (mode, (tmp_path / mode / "fake" / "log.txt").read_text())
