"""Search over autoregressive step functions: beam search, sampling, and
synchronous bidirectional beam search — all jitted `lax.while_loop`s with
static shapes and no host round-trips.

A model plugs in through a step function `step_fn(tokens [N], state, index)
-> (logits [N, V], state)` (API.md); the searches tile the state to the rows
they decode and gather it along the beam axis, so KV caches work unchanged.

References: SPEC.md §6.2 (bert4keras `AutoRegressiveDecoder`) and §4.3
(synchronous bidirectional decoding).
"""
from jaxblog.decoding._beam import beam_search, length_penalty_factor
from jaxblog.decoding._bidirectional import (BidirectionalResult,
                                             bidirectional_beam_search)
from jaxblog.decoding._sample import sample, truncate_logits

__all__ = ["beam_search", "sample", "bidirectional_beam_search",
           "BidirectionalResult", "length_penalty_factor", "truncate_logits"]
