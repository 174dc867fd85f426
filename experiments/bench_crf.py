"""Benchmark jaxblog.crf / jaxblog.memm against pytorch-crf (issue 4).

Same process, interleaved rounds (blocks of 5 calls after one dropped call),
median per function. torch is timed at 1 and
2 threads and the faster is kept. Tables:
1. CRF negative log-likelihood forward+backward and Viterbi vs pytorch-crf at
   (B, T, K) = (32,64,8), (32,128,20), (8,512,20), (64,32,64).
2. Sequential vs parallel (tree) log-partition loss fwd+bwd and Viterbi as T
   grows (B=8, K=20).
3. CRF vs MEMM vs Bi-MEMM loss fwd+bwd, with a lower bound for Bi-MEMM: two
   plain softmax cross-entropies over the same emissions (fixed transition
   rows instead of per-token gathered ones).
XLA temp bytes come from `compile().memory_analysis()`. The machine is shared,
so the 1-minute load average is printed with each table.

Usage: python experiments/bench_crf.py [--quick] [--reps N] [--sections torch,growth,memm]
"""
import argparse
import os
import pathlib
import time

import jax
import jax.numpy as jnp
import numpy as np

from jaxblog import crf, memm

SIZES = [(32, 64, 8), (32, 128, 20), (8, 512, 20), (64, 32, 64)]


