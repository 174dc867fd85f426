"""The `Example:` sections of `jaxblog.optim` docstrings run as written."""
import doctest

import pytest

from jaxblog.optim import (_accumulate, _derive, _ema, _layer_adaptation, _lazy, _lookahead,
                           _multipliers, _schedule, _swa, _weight_decay)

MODULES = [_accumulate, _derive, _ema, _layer_adaptation, _lazy, _lookahead, _multipliers,
           _schedule, _swa, _weight_decay]


@pytest.mark.parametrize("module", MODULES, ids=lambda m: m.__name__)
def test_docstring_examples(module):
  result = doctest.testmod(module, verbose=False, optionflags=doctest.ELLIPSIS)
  assert result.attempted > 0 and result.failed == 0
