"""Offline data loaders (files shipped inside installed packages); no model code.

Every data set module has `available()` and `load(...)`, and `load` returns a
`splits.Splits(train, valid, test)`; text is turned into ids with the one
`vocab.Vocab`. Import the module you need, e.g.
`from jaxblog.data import sentiment`. Sources, licences and splits:
docs/data.md.
"""

__all__ = ["char_bert", "headlines", "images", "mnist", "packages", "peoples_daily",
           "pinyin", "sentiment", "splits", "vocab"]
