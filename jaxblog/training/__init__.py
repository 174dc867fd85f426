"""The shared experiment harness: a few functions, not a framework.

`cli` parses the common flags, `batches` makes the `batch_fn` of shuffled
epochs or random draws and evaluates in padded chunks, `loop.fit` trains
data-parallel with checkpoints and resume, `pretrain` MLM-pretrains a small
character Transformer, `report` writes the per-experiment result that
`experiments/reproduce.py` gathers, `metrics` scores generations and spans
(BLEU-4, ROUGE-L, distinct-n, span P/R/F1), `benchmark` times contestants in
interleaved rounds. See `experiments/mnist_mlp.py` for the whole pattern in
~80 lines.
"""
from jaxblog.training import batches, cli, loop, report, sharding

__all__ = ["batches", "benchmark", "checkpoint", "cli", "loop", "metrics", "plots", "pretrain",
           "report", "sharding"]
