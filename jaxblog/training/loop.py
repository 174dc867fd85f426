"""A jitted, data-parallel training loop with checkpoints and exact resume.

Design: the data is a pure function of the step (`batch_fn(step)`) and the
per-step PRNG key is `fold_in(key(seed), step)`, so the training state is
just `(step, params, opt_state)`. Resuming from a checkpoint at step s and
running to the end therefore gives bit-for-bit the parameters of an
uninterrupted run on the same device count.

Non-trainable model state (BatchNorm statistics, EMA codebooks) is passed as
`model_state`; the loss function then also returns the new state, which the
step stores next to the params (and in checkpoints).
"""
from __future__ import annotations

import json
import pathlib
import time
from typing import Any, Callable, Mapping, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

from jaxblog.training import checkpoint, sharding


class TrainState(NamedTuple):
  """What a checkpoint holds: step count, params, optimizer and model state."""
  step: jax.Array
  params: Any
  opt_state: Any
  model_state: Any = None


class FitResult(NamedTuple):
  """Outcome of `fit`.

  Attributes:
    state: the final `TrainState`.
    history: one dict per logged step (`step`, `loss`, aux metrics, eval
      metrics prefixed `eval_`), including entries from before a resume.
    seconds: wall time of this call (excludes what a resumed run did earlier).
    resumed_from: the step restored from a checkpoint, or None.
  """
  state: TrainState
  history: list
  seconds: float
  resumed_from: int | None


LossFn = Callable[[Any, Any, jax.Array], tuple[jax.Array, Mapping[str, jax.Array]]]


def make_train_step(loss_fn: LossFn, optimizer: optax.GradientTransformation, seed: int,
                    stateful: bool = False):
  """Builds `step(state, batch) -> (state, metrics)`, jitted with donation.

  Args:
    loss_fn: `loss_fn(params, batch, rng) -> (loss, aux_dict)`; the loss should
      be a mean over the batch so that data-parallel gradients are exact.
      With `stateful=True`: `loss_fn(params, model_state, batch, rng) ->
      (loss, (aux_dict, new_model_state))`.
    optimizer: any optax transformation.
    seed: base seed of the per-step PRNG keys.
    stateful: whether `loss_fn` takes and returns non-trainable model state.
  """
  base_key = jax.random.key(seed)

  def step(state: TrainState, batch):
    rng = jax.random.fold_in(base_key, state.step)
    if stateful:
      fn = lambda p: loss_fn(p, state.model_state, batch, rng)
      (loss, (aux, model_state)), grads = jax.value_and_grad(fn, has_aux=True)(state.params)
    else:
      (loss, aux), grads = jax.value_and_grad(loss_fn, has_aux=True)(state.params, batch, rng)
      model_state = state.model_state
    updates, opt_state = optimizer.update(grads, state.opt_state, state.params)
    params = optax.apply_updates(state.params, updates)
    metrics = {"loss": loss, **aux}
    return TrainState(state.step + 1, params, opt_state, model_state), metrics

  return jax.jit(step, donate_argnums=0)


def _progress(total: int, initial: int, enabled: bool, desc: str):
  if not enabled:
    return None
  from tqdm.auto import tqdm
  return tqdm(total=total, initial=initial, desc=desc, dynamic_ncols=True,
              mininterval=1.0, unit="step")


def _read_history(path: pathlib.Path, upto: int) -> list:
  if not path.exists():
    return []
  rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
  return [r for r in rows if r["step"] <= upto]


