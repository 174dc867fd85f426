"""BERT as seq2seq with the UniLM mask: headline <- lead paragraph.

Article: Su 2019, 《从语言模型到Seq2Seq：Transformer如戏，全靠Mask》
https://kexue.fm/archives/6933. No pretrained Chinese BERT ships in any
installed package, so a small character BERT (H=96, 4 layers, 4 heads, FFN
384) is first MLM-pretrained (`jaxblog.training.pretrain`) on the People's
Daily text minus the valid/test pairs' lines. It is then fine-tuned on the
(headline, lead paragraph) pairs of `jaxblog.data.headlines`, `[CLS] lead
[SEP] title [SEP]` with segment ids 0/1 and the UniLM loss (predict each
title token and the final `[SEP]`), four ways: UniLM mask vs a plain causal LM
mask over the same concatenation, each from the pretrained weights and from
scratch, with the same steps and seed. Titles are decoded with
`jaxblog.decoding.beam_search` (beam 3, at least one character) through the
KV-cache decoder and
scored on the test split with character F1 and ROUGE-L (F, over characters).

The article reports only qualitative results (readable titles after ~1000
steps from a real pretrained BERT-base on THUCNews). Quick mode is a smoke
run — a few hundred pretraining and fine-tuning steps of a tiny model on
~1,400 pairs — so its titles are not readable and its numbers decide nothing;
`--full` trains an order of magnitude longer.
"""
from __future__ import annotations

import collections
import dataclasses

import jax
import jax.numpy as jnp
import numpy as np

from jaxblog import decoding
from jaxblog.data import char_bert, headlines
from jaxblog.data.vocab import Vocab
from jaxblog.models.config import TransformerConfig
from jaxblog.models.generate import cached_decoder
from jaxblog.models.objectives import seq2seq_targets, token_cross_entropy
from jaxblog.models.transformer import Transformer
from jaxblog.training import batches, cli, loop, metrics, plots, report
from jaxblog.training.pretrain import pretrain_mlm, warmup_adamw

TITLE_LEN = 24


@dataclasses.dataclass(frozen=True)
class Config:
  """Quick (default) and full settings.

  Attributes:
    pre_steps, pre_batch, pre_len: MLM pretraining steps, windows per batch,
      tokens per window.
    steps, batch: fine-tuning steps and batch size.
    max_len: lead + title tokens (title <= TITLE_LEN - 1 characters).
    beam: beam size of the title decoding.
  """
  pre_steps: int = 200
  pre_batch: int = 32
  pre_len: int = 32
  steps: int = 150
  batch: int = 16
  max_len: int = 64
  beam: int = 3

  @classmethod
  def full(cls) -> "Config":
    return cls(pre_steps=4000, pre_batch=64, pre_len=64, steps=3000, max_len=160)


def scores(pred: str, gold: str) -> tuple:
  """(character F1 over multisets, ROUGE-L F over characters)."""
  if not pred or not gold:
    return 0.0, 0.0
  overlap = sum((collections.Counter(pred) & collections.Counter(gold)).values())
  f1 = 0.0 if overlap == 0 else 2 * overlap / (len(pred) + len(gold))
  return f1, metrics.rouge_l(pred, gold)


