"""Hugging Face BERT/ALBERT checkpoints -> `Transformer` variables, and vocabulary trimming.

`load_hf_bert(directory)` and `load_hf_albert(directory)` read `config.json`
and the weights (`model.safetensors` parsed with `safetensors.numpy`, or
`pytorch_model.bin` through the torch-free restricted reader of
`jaxblog.models.torch_checkpoint`; no PyTorch needed) and map the tensor names
(with or without the `bert.` / `albert.` prefix; `gamma`/`beta` LayerNorm
names of old TF conversions too) onto `Transformer`'s parameter tree. Linear
weights are stored `[out, in]` by PyTorch and transposed here; query/key/value
are fused into one `qkv` kernel. The pooler is not part of the last hidden
states and is ignored. Both return the last hidden states unless
`with_mlm=True` asks for the MLM head's logits.

Every tensor is checked against the shape the config implies, so a config that
does not match its weights fails with the tensor name and both shapes instead
of producing garbage.

`keep_tokens` slices the token embedding (and MLM bias) to a kept id list, the
bert4keras trick for fine-tuning on a smaller vocabulary.

References: Su 2019, "从语言模型到Seq2Seq：Transformer如戏，全靠Mask",
https://kexue.fm/archives/6933 (`keep_tokens`); Lan et al., "ALBERT: A Lite
BERT for Self-supervised Learning of Language Representations",
arXiv:1909.11942.
"""
from __future__ import annotations

import json
import pathlib
from typing import Dict, Optional, Sequence, Tuple

import jax.numpy as jnp
import numpy as np

from jaxblog.models.config import ACTIVATIONS, TransformerConfig
from jaxblog.models.torch_checkpoint import load_state_dict
from jaxblog.models.transformer import Transformer

CONFIG_FILE = "config.json"
WEIGHTS_FILE = "model.safetensors"
TORCH_WEIGHTS_FILE = "pytorch_model.bin"


def config_from_hf(hf: dict, *, with_mlm: bool = False, **fields) -> TransformerConfig:
  """`TransformerConfig` from a Hugging Face BERT/ALBERT `config.json` dict.

  `fields` are further `TransformerConfig` fields (ALBERT's `embedding_size`
  and `share_layers`).
  """
  if hf.get("position_embedding_type", "absolute") != "absolute":
    raise ValueError(f"{CONFIG_FILE}: position_embedding_type="
                     f"{hf['position_embedding_type']!r} is not supported (only 'absolute')")
  act = hf.get("hidden_act", "gelu")
  if act not in ACTIVATIONS:
    raise ValueError(f"{CONFIG_FILE}: hidden_act={act!r} is not supported "
                     f"(one of {sorted(ACTIVATIONS)})")
  try:
    return TransformerConfig(
        vocab_size=hf["vocab_size"], hidden_size=hf["hidden_size"],
        num_layers=hf["num_hidden_layers"], num_heads=hf["num_attention_heads"],
        intermediate_size=hf["intermediate_size"],
        max_position=hf.get("max_position_embeddings", 512),
        type_vocab_size=hf.get("type_vocab_size", 2), activation=act,
        layer_norm_eps=hf.get("layer_norm_eps", 1e-12), with_mlm=with_mlm,
        initializer_range=hf.get("initializer_range", 0.02), **fields)
  except KeyError as e:
    raise ValueError(f"{CONFIG_FILE} lacks the required key {e.args[0]!r}") from None


