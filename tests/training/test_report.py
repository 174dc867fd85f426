import json

from jaxblog.training import report


def _claim(holds):
  return report.Claim(claim="x is faster", article="1.5x", ours="1.02x", holds=holds)


def test_quick_run_withholds_every_verdict(tmp_path):
  path = report.write(tmp_path / "q", title="t", claims=[_claim(True), _claim(False)],
                      quick=True, scope="smoke only: too short to time")
  result = json.loads((tmp_path / "q" / "result.json").read_text())
  assert [c["holds"] for c in result["claims"]] == [None, None]
  assert result["quick"] is True and result["scope"].startswith("smoke only")
  text = path.read_text()
  assert "| yes |" not in text and "| no |" not in text and "n/a" in text
  assert "What this run can show" in text and "withheld" in text


def test_full_run_keeps_verdicts(tmp_path):
  report.write(tmp_path / "f", title="t", claims=[_claim(True), _claim(False)])
  result = json.loads((tmp_path / "f" / "result.json").read_text())
  assert [c["holds"] for c in result["claims"]] == [True, False]
