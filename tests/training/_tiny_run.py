"""A tiny regression run used by the harness tests (also as a subprocess)."""
import os
import sys

import jax
import jax.numpy as jnp
import numpy as np
import optax

from jaxblog.training import loop

NUM_STEPS = 12


def init_params():
  k1, k2 = jax.random.split(jax.random.key(0))
  return {"w": jax.random.normal(k1, (8, 4)), "b": jnp.zeros((4,)),
          "v": jax.random.normal(k2, (4,))}


def loss_fn(params, batch, rng):
  noise = 0.01 * jax.random.normal(rng, batch["y"].shape)
  pred = jnp.tanh(batch["x"] @ params["w"] + params["b"][None]) @ params["v"]
  loss = jnp.mean((pred - batch["y"] - noise) ** 2)
  return loss, {"abs_err": jnp.mean(jnp.abs(pred - batch["y"]))}


def batch_fn(step):
  rng = np.random.default_rng(step)
  x = rng.normal(size=(16, 8)).astype(np.float32)
  return {"x": x, "y": np.sin(x.sum(-1)).astype(np.float32)}


def run(out_dir=None, mesh=None, kill_at=None, num_steps=NUM_STEPS):
  def maybe_killing_batch_fn(step):
    if kill_at is not None and step == kill_at:
      os.kill(os.getpid(), 9)  # a hard kill: no cleanup, no finally blocks
    return batch_fn(step)

  return loop.fit(params=init_params(), optimizer=optax.adam(1e-2), loss_fn=loss_fn,
                  batch_fn=maybe_killing_batch_fn, num_steps=num_steps, seed=1,
                  out_dir=out_dir, checkpoint_every=4, log_every=2, mesh=mesh,
                  progress=False)


if __name__ == "__main__":
  run(out_dir=sys.argv[1], kill_at=int(sys.argv[2]))
