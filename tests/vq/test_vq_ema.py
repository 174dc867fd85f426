"""EMA codebooks, dead-code restart, k-means init, and cross-device statistics."""
from functools import partial

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.sharding import Mesh, PartitionSpec as P

from jaxblog import vq

# Jitted once per static configuration: the tests run compiled code, not op-by-op.
nearest = jax.jit(vq.nearest, static_argnames=("metric", "chunk_size"))
quantize = jax.jit(vq.quantize, static_argnames=("metric", "gradient", "chunk_size", "axis_name"))
ema_update = jax.jit(vq.ema_update, static_argnames=("decay", "eps", "axis_name"))


def np_ema_update(codebook, cluster, embed, z, idx, decay, eps):
  """Reference of the paper's EMA with Sonnet's Laplace smoothing, in float64."""
  k, d = codebook.shape
  z = z.reshape(-1, d)
  idx = idx.reshape(-1)
  counts = np.bincount(idx, minlength=k).astype(np.float64)
  sums = np.zeros((k, d))
  for i in range(k):
    sums[i] = z[idx == i].sum(0)
  cluster = decay * cluster + (1 - decay) * counts
  embed = decay * embed + (1 - decay) * sums
  n = cluster.sum()
  smoothed = (cluster + eps) / (n + k * eps) * n
  return embed / smoothed[:, None], cluster, embed


def test_ema_init_is_consistent():
  cb = jax.random.normal(jax.random.key(0), (6, 3))
  st = vq.ema_init(cb)
  np.testing.assert_allclose(st.cluster_size, 1.0)
  np.testing.assert_allclose(st.embed_sum, cb)
  st = vq.ema_init(cb, cluster_size=jnp.arange(1.0, 7.0))
  np.testing.assert_allclose(st.embed_sum / st.cluster_size[:, None], cb, rtol=1e-6)
  with pytest.raises(ValueError, match="cluster_size"):
    vq.ema_init(cb, cluster_size=0.0)
  with pytest.raises(TypeError, match="codebook"):
    vq.ema_init(jnp.zeros((3, 2), jnp.int32))


