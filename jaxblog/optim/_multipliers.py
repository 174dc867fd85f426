"""Parameter-wise learning-rate multipliers chosen by path name.

bert4keras' `extend_with_parameter_wise_lr` multiplies each weight's step by
the product of the multipliers of every key found in the weight's name (used
for layer-wise learning rates). Here the keys are regular expressions matched
with `re.search` against the leaf's path name, like every other filter in
`jaxblog.optim`, and the multipliers are resolved once per leaf at trace
time: a leaf with multiplier 1 costs nothing, the others one scaling that
fuses with the rest of the update.

`layerwise_lr_decay` builds the usual Transformer recipe on the same
mechanism (ELECTRA / BEiT "layer-wise learning-rate decay"): block `i` of
`L` gets `decay**(L − i)`, the embeddings below block 0 get `decay**(L + 1)`
and everything above (heads, final norms) keeps 1. The block index is read
from the path name by a regular expression whose first group is the index;
the default matches this repository's `layers_{i}` modules.

Both are chain elements that scale whatever reaches them; put them after the
learning-rate scaling (as `derive(..., lr_multipliers=...)` does) so that
weight decay is scaled too, as in the reference.

References:
  bert4keras `extend_with_parameter_wise_lr`; Clark et al. 2020, "ELECTRA:
  Pre-training Text Encoders as Discriminators Rather Than Generators"
  (layer-wise decay); Su, https://kexue.fm/archives/7094 (the derived
  optimizers this extends).
"""
from __future__ import annotations

import math
from typing import Callable, Mapping, Sequence

import optax

from jaxblog.optim import _names

LAYER_PATTERN = r"(?:^|/)layers_(\d+)(?:/|$)"
EMBEDDING_PATTERNS = (r"(?i)embed",)


def _check_factor(arg: str, value: float) -> float:
  try:
    v = float(value)
  except (TypeError, ValueError) as e:
    raise TypeError(f"{arg} must be a number, got {value!r}") from e
  if not math.isfinite(v) or v < 0:
    raise ValueError(f"{arg} must be a finite number >= 0, got {value!r}")
  return v


def _scale_by_fn(multiplier: Callable[[str], float]) -> optax.GradientTransformation:
  """Scales each leaf by `multiplier(path_name)` (a Python float, 1 = untouched)."""

  def init_fn(params):
    del params
    return optax.EmptyState()

  def update_fn(updates, state, params=None):
    del params

    def scale(name, u):
      if u is None:
        return u
      m = multiplier(name)
      return u if m == 1.0 else (u * m).astype(u.dtype)

    return _names.map_with_names(scale, updates), state

  return optax.GradientTransformation(init_fn, update_fn)


def scale_by_name(multipliers: Mapping[str, float]) -> optax.GradientTransformation:
  """Multiplies each leaf's update by the product of its matching multipliers.

  Args:
    multipliers: `{regex: multiplier}`; a leaf is scaled by the product of
      the multipliers of every regex that `re.search`-matches its path name
      (1 when none does), as bert4keras' `paramwise_lr_schedule`.

  Returns:
    An `optax.GradientTransformation` with an empty state; updates keep
    their shapes and dtypes.

  Raises:
    TypeError: `multipliers` is not a mapping or holds a non-number.
    ValueError: an invalid regex or a negative / non-finite multiplier.

  Example:
    >>> import jax.numpy as jnp
    >>> from jaxblog import optim
    >>> tx = optim.scale_by_name({"embedding": 0.1, "layers_0": 0.5, "bias": 2.0})
    >>> u = {"embedding": jnp.ones(2), "layers_0": {"bias": jnp.ones(2)}, "head": jnp.ones(2)}
    >>> out, _ = tx.update(u, tx.init(u))
    >>> [round(float(out[k][0]), 4) for k in ("embedding", "head")]
    [0.1, 1.0]
    >>> float(out["layers_0"]["bias"][0])  # 0.5 for layers_0, times 2 for bias
    1.0

  References:
    bert4keras `extend_with_parameter_wise_lr`.
  """
  if not isinstance(multipliers, Mapping):
    raise TypeError(f"multipliers must be a mapping regex -> multiplier, got {multipliers!r}")
  table = tuple((_names.compile_patterns("multipliers", k)[0],
                 _check_factor(f"multipliers[{k!r}]", v)) for k, v in multipliers.items())

  def multiplier(name: str) -> float:
    m = 1.0
    for pattern, v in table:
      if pattern.search(name):
        m *= v
    return m

  return _scale_by_fn(multiplier)


