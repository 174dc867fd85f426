"""Offline data loaders (files shipped inside PyPI/Debian packages); no model code."""