class _Reader:
  """Fetches HF tensors by name, checking presence and shape."""

  def __init__(self, tensors: Dict[str, np.ndarray], path, model_prefix: str = "bert."):
    self.path = path
    prefix = model_prefix if any(k.startswith(model_prefix) for k in tensors) else ""
    self.tensors = {k[len(prefix):] if k.startswith(prefix) else k: v
                    for k, v in tensors.items()}

  def has(self, name: str) -> bool:
    return name in self.tensors

  def get(self, name: str, shape: Tuple[int, ...], *alternatives: str) -> np.ndarray:
    for candidate in (name,) + alternatives:
      if candidate in self.tensors:
        value = np.asarray(self.tensors[candidate], np.float32)
        if value.shape != tuple(shape):
          raise ValueError(f"{self.path}: tensor {candidate!r} has shape {value.shape}, "
                           f"but {CONFIG_FILE} implies {tuple(shape)}")
        return value
    raise ValueError(f"{self.path}: missing tensor {name!r}")

  def norm(self, prefix: str, width: int) -> dict:
    return {"scale": self.get(f"{prefix}.weight", (width,), f"{prefix}.gamma"),
            "bias": self.get(f"{prefix}.bias", (width,), f"{prefix}.beta")}

  def dense(self, prefix: str, d_in: int, d_out: int) -> dict:
    return {"kernel": self.get(f"{prefix}.weight", (d_out, d_in)).T,
            "bias": self.get(f"{prefix}.bias", (d_out,))}


_BERT_BLOCK = {"query": "attention.self.query", "key": "attention.self.key",
               "value": "attention.self.value", "out": "attention.output.dense",
               "attn_norm": "attention.output.LayerNorm", "ffn_in": "intermediate.dense",
               "ffn_out": "output.dense", "ffn_norm": "output.LayerNorm"}
_ALBERT_BLOCK = {"query": "attention.query", "key": "attention.key", "value": "attention.value",
                 "out": "attention.dense", "attn_norm": "attention.LayerNorm", "ffn_in": "ffn",
                 "ffn_out": "ffn_output", "ffn_norm": "full_layer_layer_norm"}
_ALBERT_SHARED = "encoder.albert_layer_groups.0.albert_layers.0"


def _block(r: _Reader, base: str, names: Dict[str, str], c: TransformerConfig) -> dict:
  """One post-LN block's parameters from the HF tensors under `base`."""
  h, n, d, f = c.hidden_size, c.num_heads, c.head_dim, c.intermediate_size
  qkv = [r.dense(f"{base}.{names[part]}", h, h) for part in ("query", "key", "value")]
  out = r.dense(f"{base}.{names['out']}", h, h)
  return {
      "attn": {
          "qkv": {"kernel": np.stack([p["kernel"].reshape(h, n, d) for p in qkv], axis=1),
                  "bias": np.stack([p["bias"].reshape(n, d) for p in qkv], axis=0)},
          "out": {"kernel": out["kernel"].reshape(n, d, h), "bias": out["bias"]},
      },
      "attn_norm": r.norm(f"{base}.{names['attn_norm']}", h),
      "ffn_in": r.dense(f"{base}.{names['ffn_in']}", h, f),
      "ffn_out": r.dense(f"{base}.{names['ffn_out']}", f, h),
      "ffn_norm": r.norm(f"{base}.{names['ffn_norm']}", h),
  }


def _read_directory(directory, caller: str) -> Tuple[dict, Dict[str, np.ndarray], pathlib.Path]:
  """`(config.json dict, name -> array, weights path)` of a HF model directory.

  Weights come from `model.safetensors` when present, else from
  `pytorch_model.bin` through the torch-free restricted reader.
  """
  directory = pathlib.Path(directory)
  if not directory.is_dir():
    raise FileNotFoundError(f"{caller}: {directory} is not a directory")
  config_path = directory / CONFIG_FILE
  weights = [directory / name for name in (WEIGHTS_FILE, TORCH_WEIGHTS_FILE)]
  if not config_path.is_file():
    raise FileNotFoundError(f"{caller}: missing {CONFIG_FILE} in {directory}")
  weights_path = next((p for p in weights if p.is_file()), None)
  if weights_path is None:
    raise FileNotFoundError(f"{caller}: missing {WEIGHTS_FILE} (or {TORCH_WEIGHTS_FILE}) "
                            f"in {directory}")
  with open(config_path, encoding="utf-8") as f:
    hf = json.load(f)
  if weights_path.name == WEIGHTS_FILE:
    from safetensors.numpy import load_file  # pylint: disable=import-outside-toplevel
    tensors = load_file(str(weights_path))
  else:
    tensors = load_state_dict(weights_path)
  return hf, tensors, weights_path