def layerwise_lr_decay(
    decay: float,
    num_layers: int,
    *,
    layer_pattern: str = LAYER_PATTERN,
    embeddings: str | Sequence[str] = EMBEDDING_PATTERNS,
) -> optax.GradientTransformation:
  """Layer-wise learning-rate decay for a stack of `num_layers` blocks.

  A leaf whose path name matches `layer_pattern` with block index `i`
  (the first group) is scaled by `decay**(num_layers − i)`; a leaf matching
  one of `embeddings` (and no block) by `decay**(num_layers + 1)`; any other
  leaf keeps its update.

  Args:
    decay: the per-layer factor, in (0, 1] for decay towards the input.
    num_layers: L, the number of blocks (indices 0 … L−1).
    layer_pattern: regex whose first group is the decimal block index;
      default `(?:^|/)layers_(\\d+)(?:/|$)` (`…/layers_3/attn/…`).
    embeddings: regexes of the leaves below block 0 (default: names
      containing "embed", any case).

  Returns:
    An `optax.GradientTransformation` with an empty state.

  Raises:
    ValueError: `num_layers < 1`, `decay` not a finite number > 0, a
      pattern without a group, or (at trace time) a block index outside
      `[0, num_layers)`.

  Example:
    >>> import jax.numpy as jnp
    >>> from jaxblog import optim
    >>> tx = optim.layerwise_lr_decay(0.5, num_layers=2)
    >>> u = {"token_embed": jnp.ones(1), "layers_0": jnp.ones(1), "layers_1": jnp.ones(1),
    ...      "head": jnp.ones(1)}
    >>> out, _ = tx.update(u, tx.init(u))
    >>> {k: float(v[0]) for k, v in out.items()}
    {'head': 1.0, 'layers_0': 0.25, 'layers_1': 0.5, 'token_embed': 0.125}

  References:
    Clark et al. 2020 (ELECTRA), layer-wise learning-rate decay; bert4keras
    `extend_with_parameter_wise_lr` (the layer-wise use it was added for).
  """
  decay = _check_factor("decay", decay)
  if decay == 0.0:
    raise ValueError("decay must be > 0, got 0")
  if isinstance(num_layers, bool) or not isinstance(num_layers, int) or num_layers < 1:
    raise ValueError(f"num_layers must be an int >= 1, got {num_layers!r}")
  layer_re = _names.compile_patterns("layer_pattern", layer_pattern)[0]
  if layer_re.groups < 1:
    raise ValueError(
        f"layer_pattern must have a group capturing the layer index, got {layer_pattern!r}")
  below = _names.compile_patterns("embeddings", embeddings)

  def multiplier(name: str) -> float:
    m = layer_re.search(name)
    if m is not None:
      try:
        i = int(m.group(1))
      except (TypeError, ValueError) as e:
        raise ValueError(
            f"layer_pattern group matched {m.group(1)!r} in {name!r}, not an integer") from e
      if not 0 <= i < num_layers:
        raise ValueError(
            f"layerwise_lr_decay: leaf {name!r} has layer index {i}, outside "
            f"[0, num_layers={num_layers})")
      return decay ** (num_layers - i)
    if _names.matches(below, name):
      return decay ** (num_layers + 1)
    return 1.0

  return _scale_by_fn(multiplier)

