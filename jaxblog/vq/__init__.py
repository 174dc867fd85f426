"""Vector quantization for VQ-VAEs (《VQ-VAE的简明介绍：量子化自编码器》), as pure JAX functions.

The article's quantizer: `nearest`, `straight_through`, `quantize` (both
losses), and the paper's EMA codebook (`ema_init`, `ema_update`). Around it:
cosine codebooks (`metric="cosine"`), the rotation trick (`rotation_trick`,
`quantize(..., gradient="rotation")`), k-means initialisation
(`kmeans_init`), dead-code restart that also resets the EMA statistics
(`restart_dead_codes`, `reseed_codes`), residual VQ (`residual_quantize`),
grouped / multi-head VQ (`grouped_quantize`), a low-dimensional codebook
behind projections (`projected_quantize`), and the codebook-free quantizers
FSQ (`fsq`, `residual_fsq`) and LFQ (`lfq`) with their index conversions.
Every quantizer reports `perplexity` and `usage` (fraction of codes used),
and takes `axis_name` so statistics are `psum`-ed across devices.

Nothing here builds an `[N, K, D]` tensor, and `nearest` bounds the `[N, K]`
score matrix to one chunk (see `_nearest.py`).

References:
  Su 2019, https://kexue.fm/archives/6760; van den Oord et al. 2017,
  "Neural Discrete Representation Learning" (arXiv:1711.00937).
"""
from jaxblog.vq._ema import EMAState, ema_init, ema_update
from jaxblog.vq._fsq import (FSQResult, fsq, fsq_codes_to_indices, fsq_indices_to_codes,
                             residual_fsq)
from jaxblog.vq._grouped import grouped_quantize, projected_quantize
from jaxblog.vq._kmeans import kmeans_init
from jaxblog.vq._lfq import LFQResult, lfq, lfq_codes_to_indices, lfq_indices_to_codes
from jaxblog.vq._nearest import l2_normalize, nearest
from jaxblog.vq._quantize import (QuantizeResult, code_counts, code_usage, perplexity,
                                  quantize)
from jaxblog.vq._residual import ResidualResult, residual_quantize
from jaxblog.vq._restart import reseed_codes, restart_dead_codes
from jaxblog.vq._rotation import rotation_trick, straight_through

__all__ = [
    "EMAState",
    "FSQResult",
    "LFQResult",
    "QuantizeResult",
    "ResidualResult",
    "code_counts",
    "code_usage",
    "ema_init",
    "ema_update",
    "fsq",
    "fsq_codes_to_indices",
    "fsq_indices_to_codes",
    "grouped_quantize",
    "kmeans_init",
    "l2_normalize",
    "lfq",
    "lfq_codes_to_indices",
    "lfq_indices_to_codes",
    "nearest",
    "perplexity",
    "projected_quantize",
    "quantize",
    "reseed_codes",
    "residual_fsq",
    "residual_quantize",
    "restart_dead_codes",
    "rotation_trick",
    "straight_through",
]