def test_ema_update_matches_numpy_over_several_steps():
  k, d = 8, 4
  cb = jax.random.normal(jax.random.key(1), (k, d))
  st = vq.ema_init(cb)
  ref = (np.asarray(cb, np.float64), np.ones(k), np.asarray(cb, np.float64))
  step = jax.jit(lambda st, z: ema_update(st, z, nearest(z, st.codebook), decay=0.9,
                                             eps=1e-3))
  for t in range(4):
    z = jax.random.normal(jax.random.fold_in(jax.random.key(2), t), (3, 10, d)) + 0.5
    idx = np.asarray(nearest(z, st.codebook))
    st = step(st, z)
    ref = np_ema_update(*ref, np.asarray(z, np.float64), idx, 0.9, 1e-3)
    np.testing.assert_allclose(st.codebook, ref[0], rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(st.cluster_size, ref[1], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(st.embed_sum, ref[2], rtol=1e-5, atol=1e-5)


def test_ema_update_mask_and_errors():
  cb = jax.random.normal(jax.random.key(3), (5, 2))
  z = jax.random.normal(jax.random.key(4), (6, 2))
  idx = nearest(z, cb)
  mask = jnp.asarray([1, 0, 1, 1, 0, 1], bool)
  a = ema_update(vq.ema_init(cb), z, idx, mask=mask)
  b = ema_update(vq.ema_init(cb), z[np.asarray(mask)], idx[np.asarray(mask)])
  np.testing.assert_allclose(a.codebook, b.codebook, rtol=1e-6)
  st = vq.ema_init(cb)
  for bad in (1.0, -0.1, 1.5):
    with pytest.raises(ValueError, match="decay"):
      ema_update(st, z, idx, decay=bad)
  with pytest.raises(ValueError, match="z feature dimension"):
    ema_update(st, z[:, :1], idx)
  with pytest.raises(ValueError, match="indices"):
    ema_update(st, z, idx[:3])
  with pytest.raises(TypeError, match="indices"):
    ema_update(st, z, idx.astype(jnp.float32))


def _far_codebook_data():
  # 4 tight clusters; codes 4..11 sit far away and are never chosen.
  centres = jnp.asarray([[0.0, 0.0], [4.0, 0.0], [0.0, 4.0], [4.0, 4.0]])
  z = centres[jnp.arange(256) % 4] + 0.1 * jax.random.normal(jax.random.key(5), (256, 2))
  cb = jnp.concatenate([centres + 0.3, 50.0 + jnp.arange(16.0).reshape(8, 2)])
  return z, cb


def test_dead_code_restart_revives_codes_and_resets_stats():
  z, cb = _far_codebook_data()
  step = jax.jit(lambda st, z: ema_update(st, z, nearest(z, st.codebook), decay=0.8))
  st = vq.ema_init(cb)
  for _ in range(5):
    st = step(st, z)
  dead = np.asarray(st.cluster_size) < 1.0
  assert dead[4:].all() and not dead[:4].any()
  assert len(np.unique(np.asarray(nearest(z, st.codebook)))) == 4
  new = jax.jit(partial(vq.restart_dead_codes, threshold=1.0))(st, z, jax.random.key(6))
  # live codes untouched; dead codes moved onto distinct batch vectors with reset stats
  np.testing.assert_array_equal(new.codebook[:4], st.codebook[:4])
  np.testing.assert_array_equal(new.cluster_size[:4], st.cluster_size[:4])
  zs = {tuple(r) for r in np.asarray(z).tolist()}
  moved = np.asarray(new.codebook[4:])
  assert all(tuple(r) in zs for r in moved.tolist()) and len({tuple(r) for r in moved}) == 8
  np.testing.assert_allclose(new.cluster_size[4:], 1.0)
  np.testing.assert_allclose(new.embed_sum[4:], moved)
  # revived codes are used and survive the next EMA step (stats were reset)
  after = step(new, z)
  used = np.unique(np.asarray(nearest(z, after.codebook)))
  assert len(used) > 4
  revived = [i for i in range(4, 12) if i in used]
  assert np.all(np.abs(np.asarray(after.codebook)[revived]) < 6.0)


def test_restart_without_stat_reset_would_be_undone():
  """The bug of espnet/espnet#6284: moving the code but keeping m_i, N_i."""
  z, cb = _far_codebook_data()
  st = vq.ema_init(cb)
  for _ in range(5):
    st = ema_update(st, z, nearest(z, st.codebook), decay=0.8)
  good = vq.restart_dead_codes(st, z, jax.random.key(7))
  naive = st._replace(codebook=good.codebook)
  nxt_good = ema_update(good, z, nearest(z, good.codebook), decay=0.8)
  nxt_naive = ema_update(naive, z, nearest(z, naive.codebook), decay=0.8)
  revived = np.intersect1d(np.arange(4, 12), np.asarray(nearest(z, good.codebook)))
  assert len(revived) > 0
  seeds = np.asarray(good.codebook)[revived]
  shift_good = np.linalg.norm(np.asarray(nxt_good.codebook)[revived] - seeds, axis=-1)
  shift_naive = np.linalg.norm(np.asarray(nxt_naive.codebook)[revived] - seeds, axis=-1)
  # with reset statistics the revived codes stay by their seeds ...
  assert shift_good.max() < 0.5
  # ... with stale m_i, N_i the old far-away sums drag them off
  assert shift_naive.mean() > 3.0


def test_reseed_with_mask_and_no_valid_rows():
  z, cb = _far_codebook_data()
  dead = jnp.arange(12) >= 10
  mask = jnp.arange(256) < 3
  out = vq.reseed_codes(cb, dead, z, jax.random.key(8), mask=mask)
  assert {tuple(r) for r in np.asarray(out[10:]).tolist()} <= {tuple(r) for r in np.asarray(z[:3]).tolist()}
  same = vq.reseed_codes(cb, dead, z, jax.random.key(8), mask=jnp.zeros(256, bool))
  np.testing.assert_array_equal(same, cb)


def test_kmeans_init_finds_clusters():
  z, _ = _far_codebook_data()
  cb = jax.jit(partial(vq.kmeans_init, num_codes=4, iters=10))(z, rng=jax.random.key(9))
  centres = np.asarray([[0.0, 0.0], [4.0, 0.0], [0.0, 4.0], [4.0, 4.0]])
  found = np.sort(np.round(np.asarray(cb)).astype(int).view("i8,i8"), axis=0)
  np.testing.assert_array_equal(found, np.sort(centres.astype(int).view("i8,i8"), axis=0))
  with pytest.raises(ValueError, match="num_codes"):
    vq.kmeans_init(z, 0, jax.random.key(0))


def _mesh():
  return Mesh(np.asarray(jax.devices()[:4]), ("data",))


@pytest.mark.multi_device
def test_sharded_ema_restart_kmeans_equal_single_device():
  assert jax.device_count() >= 4
  z, cb = _far_codebook_data()
  z = z + 0.05 * jax.random.normal(jax.random.key(10), z.shape)
  st = vq.ema_init(cb)

  def step(st, z, rng):
    idx = nearest(z, st.codebook)
    st = ema_update(st, z, idx, decay=0.8, axis_name="data")
    return vq.restart_dead_codes(st, z, rng, axis_name="data")

  sharded = jax.jit(jax.shard_map(step, mesh=_mesh(), in_specs=(P(), P("data"), P()),
                                  out_specs=P()))
  single = ema_update(st, z, nearest(z, st.codebook), decay=0.8)
  got = sharded(st, z, jax.random.key(11))
  # live codes: identical to the single-device EMA update
  live = np.asarray(single.cluster_size) >= 1.0
  np.testing.assert_allclose(np.asarray(got.codebook)[live], np.asarray(single.codebook)[live],
                             rtol=1e-5, atol=1e-6)
  np.testing.assert_allclose(got.cluster_size[live], single.cluster_size[live], rtol=1e-5)
  # restarted codes come from the first device's shard, the same on every device
  zs0 = {tuple(r) for r in np.asarray(z[:64]).tolist()}
  assert all(tuple(r) in zs0 for r in np.asarray(got.codebook)[~live].tolist())
  per_device = jax.jit(jax.shard_map(step, mesh=_mesh(), in_specs=(P(), P("data"), P()),
                                     out_specs=P("data"), check_vma=False))
  stacked = per_device(st, z, jax.random.key(11)).codebook.reshape(4, 12, 2)
  for dev in range(1, 4):
    np.testing.assert_array_equal(stacked[dev], stacked[0])
  # synced k-means == k-means on all rows when started from the same centres
  km = jax.jit(jax.shard_map(lambda z: vq.kmeans_init(z, 4, jax.random.key(12), iters=5,
                                                      axis_name="data"),
                             mesh=_mesh(), in_specs=P("data"), out_specs=P()))(z)
  assert km.shape == (4, 2)
  idx = nearest(z, km)
  sums = jax.ops.segment_sum(z, idx, 4) / jnp.bincount(idx, length=4)[:, None]
  np.testing.assert_allclose(km, sums, rtol=1e-4, atol=1e-4)  # a Lloyd fixed point


@pytest.mark.multi_device
def test_pmap_ema_and_perplexity_equal_single_device():
  z = jax.random.normal(jax.random.key(13), (4, 32, 3))
  cb = jax.random.normal(jax.random.key(14), (10, 3))
  st = vq.ema_init(cb)

  def step(st, z):
    res = quantize(z, st.codebook, axis_name="d")
    return ema_update(st, z, res.indices, axis_name="d"), res.perplexity

  new, ppl = jax.pmap(step, axis_name="d", in_axes=(None, 0))(st, z)
  flat = z.reshape(-1, 3)
  want = ema_update(st, flat, nearest(flat, cb))
  for dev in range(4):
    np.testing.assert_allclose(new.codebook[dev], want.codebook, rtol=1e-5, atol=1e-6)
  np.testing.assert_allclose(ppl, quantize(flat, cb).perplexity, rtol=1e-5)