def interleaved(fns, reps, block=5):
  """Median milliseconds per function, in round-robin blocks of calls.

  Each round runs every function `block + 1` times back to back and drops
  the first call: torch's OpenMP workers keep spinning for a while after a
  call and would otherwise steal the cores from the next function.
  """
  for f in fns.values():
    f()
  times = {name: [] for name in fns}
  for _ in range(max(1, reps // block)):
    for name, f in fns.items():
      f()
      for _ in range(block):
        t0 = time.perf_counter()
        f()
        times[name].append(time.perf_counter() - t0)
  return {name: 1e3 * float(np.median(v)) for name, v in times.items()}


def temp_mb(fn, *args):
  stats = jax.jit(fn).lower(*args).compile().memory_analysis()
  return stats.temp_size_in_bytes / 2**20 if stats is not None else float("nan")


def table(headers, rows):
  out = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
  out += ["| " + " | ".join(str(c) for c in r) + " |" for r in rows]
  return "\n".join(out)


def load():
  return "load average (1/5/15 min): " + " / ".join(f"{x:.1f}" for x in os.getloadavg())


def problem(b, t, k, seed=0):
  rng = np.random.default_rng(seed)
  lengths = rng.integers(t // 2, t + 1, b)
  lengths[0] = t
  mask = np.arange(t)[None, :] < lengths[:, None]
  return dict(em=rng.normal(size=(b, t, k)).astype(np.float32),
              tags=rng.integers(0, k, (b, t)).astype(np.int32),
              trans=(0.1 * rng.normal(size=(k, k))).astype(np.float32),
              start=(0.1 * rng.normal(size=k)).astype(np.float32),
              end=(0.1 * rng.normal(size=k)).astype(np.float32),
              mask=mask)


def crf_loss(em, tags, trans, start, end, mask, parallel=False):
  return -jnp.sum(crf.log_likelihood(em, tags, trans, mask, start=start, end=end,
                                     parallel=parallel))


def bench_vs_torch(reps, sizes=SIZES):
  import torch
  import torchcrf
  rows = []
  for b, t, k in sizes:
    p = problem(b, t, k)
    args = tuple(jnp.asarray(p[n]) for n in ("em", "tags", "trans", "start", "end", "mask"))
    nll = jax.jit(jax.value_and_grad(crf_loss, argnums=(0, 2, 3, 4)))
    vit = jax.jit(lambda em, trans, start, end, mask: crf.viterbi(
        em, trans, mask, start=start, end=end))
    vargs = (args[0], args[2], args[3], args[4], args[5])
    layer = torchcrf.CRF(k, batch_first=True)
    with torch.no_grad():
      layer.transitions.copy_(torch.from_numpy(p["trans"]))
      layer.start_transitions.copy_(torch.from_numpy(p["start"]))
      layer.end_transitions.copy_(torch.from_numpy(p["end"]))
    t_em = torch.tensor(p["em"], requires_grad=True)
    t_tags = torch.tensor(p["tags"], dtype=torch.long)
    t_mask = torch.tensor(p["mask"])

    def torch_nll(threads):
      def run():
        torch.set_num_threads(threads)
        layer.zero_grad()
        t_em.grad = None
        loss = -layer(t_em, t_tags, t_mask, reduction="sum")
        loss.backward()
      return run

    def torch_decode(threads):
      def run():
        torch.set_num_threads(threads)
        with torch.no_grad():
          layer.decode(t_em, t_mask)
      return run

    # Check agreement before timing.
    with torch.no_grad():
      want = float(-layer(t_em, t_tags, t_mask, reduction="sum"))
    got = float(nll(*args)[0])
    assert abs(got - want) <= 1e-3 * abs(want), (got, want)
    ms = interleaved({
        "jax_nll": lambda: jax.block_until_ready(nll(*args)),
        "torch_nll_1": torch_nll(1), "torch_nll_2": torch_nll(2),
        "jax_vit": lambda: jax.block_until_ready(vit(*vargs)),
        "torch_vit_1": torch_decode(1), "torch_vit_2": torch_decode(2),
    }, reps)
    t_nll = min(ms["torch_nll_1"], ms["torch_nll_2"])
    t_vit = min(ms["torch_vit_1"], ms["torch_vit_2"])
    rows.append([
        f"({b},{t},{k})", f"{ms['jax_nll']:.3f}", f"{t_nll:.2f}",
        f"**{t_nll / ms['jax_nll']:.1f}x**", f"{temp_mb(jax.value_and_grad(crf_loss, argnums=(0, 2, 3, 4)), *args):.2f}",
        f"{ms['jax_vit']:.3f}", f"{t_vit:.2f}", f"**{t_vit / ms['jax_vit']:.1f}x**",
        f"{temp_mb(lambda *a: crf.viterbi(a[0], a[1], a[4], start=a[2], end=a[3]), *vargs):.2f}"])
  torch.set_num_threads(2)
  return table(["(B,T,K)", "NLL fwd+bwd jaxblog ms", "pytorch-crf ms", "speed-up",
                "XLA temp MB", "Viterbi jaxblog ms", "pytorch-crf decode ms",
                "speed-up", "XLA temp MB"], rows)


def bench_growth(reps, lengths, vit_lengths):
  rows = []
  b, k = 8, 20
  for t in lengths:
    p = problem(b, t, k)
    args = tuple(jnp.asarray(p[n]) for n in ("em", "tags", "trans", "start", "end", "mask"))
    seq = jax.value_and_grad(crf_loss, argnums=(0, 2))
    par = jax.value_and_grad(lambda *a: crf_loss(*a, parallel=True), argnums=(0, 2))
    fns = {"seq": jax.jit(seq), "par": jax.jit(par)}
    vit = {}
    if t in vit_lengths:
      for name, flag in (("vseq", False), ("vpar", True)):
        vit[name] = jax.jit(lambda em, trans, mask, flag=flag: crf.viterbi(
            em, trans, mask, parallel=flag))
    timed = {n: (lambda f=f: jax.block_until_ready(f(*args))) for n, f in fns.items()}
    vargs = (args[0], args[2], args[5])
    timed.update({n: (lambda f=f: jax.block_until_ready(f(*vargs))) for n, f in vit.items()})
    ms = interleaved(timed, reps)
    seq_val, par_val = float(fns["seq"](*args)[0]), float(fns["par"](*args)[0])
    assert abs(seq_val - par_val) <= 1e-4 * abs(seq_val), (seq_val, par_val)
    vcols = ["-", "-", "-"]
    if vit:
      vcols = [f"{ms['vseq']:.2f}", f"{ms['vpar']:.2f}", f"{ms['vpar'] / ms['vseq']:.1f}x"]
    rows.append([t, f"{ms['seq']:.2f}", f"{ms['par']:.2f}", f"{ms['par'] / ms['seq']:.1f}x",
                 f"{temp_mb(seq, *args):.1f}", f"{temp_mb(par, *args):.1f}"] + vcols)
  return table(["T", "sequential loss fwd+bwd ms", "parallel (tree) ms", "parallel / sequential",
                "seq temp MB", "par temp MB", "Viterbi seq ms", "Viterbi parallel ms",
                "parallel / sequential"], rows)


def bench_memm(reps, sizes=SIZES):
  rows = []
  for b, t, k in sizes:
    p = problem(b, t, k)
    em, tags, trans, mask = (jnp.asarray(p[n]) for n in ("em", "tags", "trans", "mask"))

    def memm_loss(em, trans, direction):
      return -jnp.sum(memm.log_likelihood(em, tags, trans, mask, direction=direction))

    def softmax_ce(logits):
      gold = jnp.take_along_axis(logits, tags[..., None], axis=-1)[..., 0]
      return -jnp.sum(jnp.where(mask, gold - jax.nn.logsumexp(logits, axis=-1), 0.0))

    fns = {
        "crf": jax.jit(jax.value_and_grad(
            lambda e, tr: -jnp.sum(crf.log_likelihood(e, tags, tr, mask)), argnums=(0, 1))),
        "memm": jax.jit(jax.value_and_grad(lambda e, tr: memm_loss(e, tr, "l2r"), argnums=(0, 1))),
        "bimemm": jax.jit(jax.value_and_grad(lambda e, tr: memm_loss(e, tr, "both"), argnums=(0, 1))),
        # Lower bound for Bi-MEMM: two plain softmax cross-entropies whose
        # logits add one fixed transition row (Bi-MEMM gathers a row per token).
        "two_ce": jax.jit(jax.value_and_grad(
            lambda e, tr: (softmax_ce(e + tr[0]) + softmax_ce(e + tr[:, 0])) / 2, argnums=(0, 1))),
    }
    ms = interleaved({n: (lambda f=f: jax.block_until_ready(f(em, trans))) for n, f in fns.items()}, reps)
    rows.append([f"({b},{t},{k})", f"{ms['crf']:.3f}", f"{ms['memm']:.3f}", f"{ms['bimemm']:.3f}",
                 f"**{ms['crf'] / ms['bimemm']:.1f}x**", f"{ms['two_ce']:.3f}",
                 f"{ms['crf'] / ms['two_ce']:.1f}x"])
  return table(["(B,T,K)", "CRF loss fwd+bwd ms", "MEMM ms", "Bi-MEMM ms",
                "CRF / Bi-MEMM", "2 plain softmax CE ms (bound)", "CRF / bound"], rows)


def main():
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--quick", action="store_true", help="fewer reps, T up to 1024")
  parser.add_argument("--smoke", action="store_true", help="toy sizes, 2 rounds: checks the script runs (the test suite's check)")
  parser.add_argument("--reps", type=int, default=None)
  parser.add_argument("--out", type=pathlib.Path, default=pathlib.Path("runs/bench/crf.md"))
  parser.add_argument("--sections", default="torch,growth,memm",
                      help="comma-separated subset of torch,growth,memm")
  args = parser.parse_args()
  reps = args.reps or (2 if args.smoke else 10 if args.quick else 30)
  lengths = ([64] if args.smoke else [64, 256, 1024] if args.quick else [64, 256, 1024, 4096])
  mode = "smoke" if args.smoke else "quick" if args.quick else "full"
  sizes = SIZES[:1] if args.smoke else SIZES
  parts = [f"# bench_crf ({mode}, {reps} reps, "
           f"jax {jax.__version__}, backend {jax.default_backend()})"]
  sections = set(args.sections.split(","))
  if "torch" in sections:
    try:
      import torchcrf  # noqa: F401
      parts += ["## CRF vs pytorch-crf", load(), bench_vs_torch(reps, sizes)]
    except ImportError:
      parts += ["## CRF vs pytorch-crf", "skipped: pytorch-crf not installed"]
  if "growth" in sections:
    parts += ["## Sequential vs parallel as T grows (B=8, K=20)", load(),
              bench_growth(max(2 if args.smoke else 3, reps // 3), lengths,
                           vit_lengths=lengths if args.smoke else [64, 256, 1024])]
  if "memm" in sections:
    parts += ["## CRF vs MEMM vs Bi-MEMM (loss fwd+bwd)", load(), bench_memm(reps, sizes)]
  parts.append(load())
  text = "\n\n".join(parts) + "\n"
  args.out.parent.mkdir(parents=True, exist_ok=True)
  args.out.write_text(text)
  print(text)


if __name__ == "__main__":
  main()
