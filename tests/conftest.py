"""Test configuration shared by the whole suite.

Rank promotion raises (Equinox habit): an accidental broadcast between a
`[B, T]` and a `[T]` array is a bug here, not a feature.

The data-parallel tests need 4 devices. On CPU the suite asks XLA for 4 host
devices, also when `XLA_FLAGS` is already set for other reasons; where that
does not give 4 devices (a GPU or TPU backend with fewer chips), tests marked
`multi_device` are skipped with the reason instead of failing.
"""
import os

_FLAG = "--xla_force_host_platform_device_count"
if _FLAG not in os.environ.get("XLA_FLAGS", ""):
  os.environ["XLA_FLAGS"] = f"{os.environ.get('XLA_FLAGS', '')} {_FLAG}=4".strip()

import jax  # noqa: E402
import pytest  # noqa: E402

jax.config.update("jax_numpy_rank_promotion", "raise")

NEEDED_DEVICES = 4


def pytest_configure(config):
  config.addinivalue_line(
      "markers", f"multi_device: needs {NEEDED_DEVICES} devices (skipped with a reason otherwise)")


def pytest_collection_modifyitems(config, items):
  del config
  count = jax.device_count()
  if count >= NEEDED_DEVICES:
    return
  skip = pytest.mark.skip(
      reason=f"needs {NEEDED_DEVICES} devices, {jax.default_backend()} backend has {count} "
             f"(on CPU, {_FLAG}=4 in XLA_FLAGS provides them)")
  for item in items:
    if "multi_device" in item.keywords:
      item.add_marker(skip)
