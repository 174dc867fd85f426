"""`training.cli`: the flags every experiment shares."""
from __future__ import annotations

import pytest

from jaxblog.training import cli


def test_smoke_implies_quick_and_out_is_created(tmp_path):
  args = cli.parse_args("doc", ["--smoke", "--out", str(tmp_path / "o")])
  assert args.smoke and args.quick and (tmp_path / "o").is_dir()
  args = cli.parse_args("doc", ["--full", "--out", str(tmp_path / "o")])
  assert not args.smoke and not args.quick


def test_subset_keeps_order_and_names_the_flag():
  assert cli.subset("b,a,", ("a", "b", "c"), "tasks") == ("b", "a")
  with pytest.raises(SystemExit, match=r"--tasks: unknown \['x'\]"):
    cli.subset("a,x", ("a", "b"), "tasks")
