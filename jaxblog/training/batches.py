"""Batches for `loop.fit` and batched evaluation: the data plumbing every experiment shares.

`loop.fit` asks for `batch_fn(step)`, a pure function of the step (that is
what makes resuming exact). Two kinds cover the experiments: shuffled epochs
(each epoch a fresh seeded permutation; the remainder that does not fill a
batch is dropped) and independent draws with replacement. `batched` runs a
jitted function over a data set in fixed-size chunks, padding the last one,
so it compiles once whatever the data set size.
"""
from __future__ import annotations

from typing import Any, Callable, Mapping, Sequence, Union

import jax
import numpy as np

Arrays = Mapping[str, np.ndarray]
Seed = Union[int, Sequence[int]]


def _size(data: Arrays) -> int:
  sizes = {len(v) for v in data.values()}
  if len(sizes) != 1:
    raise ValueError(f"data arrays must share their leading axis, got sizes "
                     f"{ {k: len(v) for k, v in data.items()} }")
  return sizes.pop()


def epoch_batches(data: Arrays, batch_size: int, seed: int) -> Callable[[int], dict]:
  """`batch_fn(step)` over shuffled epochs of `data`.

  Epoch `e` is `np.random.default_rng([seed, e]).permutation(n)` cut into
  `n // batch_size` batches (the rest of the epoch is dropped).

  Args:
    data: name -> array, all with the same leading axis `n`.
    batch_size: rows per batch, `1 <= batch_size <= n`.
    seed: seed of the permutations.

  Returns:
    `batch_fn(step) -> {name: array[batch_size, ...]}`; `batch_fn.steps_per_epoch`
    says how many steps make one epoch.
  """
  n = _size(data)
  if not 1 <= batch_size <= n:
    raise ValueError(f"batch_size must be in [1, {n}] (the data size), got {batch_size}")
  steps_per_epoch = n // batch_size

  def batch_fn(step: int) -> dict:
    epoch, i = divmod(step, steps_per_epoch)
    order = np.random.default_rng([seed, epoch]).permutation(n)
    idx = order[i * batch_size:(i + 1) * batch_size]
    return {k: v[idx] for k, v in data.items()}

  batch_fn.steps_per_epoch = steps_per_epoch
  return batch_fn


def random_batches(data: Arrays, batch_size: int, seed: Seed) -> Callable[[int], dict]:
  """`batch_fn(step)` drawing `batch_size` rows with replacement, seeded by `[*seed, step]`.

  `seed` is an int or a sequence of ints (e.g. `(seed, 7)` for a second
  stream of draws with the same run seed).
  """
  entropy = [int(seed)] if np.ndim(seed) == 0 else [int(s) for s in seed]
  n = _size(data)
  if n < 1 or batch_size < 1:
    raise ValueError(f"need data and batch_size >= 1, got {n} rows and batch_size={batch_size}")

  def batch_fn(step: int) -> dict:
    idx = np.random.default_rng([*entropy, step]).integers(0, n, batch_size)
    return {k: v[idx] for k, v in data.items()}

  return batch_fn


def batched(fn: Callable[..., Any], *arrays: np.ndarray, batch_size: int) -> Any:
  """`fn(*chunks)` over consecutive chunks of `arrays`, outputs concatenated along axis 0.

  The last chunk is zero-padded to `batch_size` rows (and its extra output
  rows dropped), so a jitted `fn` compiles once.

  Args:
    fn: maps `batch_size`-row chunks to a pytree of arrays with
      `batch_size` leading rows.
    arrays: inputs sharing their leading axis `n`.
    batch_size: rows per call.

  Returns:
    The pytree of `fn`'s outputs for all `n` rows (NumPy arrays).
  """
  n = len(arrays[0])
  if any(len(a) != n for a in arrays):
    raise ValueError(f"arrays must share their leading axis, got {[len(a) for a in arrays]}")
  if batch_size < 1:
    raise ValueError(f"batch_size must be >= 1, got {batch_size}")
  outs = []
  for start in range(0, n, batch_size):
    rows = min(batch_size, n - start)
    chunk = [np.asarray(a[start:start + rows]) for a in arrays]
    chunk = [np.pad(c, [(0, batch_size - rows)] + [(0, 0)] * (c.ndim - 1)) for c in chunk]
    outs.append(jax.tree.map(lambda x, rows=rows: np.asarray(x)[:rows], fn(*chunk)))
  if not outs:
    raise ValueError("batched needs at least one row")
  return jax.tree.map(lambda *xs: np.concatenate(xs), *outs)
