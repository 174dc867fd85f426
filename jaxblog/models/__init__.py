"""Flax models built on the pure-function core.

Submodules are imported lazily (on first attribute access), so a model file
with heavy or optional dependencies never slows or breaks the others. Import
what you need, e.g. `from jaxblog.models import load_hf_bert, unshare` or
`from jaxblog.models.transformer import Transformer`.
"""
import importlib

_LAZY = {
    # Transformer family (article 6 and 7).
    "TransformerConfig": "jaxblog.models.config",
    "Transformer": "jaxblog.models.transformer",
    "application_mask": "jaxblog.models.transformer",
    "albert_config": "jaxblog.models.albert",
    "unshare": "jaxblog.models.albert",
    "share": "jaxblog.models.albert",
    "load_hf_bert": "jaxblog.models.hf_loader",
    "load_hf_albert": "jaxblog.models.hf_loader",
    "keep_tokens": "jaxblog.models.hf_loader",
    "cached_decoder": "jaxblog.models.generate",
    "EntityLinker": "jaxblog.models.el",
    "NL2SQLModel": "jaxblog.models.nl2sql",
}


def __getattr__(name):
  if name in _LAZY:
    return getattr(importlib.import_module(_LAZY[name]), name)
  raise AttributeError(f"module 'jaxblog.models' has no attribute {name!r}")


def __dir__():
  return sorted(list(globals()) + list(_LAZY))
