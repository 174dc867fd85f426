"""Allowed-transition masks for the BIO, BIOES, BIOUL and BMES tag schemes.

Design: the helper works on label *strings* once, outside `jit`, and returns
plain bool arrays (`transitions [K, K]`, `start [K]`, `end [K]`). `constrain`
turns them into score arrays with `-inf` (or any large negative) at forbidden
entries; every CRF function accepts those without NaN values or gradients and
Viterbi never returns a forbidden path. Training and decoding then see the same
constraints (taking constraints into training too is the lesson of
mead-ml/mead-baseline#80).

Label syntax: `"O"` (outside), or a prefix letter optionally followed by a
separator (`-` or `_`) and an entity type: `"B-PER"`, `"I_LOC"`, `"S"`.
BIOUL is BIOES with other letters (`L`ast for `E`nd, `U`nit for `S`ingle).

Example:
  >>> import jax.numpy as jnp
  >>> from jaxblog import crf
  >>> labels = ["O", "B-PER", "I-PER", "L-PER", "U-PER"]
  >>> allowed, first_ok, last_ok = crf.allowed_transitions(labels, "BIOUL")
  >>> bool(allowed[1, 2]), bool(allowed[0, 2]), bool(first_ok[3]), bool(last_ok[1])
  (True, False, False, False)
  >>> transitions = crf.constrain(jnp.zeros((5, 5)), allowed)
  >>> print(transitions[0, 2])
  -inf
"""
from __future__ import annotations

from typing import Sequence

import jax
import jax.numpy as jnp
from jax.typing import ArrayLike
import numpy as np

# For each scheme: prefixes that open/continue/close a span, and single spans.
_SCHEMES = {
    "BIO": dict(begin="B", inside="I", end=None, single=None, outside="O"),
    "BIOES": dict(begin="B", inside="I", end="E", single="S", outside="O"),
    "BIOUL": dict(begin="B", inside="I", end="L", single="U", outside="O"),
    "BMES": dict(begin="B", inside="M", end="E", single="S", outside="O"),
}


def _parse(label: str):
  if label == "O":
    return "O", None
  prefix, rest = label[:1], label[1:]
  if rest[:1] in ("-", "_"):
    rest = rest[1:]
  return prefix, (rest or None)


def allowed_transitions(labels: Sequence[str], scheme: str = "BIO"
                        ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
  """Which transitions, first tags and last tags a tag scheme allows.

  Rules (strict schemes): BIO: `I-x` only after `B-x` or `I-x`; a sequence
  cannot start with `I-x`. BIOES/BIOUL/BMES: a span opened by `B-x`
  continues with `I-x`/`M-x` and closes with `E-x`/`L-x`; `S-x`/`U-x` is a
  one-tag span; after a closed span (or `O`) any `O`, `B-y`, `S-y`/`U-y` may
  follow; the first tag cannot be inside/end, the last tag cannot be
  begin/inside.

  Args:
    labels: the `K` tag names in tag-index order, e.g. `["O", "B-PER", "I-PER"]`.
    scheme: `"BIO"`, `"BIOES"`, `"BIOUL"` or `"BMES"`.

  Returns:
    `(transitions bool [K, K], start bool [K], end bool [K])`, True = allowed;
    `transitions[i, j]` allows tag `i` followed by tag `j`.

  References:
    Su 2020, 《CRF用过了，不妨再了解下更快的MEMM？》,
    https://kexue.fm/archives/7213 (BMES word segmentation, BIO NER);
    allennlp's `allowed_transitions` (BIO, IOB1, BIOUL, BMES).
  """
  if scheme not in _SCHEMES:
    raise ValueError(f"scheme must be one of {sorted(_SCHEMES)}, got {scheme!r}")
  rules = _SCHEMES[scheme]
  parsed = [_parse(str(lab)) for lab in labels]
  known = {v for v in rules.values() if v is not None}
  for lab, (prefix, _) in zip(labels, parsed):
    if prefix not in known:
      raise ValueError(
          f"label {lab!r} does not fit scheme {scheme} (prefixes {sorted(known)})")
  opens = {rules["begin"]}
  continues = {rules["inside"]}
  closes = {rules["end"]} if rules["end"] else set()
  singles = {rules["single"]} if rules["single"] else set()
  k = len(parsed)
  trans = np.zeros((k, k), bool)
  for i, (pi, ti) in enumerate(parsed):
    for j, (pj, tj) in enumerate(parsed):
      if scheme == "BIO":
        ok = pj != rules["inside"] or (pi in opens | continues and ti == tj)
      elif pi in opens | continues:  # inside an open span
        ok = pj in continues | closes and ti == tj
      else:  # outside, or after a closed span
        ok = pj not in continues | closes
      trans[i, j] = ok
  start = np.array([p not in continues | closes for p, _ in parsed], bool)
  if scheme == "BIO":
    end = np.ones((k,), bool)
  else:
    end = np.array([p not in opens | continues for p, _ in parsed], bool)
  return trans, start, end


def constrain(scores: ArrayLike, allowed: ArrayLike,
              value: float = -jnp.inf) -> jax.Array:
  """Sets the scores of forbidden entries to `value`.

  Args:
    scores: float array (transitions `[K, K]`, or `start`/`end` `[K]`).
    allowed: bool array of the same shape (from `allowed_transitions`).
    value: score of a forbidden entry; `-inf` (default) or a large negative.

  Returns:
    `where(allowed, scores, value)`; gradients at forbidden entries are 0.
  """
  if np.shape(scores) != np.shape(allowed):
    raise ValueError(
        f"allowed must have the shape of scores {np.shape(scores)}, got "
        f"{np.shape(allowed)}")
  scores = jnp.asarray(scores)
  return jnp.where(jnp.asarray(allowed), scores, jnp.asarray(value, scores.dtype))
