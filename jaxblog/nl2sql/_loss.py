"""The baseline's training loss: four masked cross-entropies, summed unweighted."""
from __future__ import annotations

from typing import Dict, Tuple

import jax
import jax.numpy as jnp

from jaxblog import _checks


def _ce(logits, labels):
  return -jnp.take_along_axis(jax.nn.log_softmax(logits, axis=-1), labels[..., None],
                              axis=-1)[..., 0]


def nl2sql_loss(conn_logits: jax.Array, sel_logits: jax.Array, tag_logits: jax.Array,
                col_logits: jax.Array, conn: jax.Array, sel: jax.Array, tags: jax.Array,
                cols: jax.Array, header_mask: jax.Array, question_mask: jax.Array
                ) -> Tuple[jax.Array, Dict[str, jax.Array]]:
  """Sum of the connector, select, tag and column cross-entropies.

  Masks (Su 2019, https://kexue.fm/archives/6771): select is averaged over
  real headers; the connector over the batch; tags over question units
  (`question_mask`, which excludes `[CLS]`, `[SEP]` and headers); columns over
  question units whose gold tag is not 4. Padded headers get column logit
  -1e10 before the softmax. An empty mask contributes 0, never NaN.

  Args:
    conn_logits: `[B, 3]`.
    sel_logits: `[B, H, 7]`.
    tag_logits: `[B, P, 5]`, P = padded question positions (position 0 = `[CLS]`).
    col_logits: `[B, P, H]`.
    conn: int `[B]`; sel: int `[B, H]`; tags: int `[B, P]`; cols: int `[B, P]`.
    header_mask: bool `[B, H]`, True at real headers.
    question_mask: bool `[B, P]`, True at question units.

  Returns:
    `(loss, {"conn", "sel", "tag", "col"})`, scalars.
  """
  _checks.require_min_rank("conn_logits", conn_logits, 2, "[B, 3]")
  b, h = sel_logits.shape[0], sel_logits.shape[1]
  p = tag_logits.shape[1]
  _checks.require_shape("conn_logits", conn_logits, (b, 3), "[B, 3]")
  _checks.require_shape("sel_logits", sel_logits, (b, h, 7), "[B, H, 7]")
  _checks.require_shape("tag_logits", tag_logits, (b, p, 5), "[B, P, 5]")
  _checks.require_shape("col_logits", col_logits, (b, p, h), "[B, P, H]")
  for name, x, shape in (("conn", conn, (b,)), ("sel", sel, (b, h)), ("tags", tags, (b, p)),
                         ("cols", cols, (b, p))):
    _checks.require_integer(name, x)
    _checks.require_shape(name, x, shape, "matching the logits")
  _checks.require_bool("header_mask", header_mask)
  _checks.require_shape("header_mask", header_mask, (b, h), "[B, H]")
  _checks.require_bool("question_mask", question_mask)
  _checks.require_shape("question_mask", question_mask, (b, p), "[B, P]")

  def mean(values, mask):
    mask = mask.astype(values.dtype)
    return jnp.sum(values * mask) / jnp.maximum(jnp.sum(mask), 1.0)

  col_logits = jnp.where(header_mask[:, None, :], col_logits, -1e10)
  parts = {
      "conn": jnp.mean(_ce(conn_logits, conn)),
      "sel": mean(_ce(sel_logits, sel), header_mask),
      "tag": mean(_ce(tag_logits, tags), question_mask),
      "col": mean(_ce(col_logits, cols), question_mask & (tags != 4)),
  }
  return sum(parts.values()), parts
