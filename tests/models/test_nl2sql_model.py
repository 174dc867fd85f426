"""Tests for jaxblog.models.nl2sql: head shapes, the column head formula, features, overfitting."""
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from jaxblog import nl2sql
from jaxblog.models.config import TransformerConfig
from jaxblog.models.nl2sql import NL2SQLModel, featurize, init_params, loss_fn, probabilities
from jaxblog.models.transformer import Transformer

TABLE = {"id": "t", "header": ["城市", "人口"], "types": ["text", "real"],
         "rows": [["北京", 21.0], ["上海", 24.0], ["广州", 15.0]]}
EXAMPLES = [
    {"question": "北京的人口是多少？", "table_id": "t",
     "sql": {"sel": [1], "agg": [0], "cond_conn_op": 0, "conds": [[0, 2, "北京"]]}},
    {"question": "人口大于15或城市是上海的城市有几个？", "table_id": "t",
     "sql": {"sel": [0], "agg": [4], "cond_conn_op": 2, "conds": [[1, 0, "15"], [0, 2, "上海"]]}},
]
CHARS = sorted({c for e in EXAMPLES for c in e["question"]} | set("城市人口"))
VOCAB = {c: i + 3 for i, c in enumerate(CHARS)}
CONFIG = TransformerConfig(vocab_size=len(VOCAB) + 3, hidden_size=32, num_layers=2, num_heads=2,
                           intermediate_size=64, max_position=64)
T, P, H = 48, 24, 3


def tokenize(text):
  return text, [VOCAB.get(c, 0) for c in text]


def features():
  return featurize(EXAMPLES, {"t": TABLE}, tokenize, cls_id=1, sep_id=2, max_len=T,
                   num_positions=P, max_headers=H)


def test_featurize_layout_and_labels():
  arrays, units = features()
  assert arrays["ids"].shape == (2, T) and arrays["tags"].shape == (2, P)
  assert units[0] == EXAMPLES[0]["question"]
  q = EXAMPLES[0]["question"]
  assert arrays["ids"][0, :len(q) + 2].tolist() == [1] + tokenize(q)[1] + [2]
  assert arrays["header_pos"][0].tolist() == [len(q) + 2, len(q) + 6, 0]
  assert arrays["header_mask"][0].tolist() == [True, True, False]
  assert arrays["sel"][1].tolist() == [4, 6, 6] and arrays["conn"].tolist() == [0, 2]
  assert arrays["tags"][0, :4].tolist() == [4, 2, 2, 4]
  assert arrays["question_mask"][0].sum() == len(q) and not arrays["question_mask"][0, 0]
  short, _ = featurize(EXAMPLES, {"t": TABLE}, tokenize, cls_id=1, sep_id=2, max_len=20,
                       num_positions=P, max_headers=H)
  assert short["index"].tolist() == [0]


def test_heads_shapes_and_column_formula():
  arrays, _ = features()
  model = NL2SQLModel(CONFIG, num_positions=P, column_width=8)
  params = init_params(model, 0, T, H)
  out = jax.jit(model.apply)({"params": params}, arrays["ids"], arrays["mask"],
                             arrays["header_pos"])
  assert {k: v.shape for k, v in out.items()} == {"conn": (2, 3), "sel": (2, H, 7),
                                                   "tag": (2, P, 5), "col": (2, P, H)}
  hidden = Transformer(CONFIG).apply({"params": params["encoder"]}, arrays["ids"],
                                     jnp.zeros_like(arrays["ids"]), arrays["mask"])
  a = hidden[0, 3] @ params["col_a"]["kernel"] + params["col_a"]["bias"]
  hp = hidden[0, arrays["header_pos"][0, 1]]
  b = hp @ params["col_b"]["kernel"] + params["col_b"]["bias"]
  s = jnp.tanh(a + b) @ params["col_w"]["kernel"][:, 0] + params["col_w"]["bias"][0]
  np.testing.assert_allclose(out["col"][0, 3, 1], s, rtol=1e-4, atol=1e-5)
  probs = probabilities(out, arrays["header_mask"])
  assert np.allclose(probs["col"][0, :, 2], 0.0)
  with pytest.raises(ValueError, match="header_pos"):
    model.apply({"params": params}, arrays["ids"], arrays["mask"], arrays["header_pos"][:1])


def test_pretrained_encoder_goes_in():
  model = NL2SQLModel(CONFIG, num_positions=P, column_width=8)
  enc = Transformer(CONFIG).init(jax.random.key(5), jnp.zeros((1, 4), jnp.int32))["params"]
  params = init_params(model, 0, T, H, encoder_params=enc)
  assert params["encoder"] is enc


@pytest.mark.slow
def test_overfits_two_examples_and_decodes_them():
  arrays, units = features()
  model = NL2SQLModel(CONFIG, num_positions=P, column_width=16)
  params = init_params(model, 0, T, H)
  opt = optax.adam(3e-3)
  loss = loss_fn(model)
  batch = {k: v for k, v in arrays.items() if k != "index"}

  @jax.jit
  def step(params, state):
    (value, _), grads = jax.value_and_grad(loss, has_aux=True)(params, batch, None)
    updates, state = opt.update(grads, state, params)
    return optax.apply_updates(params, updates), state, value

  state = opt.init(params)
  for _ in range(150):
    params, state, value = step(params, state)
  assert value < 0.05
  out = probabilities(model.apply({"params": params}, arrays["ids"], arrays["mask"],
                                  arrays["header_pos"]), arrays["header_mask"])
  for i, e in enumerate(EXAMPLES):
    q = units[i]
    pred = nl2sql.decode_sql(np.asarray(out["conn"][i]), np.asarray(out["sel"][i, :2]),
                             np.asarray(out["tag"][i, :len(q) + 1]),
                             np.asarray(out["col"][i, :len(q) + 1, :2]), q, TABLE)
    assert nl2sql.logic_form_match(pred, e["sql"]), (pred, e["sql"])
