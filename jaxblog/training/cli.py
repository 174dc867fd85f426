"""Common command-line flags of every experiment script."""
from __future__ import annotations

import argparse
import pathlib
import sys
import time

MISSING_DATA_EXIT = 3


def parse_args(description: str | None, argv=None, extra=None) -> argparse.Namespace:
  """Parses `--smoke/--quick/--full`, `--out` and `--seed`.

  `--smoke` is the toy size the test suite runs every experiment at (seconds
  each, so an experiment cannot break unnoticed); it implies `quick`, so no
  verdict is printed from it.

  Args:
    description: the script's docstring (shown by `--help`).
    argv: arguments to parse (default `sys.argv[1:]`).
    extra: optional callable `extra(parser)` adding script-specific flags.

  Returns:
    Namespace with `quick` (bool, default True), `smoke` (bool, default
    False; `smoke` implies `quick`), `out` (an existing `pathlib.Path`),
    `seed` (int) and any extra flags.
  """
  parser = argparse.ArgumentParser(
      description=description, formatter_class=argparse.RawDescriptionHelpFormatter)
  mode = parser.add_mutually_exclusive_group()
  mode.add_argument("--quick", dest="quick", action="store_true", default=True,
                    help="small, fast run (default)")
  mode.add_argument("--full", dest="quick", action="store_false",
                    help="the full-size run")
  mode.add_argument("--smoke", action="store_true", default=False,
                    help="toy size, seconds: checks that the script runs end to end")
  parser.add_argument("--out", type=pathlib.Path, default=None,
                      help="output folder (default runs/<script>/<timestamp>)")
  parser.add_argument("--seed", type=int, default=0)
  if extra is not None:
    extra(parser)
  args = parser.parse_args(argv)
  if args.smoke:
    args.quick = True
  if args.out is None:
    script = pathlib.Path(sys.argv[0]).stem or "experiment"
    args.out = pathlib.Path("runs") / script / time.strftime("%Y%m%d-%H%M%S")
  args.out.mkdir(parents=True, exist_ok=True)
  return args


def missing_data(install_hint: str) -> None:
  """Reports a missing optional data package in one line and exits with code 3."""
  print(f"missing optional data: install it with `{install_hint}`", file=sys.stderr)
  raise SystemExit(MISSING_DATA_EXIT)


def subset(value: str, allowed, flag: str) -> tuple:
  """`"a,b"` -> `("a", "b")`, each checked against `allowed`.

  Raises:
    SystemExit: naming `flag` and the allowed values, when an item is unknown.
  """
  items = tuple(x for x in value.split(",") if x)
  unknown = sorted(set(items) - set(allowed))
  if unknown:
    raise SystemExit(f"--{flag}: unknown {unknown}; choose from {tuple(allowed)}")
  return items
