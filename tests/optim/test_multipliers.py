"""scale_by_name and layerwise_lr_decay: per-leaf multipliers from path names."""
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from jaxblog import optim
from tests.optim._util import assert_trees_close, count_traces, make_params, run


def transformer_like():
  leaf = lambda *s: jnp.ones(s, jnp.float32)
  return {"params": {
      "token_embed": {"embedding": leaf(7, 4)},
      "embed_norm": {"scale": leaf(4)},
      **{f"layers_{i}": {"attn": {"qkv": {"kernel": leaf(4, 12)}}, "ffn_out": {"bias": leaf(4)}}
         for i in range(3)},
      "mlm_head": {"bias": leaf(7)},
  }}


def test_scale_by_name_is_the_product_of_matching_multipliers():
  params = make_params()
  mult = {"kernel": 0.5, "dense": 3.0, "^Norm/": 0.1, r"layers/\d": 2.0, "nothing": 7.0}
  tx = optim.scale_by_name(mult)
  grads = jax.tree.map(lambda p: p * 2.0 + 1.0, params)
  out, _ = jax.jit(tx.update)(grads, tx.init(params))
  expect = {"dense": {"kernel": grads["dense"]["kernel"] * 1.5,
                      "bias": grads["dense"]["bias"] * 3.0},
            "layers": [grads["layers"][0] * 2.0],
            "Norm": {"scale": grads["Norm"]["scale"] * 0.1}}
  assert_trees_close(out, expect, rtol=1e-6)
  assert count_traces(tx, params) == 1


def test_layerwise_decay_on_transformer_names():
  params = transformer_like()
  decay, L = 0.8, 3
  tx = optim.layerwise_lr_decay(decay, L)
  out, _ = jax.jit(tx.update)(params, tx.init(params))
  p = out["params"]
  np.testing.assert_allclose(p["token_embed"]["embedding"], decay ** (L + 1), rtol=1e-6)
  np.testing.assert_allclose(p["embed_norm"]["scale"], decay ** (L + 1), rtol=1e-6)
  for i in range(L):
    np.testing.assert_allclose(p[f"layers_{i}"]["attn"]["qkv"]["kernel"], decay ** (L - i),
                               rtol=1e-6)
    np.testing.assert_allclose(p[f"layers_{i}"]["ffn_out"]["bias"], decay ** (L - i), rtol=1e-6)
  np.testing.assert_allclose(p["mlm_head"]["bias"], 1.0)
  # A user regex for another naming scheme ("blocks/3/...").
  custom = optim.layerwise_lr_decay(0.5, 4, layer_pattern=r"blocks/(\d+)(?:/|$)", embeddings=())
  u = {"blocks": [jnp.ones(2) for _ in range(4)], "wte": jnp.ones(2)}
  out, _ = custom.update(u, custom.init(u))
  assert [float(x[0]) for x in out["blocks"]] == [0.5 ** 4, 0.5 ** 3, 0.5 ** 2, 0.5]
  assert float(out["wte"][0]) == 1.0


def test_derive_multipliers_scale_the_whole_step_including_weight_decay():
  params = make_params()
  mult = {"kernel": 0.25, "layers": 2.0}
  ours, _ = run(optim.derive(optax.scale_by_adam(), 1e-2, weight_decay=0.1,
                             lr_multipliers=mult), params, 6)
  # Reference: one adamw per multiplier group, the lr multiplied.
  def ref_tx(m):
    return optax.adamw(1e-2 * m, weight_decay=0.1)
  labels = jax.tree_util.tree_map_with_path(
      lambda path, _: "k" if "kernel" in jax.tree_util.keystr(path)
      else "l" if "layers" in jax.tree_util.keystr(path) else "o", params)
  ref = optax.multi_transform({"k": ref_tx(0.25), "l": ref_tx(2.0), "o": ref_tx(1.0)}, labels)
  theirs, _ = run(ref, params, 6)
  assert_trees_close(ours[-1], theirs[-1], rtol=1e-5, atol=1e-6)
  # A multiplier transformation is accepted as is.
  ld = optim.derive(optax.scale_by_adam(), 1e-2, lr_multipliers=optim.layerwise_lr_decay(0.9, 1))
  run(ld, {"layers_0": jnp.ones(3), "embed": jnp.ones(3)}, 2)


def test_errors():
  with pytest.raises(TypeError, match="multipliers"):
    optim.scale_by_name(["kernel"])
  with pytest.raises(ValueError, match="multipliers"):
    optim.scale_by_name({"(": 0.5})
  with pytest.raises(ValueError, match="finite"):
    optim.scale_by_name({"a": float("nan")})
  with pytest.raises(ValueError, match="num_layers"):
    optim.layerwise_lr_decay(0.9, 0)
  with pytest.raises(ValueError, match="group"):
    optim.layerwise_lr_decay(0.9, 2, layer_pattern="layers_")
  with pytest.raises(ValueError, match="decay"):
    optim.layerwise_lr_decay(0.0, 2)
  tx = optim.layerwise_lr_decay(0.9, 2)
  u = {"layers_5": jnp.ones(2)}
  with pytest.raises(ValueError, match="layers_5.*outside"):
    tx.update(u, tx.init(u))
