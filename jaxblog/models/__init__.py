"""Flax models built on the pure-function core.

Submodules are imported lazily (on first attribute access), so a model file
with heavy or optional dependencies never slows or breaks the others. Import
what you need, e.g. `from jaxblog.models import load_hf_bert, unshare` or
`from jaxblog.models.transformer import Transformer`. The Transformer family
and its mask-decides-the-model design: docs/models.md.
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
    "Classifier": "jaxblog.models.heads",
    "CrfTagger": "jaxblog.models.heads",
    "with_encoder": "jaxblog.models.heads",
    "Attention": "jaxblog.models.layers",
    "Block": "jaxblog.models.layers",
    # Built from the same blocks: tagger (article 8), bidirectional decoder (article 4).
    "Tagger": "jaxblog.models.tagger",
    "TaggerConfig": "jaxblog.models.tagger",
    "BiDecoderSeq2Seq": "jaxblog.models.bidecoder",
    # VQ-VAE and its code prior (article 2); the optimizer articles' small models (article 1).
    "VQVAE": "jaxblog.models.vqvae",
    "CodePrior": "jaxblog.models.code_prior",
    "MLP": "jaxblog.models.mlp",
    "CharClassifier": "jaxblog.models.char_classifier",
    "EntityLinker": "jaxblog.models.el",
    "NL2SQLModel": "jaxblog.models.nl2sql",
}

__all__ = sorted(_LAZY)


def __getattr__(name):
  if name in _LAZY:
    return getattr(importlib.import_module(_LAZY[name]), name)
  raise AttributeError(f"module 'jaxblog.models' has no attribute {name!r}")


def __dir__():
  return sorted(list(globals()) + list(_LAZY))
