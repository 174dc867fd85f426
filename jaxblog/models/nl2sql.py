"""The baseline's four heads on a `Transformer` encoder, and batch features.

`NL2SQLModel` encodes `[CLS] q [SEP] [CLS] h_1 [SEP] …` (all segment ids 0)
and reads four heads off the last hidden states `H` (Su 2019,
https://kexue.fm/archives/6771):

1. connector: `Dense(3)` on `H[0]`;
2. select+aggregation: `Dense(7)` on each header's `[CLS]`, `H[p_j]`
   (classes 0-5 = selected with that aggregation, 6 = not selected);
3. value+operator tags: `Dense(5)` on each question position `0 … P-1`;
4. condition column: `s_ij = w · tanh(A H[i] + B H[p_j])` (A, B: Dense 256
   with bias, w: Dense 1) for question position i and header j.

The encoder is the submodule `encoder`, so pretrained weights go in with
`jaxblog.models.heads.with_encoder`. `featurize` turns generated examples
into fixed-shape padded arrays (inputs, `jaxblog.nl2sql.make_labels`
targets and masks) for `jaxblog.nl2sql.nl2sql_loss`.
"""
from __future__ import annotations

from typing import Callable, Dict, Mapping, Optional, Sequence, Tuple

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from jaxblog import _checks
from jaxblog import nl2sql
from jaxblog.models.config import TransformerConfig
from jaxblog.models.heads import with_encoder
from jaxblog.models.transformer import Transformer


class NL2SQLModel(nn.Module):
  """Encoder + four heads.

  `apply(vars, input_ids [B, T], attention_mask [B, T], header_pos [B, H])`
  returns logits `{"conn": [B, 3], "sel": [B, H, 7], "tag": [B, P, 5],
  "col": [B, P, H]}` (column logits not yet masked; `nl2sql_loss` and
  `probabilities` mask padded headers).

  Attributes:
    config: the encoder's `TransformerConfig` (its `with_mlm` is ignored).
    num_positions: P, the question positions read (`[CLS]` plus up to P-1 units).
    column_width: width of A and B in the column head (256 in the article).
  """
  config: TransformerConfig
  num_positions: int
  column_width: int = 256

  def setup(self):
    if self.num_positions < 1:
      raise ValueError(f"num_positions must be >= 1, got {self.num_positions}")
    init = nn.initializers.normal(self.config.initializer_range)
    self.encoder = Transformer(self.config.replace(with_mlm=False))
    self.conn_out = nn.Dense(3, kernel_init=init)
    self.sel_out = nn.Dense(7, kernel_init=init)
    self.tag_out = nn.Dense(5, kernel_init=init)
    self.col_a = nn.Dense(self.column_width, kernel_init=init)
    self.col_b = nn.Dense(self.column_width, kernel_init=init)
    self.col_w = nn.Dense(1, kernel_init=init)

  def __call__(self, input_ids: jax.Array, attention_mask: jax.Array, header_pos: jax.Array, *,
               deterministic: bool = True) -> Dict[str, jax.Array]:
    _checks.require_integer("header_pos", header_pos)
    if header_pos.ndim != 2 or header_pos.shape[0] != input_ids.shape[0]:
      raise ValueError(f"header_pos must have shape [B, H] with B={input_ids.shape[0]}, "
                       f"got {header_pos.shape}")
    if input_ids.shape[1] < self.num_positions:
      raise ValueError(f"input_ids has length {input_ids.shape[1]} < num_positions="
                       f"{self.num_positions}")
    hidden = self.encoder(input_ids, jnp.zeros_like(input_ids), attention_mask,
                          deterministic=deterministic)
    heads = jnp.take_along_axis(hidden, header_pos[..., None], axis=1)     # [B, H, D]
    question = hidden[:, :self.num_positions]                               # [B, P, D]
    pair = jnp.tanh(self.col_a(question)[:, :, None, :] + self.col_b(heads)[:, None, :, :])
    return {"conn": self.conn_out(hidden[:, 0]), "sel": self.sel_out(heads),
            "tag": self.tag_out(question), "col": self.col_w(pair)[..., 0]}


def probabilities(logits: Mapping[str, jax.Array], header_mask: jax.Array
                  ) -> Dict[str, jax.Array]:
  """Softmax of each head; padded headers get column probability 0."""
  col = jnp.where(header_mask[:, None, :], logits["col"], -1e10)
  return {"conn": jax.nn.softmax(logits["conn"]), "sel": jax.nn.softmax(logits["sel"]),
          "tag": jax.nn.softmax(logits["tag"]), "col": jax.nn.softmax(col)}


