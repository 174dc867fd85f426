"""Entity linking with behaviour modelling (Su 2019, article 5).

String side (pure Python): forward maximum matching (`max_match`,
`AliasIndex`), the annotator-behaviour statistics (`alias_ratios`,
`prune_aliases`, `link_counts`, `filter_candidates`), CCKS 2019 records with
checks (`parse_entity`, `parse_text`, `describe`) and the per-character
channels (`span_channels`, `link_features`). Numeric side (JAX):
`nearest_end`/`span_decode` for the half-pointer heads, `span_mean`,
`masked_max`, and the metric `triple_f1`. No Flax and no I/O here; the
models are in `jaxblog.models.el`.

References:
  百度实体链接比赛后记：行为建模和实体链接, https://kexue.fm/archives/6919
"""
from jaxblog.el._behaviour import alias_ratios, filter_candidates, link_counts, prune_aliases
from jaxblog.el._decode import masked_max, nearest_end, span_decode, span_mean, triple_f1
from jaxblog.el._features import link_features, span_channels
from jaxblog.el._match import AliasIndex, max_match
from jaxblog.el._records import (Entity, LinkedText, Mention, describe, entity_to_json,
                                 parse_entity, parse_lines, parse_text, text_to_json)

__all__ = [
    "AliasIndex", "Entity", "LinkedText", "Mention", "alias_ratios", "describe",
    "entity_to_json", "filter_candidates", "link_counts", "link_features", "masked_max",
    "max_match", "nearest_end", "parse_entity", "parse_lines", "parse_text", "prune_aliases",
    "span_channels", "span_decode", "span_mean", "text_to_json", "triple_f1",
]
