"""Test configuration shared by the whole suite.

Rank promotion raises (Equinox habit): an accidental broadcast between a
`[B, T]` and a `[T]` array is a bug here, not a feature.
"""
import os

os.environ.setdefault("XLA_FLAGS", "--xla_force_host_platform_device_count=4")

import jax  # noqa: E402

jax.config.update("jax_numpy_rank_promotion", "raise")
