"""Model sizes: the five Llama SLMs of the paper's Table 1, tiny CPU sizes for the demo, and parameter counts.

Conventions (the paper's Llama setup):
- MLP width ``multiple_of * ceil((8 d / 3) / multiple_of)`` with ``multiple_of = 256`` (Llama's rounding);
  the demo sizes round to 32 so that their MLP stays ~8d/3 wide at d <= 128.
- Untied input embedding and LM head (``tie_word_embeddings=False``, the transformers Llama default). The
  authors' released checkpoints tie them (``tiagoCuervo/slm_scaling``); ``hf-slm convert`` keeps their tying.
  N is the same either way.
- N, the model size of the scaling laws, counts non-embedding parameters: every parameter except the input
  embedding and the LM head (so the attention, MLP and RMSNorm weights, final norm included). With untied
  embeddings both vocabulary matrices are excluded, as in Kaplan et al. (2020) and the paper.
"""

from __future__ import annotations

import math
import re
from dataclasses import asdict, dataclass

import torch
from transformers import LlamaConfig

from hf_slm.data.packing import BLOCK_SIZE
from hf_slm.data.tokens import eos_id, pad_id, vocab_size


@dataclass(frozen=True)
class ModelSize:
    """A Llama shape: layers, width, heads, the global batch (sequences) it trains with, MLP rounding."""

    name: str
    n_layers: int
    d_model: int
    n_heads: int
    batch_size: int
    multiple_of: int = 256

    def __post_init__(self) -> None:
        if min(self.n_layers, self.d_model, self.n_heads, self.batch_size, self.multiple_of) < 1:
            raise ValueError(f"size {self.name!r}: every dimension must be >= 1, got {self}")
        if self.d_model % self.n_heads:
            raise ValueError(f"size {self.name!r}: d_model={self.d_model} is not divisible by n_heads={self.n_heads}")

    @property
    def intermediate_size(self) -> int:
        """MLP hidden width: 8d/3 rounded up to a multiple of ``multiple_of``."""
        return self.multiple_of * math.ceil(8 * self.d_model / 3 / self.multiple_of)

    @property
    def n_non_embedding(self) -> int:
        """N in closed form: per layer 4 d^2 (attention) + 3 d f (SwiGLU MLP) + 2 d (norms), plus the final norm."""
        d, f = self.d_model, self.intermediate_size
        return self.n_layers * (4 * d * d + 3 * d * f + 2 * d) + d

    def to_dict(self) -> dict:
        return {**asdict(self), "intermediate_size": self.intermediate_size, "N": self.n_non_embedding}


PAPER_SIZES: dict[str, ModelSize] = {
    s.name: s
    for s in (
        ModelSize("20M", 6, 512, 8, 64),
        ModelSize("85M", 12, 768, 12, 128),
        ModelSize("155M", 12, 1024, 16, 256),
        ModelSize("309M", 24, 1024, 16, 512),
        ModelSize("823M", 16, 2048, 32, 512),
    )
}

DEMO_SIZES: dict[str, ModelSize] = {
    s.name: s
    for s in (
        ModelSize("demo-xs", 1, 32, 2, 16, multiple_of=32),
        ModelSize("demo-s", 2, 64, 4, 16, multiple_of=32),
        ModelSize("demo-m", 3, 96, 4, 16, multiple_of=32),
        ModelSize("demo-l", 4, 128, 4, 16, multiple_of=32),
    )
}

SIZES: dict[str, ModelSize] = {**PAPER_SIZES, **DEMO_SIZES}

_CUSTOM = re.compile(r"^(\d+)x(\d+)x(\d+)$")


def get_size(name: str | ModelSize) -> ModelSize:
    """A size by name ("85M", "demo-s") or a custom ``LAYERSxDMODELxHEADS`` shape such as "8x512x8".

    Custom shapes use Llama's 256 rounding of the MLP and a default batch of 64 sequences.
    """
    if isinstance(name, ModelSize):
        return name
    if name in SIZES:
        return SIZES[name]
    match = _CUSTOM.match(str(name))
    if match:
        n_layers, d_model, n_heads = map(int, match.groups())
        return ModelSize(str(name), n_layers, d_model, n_heads, batch_size=64)
    raise ValueError(f"unknown model size {name!r}: choose one of {sorted(SIZES)} or LAYERSxDMODELxHEADS")


def llama_config(
    size: str | ModelSize, n_units: int, max_position_embeddings: int = BLOCK_SIZE, attn_implementation: str = "sdpa"
) -> LlamaConfig:
    """The ``LlamaConfig`` of ``size`` for a tokenizer with ``n_units`` units (contract 2).

    Vocabulary K + 2; EOS = K, pad = K + 1. BOS is EOS too: every utterance follows an EOS in the packed
    stream, so a prompt that starts with EOS is in-distribution (no separate BOS token exists).
    """
    s = get_size(size)
    return LlamaConfig(
        vocab_size=vocab_size(n_units),
        hidden_size=s.d_model,
        intermediate_size=s.intermediate_size,
        num_hidden_layers=s.n_layers,
        num_attention_heads=s.n_heads,
        num_key_value_heads=s.n_heads,
        max_position_embeddings=max_position_embeddings,
        bos_token_id=eos_id(n_units),
        eos_token_id=eos_id(n_units),
        pad_token_id=pad_id(n_units),
        tie_word_embeddings=False,
        attn_implementation=attn_implementation,
    )


EMBEDDING_MODULES = ("embed_tokens", "lm_head")


def count_parameters(model: torch.nn.Module) -> tuple[int, int]:
    """``(N_non_embedding, N_total)``: N excludes the input embedding and the LM head (see module docs)."""
    total = non_embedding = 0
    for name, param in model.named_parameters():
        total += param.numel()
        if not any(part in EMBEDDING_MODULES for part in name.split(".")):
            non_embedding += param.numel()
    return non_embedding, total


def meta_model(size: str | ModelSize, n_units: int = 500, max_position_embeddings: int = BLOCK_SIZE):
    """A ``LlamaForCausalLM`` of ``size`` on the meta device: shapes only, no memory (for counting)."""
    from transformers import LlamaForCausalLM

    with torch.device("meta"):
        return LlamaForCausalLM(llama_config(size, n_units, max_position_embeddings))
