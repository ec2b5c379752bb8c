"""Model sizes: the five Llama SLMs of the paper's Table 1, tiny CPU sizes for the demo, and parameter counts.

Conventions (the paper's Llama setup, as the authors' release ``tiagoCuervo/slm_scaling`` builds it):
- MLP width ``multiple_of * ceil((8 d / 3) / multiple_of)`` with ``multiple_of = 256`` (Llama's rounding);
  the demo sizes round to 32 so that their MLP stays ~8d/3 wide at d <= 128.
- Tied input embedding and LM head (one matrix, as the release and its checkpoints; ``hf-slm convert`` gives
  the same parameter names, shapes and tying), RMSNorm epsilon 1e-5, rotary theta 10,000, no biases.
- N, the model size of the scaling laws, counts non-embedding parameters: every parameter except the input
  embedding and the LM head (so the attention, MLP and RMSNorm weights, final norm included). Tied or not, the
  vocabulary matrices are excluded, as in Kaplan et al. (2020) and the paper; only N_total depends on tying.
- Two batches per size (sequences per optimizer step): ``batch_size`` is our reading of the paper's Table 1
  (four batches for five models: 823M shares 512), ``release_batches`` those of the release's
  configs/scaling/*.json (309M: 36 x 7 = 252; 823M: 26 x 19 = 494 at its 26B endpoint, 19 x 32 = 608 at 82B).
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
    """A Llama shape: layers, width, heads, the global batches (sequences) it trains with, MLP rounding."""

    name: str
    n_layers: int
    d_model: int
    n_heads: int
    batch_size: int  # the paper's Table 1 (our reading)
    multiple_of: int = 256
    release_batches: tuple[int, ...] = ()  # the release's configs; the first is the default

    @property
    def release_batch_size(self) -> int:
        """The batch the paper preset trains with: the release's, where it has one."""
        return self.release_batches[0] if self.release_batches else self.batch_size

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
        d = asdict(self)
        d["release_batches"] = list(self.release_batches)
        return {**d, "intermediate_size": self.intermediate_size, "N": self.n_non_embedding}


PAPER_SIZES: dict[str, ModelSize] = {
    s.name: s
    for s in (
        ModelSize("20M", 6, 512, 8, 64, release_batches=(64,)),
        ModelSize("85M", 12, 768, 12, 128, release_batches=(128,)),
        ModelSize("155M", 12, 1024, 16, 256, release_batches=(256,)),
        ModelSize("309M", 24, 1024, 16, 512, release_batches=(252,)),
        ModelSize("823M", 16, 2048, 32, 512, release_batches=(494, 608)),
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
    size: str | ModelSize, n_units: int, max_position_embeddings: int = BLOCK_SIZE, attn_implementation: str = "sdpa",
    tie_embeddings: bool = True, norm_eps: float = 1e-5, init_std: float = 0.02,
) -> LlamaConfig:
    """The ``LlamaConfig`` of ``size`` for a vocabulary of ``n_units`` ids plus EOS and pad (contract 2).

    ``n_units`` is K for unit tokens, or the number of pieces P of a unigram tokenizer: vocabulary n + 2, EOS = n,
    pad = n + 1. BOS is EOS too: every utterance follows an EOS in the packed stream, so a prompt that starts with
    EOS is in-distribution (no separate BOS token exists). Defaults: the release's tied embeddings and RMSNorm
    epsilon (``hf_slm.training.convert`` writes the same config for their checkpoints).
    """
    s = get_size(size)
    return LlamaConfig(
        vocab_size=vocab_size(n_units),
        hidden_size=s.d_model,
        intermediate_size=s.intermediate_size,
        num_hidden_layers=s.n_layers,
        num_attention_heads=s.n_heads,
        num_key_value_heads=s.n_heads,
        head_dim=s.d_model // s.n_heads,
        hidden_act="silu",
        max_position_embeddings=max_position_embeddings,
        rms_norm_eps=norm_eps,
        rope_parameters={"rope_type": "default", "rope_theta": 10000.0},
        attention_bias=False,
        mlp_bias=False,
        initializer_range=init_std,
        bos_token_id=eos_id(n_units),
        eos_token_id=eos_id(n_units),
        pad_token_id=pad_id(n_units),
        tie_word_embeddings=tie_embeddings,
        attn_implementation=attn_implementation,
    )


EMBEDDING_MODULES = ("embed_tokens", "lm_head")


def count_parameters(model: torch.nn.Module) -> tuple[int, int]:
    """``(N_non_embedding, N_total)``: N excludes the input embedding and the LM head (see module docs); a tied
    matrix counts once in N_total."""
    total = non_embedding = 0
    for name, param in model.named_parameters():  # shared (tied) parameters are listed once
        total += param.numel()
        if not any(part in EMBEDDING_MODULES for part in name.split(".")):
            non_embedding += param.numel()
    return non_embedding, total


def meta_model(size: str | ModelSize, n_units: int = 500, max_position_embeddings: int = BLOCK_SIZE,
               tie_embeddings: bool = True):
    """A ``LlamaForCausalLM`` of ``size`` on the meta device: shapes only, no memory (for counting)."""
    from transformers import LlamaForCausalLM

    with torch.device("meta"):
        return LlamaForCausalLM(llama_config(size, n_units, max_position_embeddings, tie_embeddings=tie_embeddings))


def n_total(size: str | ModelSize, n_units: int = 500, tie_embeddings: bool = True) -> int:
    """All parameters in closed form: N plus one (tied) or two vocabulary matrices of (n_units + 2) x d."""
    s = get_size(size)
    return s.n_non_embedding + (1 if tie_embeddings else 2) * vocab_size(n_units) * s.d_model
