"""Transformer/ALBERT forward: configs, masks per application, jit, errors."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxblog import masks
from jaxblog.models.transformer import Transformer, application_mask
from jaxblog.models.config import TransformerConfig

TINY = TransformerConfig(vocab_size=50, hidden_size=16, num_layers=2, num_heads=2,
                         intermediate_size=32, max_position=32, with_mlm=True)


def _init(config, length=8, batch=2, seed=0):
  model = Transformer(config)
  ids = jax.random.randint(jax.random.PRNGKey(seed + 1), (batch, length), 1, config.vocab_size)
  variables = jax.jit(model.init)(jax.random.PRNGKey(seed), ids)
  return model, variables, ids


@pytest.fixture(scope="module")
def tiny():
  return _init(TINY)


def test_shapes_and_param_names(tiny):
  model, variables, ids = tiny
  logits = jax.jit(model.apply)(variables, ids)
  assert logits.shape == (2, 8, 50)
  params = variables["params"]
  assert {"token_embed", "position_embed", "segment_embed", "embed_norm", "layers_0",
          "layers_1", "mlm_dense", "mlm_norm", "mlm_bias"} == set(params)
  hidden = model.apply(variables, ids, method=Transformer.encode)
  assert hidden.shape == (2, 8, 16)


def test_albert_factorised_and_shared_shapes():
  config = TINY.replace(embedding_size=8, share_layers=True, num_layers=3)
  model, variables, ids = _init(config)
  params = variables["params"]
  assert params["token_embed"]["embedding"].shape == (50, 8)
  assert params["embed_project"]["kernel"].shape == (8, 16)
  assert params["mlm_dense"]["kernel"].shape == (16, 8)
  assert "block" in params and not any(k.startswith("layers_") for k in params)
  assert model.apply(variables, ids).shape == (2, 8, 50)


def test_application_mask_matches_masks_module():
  valid = jnp.array([[True] * 5 + [False], [True] * 6])
  seg = jnp.array([[0, 0, 1, 1, 1, 0], [0, 0, 0, 1, 1, 1]])
  order = jnp.array([[2, 0, 1, 5, 3, 4], [0, 1, 2, 3, 4, 5]])
  pad = masks.padding(valid)
  np.testing.assert_array_equal(application_mask("encoder", valid),
                                jnp.broadcast_to(pad, (2, 6, 6)))
  np.testing.assert_array_equal(application_mask("lm", valid), masks.combine(masks.causal(6), pad))
  np.testing.assert_array_equal(application_mask("unilm", valid, seg), masks.combine(masks.unilm(seg), pad))
  np.testing.assert_array_equal(application_mask("permutation", valid, order=order),
                                masks.combine(masks.permutation(order), pad))


def _perturb(ids, position, vocab):
  return ids.at[:, position].set((ids[:, position] + 1) % (vocab - 1) + 1)


def test_encoder_is_bidirectional_and_ignores_padding(tiny):
  model, variables, ids = tiny
  apply = jax.jit(model.apply)
  valid = jnp.ones_like(ids).at[:, -2:].set(0)
  base = apply(variables, ids, None, valid)
  # A padded token's content is invisible to the valid positions.
  moved = apply(variables, _perturb(ids, 7, 50), None, valid)
  np.testing.assert_allclose(base[:, :6], moved[:, :6], atol=1e-6)
  # A valid late token changes the first position (bidirectional).
  later = apply(variables, _perturb(ids, 5, 50), None, valid)
  assert np.abs(base[:, 0] - later[:, 0]).max() > 1e-4


def test_lm_is_causal(tiny):
  model, variables, ids = tiny
  apply = jax.jit(lambda v, x: model.apply(v, x, application="lm"))
  base, moved = apply(variables, ids), apply(variables, _perturb(ids, 4, 50))
  np.testing.assert_allclose(base[:, :4], moved[:, :4], atol=1e-6)
  assert np.abs(base[:, 4:] - moved[:, 4:]).max() > 1e-4


def test_unilm_source_bidirectional_target_causal(tiny):
  model, variables, ids = tiny
  seg = jnp.array([[0, 0, 0, 0, 1, 1, 1, 1]] * 2)
  apply = jax.jit(lambda v, x: model.apply(v, x, seg, application="unilm"))
  base = apply(variables, ids)
  tgt = apply(variables, _perturb(ids, 5, 50))  # target token: no effect before it
  np.testing.assert_allclose(base[:, :5], tgt[:, :5], atol=1e-6)
  assert np.abs(base[:, 5:] - tgt[:, 5:]).max() > 1e-4
  src = apply(variables, _perturb(ids, 3, 50))  # last source token: seen by all
  assert np.abs(base[:, 0] - src[:, 0]).max() > 1e-4


def test_permutation_two_forms_agree(tiny):
  """Permutation mask on original order == permuted feed + positions + causal."""
  model, variables, ids = tiny
  order = jnp.stack([jax.random.permutation(jax.random.PRNGKey(i), 8) for i in range(2)])
  by_mask = jax.jit(lambda v, x, o: model.apply(v, x, application="permutation", order=o))(
      variables, ids, order)
  fed = jnp.take_along_axis(ids, order, axis=1)
  by_feed = jax.jit(lambda v, x, p: model.apply(v, x, application="lm", positions=p))(
      variables, fed, order)
  np.testing.assert_allclose(jnp.take_along_axis(by_mask, order[..., None], axis=1), by_feed,
                             atol=1e-5)


def test_fully_masked_row_is_finite(tiny):
  model, variables, ids = tiny
  out = jax.jit(model.apply)(variables, ids, None, jnp.zeros_like(ids))
  assert np.isfinite(np.asarray(out)).all()


def test_dropout_needs_rng_and_changes_output():
  config = TINY.replace(dropout_rate=0.5)
  model, variables, ids = _init(config)
  a = jax.jit(lambda v, x, r: model.apply(v, x, deterministic=False, rngs={"dropout": r}))(
      variables, ids, jax.random.PRNGKey(1))
  b = jax.jit(model.apply)(variables, ids)
  assert np.abs(a - b).max() > 1e-3


def test_bad_inputs(tiny):
  model, variables, ids = tiny
  with pytest.raises(ValueError, match="application must be one of"):
    model.apply(variables, ids, application="seq2seq")
  with pytest.raises(ValueError, match="needs segment_ids"):
    application_mask("unilm", jnp.ones((2, 8), bool))
  with pytest.raises(ValueError, match="needs order"):
    model.apply(variables, ids, application="permutation")
  with pytest.raises(TypeError, match="input_ids"):
    model.apply(variables, ids.astype(jnp.float32))
  with pytest.raises(ValueError, match=r"input_ids must have shape \[B, T\]"):
    model.apply(variables, ids[0])
  with pytest.raises(ValueError, match="segment_ids"):
    model.apply(variables, ids, ids[:, :3])
  with pytest.raises(ValueError, match="max_position"):
    model.apply(variables, jnp.ones((1, 40), jnp.int32))
  with pytest.raises(ValueError, match="no MLM head"):
    Transformer(TINY.replace(with_mlm=False)).apply(
        {"params": {}}, jnp.zeros((1, 16)), method=Transformer.logits)


@pytest.mark.parametrize("field,value,match", [
    ("hidden_size", 15, "divisible"), ("num_layers", 0, "positive"),
    ("activation", "swish", "activation"), ("application", "mlm", "application"),
    ("dropout_rate", 1.0, "dropout_rate")])
def test_config_errors(field, value, match):
  with pytest.raises(ValueError, match=match):
    TINY.replace(**{field: value})
