"""Linear-chain CRF as pure JAX functions (Su 2020, SPEC.md §8).

`score`, `log_partition`, `log_likelihood`, `marginals` (`forward.py`),
`viterbi`, `kbest_viterbi` (`viterbi.py`) and the tag-scheme helpers
`allowed_transitions`, `constrain` (`constraints.py`). Shapes: emissions
`[..., T, K]`, tags `[..., T]`, transitions `[K, K]` (`[i, j]` = tag `i`
followed by `j`), optional `start`/`end` `[K]` and bool mask `[..., T]` of
any validity pattern. See `jaxblog.memm` for the locally normalised variant.
"""
from jaxblog.crf.constraints import allowed_transitions, constrain
from jaxblog.crf.forward import log_likelihood, log_partition, marginals, score
from jaxblog.crf.viterbi import kbest_viterbi, viterbi

__all__ = [
    "allowed_transitions", "constrain", "kbest_viterbi", "log_likelihood",
    "log_partition", "marginals", "score", "viterbi",
]
