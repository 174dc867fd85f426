"""BiDecoderSeq2Seq: teacher inputs, cross-direction causality, one-direction decode."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxblog.models.bidecoder import BiDecoderSeq2Seq, teacher_inputs

START, END = 2, 3


def test_teacher_inputs_layout():
  tgt = jnp.array([[5, 6, 7, 0], [8, 9, 0, 0]])
  l_in, l_out, r_in, r_out = jax.jit(lambda t: teacher_inputs(t, START, END))(tgt)
  np.testing.assert_array_equal(l_in, [[2, 5, 6, 7, 0], [2, 8, 9, 0, 0]])
  np.testing.assert_array_equal(l_out, [[5, 6, 7, 3, 0], [8, 9, 3, 0, 0]])
  np.testing.assert_array_equal(r_in, [[3, 7, 6, 5, 0], [3, 9, 8, 0, 0]])
  np.testing.assert_array_equal(r_out, [[7, 6, 5, 2, 0], [9, 8, 2, 0, 0]])


def _model(cross):
  return BiDecoderSeq2Seq(src_vocab=11, tgt_vocab=13, hidden_size=16, num_heads=2, num_layers=1,
                          num_decoder_layers=2, max_len=6, cross_direction=cross)


@pytest.fixture(scope="module")
def setup():
  r = np.random.default_rng(0)
  src = jnp.asarray(r.integers(2, 11, (3, 5)), jnp.int32).at[2, 3:].set(0)
  l_in = jnp.asarray(r.integers(2, 13, (3, 6)), jnp.int32)
  r_in = jnp.asarray(r.integers(2, 13, (3, 6)), jnp.int32)
  return src, l_in, r_in


def test_cross_direction_attention_is_causal(setup):
  src, l_in, r_in = setup
  model = _model(True)
  params = model.init(jax.random.PRNGKey(0), src, l_in, r_in)
  apply = jax.jit(model.apply)
  base_l, base_r = apply(params, src, l_in, r_in)
  i = 2  # change the R2L input after position i: L2R logits up to i must not move
  moved_l, _ = apply(params, src, l_in, r_in.at[:, i + 1:].set(4))
  np.testing.assert_allclose(moved_l[:, :i + 1], base_l[:, :i + 1], atol=1e-5)
  assert not np.allclose(moved_l[:, i + 1:], base_l[:, i + 1:])
  # and changing the R2L input at or before i does move them (it is seen)
  seen_l, _ = apply(params, src, l_in, r_in.at[:, i].set(5 if r_in[0, i] != 5 else 6))
  assert not np.allclose(seen_l[:, i], base_l[:, i])
  # decode_at picks one position of both directions
  memory, valid = model.apply(params, src, method="encode")
  at_l, at_r = model.apply(params, memory, valid, l_in, r_in, 4, method="decode_at")
  np.testing.assert_allclose(at_l, base_l[:, 4], atol=1e-5)
  np.testing.assert_allclose(at_r, base_r[:, 4], atol=1e-5)


def test_independent_decoders_and_decode_one(setup):
  src, l_in, r_in = setup
  model = _model(False)
  params = model.init(jax.random.PRNGKey(1), src, l_in, r_in)
  base_l, base_r = model.apply(params, src, l_in, r_in)
  other_l, _ = model.apply(params, src, l_in, r_in.at[:, 1:].set(7))
  np.testing.assert_allclose(other_l, base_l, atol=1e-6)
  memory, valid = model.apply(params, src, method="encode")
  for d, want in ((0, base_l), (1, base_r)):
    x = l_in if d == 0 else r_in
    got = model.apply(params, memory, valid, x, d, method="decode_one")
    np.testing.assert_allclose(got, want, atol=1e-5)
  with pytest.raises(ValueError, match="cross_direction=False"):
    crossed = _model(True)
    crossed.apply(crossed.init(jax.random.PRNGKey(0), src, l_in, r_in), memory, valid,
                  l_in, 0, method="decode_one")


def test_transformer_encoder_option(setup):
  """`encoder_config`: memory is the Transformer's hidden states (projected when
  narrower), parameters under `pretrained`, and the vocabulary must agree."""
  from jaxblog.models.config import TransformerConfig
  from jaxblog.models.transformer import Transformer
  src, l_in, r_in = setup
  enc = TransformerConfig(vocab_size=11, hidden_size=24, num_layers=1, num_heads=2,
                          intermediate_size=32, max_position=8)
  model = BiDecoderSeq2Seq(src_vocab=11, tgt_vocab=13, hidden_size=16, num_heads=2,
                           num_decoder_layers=1, max_len=6, encoder_config=enc)
  params = model.init(jax.random.PRNGKey(0), src, l_in, r_in)["params"]
  assert "pretrained" in params and "memory_proj" in params and "src_embed" not in params
  memory, valid = jax.jit(lambda p, s: model.apply({"params": p}, s, method="encode"))(params, src)
  hidden = Transformer(enc).apply({"params": params["pretrained"]}, src, None, src > 0,
                                  method="encode")
  want = hidden @ params["memory_proj"]["kernel"] + params["memory_proj"]["bias"][None, None]
  np.testing.assert_allclose(memory, want, atol=1e-5)
  np.testing.assert_array_equal(valid, src > 0)
  with pytest.raises(ValueError, match="src_vocab"):
    bad = BiDecoderSeq2Seq(src_vocab=12, tgt_vocab=13, hidden_size=16, num_heads=2,
                           max_len=6, encoder_config=enc)
    bad.init(jax.random.PRNGKey(0), src, l_in, r_in)
