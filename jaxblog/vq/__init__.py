"""Vector quantization for VQ-VAEs (Su 2019, SPEC.md §2), as pure JAX functions.

Core (API.md): `nearest`, `straight_through`, `quantize`, `ema_init`,
`ema_update`. Beyond the article: cosine codebooks (`metric="cosine"`), the
rotation trick (`rotation_trick`, `quantize(..., gradient="rotation")`),
k-means initialisation (`kmeans_init`), dead-code restart that also resets
the EMA statistics (`restart_dead_codes`, `reseed_codes`), residual
quantization (`residual_quantize`), and cross-device statistics through
`axis_name` (`psum`) everywhere statistics are gathered.

Nothing here builds an `[N, K, D]` tensor, and `nearest` bounds the `[N, K]`
score matrix to one chunk (see `_nearest.py`).
"""
from jaxblog.vq._ema import EMAState, ema_init, ema_update
from jaxblog.vq._kmeans import kmeans_init
from jaxblog.vq._nearest import l2_normalize, nearest
from jaxblog.vq._quantize import QuantizeResult, code_counts, perplexity, quantize
from jaxblog.vq._residual import ResidualResult, residual_quantize
from jaxblog.vq._restart import reseed_codes, restart_dead_codes
from jaxblog.vq._rotation import rotation_trick, straight_through

__all__ = [
    "EMAState", "QuantizeResult", "ResidualResult", "code_counts", "ema_init",
    "ema_update", "kmeans_init", "l2_normalize", "nearest", "perplexity", "quantize",
    "reseed_codes", "residual_quantize", "restart_dead_codes", "rotation_trick",
    "straight_through",
]