def loss_fn(model: NL2SQLModel, dropout: bool = False):
  """`loss(params, batch, rng) -> (loss, parts)` for `jaxblog.training.loop.fit`."""

  def loss(params, batch, rng):
    logits = model.apply({"params": params}, batch["ids"], batch["mask"], batch["header_pos"],
                         deterministic=not dropout, rngs={"dropout": rng} if dropout else None)
    return nl2sql.nl2sql_loss(logits["conn"], logits["sel"], logits["tag"], logits["col"],
                              batch["conn"], batch["sel"], batch["tags"], batch["cols"],
                              batch["header_mask"], batch["question_mask"])

  return loss


Tokenize = Callable[[str], Tuple[Sequence[str] | str, Sequence[int]]]


def featurize(examples: Sequence[Mapping], tables: Mapping[str, Mapping], tokenize: Tokenize, *,
              cls_id: int, sep_id: int, max_len: int, num_positions: int, max_headers: int
              ) -> Tuple[Dict[str, np.ndarray], list]:
  """Padded arrays of the examples that fit, and the units of every question.

  Args:
    examples: `{"question", "table_id", "sql"}` dicts.
    tables: table id -> table.
    tokenize: `tokenize(text) -> (units, ids)`, one id per unit; `units` is
      the string itself for character-level text.
    cls_id: `[CLS]` id.
    sep_id: `[SEP]` id.
    max_len: T; longer inputs are left out (as the reference skips them).
    num_positions: P; questions with P or more units are left out.
    max_headers: H; tables with more headers are left out.

  Returns:
    `(arrays, units)`: arrays `ids`, `mask` `[N, T]`, `header_pos`,
    `header_mask`, `sel` `[N, H]`, `tags`, `cols`, `question_mask` `[N, P]`,
    `conn` `[N]` and `index` `[N]` (the kept examples' indices); `units[i]`
    is the unit sequence of `examples[i]["question"]` (for all examples).
  """
  rows = {k: [] for k in ("ids", "mask", "header_pos", "header_mask", "sel", "tags", "cols",
                          "question_mask", "conn", "index")}
  header_cache: Dict[str, list] = {}
  all_units = []
  for i, e in enumerate(examples):
    table = tables[e["table_id"]]
    units, q_ids = tokenize(e["question"])
    all_units.append(units)
    if e["table_id"] not in header_cache:
      header_cache[e["table_id"]] = [list(tokenize(h)[1]) for h in table["header"]]
    h_ids = header_cache[e["table_id"]]
    ids, _, pos = nl2sql.build_inputs(q_ids, h_ids, cls_id=cls_id, sep_id=sep_id)
    n_h = len(h_ids)
    if len(ids) > max_len or len(units) + 1 > num_positions or n_h > max_headers:
      continue
    lab = nl2sql.make_labels(units, e["sql"], n_h)
    pad = lambda x, n, v=0: np.pad(x, (0, n - len(x)), constant_values=v)
    rows["ids"].append(pad(ids, max_len))
    rows["mask"].append(pad(np.ones(len(ids), bool), max_len, False))
    rows["header_pos"].append(pad(pos, max_headers))
    rows["header_mask"].append(pad(np.ones(n_h, bool), max_headers, False))
    rows["sel"].append(pad(lab.sel, max_headers, 6))
    rows["tags"].append(pad(lab.tags, num_positions, 4))
    rows["cols"].append(pad(lab.cols, num_positions))
    qm = np.zeros(num_positions, bool)
    qm[1:len(units) + 1] = True
    rows["question_mask"].append(qm)
    rows["conn"].append(lab.conn)
    rows["index"].append(i)
  dtypes = {"mask": bool, "header_mask": bool, "question_mask": bool}
  shapes = {"ids": (max_len,), "mask": (max_len,), "header_pos": (max_headers,),
            "header_mask": (max_headers,), "sel": (max_headers,), "tags": (num_positions,),
            "cols": (num_positions,), "question_mask": (num_positions,), "conn": (), "index": ()}
  arrays = {k: np.asarray(v, dtypes.get(k, np.int32)).reshape((len(v),) + shapes[k])
            for k, v in rows.items()}
  return arrays, all_units


def init_params(model: NL2SQLModel, seed: int, max_len: int, max_headers: int,
                encoder_params: Optional[Mapping] = None) -> dict:
  """Random head (and encoder) parameters; the encoder replaced when given."""
  ids = jnp.zeros((1, max_len), jnp.int32)
  params = model.init(jax.random.key(seed), ids, jnp.ones((1, max_len), bool),
                      jnp.zeros((1, max_headers), jnp.int32))["params"]
  if encoder_params is not None:
    params = with_encoder(params, encoder_params)
  return params
