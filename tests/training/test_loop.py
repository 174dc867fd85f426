"""The harness: data-parallel equivalence, exact resume after a kill, strict checkpoints."""
import json
import os
import pathlib
import subprocess
import sys

import jax
import numpy as np
import pytest

from jaxblog.training import checkpoint, report, sharding
from tests.training import _tiny_run

ROOT = pathlib.Path(__file__).resolve().parents[2]


def _leaves(tree):
  return [np.asarray(x) for x in jax.tree_util.tree_leaves(tree)]


@pytest.mark.multi_device
def test_four_devices_match_one_device():
  assert jax.device_count() == 4, "conftest forces 4 host devices"
  one = _tiny_run.run(mesh=sharding.data_mesh(jax.devices()[:1]))
  four = _tiny_run.run(mesh=sharding.data_mesh())
  np.testing.assert_allclose([h["loss"] for h in one.history],
                             [h["loss"] for h in four.history], rtol=1e-5, atol=1e-6)
  for a, b in zip(_leaves(one.state.params), _leaves(four.state.params)):
    np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
  batch = sharding.shard_batch(_tiny_run.batch_fn(0), sharding.data_mesh())
  assert len(batch["x"].sharding.device_set) == 4


def test_killed_run_resumes_to_identical_params(tmp_path):
  reference = _tiny_run.run()
  env = dict(os.environ, PYTHONPATH=str(ROOT))
  proc = subprocess.run([sys.executable, "-m", "tests.training._tiny_run", str(tmp_path), "7"],
                        cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
  assert proc.returncode == -9, proc.stderr[-2000:]
  assert checkpoint.Checkpointer(tmp_path / "train_checkpoints").latest_step() == 4
  resumed = _tiny_run.run(out_dir=tmp_path)
  assert resumed.resumed_from == 4
  for a, b in zip(_leaves(reference.state.params), _leaves(resumed.state.params)):
    np.testing.assert_array_equal(a, b)
  steps = [json.loads(l)["step"] for l in (tmp_path / "train_metrics.jsonl").read_text().splitlines()]
  assert steps == sorted(set(steps)) and steps[-1] == _tiny_run.NUM_STEPS
  assert [h["step"] for h in resumed.history] == steps


def test_mismatched_checkpoint_is_an_error_and_left_untouched(tmp_path):
  _tiny_run.run(out_dir=tmp_path, num_steps=4)
  ckpt_dir = tmp_path / "train_checkpoints"
  before = sorted(p.name for p in ckpt_dir.iterdir())
  with pytest.raises(checkpoint.CheckpointError, match="cannot resume|does not match|tree"):
    import optax
    from jaxblog.training import loop
    loop.fit(params={"other": np.zeros((3,), np.float32)}, optimizer=optax.sgd(0.1),
             loss_fn=lambda p, b, r: ((p["other"] ** 2).sum(), {}),
             batch_fn=lambda s: {"x": np.zeros((4, 1), np.float32)}, num_steps=8,
             out_dir=tmp_path, progress=False)
  assert sorted(p.name for p in ckpt_dir.iterdir()) == before


def test_corrupt_checkpoint_is_an_error(tmp_path):
  _tiny_run.run(out_dir=tmp_path, num_steps=4)
  for f in (tmp_path / "train_checkpoints" / "4").rglob("*"):
    if f.is_file() and f.stat().st_size > 0:
      f.write_bytes(b"\0garbage")
  with pytest.raises(checkpoint.CheckpointError, match="cannot resume"):
    _tiny_run.run(out_dir=tmp_path, num_steps=8)


@pytest.mark.multi_device
def test_batch_not_divisible_by_devices():
  with pytest.raises(ValueError, match="divisible by the 4 devices"):
    sharding.shard_batch({"x": np.zeros((6, 2))}, sharding.data_mesh())


def test_report_writes_json_and_markdown(tmp_path):
  from jaxblog.training import plots
  png = plots.plot_curves(tmp_path / "c.png", {"a": ([0, 1], [1.0, 0.5])})
  table = report.markdown_table(["x", "y"], [(1, 0.123456), ("a|b", True)])
  assert "0.1235" in table and "a\\|b" in table
  report.write(tmp_path, title="T", tables={"t": table}, plots=[png.name],
               claims=[report.Claim("c", "1", "2", None)])
  result = json.loads((tmp_path / "result.json").read_text())
  assert result["claims"][0]["holds"] is None and result["plots"] == ["c.png"]
  assert "![c.png](c.png)" in (tmp_path / "report.md").read_text()
  with pytest.raises(ValueError, match="cells"):
    report.markdown_table(["x"], [(1, 2)])


def test_same_seed_same_numbers():
  a, b = _tiny_run.run(), _tiny_run.run()
  assert [h["loss"] for h in a.history] == [h["loss"] for h in b.history]
  for x, y in zip(_leaves(a.state.params), _leaves(b.state.params)):
    np.testing.assert_array_equal(x, y)


def test_model_state_is_carried_and_checkpointed(tmp_path):
  import optax
  from jaxblog.training import loop

  def loss_fn(params, model_state, batch, rng):
    del rng
    mean = 0.5 * model_state["mean"] + 0.5 * batch["x"].mean(0)
    loss = jnp.mean((batch["x"] - params["w"][None]) ** 2)
    return loss, ({}, {"mean": mean, "count": model_state["count"] + 1})

  import jax.numpy as jnp
  kwargs = dict(params={"w": jnp.zeros(3)}, optimizer=optax.sgd(0.1), loss_fn=loss_fn,
                batch_fn=lambda s: {"x": np.full((4, 3), float(s), np.float32)},
                seed=0, model_state={"mean": jnp.zeros(3), "count": jnp.zeros((), jnp.int32)},
                checkpoint_every=2, progress=False)
  full = loop.fit(num_steps=6, **kwargs)
  assert int(full.state.model_state["count"]) == 6
  expected = 0.0
  for s in range(6):
    expected = 0.5 * expected + 0.5 * s
  np.testing.assert_allclose(full.state.model_state["mean"], expected, rtol=1e-6)
  loop.fit(num_steps=4, out_dir=tmp_path, **kwargs)
  resumed = loop.fit(num_steps=6, out_dir=tmp_path, **kwargs)
  assert resumed.resumed_from == 4
  for a, b in zip(_leaves(full.state), _leaves(resumed.state)):
    np.testing.assert_array_equal(a, b)


def test_eval_weights_see_the_optimizer_state():
  import optax

  from jaxblog import optim
  from jaxblog.training import loop

  params = {"w": np.ones((4,), np.float32)}
  tx = optim.derive(optax.scale_by_adam(), 0.1, ema=0.5)
  seen = []

  def eval_fn(weights):
    seen.append(np.asarray(weights["w"]))
    return {"w0": float(weights["w"][0])}

  res = loop.fit(params=params, optimizer=tx,
                 loss_fn=lambda p, b, rng: (jax.numpy.sum(b["x"] @ p["w"]), {}),
                 batch_fn=lambda step: {"x": np.ones((4, 4), np.float32)}, num_steps=4,
                 eval_fn=eval_fn, eval_every=2,
                 eval_weights=lambda p, s: optim.ema_params(s, p), progress=False)
  assert [h["step"] for h in res.history if "eval_w0" in h] == [2, 4]
  final = np.asarray(res.state.params["w"])
  ema = np.asarray(optim.ema_params(res.state.opt_state, res.state.params)["w"])
  np.testing.assert_allclose(seen[-1], ema)
  assert not np.allclose(ema, final)
