"""Code prior (the article's PixelAtt): causality, cached steps, sampling."""
import jax
import jax.numpy as jnp
import numpy as np

from jaxblog.models.code_prior import CodePrior, prior_loss, sample_codes, shift_codes


def _setup():
  model = CodePrior(num_codes=11, grid=(3, 4), hidden_size=16, num_layers=2, num_heads=2,
                    intermediate_size=32)
  codes = jax.random.randint(jax.random.key(0), (5, 3, 4), 0, 11)
  params = model.init(jax.random.key(1), shift_codes(codes, 11))
  return model, codes, params


def test_shift_and_loss():
  model, codes, params = _setup()
  tokens = shift_codes(codes, 11)
  np.testing.assert_array_equal(tokens[:, 0], 11)
  np.testing.assert_array_equal(tokens[:, 1:], codes.reshape(5, -1)[:, :-1])
  logits = jax.jit(model.apply)(params, tokens)
  logp = jax.nn.log_softmax(logits)
  want = -np.mean(np.take_along_axis(np.asarray(logp), np.asarray(codes).reshape(5, 12, 1), -1))
  np.testing.assert_allclose(jax.jit(lambda p, c: prior_loss(model, p, c))(params, codes), want,
                             rtol=1e-5)


def test_causal_and_cached_steps_match_full_forward():
  model, codes, params = _setup()
  tokens = shift_codes(codes, 11)
  apply = jax.jit(model.apply)
  full = apply(params, tokens)
  changed = apply(params, tokens.at[:, 7:].set(3))
  np.testing.assert_allclose(full[:, :7], changed[:, :7], rtol=1e-5, atol=1e-6)
  assert not np.allclose(full[:, 7:], changed[:, 7:])
  cache = model.apply(params, 5, method=CodePrior.init_cache)
  step = jax.jit(lambda p, t, c, i: model.apply(p, t, c, i, method=CodePrior.step))
  for i in range(12):
    logits, cache = step(params, tokens[:, i], cache, jnp.int32(i))
    np.testing.assert_allclose(logits, full[:, i], rtol=1e-4, atol=1e-5)


def test_sampling_through_decoding_sample():
  model, _, params = _setup()
  draw = jax.jit(lambda p, r: sample_codes(model, p, r, 6, top_k=3))
  a, b = draw(params, jax.random.key(4)), draw(params, jax.random.key(4))
  assert a.shape == (6, 3, 4) and a.dtype == jnp.int32
  np.testing.assert_array_equal(a, b)
  assert int(a.min()) >= 0 and int(a.max()) < 11
  # top_k=1 is greedy: each code is the argmax given the sampled prefix
  greedy = jax.jit(lambda p, r: sample_codes(model, p, r, 2, top_k=1))(params, jax.random.key(5))
  logits = jax.jit(model.apply)(params, shift_codes(greedy, 11))
  np.testing.assert_array_equal(np.argmax(logits, -1), np.asarray(greedy).reshape(2, -1))
