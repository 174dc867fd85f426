"""The `Example:` sections of `jaxblog.crf` and `jaxblog.memm` run as written."""
import doctest
import importlib

import pytest

MODULES = [
    "jaxblog.crf", "jaxblog.crf.forward", "jaxblog.crf.viterbi", "jaxblog.crf.partial",
    "jaxblog.crf.information", "jaxblog.crf.sampling", "jaxblog.crf.constraints",
    "jaxblog.memm",
]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name):
  # importlib: `jaxblog.crf.viterbi` as an attribute is the function, not the module.
  result = doctest.testmod(importlib.import_module(name), verbose=False)
  assert result.attempted > 0 and result.failed == 0
