"""Loss/metric curves as PNG (matplotlib, headless)."""
from __future__ import annotations

import pathlib
from typing import Mapping, Sequence


def plot_curves(path: pathlib.Path, curves: Mapping[str, tuple[Sequence[float], Sequence[float]]],
                *, title: str = "", xlabel: str = "step", ylabel: str = "loss",
                logy: bool = False) -> pathlib.Path:
  """Draws named `(x, y)` curves on one axis and saves a PNG.

  Args:
    path: output PNG file.
    curves: label -> (xs, ys).
    title, xlabel, ylabel: axis text.
    logy: logarithmic y axis.
  """
  import matplotlib
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt

  fig, ax = plt.subplots(figsize=(6, 4), dpi=100)
  for label, (xs, ys) in curves.items():
    ax.plot(list(xs), list(ys), label=label)
  ax.set_title(title)
  ax.set_xlabel(xlabel)
  ax.set_ylabel(ylabel)
  if logy:
    ax.set_yscale("log")
  if curves:
    ax.legend()
  ax.grid(alpha=0.3)
  fig.tight_layout()
  path = pathlib.Path(path)
  fig.savefig(path)
  plt.close(fig)
  return path
