"""ALBERT as a `Transformer` configuration, and the "one line" that unshares it.

ALBERT differs from BERT in two configuration fields: a small
embedding width `E` with an `E -> H` projection (`embedding_size`), and one
block applied `L` times (`share_layers=True`, parameters under `block`).
`unshare` turns those variables into a BERT-layout tree with an independent
copy of the block per layer (`layers_0 … layers_{L-1}`), so
`Transformer(config.replace(share_layers=False))` computes exactly the same function
before training and then trains each layer on its own — Su's "fine-tune ALBERT
as BERT". `share` is the reverse, for analysis (layer 0, or the mean over
layers to see how far fine-tuning moved the copies apart).

References: Su 2020, "抛开约束，增强模型：一行代码提升albert表现",
https://kexue.fm/archives/7187; pretrained weights: `load_hf_albert`.
"""
from __future__ import annotations

import re
from typing import Any, Mapping

import jax
import jax.numpy as jnp

from jaxblog.models.config import TransformerConfig

_LAYER = re.compile(r"^layers_(\d+)$")


def albert_config(vocab_size: int, *, hidden_size: int = 312, num_layers: int = 4,
                  num_heads: int = 12, intermediate_size: int = 1248,
                  embedding_size: int = 128, **kwargs) -> TransformerConfig:
  """An ALBERT configuration (defaults: albert_tiny_zh's shape).

  Args:
    vocab_size: number of token ids.
    hidden_size, num_layers, num_heads, intermediate_size, embedding_size:
      the block and factorised-embedding sizes.
    **kwargs: any other `TransformerConfig` field.

  Returns:
    a `TransformerConfig` with `share_layers=True`.
  """
  return TransformerConfig(vocab_size=vocab_size, hidden_size=hidden_size,
                           num_layers=num_layers, num_heads=num_heads,
                           intermediate_size=intermediate_size,
                           embedding_size=embedding_size, share_layers=True, **kwargs)


def _check_layers(num_layers):
  if not isinstance(num_layers, int) or isinstance(num_layers, bool) or num_layers < 1:
    raise ValueError(f"num_layers must be a positive int, got {num_layers!r}")


def unshare(variables: Mapping[str, Any], num_layers: int) -> dict:
  """ALBERT shared-block variables -> one independent copy per layer.

  Args:
    variables: a variables dict (e.g. `{'params': {...}}`) of a
      `share_layers=True` model; every collection holding a `block` entry is
      rewritten.
    num_layers: `L`, the number of copies (the config's `num_layers`).

  Returns:
    a new variables dict where each `block` became `layers_0 … layers_{L-1}`
    (fresh arrays, so donating or updating one leaves the others intact),
    for `Transformer(config.replace(share_layers=False))`.

  References: https://kexue.fm/archives/7187 (the weight copy).
  """
  _check_layers(num_layers)
  found = False
  out = {}
  for collection, tree in variables.items():
    tree = dict(tree)
    if "block" in tree:
      found = True
      block = tree.pop("block")
      for i in range(num_layers):
        tree[f"layers_{i}"] = jax.tree.map(jnp.copy, block)
    out[collection] = tree
  if not found:
    raise ValueError("unshare: no 'block' entry in any collection of variables (top-level "
                     f"keys: {[sorted(t) for t in variables.values()]}); is this a "
                     "share_layers=True model?")
  return out


def share(variables: Mapping[str, Any], *, reduce: str = "first") -> dict:
  """The reverse of `unshare`: per-layer variables -> one shared `block`.

  Args:
    variables: variables of a `share_layers=False` model.
    reduce: `first` (take layer 0, the exact inverse of `unshare`) or `mean`
      (average the layers).

  Returns:
    variables for a `share_layers=True` model of the same sizes.

  References: https://kexue.fm/archives/7187.
  """
  if reduce not in ("first", "mean"):
    raise ValueError(f"reduce must be 'first' or 'mean', got {reduce!r}")
  found = False
  out = {}
  for collection, tree in variables.items():
    layers = {int(m.group(1)): v for k, v in tree.items() if (m := _LAYER.match(k))}
    rest = {k: v for k, v in tree.items() if not _LAYER.match(k)}
    if layers:
      found = True
      if sorted(layers) != list(range(len(layers))):
        raise ValueError(f"share: layers must be numbered 0..L-1, got {sorted(layers)}")
      stacked = [layers[i] for i in range(len(layers))]
      if reduce == "first":
        rest["block"] = stacked[0]
      else:
        rest["block"] = jax.tree.map(lambda *xs: jnp.mean(jnp.stack(xs), axis=0), *stacked)
    out[collection] = rest
  if not found:
    raise ValueError("share: no 'layers_<i>' entries in any collection of variables")
  return out
