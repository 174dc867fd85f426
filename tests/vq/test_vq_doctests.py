"""The `Example:` sections of `jaxblog.vq` docstrings run as written."""
import doctest

import pytest

from jaxblog.vq import _ema, _fsq, _grouped, _lfq, _nearest, _quantize, _residual, _rotation


@pytest.mark.parametrize("module", [_quantize, _ema, _residual, _fsq, _lfq, _grouped,
                                    _nearest, _rotation])
def test_docstring_examples(module):
  result = doctest.testmod(module, verbose=False)
  assert result.attempted > 0 and result.failed == 0