def _embeddings(r: _Reader, c: TransformerConfig) -> dict:
  e = c.embed_dim
  params = {
      "token_embed": {"embedding": r.get("embeddings.word_embeddings.weight", (c.vocab_size, e))},
      "position_embed": {"embedding": r.get("embeddings.position_embeddings.weight",
                                            (c.max_position, e))},
      "embed_norm": r.norm("embeddings.LayerNorm", e),
  }
  if c.type_vocab_size:
    params["segment_embed"] = {"embedding": r.get("embeddings.token_type_embeddings.weight",
                                                  (c.type_vocab_size, e))}
  return params


def _finish(params: dict, c: TransformerConfig, keep: Optional[Sequence[int]]
            ) -> Tuple[Transformer, dict]:
  model, variables = Transformer(c), {"params": _to_jax(params)}
  if keep is not None:
    model, variables = keep_tokens(model, variables, keep)
  return model, variables


def load_hf_bert(directory, *, keep_tokens: Optional[Sequence[int]] = None,
                 with_mlm: bool = False) -> Tuple[Transformer, dict]:
  """Loads a Hugging Face BERT directory as `(model, variables)`.

  `model.apply(variables, input_ids, token_type_ids, attention_mask)` returns
  the last hidden states `[B, T, H]` of PyTorch `BertModel` (also when the
  checkpoint carries an MLM head), or the MLM logits `[B, T, V]` of
  `BertForMaskedLM` with `with_mlm=True`.

  Args:
    directory: folder with `config.json` and `model.safetensors` (or
      `pytorch_model.bin`, read without torch).
    keep_tokens: optional token ids to keep (vocabulary trimming, see
      `keep_tokens`); new id `i` is old id `keep_tokens[i]`.
    with_mlm: load the `cls.predictions` MLM head and return its logits.

  Returns:
    `(Transformer, {'params': ...})`.

  Raises:
    FileNotFoundError: the directory or one of its two files is missing.
    ValueError: a tensor is missing (the MLM head too, with `with_mlm`) or its
      shape disagrees with the config.

  Example:
    model, variables = load_hf_bert("all-MiniLM-L6-v2")
    hidden = model.apply(variables, ids, token_types, mask)  # [B, T, 384]
  """
  hf, tensors, weights_path = _read_directory(directory, "load_hf_bert")
  r = _Reader(tensors, weights_path)
  if with_mlm and not r.has("cls.predictions.bias"):
    raise ValueError(f"load_hf_bert: with_mlm=True but {weights_path} has no "
                     "cls.predictions MLM head")
  c = config_from_hf(hf, with_mlm=with_mlm)
  h = c.hidden_size
  params = _embeddings(r, c)
  for i in range(c.num_layers):
    params[f"layers_{i}"] = _block(r, f"encoder.layer.{i}", _BERT_BLOCK, c)
  if with_mlm:
    params["mlm_dense"] = r.dense("cls.predictions.transform.dense", h, h)
    params["mlm_norm"] = r.norm("cls.predictions.transform.LayerNorm", h)
    params["mlm_bias"] = r.get("cls.predictions.bias", (c.vocab_size,))
  return _finish(params, c, keep_tokens)


