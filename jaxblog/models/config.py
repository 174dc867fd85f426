"""`TransformerConfig`: the hyper-parameters of the whole Transformer family.

One frozen dataclass describes BERT, ALBERT (factorised embeddings and a single
shared block) and a GPT-2-shaped causal LM (pre-LN, plain tied head). What the
model *is* at run time is decided by its attention mask, not by its config
(see `jaxblog.models.transformer.application_mask`).
"""
from __future__ import annotations

import dataclasses
from typing import Optional

import jax
import jax.numpy as jnp

COMPUTE_DTYPES = ("float32", "bfloat16", "float16")
APPLICATIONS = ("encoder", "lm", "unilm", "permutation")
ACTIVATIONS = {
    "gelu": lambda x: jax.nn.gelu(x, approximate=False),
    "gelu_new": lambda x: jax.nn.gelu(x, approximate=True),
    "gelu_tanh": lambda x: jax.nn.gelu(x, approximate=True),
    "relu": jax.nn.relu,
}


@dataclasses.dataclass(frozen=True)
class TransformerConfig:
  """Hyper-parameters of the whole family.

  Attributes:
    vocab_size: number of token ids.
    hidden_size: width `H` of the blocks.
    num_layers: number of blocks `L` (applications of the shared block for
      ALBERT).
    num_heads: attention heads; must divide `hidden_size`.
    intermediate_size: feed-forward width.
    max_position: number of learned position embeddings.
    type_vocab_size: number of segment embeddings (0 = none, as in GPT-2).
    embedding_size: ALBERT's factorised embedding width `E` (with an `E -> H`
      projection); `None` means `E = H` (BERT).
    share_layers: one block applied `num_layers` times (ALBERT).
    pre_norm: `False` = BERT's post-LN (LayerNorm after each residual sum and
      on the embeddings); `True` = GPT-2's pre-LN plus a final LayerNorm.
    activation: `gelu` (erf), `gelu_new`/`gelu_tanh` (tanh approximation) or
      `relu`.
    layer_norm_eps: LayerNorm epsilon.
    dropout_rate: dropout on embeddings, attention output and FFN output.
    with_mlm: `__call__` returns vocabulary logits (tied to the token
      embedding) instead of hidden states.
    mlm_transform: the BERT MLM head's Dense + activation + LayerNorm before
      the tied projection; `False` = GPT-2's bare tied projection.
    mlm_bias: a per-token output bias (BERT MLM).
    application: default mask: `encoder` (bidirectional), `lm` (causal),
      `unilm` (seq2seq from segment ids), `permutation` (order given at call).
    initializer_range: standard deviation of the normal initialisers.
    dtype: compute dtype of the matmuls (`"bfloat16"` on TPU/GPU); `None`
      computes in the parameters' float32. Parameters, LayerNorms, softmax
      and the residual stream stay float32 either way.
    remat: rematerialise each block in the backward pass (`flax.linen.remat`):
      activations inside a block are recomputed instead of stored, trading
      one more forward per block for lower peak memory.
  """
  vocab_size: int
  hidden_size: int = 256
  num_layers: int = 4
  num_heads: int = 4
  intermediate_size: int = 1024
  max_position: int = 512
  type_vocab_size: int = 2
  embedding_size: Optional[int] = None
  share_layers: bool = False
  pre_norm: bool = False
  activation: str = "gelu"
  layer_norm_eps: float = 1e-12
  dropout_rate: float = 0.0
  with_mlm: bool = False
  mlm_transform: bool = True
  mlm_bias: bool = True
  application: str = "encoder"
  initializer_range: float = 0.02
  dtype: Optional[str] = None
  remat: bool = False

  def __post_init__(self):
    for name in ("vocab_size", "hidden_size", "num_layers", "num_heads",
                 "intermediate_size", "max_position"):
      value = getattr(self, name)
      if not isinstance(value, int) or value < 1:
        raise ValueError(f"TransformerConfig.{name} must be a positive int, got {value!r}")
    if self.type_vocab_size < 0:
      raise ValueError(f"TransformerConfig.type_vocab_size must be >= 0, got {self.type_vocab_size}")
    if self.embedding_size is not None and self.embedding_size < 1:
      raise ValueError(f"TransformerConfig.embedding_size must be positive or None, got {self.embedding_size}")
    if self.hidden_size % self.num_heads:
      raise ValueError(f"TransformerConfig.hidden_size={self.hidden_size} is not divisible "
                       f"by num_heads={self.num_heads}")
    if self.activation not in ACTIVATIONS:
      raise ValueError(f"TransformerConfig.activation must be one of {sorted(ACTIVATIONS)}, "
                       f"got {self.activation!r}")
    if self.application not in APPLICATIONS:
      raise ValueError(f"TransformerConfig.application must be one of {APPLICATIONS}, "
                       f"got {self.application!r}")
    if self.dtype is not None and self.dtype not in COMPUTE_DTYPES:
      raise ValueError(f"TransformerConfig.dtype must be None or one of {COMPUTE_DTYPES}, "
                       f"got {self.dtype!r}")
    if not 0.0 <= self.dropout_rate < 1.0:
      raise ValueError(f"TransformerConfig.dropout_rate must be in [0, 1), got {self.dropout_rate}")

  @property
  def compute_dtype(self):
    """The matmul dtype (`None` = the parameters' float32)."""
    return None if self.dtype is None else jnp.dtype(self.dtype)

  @property
  def head_dim(self) -> int:
    return self.hidden_size // self.num_heads

  @property
  def embed_dim(self) -> int:
    return self.embedding_size or self.hidden_size

  def replace(self, **changes) -> "TransformerConfig":
    return dataclasses.replace(self, **changes)


