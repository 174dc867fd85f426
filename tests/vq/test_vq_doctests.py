"""The `Example:` sections of `jaxblog.vq` docstrings run as written."""
import doctest

import pytest

from jaxblog.vq import _ema, _quantize


@pytest.mark.parametrize("module", [_quantize, _ema])
def test_docstring_examples(module):
  result = doctest.testmod(module, verbose=False)
  assert result.attempted > 0 and result.failed == 0