def load_hf_albert(directory, *, with_mlm: bool = False,
                   keep_tokens: Optional[Sequence[int]] = None) -> Tuple[Transformer, dict]:
  """Loads a Hugging Face ALBERT directory as `(model, variables)`.

  ALBERT is the `Transformer` with `embedding_size=E` (an `E -> H` projection,
  `embedding_hidden_mapping_in`) and `share_layers=True` (the one block of
  `albert_layer_groups.0.albert_layers.0` under `params/block`), so
  `jaxblog.models.unshare(variables, model.config.num_layers)` turns the
  result into the per-layer ("unshared") model. The MLM head maps `H -> E`
  and is tied to the `E`-wide token embedding.

  Args:
    directory: folder with `config.json` and `model.safetensors` or
      `pytorch_model.bin` (read without torch, through a restricted unpickler).
    with_mlm: load the `predictions` MLM head; `apply` then returns logits
      `[B, T, V]` equal to `transformers.AlbertForMaskedLM`'s.
    keep_tokens: optional token ids to keep (see `keep_tokens`).

  Returns:
    `(Transformer, {'params': ...})`; `model.apply(variables, input_ids,
    token_type_ids, attention_mask)` gives the last hidden states `[B, T, H]`
    of `transformers.AlbertModel`.

  Raises:
    FileNotFoundError: the directory, `config.json` or the weights are missing.
    ValueError: several layer groups / inner groups (not one shared block), a
      missing tensor or a shape that disagrees with the config, or an unsafe
      or corrupt `pytorch_model.bin`.

  Example:
    model, variables = load_hf_albert(albert_tiny_zh_dir())
    hidden = model.apply(variables, ids, token_types, mask)  # [B, T, 312]
    unshared = Transformer(model.config.replace(share_layers=False))
    hidden_too = unshared.apply(unshare(variables, 4), ids, token_types, mask)

  References: Lan et al., "ALBERT: A Lite BERT for Self-supervised Learning of
  Language Representations", arXiv:1909.11942; Su 2020,
  https://kexue.fm/archives/7187 (fine-tuning it unshared).
  """
  hf, tensors, weights_path = _read_directory(directory, "load_hf_albert")
  for key in ("num_hidden_groups", "inner_group_num"):
    if hf.get(key, 1) != 1:
      raise ValueError(f"load_hf_albert: {CONFIG_FILE} has {key}={hf[key]}; only one shared "
                       "block (1) is supported")
  r = _Reader(tensors, weights_path, model_prefix="albert.")
  if with_mlm and not r.has("predictions.bias"):
    raise ValueError(f"load_hf_albert: with_mlm=True but {weights_path} has no "
                     "predictions MLM head")
  if "embedding_size" not in hf:
    raise ValueError(f"{CONFIG_FILE} lacks the required key 'embedding_size'")
  c = config_from_hf(hf, with_mlm=with_mlm, embedding_size=hf["embedding_size"],
                     share_layers=True)
  h, e = c.hidden_size, c.embed_dim
  params = _embeddings(r, c)
  params["embed_project"] = r.dense("encoder.embedding_hidden_mapping_in", e, h)
  params["block"] = _block(r, _ALBERT_SHARED, _ALBERT_BLOCK, c)
  if with_mlm:
    params["mlm_dense"] = r.dense("predictions.dense", h, e)
    params["mlm_norm"] = r.norm("predictions.LayerNorm", e)
    params["mlm_bias"] = r.get("predictions.bias", (c.vocab_size,))
  return _finish(params, c, keep_tokens)


