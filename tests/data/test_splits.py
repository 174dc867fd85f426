import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from jaxblog.data.packages import MissingPackageError, has_package_file, package_file
from jaxblog.data.splits import split_groups, split_indices, take


@settings(max_examples=30, deadline=None)
@given(st.integers(0, 200), st.integers(0, 5))
def test_split_indices_partition(n, seed):
  parts = split_indices(n, seed, valid=0.1, test=0.2)
  joined = np.concatenate(parts)
  assert sorted(joined.tolist()) == list(range(n))
  assert len(parts.valid) == int(n * 0.1) and len(parts.test) == int(n * 0.2)
  again = split_indices(n, seed, valid=0.1, test=0.2)
  assert all(np.array_equal(a, b) for a, b in zip(parts, again))


@settings(max_examples=30, deadline=None)
@given(st.lists(st.sampled_from("abcdefghij"), max_size=60), st.integers(0, 5))
def test_split_groups_keeps_groups_whole(groups, seed):
  parts = split_groups(groups, seed, valid=0.2, test=0.2)
  assert sorted(np.concatenate(parts).tolist()) == list(range(len(groups)))
  seen = [set(take(groups, idx)) for idx in parts]
  assert not (seen[0] & seen[1]) and not (seen[0] & seen[2]) and not (seen[1] & seen[2])


def test_bad_fractions():
  with pytest.raises(ValueError, match="valid and test"):
    split_indices(10, 0, valid=0.6, test=0.5)
  with pytest.raises(ValueError, match="n must be"):
    split_indices(-1, 0)


def test_missing_package_names_it():
  with pytest.raises(MissingPackageError, match="no-such-dist.*requirements-data"):
    package_file("no-such-dist", "x/y.txt")
  assert not has_package_file("no-such-dist", "x")
  with pytest.raises(MissingPackageError, match="not in the installed 'pytest'"):
    package_file("pytest", "pytest/no_such_file.bin")
