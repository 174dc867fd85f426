"""Path names (`"/".join` of the keys) and `re.search` regex filters."""
from typing import NamedTuple

import jax.numpy as jnp
import pytest

from jaxblog.optim import _names


class Pair(NamedTuple):
  fast: jnp.ndarray
  slow: jnp.ndarray


def test_path_names_follow_api_convention():
  tree = {"params": {"Embed_0": {"embedding": 1}}, "layers": [2, {"b": 3}], "p": Pair(4, 5)}
  names = []
  _names.map_with_names(lambda n, x: names.append(n), tree)
  assert sorted(names) == sorted([
      "params/Embed_0/embedding", "layers/0", "layers/1/b", "p/fast", "p/slow"])


def test_name_mask_uses_re_search():
  tree = {"dense": {"kernel": 0, "bias": 0}, "LayerNorm": {"scale": 0}}
  pats = _names.compile_patterns("exclude", ("bias", "Norm"))
  assert _names.name_mask(tree, pats) == {
      "dense": {"kernel": False, "bias": True}, "LayerNorm": {"scale": True}}
  # A single string is one pattern, anchors work.
  pats = _names.compile_patterns("exclude", "^dense/")
  assert _names.name_mask(tree, pats)["dense"] == {"kernel": True, "bias": True}


def test_invalid_regex_is_value_error():
  with pytest.raises(ValueError, match="exclude: invalid regular expression"):
    _names.compile_patterns("exclude", ("(unclosed",))
  with pytest.raises(TypeError, match="exclude"):
    _names.compile_patterns("exclude", (3,))
