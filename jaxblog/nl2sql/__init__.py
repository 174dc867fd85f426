"""The BERT NL2SQL baseline of Su 2019 (https://kexue.fm/archives/6771), pure parts.

TableQA-format tables and queries (`_sql`: codes `AGG`, `OPS`, `CONN`,
`to_sql`, `execute`, `execution_match`, `logic_form_match`), the encoder
input layout and labels (`build_inputs`, `make_labels`), the four-part loss
(`nl2sql_loss`) and the decoding with its post-processing rules
(`decode_sql`). No Flax and no I/O besides the in-memory sqlite of `execute`.
"""
from jaxblog.nl2sql._decode import RULES, decode_sql, edit_distance, nearest
from jaxblog.nl2sql._labels import (Labels, build_inputs, find_span, make_labels,
                                    nearest_ngram, words)
from jaxblog.nl2sql._loss import nl2sql_loss
from jaxblog.nl2sql._sql import (AGG, CONN, OPS, TYPES, TableDB, cell_text, check_sql,
                                 check_table, execute, execution_match, logic_form_match,
                                 quote, to_sql)

__all__ = [
    "AGG", "CONN", "Labels", "OPS", "RULES", "TYPES", "TableDB", "build_inputs", "cell_text",
    "check_sql", "check_table", "decode_sql", "edit_distance", "execute", "execution_match",
    "find_span", "logic_form_match", "make_labels", "nearest", "nearest_ngram", "nl2sql_loss",
    "quote", "to_sql", "words",
]