def finetune(mask, init, params0, config, train, cfg: Config, seed, out):
  model = Transformer(config)
  ids, seg, valid = train
  batch_fn = batches.random_batches({"ids": ids, "seg": seg, "valid": valid}, cfg.batch, seed)

  def loss_fn(p, b, rng):
    del rng
    logits = model.apply({"params": p}, b["ids"], b["seg"], b["valid"], application=mask)
    targets, weights = seq2seq_targets(b["ids"], b["seg"], b["valid"])
    loss, acc = token_cross_entropy(logits, targets, weights)
    return loss, {"token_accuracy": acc}

  params = jax.tree.map(jnp.copy, params0)  # `loop.fit` donates its parameters
  result = loop.fit(params=params, optimizer=warmup_adamw(5e-4, cfg.steps, cfg.steps // 10),
                    loss_fn=loss_fn, batch_fn=batch_fn, num_steps=cfg.steps, seed=seed,
                    out_dir=out / f"{mask}_{init}", log_every=20, progress=False,
                    name="finetune")
  return result.state.params, result.history, result.seconds


def decode(model, params, vocab, texts, cfg: Config, mask):
  src_len = cfg.max_len - TITLE_LEN - 1
  ids, valid = char_bert.encode(vocab, texts, src_len)

  @jax.jit
  def run(p, ids, valid):
    step_fn, state = cached_decoder(model, {"params": p}, ids, None, valid,
                                    max_new_tokens=TITLE_LEN, application=mask,
                                    target_segment=1)
    seqs, _ = decoding.beam_search(step_fn, state, batch_size=ids.shape[0], beam_size=cfg.beam,
                                   max_len=TITLE_LEN, bos_id=char_bert.CLS,
                                   eos_id=char_bert.SEP, min_len=1)
    return seqs[:, 0]

  return [vocab.decode(row, stop=char_bert.SEP) for row in np.asarray(run(params, ids, valid))]


def main(argv=None):
  def extra(parser):
    parser.add_argument("--pre-steps", type=int, default=None, help="override pretraining steps")
    parser.add_argument("--steps", type=int, default=None, help="override fine-tuning steps")
    parser.add_argument("--max-len", type=int, default=None,
                        help="override the lead+title length in characters")

  args = cli.parse_args(__doc__, argv, extra)
  if not headlines.available():
    cli.missing_data(headlines.INSTALL_HINT)
  cfg = Config() if args.quick else Config.full()
  cfg = dataclasses.replace(cfg, **{k: v for k, v in (
      ("pre_steps", args.pre_steps), ("steps", args.steps), ("max_len", args.max_len)) if v})
  splits = headlines.load(seed=0)
  held = headlines.held_out_lines(splits)
  corpus = [p for i, p in enumerate(headlines.paragraphs()) if i not in held]
  vocab = Vocab.build(corpus, min_count=3)
  config = TransformerConfig(vocab_size=len(vocab), hidden_size=96, num_layers=4, num_heads=4,
                             intermediate_size=384, max_position=cfg.max_len, with_mlm=True)
  pre_params, pre_hist, pre_seconds = pretrain_mlm(
      config, vocab, corpus, steps=cfg.pre_steps, batch=cfg.pre_batch, length=cfg.pre_len,
      lr=2e-3, seed=args.seed, out_dir=args.out)
  scratch = jax.jit(Transformer(config).init)(jax.random.key(args.seed + 1),
                                       jnp.zeros((1, 8), jnp.int32))["params"]
  train = char_bert.encode_pairs(vocab, splits.train.texts, splits.train.titles, cfg.max_len,
                                max_second=TITLE_LEN - 1)

  rows, examples, curves, extra = [], [], {}, {}
  for mask in ("unilm", "lm"):
    for init, params0 in (("pretrained", pre_params), ("scratch", scratch)):
      params, hist, seconds = finetune(mask, init, params0, config, train, cfg, args.seed, args.out)
      preds = decode(Transformer(config), params, vocab, splits.test.texts, cfg, mask)
      f1, rl = np.mean([scores(p, g) for p, g in zip(preds, splits.test.titles)], axis=0)
      rows.append((mask, init, cfg.steps, hist[-1]["loss"], float(100 * f1), float(100 * rl),
                   seconds))
      curves[f"{mask} / {init}"] = ([h["step"] for h in hist], [h["loss"] for h in hist])
      extra[f"{mask}_{init}"] = {"char_f1": float(f1), "rouge_l": float(rl),
                                 "final_loss": hist[-1]["loss"]}
      for i in range(3):
        examples.append((mask, init, splits.test.titles[i], preds[i] or "(empty)"))
  plot = plots.plot_curves(args.out / "finetune_loss.png", curves,
                           title="headline fine-tuning loss (UniLM loss)")
  res = {(r[0], r[1]): r for r in rows}
  unilm_wins = res[("unilm", "pretrained")][5] > res[("lm", "pretrained")][5]
  pre_wins = res[("unilm", "pretrained")][5] > res[("unilm", "scratch")][5]
  decide = None if args.quick else True
  claims = [
      report.Claim("the UniLM mask beats a causal LM over the concatenation",
                   "argued (no number)", f"ROUGE-L {res[('unilm', 'pretrained')][5]:.1f} vs "
                   f"{res[('lm', 'pretrained')][5]:.1f} (pretrained)",
                   None if decide is None else unilm_wins),
      report.Claim("pretrained BERT weights make seq2seq learn much faster",
                   "readable titles after ~1000 steps", f"ROUGE-L "
                   f"{res[('unilm', 'pretrained')][5]:.1f} vs {res[('unilm', 'scratch')][5]:.1f} "
                   f"(scratch) after {cfg.steps} steps",
                   None if decide is None else pre_wins),
  ]
  report.write(
      args.out, title="UniLM seq2seq: headline <- lead paragraph",
      summary=(f"Char BERT (H=96, L=4, vocab {len(vocab)}) MLM-pretrained for {cfg.pre_steps} "
               f"steps of {cfg.pre_batch}x{cfg.pre_len} chars ({pre_seconds:.0f} s; final "
               f"MLM loss {pre_hist[-1]['loss']:.2f}, accuracy "
               f"{pre_hist[-1]['mlm_accuracy']:.2f}) on People's Daily without the valid/test "
               f"pairs. Fine-tuning: {len(splits.train.titles)} train pairs, "
               f"{cfg.steps} steps of batch {cfg.batch}, max length {cfg.max_len} (title "
               f"<= {TITLE_LEN - 1} chars), AdamW 5e-4; beam {cfg.beam} decoding on the "
               f"{len(splits.test.titles)} test pairs. "
               f"{'Quick mode: smoke scale, titles are not expected to be readable.' if args.quick else ''}"),
      tables={"test scores": report.markdown_table(
                  ["mask", "init", "steps", "final train loss", "char F1 %", "ROUGE-L %",
                   "train s"], rows),
              "examples (first test pairs)": report.markdown_table(
                  ["mask", "init", "reference", "generated"], examples)},
      plots=[plot.name], claims=claims, extra=extra)
  for r in rows:
    print(r)


if __name__ == "__main__":
  main()
