"""The shared experiment harness: a few functions, not a framework.

`cli` parses the common flags, `loop.fit` trains data-parallel with
checkpoints and resume, `report` writes the per-experiment result that
`experiments/reproduce.py` gathers. See `experiments/mnist_mlp.py` for the
whole pattern in ~80 lines.
"""
from jaxblog.training import cli, loop, report, sharding

__all__ = ["cli", "loop", "report", "sharding"]
