"""Linear-chain CRF as pure JAX functions.

Shapes: emissions `[..., L, K]` (`L` positions, `K` tags), tags `[..., L]`,
`transitions [K, K]` (`transitions[i, j]` = score of tag `i` followed by tag
`j`), optional `start`/`end` `[K]` and a bool mask `[..., L]` of any validity
pattern (the chain links the valid positions in order). See `jaxblog.memm`
for the locally normalised variant and docs/crf.md for the design.

- `forward.py`: `score`, `log_partition`, `log_likelihood`, `marginals`.
- `viterbi.py`: `viterbi`, `kbest_viterbi`.
- `partial.py`: `partial_log_likelihood` (a set of allowed tags per position).
- `information.py`: `entropy`, `kl`.
- `sampling.py`: `sample` (exact forward filtering, backward sampling).
- `constraints.py`: `allowed_transitions` (BIO, BIOES, BIOUL, BMES), `constrain`.

Example:
  >>> import jax
  >>> import jax.numpy as jnp
  >>> from jaxblog import crf
  >>> emissions = jnp.array([[[2.0, 0.0], [0.0, 1.0], [0.0, 0.0]]])  # [1, L, K]
  >>> tags = jnp.array([[0, 1, 1]])
  >>> transitions = jnp.zeros((2, 2))
  >>> mask = jnp.array([[True, True, False]])                       # length 2
  >>> loss = -crf.log_likelihood(emissions, tags, transitions, mask)
  >>> best, score = jax.jit(crf.viterbi)(emissions, transitions, mask)
  >>> best.tolist(), float(score[0])
  ([[0, 1, 0]], 3.0)

References:
  Su 2020, 《CRF用过了，不妨再了解下更快的MEMM？》,
  https://kexue.fm/archives/7213.
"""
from jaxblog.crf.constraints import allowed_transitions, constrain
from jaxblog.crf.forward import log_likelihood, log_partition, marginals, score
from jaxblog.crf.information import entropy, kl
from jaxblog.crf.partial import partial_log_likelihood
from jaxblog.crf.sampling import sample
from jaxblog.crf.viterbi import kbest_viterbi, viterbi

__all__ = [
    "allowed_transitions", "constrain", "entropy", "kbest_viterbi", "kl",
    "log_likelihood", "log_partition", "marginals", "partial_log_likelihood",
    "sample", "score", "viterbi",
]