def gpt2_from_hf(hf: dict, tensors: Dict[str, np.ndarray]) -> Tuple[Transformer, dict]:
  """A Hugging Face GPT-2 (`GPT2LMHeadModel`) as a pre-LN causal `Transformer`.

  GPT-2 is the same Transformer with pre-LN blocks, a final LayerNorm, no
  segment embeddings, tanh-GELU and a bare tied output projection; its
  `Conv1D` weights are already stored `[in, out]`.

  Args:
    hf: the GPT-2 `config.json` dict (`model.config.to_dict()`).
    tensors: name -> numpy array (`{k: v.numpy() for k, v in
      model.state_dict().items()}`), with or without the `transformer.` prefix.

  Returns:
    `(Transformer with application='lm', variables)` whose logits equal
    `GPT2LMHeadModel`'s.
  """
  h, n = hf["n_embd"], hf["n_head"]
  f = hf.get("n_inner") or 4 * h
  c = TransformerConfig(
      vocab_size=hf["vocab_size"], hidden_size=h, num_layers=hf["n_layer"], num_heads=n,
      intermediate_size=f, max_position=hf["n_positions"], type_vocab_size=0,
      pre_norm=True, activation=hf.get("activation_function", "gelu_new"),
      layer_norm_eps=hf.get("layer_norm_epsilon", 1e-5), with_mlm=True,
      mlm_transform=False, mlm_bias=False, application="lm")
  r = _Reader(tensors, "GPT-2 state dict", model_prefix="transformer.")
  d = c.head_dim
  params = {
      "token_embed": {"embedding": r.get("wte.weight", (c.vocab_size, h))},
      "position_embed": {"embedding": r.get("wpe.weight", (c.max_position, h))},
      "final_norm": r.norm("ln_f", h),
  }
  for i in range(c.num_layers):
    base = f"h.{i}"
    params[f"layers_{i}"] = {
        "attn": {
            "qkv": {"kernel": r.get(f"{base}.attn.c_attn.weight", (h, 3 * h)).reshape(h, 3, n, d),
                    "bias": r.get(f"{base}.attn.c_attn.bias", (3 * h,)).reshape(3, n, d)},
            "out": {"kernel": r.get(f"{base}.attn.c_proj.weight", (h, h)).reshape(n, d, h),
                    "bias": r.get(f"{base}.attn.c_proj.bias", (h,))},
        },
        "attn_norm": r.norm(f"{base}.ln_1", h),
        "ffn_in": {"kernel": r.get(f"{base}.mlp.c_fc.weight", (h, f)),
                   "bias": r.get(f"{base}.mlp.c_fc.bias", (f,))},
        "ffn_out": {"kernel": r.get(f"{base}.mlp.c_proj.weight", (f, h)),
                    "bias": r.get(f"{base}.mlp.c_proj.bias", (h,))},
        "ffn_norm": r.norm(f"{base}.ln_2", h),
    }
  return Transformer(c), {"params": _to_jax(params)}


def _to_jax(tree):
  if isinstance(tree, dict):
    return {k: _to_jax(v) for k, v in tree.items()}
  return jnp.asarray(tree)


def keep_tokens(model: Transformer, variables: dict, ids: Sequence[int]) -> Tuple[Transformer, dict]:
  """Trims the vocabulary to `ids`: embedding rows (and MLM bias) are sliced.

  Args:
    model: a `Transformer`.
    variables: its variables.
    ids: old token ids to keep, in the new order (new id `i` = old `ids[i]`).

  Returns:
    `(model with vocab_size=len(ids), variables)`; logits of the trimmed model
    equal the old logits at columns `ids`.

  References: Su 2019, https://kexue.fm/archives/6933 (`keep_tokens`).
  """
  ids = np.asarray(ids)
  vocab = model.config.vocab_size
  if ids.ndim != 1 or ids.size == 0 or not np.issubdtype(ids.dtype, np.integer):
    raise ValueError(f"keep_tokens: ids must be a non-empty 1-D integer sequence, "
                     f"got shape {ids.shape} dtype {ids.dtype}")
  if ids.min() < 0 or ids.max() >= vocab:
    raise ValueError(f"keep_tokens: ids must lie in [0, {vocab}), got range "
                     f"[{ids.min()}, {ids.max()}]")
  params = dict(variables["params"])
  params["token_embed"] = {"embedding": params["token_embed"]["embedding"][ids]}
  if "mlm_bias" in params:
    params["mlm_bias"] = params["mlm_bias"][ids]
  new_model = Transformer(model.config.replace(vocab_size=int(ids.size)))
  return new_model, {**variables, "params": params}

