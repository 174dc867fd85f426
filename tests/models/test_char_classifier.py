"""CharClassifier: shapes, padding invariance, empty texts, jit."""
import jax
import jax.numpy as jnp
import numpy as np

from jaxblog.models.char_classifier import CharClassifier


def test_padding_is_ignored_and_empty_text_is_finite():
  model = CharClassifier(vocab_size=20, embedding_size=8, hidden_size=16)
  ids = jnp.array([[3, 4, 5, 0, 0], [7, 0, 0, 0, 0], [0, 0, 0, 0, 0]], jnp.int32)
  mask = ids > 0
  params = model.init(jax.random.key(0), ids, mask)
  logits = jax.jit(model.apply)(params, ids, mask)
  assert logits.shape == (3, 2) and np.isfinite(np.asarray(logits)).all()
  # Garbage in padded positions and extra padding change nothing.
  noisy = jnp.where(mask, ids, 9)
  np.testing.assert_allclose(model.apply(params, noisy, mask), logits, rtol=1e-6, atol=1e-6)
  longer = jnp.concatenate([ids, jnp.zeros((3, 4), jnp.int32)], 1)
  np.testing.assert_allclose(model.apply(params, longer, longer > 0), logits, rtol=1e-5,
                             atol=1e-6)
  # Padded positions get no embedding gradient.
  g = jax.grad(lambda p: model.apply(p, noisy, mask).sum())(params)
  np.testing.assert_array_equal(g["params"]["embedding"]["embedding"][9], 0.0)