def fit(*, params, optimizer: optax.GradientTransformation, loss_fn: LossFn,
        batch_fn: Callable[[int], Any], num_steps: int, seed: int = 0,
        model_state=None, out_dir: pathlib.Path | None = None, checkpoint_every: int = 0,
        eval_fn: Callable[[Any], Mapping[str, float]] | None = None,
        eval_every: int = 0, eval_weights: Callable[[Any, Any], Any] | None = None,
        log_every: int = 50, mesh=None,
        progress: bool = True, name: str = "train") -> FitResult:
  """Trains `params` for `num_steps` steps; resumes if `out_dir` has a checkpoint.

  Args:
    params: initial parameter pytree.
    optimizer: optax transformation.
    loss_fn: `loss_fn(params, batch, rng) -> (loss, aux)`, or with
      `model_state`: `loss_fn(params, model_state, batch, rng) ->
      (loss, (aux, new_model_state))`.
    batch_fn: `batch_fn(step) -> batch` (numpy pytree, leading axis = batch,
      divisible by the device count); must be deterministic in `step`.
    num_steps: total steps of the run (not of this call).
    seed: seed of the per-step PRNG keys.
    model_state: optional non-trainable state (e.g. Flax `batch_stats`),
      replaced each step by what `loss_fn` returns; final value in
      `result.state.model_state`.
    out_dir: where `<name>_metrics.jsonl` and `<name>_checkpoints/` go; None
      keeps everything in memory (no checkpoints, no resume).
    checkpoint_every: save every this many steps (0: only at the end).
    eval_fn: `eval_fn(params) -> {metric: float}`, run every `eval_every`
      steps and at the end.
    eval_every: evaluate every this many steps (0: only at the end).
    eval_weights: `eval_weights(params, opt_state) -> weights` handed to
      `eval_fn` instead of the params, e.g. the EMA of the weights kept in
      the optimizer state (`lambda p, s: optim.ema_params(s, p)`).
    log_every: fetch metrics to the host every this many steps.
    mesh: a `jax.sharding.Mesh` (default: all devices, see `sharding`).
    progress: show a progress bar (steps/s, loss, ETA).
    name: prefix of the files in `out_dir` (several fits may share a folder).

  Returns:
    A `FitResult`.

  Raises:
    checkpoint.CheckpointError: if a checkpoint exists but does not restore
      into this run's state (it is left untouched).
  """
  if num_steps < 0:
    raise ValueError(f"num_steps must be >= 0, got {num_steps}")
  mesh = sharding.data_mesh() if mesh is None else mesh
  state = sharding.replicate(
      TrainState(jnp.zeros((), jnp.int32), params, optimizer.init(params), model_state), mesh)
  # device_put may alias the caller's arrays, and the step donates its input:
  # copy once so that the caller's params stay usable.
  state = jax.tree_util.tree_map(lambda x: x.copy(), state)
  ckpt = metrics_path = None
  history: list = []
  resumed_from = None
  if out_dir is not None:
    out_dir = pathlib.Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    metrics_path = out_dir / f"{name}_metrics.jsonl"
    ckpt = checkpoint.Checkpointer(out_dir / f"{name}_checkpoints")
    if ckpt.latest_step() is not None:
      state = sharding.replicate(ckpt.restore(state), mesh)
      resumed_from = int(state.step)
    history = _read_history(metrics_path, resumed_from or 0) if resumed_from else []
    # Drop metrics logged after the checkpoint by the interrupted run.
    metrics_path.write_text("".join(json.dumps(r) + "\n" for r in history))

  train_step = make_train_step(loss_fn, optimizer, seed, stateful=model_state is not None)
  start = int(state.step)
  bar = _progress(num_steps, start, progress, name)
  t0 = time.perf_counter()
  pending: list = []

  def flush(step: int, extra: Mapping[str, float] | None = None):
    rows = jax.device_get(pending)
    pending.clear()
    if not rows and not extra:
      return
    row = {"step": step}
    if rows:
      row.update({k: float(np.mean([r[k] for r in rows])) for k in rows[0]})
    if extra:
      row.update({f"eval_{k}": float(v) for k, v in extra.items()})
    history.append(row)
    if metrics_path is not None:
      with metrics_path.open("a") as f:
        f.write(json.dumps(row) + "\n")
    if bar is not None and "loss" in row:
      bar.set_postfix(loss=f"{row['loss']:.4f}")

  def evaluate_state():
    weights = state.params if eval_weights is None else eval_weights(state.params, state.opt_state)
    return eval_fn(weights)

  for step in range(start, num_steps):
    batch = sharding.shard_batch(batch_fn(step), mesh)
    state, metrics = train_step(state, batch)
    pending.append(metrics)
    done = step + 1
    evaluate = eval_fn is not None and (done == num_steps or (eval_every and done % eval_every == 0))
    if done % max(log_every, 1) == 0 or done == num_steps or evaluate:
      flush(done, evaluate_state() if evaluate else None)
    if ckpt is not None and (done == num_steps or (checkpoint_every and done % checkpoint_every == 0)):
      ckpt.save(done, state)
    if bar is not None:
      bar.update(1)
  if eval_fn is not None and start == num_steps and not history:
    flush(num_steps, evaluate_state())
  if bar is not None:
    bar.close()
  if ckpt is not None:
    ckpt.close()
  return FitResult(state, history, time.perf_counter() - t0, resumed_from)
