"""Path names and regular-expression filters over parameter pytrees.

The reference (bert4keras) selects weights by matching regular expressions
against variable names. Here a leaf's *path name* is `"/".join` of its pytree
keys (dict keys, attribute names, sequence indices in decimal), e.g.
`params/Embed_0/embedding`, and a filter is a sequence of patterns matched
with `re.search`. Patterns are compiled at construction time so a bad regex
is a `ValueError` when the optimizer is built, not mid-training.

References:
  bert4keras `optimizers.py`: `exclude_from_weight_decay` and the other
  name filters use `re.search`; Su, https://kexue.fm/archives/7094.
"""
from __future__ import annotations

import re
from typing import Any, Callable, Sequence

import jax

Patterns = tuple[re.Pattern, ...]


def _key_name(key: Any) -> str:
  if isinstance(key, jax.tree_util.DictKey):
    return str(key.key)
  if isinstance(key, jax.tree_util.GetAttrKey):
    return key.name
  if isinstance(key, jax.tree_util.SequenceKey):
    return str(key.idx)
  if isinstance(key, jax.tree_util.FlattenedIndexKey):
    return str(key.key)
  return str(key)


def path_name(path: Sequence[Any]) -> str:
  """The path name of a leaf: `"/".join` of its keys.

  Args:
    path: a key path as given by `jax.tree_util.tree_map_with_path`.

  Returns:
    e.g. `"params/Dense_0/kernel"` or `"layers/3/bias"`.
  """
  return "/".join(_key_name(k) for k in path)


def compile_patterns(arg: str, patterns: str | Sequence[str]) -> Patterns:
  """Compiles a filter; a single string counts as one pattern.

  Args:
    arg: the argument name, used in error messages.
    patterns: regular expressions (matched with `re.search`).

  Returns:
    The compiled patterns.

  Raises:
    ValueError: a pattern is not a valid regular expression.
    TypeError: a pattern is not a string.
  """
  if isinstance(patterns, str):
    patterns = (patterns,)
  compiled = []
  for p in patterns:
    if isinstance(p, re.Pattern):
      compiled.append(p)
      continue
    if not isinstance(p, str):
      raise TypeError(f"{arg} must be a sequence of regex strings, got {p!r}")
    try:
      compiled.append(re.compile(p))
    except re.error as e:
      raise ValueError(f"{arg}: invalid regular expression {p!r}: {e}") from e
  return tuple(compiled)


def matches(patterns: Patterns, name: str) -> bool:
  """True iff any pattern `re.search`-matches `name`."""
  return any(p.search(name) for p in patterns)


def name_mask(tree: Any, patterns: Patterns) -> Any:
  """A pytree of Python bools: whether each leaf's path name matches.

  Args:
    tree: any pytree (typically params or updates).
    patterns: compiled patterns (see `compile_patterns`).

  Returns:
    A pytree with the structure of `tree` holding `True` where matched.
  """
  return jax.tree_util.tree_map_with_path(
      lambda path, _: matches(patterns, path_name(path)), tree)


def map_with_names(fn: Callable[..., Any], tree: Any, *rest: Any) -> Any:
  """`tree_map` passing the leaf's path name as the first argument."""
  return jax.tree_util.tree_map_with_path(
      lambda path, *xs: fn(path_name(path), *xs), tree, *rest)
