"""Convert the paper authors' checkpoints (``tiagoCuervo/slm_scaling``) into ``LlamaForCausalLM`` folders.

The authors' code is a nanoGPT-style Llama (``slm.model.TransformerLM``), not a transformers model. Its
checkpoints come in two layouts, both handled here:

- **Training checkpoint** (``out/<run>/checkpoint-XXXXXXXX.pt``, written by ``slm.train``): a ``torch.save``
  pickle of a dict with ``"model"`` (the state dict), ``"model_args"`` (the ``ModelArgs`` fields: ``dim``,
  ``n_layers``, ``n_heads``, ``n_kv_heads``, ``vocab_size``, ``hidden_dim``, ``multiple_of``, ``norm_eps``,
  ``block_size``, ``dropout``, ``prefix_vocab_size``, ``prefix_pad``), ``"format_version": 1`` and the
  optimizer, scaler, step, configs and RNG states.
- **Native export** (what ``slm-convert`` writes and the Hub collection ``tiagoCuervo/gslm-scaling``
  holds, e.g. ``tiagoCuervo/gslm-scaling-823m-82b``): a folder with ``config.json``
  (``{"format_version": 1, "model_type": "slm", "model_args": {...}, ...}``) and FP32 weights in
  ``model.safetensors`` or shards listed by ``model.safetensors.index.json``. The tied LM head is stored once,
  as ``tok_embeddings.weight``.

Their parameter names map one to one onto ``LlamaForCausalLM``:

=====================================  =============================================
theirs                                 transformers
=====================================  =============================================
``tok_embeddings.weight``              ``model.embed_tokens.weight`` (= ``lm_head.weight``, tied)
``layers.i.attention.wq/wk/wv/wo``     ``model.layers.i.self_attn.q_proj/k_proj/v_proj/o_proj``
``layers.i.feed_forward.w1/w3/w2``     ``model.layers.i.mlp.gate_proj/up_proj/down_proj``
``layers.i.attention_norm``            ``model.layers.i.input_layernorm``
``layers.i.ffn_norm``                  ``model.layers.i.post_attention_layernorm``
``norm.weight``                        ``model.norm.weight``
=====================================  =============================================

No weight is fused. Two conventions differ and are converted:

- Rotary embedding: theirs rotates *interleaved* pairs ``(2j, 2j+1)`` of each head (Meta's complex form),
  transformers rotates the *halves* ``(j, j + head_dim/2)``. The rows of ``wq`` and ``wk`` are permuted head by
  head (``permute_rotary``) so that the attention scores are unchanged; ``wv`` and ``wo`` are untouched. Both
  use ``theta = 10000``.
- Embeddings: their input embedding and LM head are one tensor, so the converted model sets
  ``tie_word_embeddings=True`` (this project's own sizes train untied heads; both load as ``LlamaForCausalLM``).

The token ids are already those of contract 2 (units ``0..K-1``, EOS ``K``, pad ``K+1``, vocabulary ``K+2`` =
502, context 2050 tokens): the converter checks the vocabulary and the context and writes them into the
config (``bos = eos = K``, ``pad = K + 1``) so that checkpoints of both projects are interchangeable.

Loading is safe: ``torch.load`` always runs with ``weights_only=True``. Their training checkpoints pickle
``numpy.random.get_state()`` (a NumPy array) among the RNG states, which the restricted unpickler refuses by
default; only NumPy's array reconstruction (``numpy.ndarray``, ``numpy.dtype`` and
``numpy.core.multiarray._reconstruct``) is allowlisted, for the duration of the call. Any other object (code,
classes) is still refused. Native folders are read with ``safetensors`` (no pickle at all).

A folder that is already a transformers Llama (``config.json`` with ``model_type: llama``) goes through the thin
path: it is loaded, validated the same way and saved again with the contract's token ids.
"""

from __future__ import annotations

import json
import re
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from hf_slm.data.packing import BLOCK_SIZE
from hf_slm.data.tokens import eos_id, pad_id, vocab_size

NATIVE_FORMAT_VERSION = 1
ROPE_THETA = 10000.0
DEFAULT_NORM_EPS = 1e-5
WRAPPER_PREFIXES = ("_orig_mod.", "module.", "model.")
# Buffers their model may carry that hold no learned weights: the causal mask of the non-flash path.
_IGNORED_KEYS = re.compile(r"^(layers\.\d+\.attention\.mask|freqs_cos|freqs_sin)$")
_REPO_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")
_LAYER_MAP = {
    "attention.wq.weight": "self_attn.q_proj.weight",
    "attention.wk.weight": "self_attn.k_proj.weight",
    "attention.wv.weight": "self_attn.v_proj.weight",
    "attention.wo.weight": "self_attn.o_proj.weight",
    "feed_forward.w1.weight": "mlp.gate_proj.weight",
    "feed_forward.w3.weight": "mlp.up_proj.weight",
    "feed_forward.w2.weight": "mlp.down_proj.weight",
    "attention_norm.weight": "input_layernorm.weight",
    "ffn_norm.weight": "post_attention_layernorm.weight",
}


class ConversionError(ValueError):
    """A checkpoint that cannot be converted; the message names the file and what is wrong."""


@dataclass
class SourceCheckpoint:
    """A checkpoint in the authors' layout, read into memory."""

    path: Path
    kind: str  # "training" (checkpoint .pt) or "native" (config.json + safetensors folder)
    model_args: dict[str, Any]
    state: dict[str, torch.Tensor]
    meta: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class SlmShape:
    """The architecture of one of their models, from ``model_args`` (their ``ModelArgs``)."""

    dim: int
    n_layers: int
    n_heads: int
    n_kv_heads: int
    vocab_size: int
    hidden_dim: int
    norm_eps: float
    block_size: int

    @property
    def head_dim(self) -> int:
        return self.dim // self.n_heads


# ---------------------------------------------------------------------------------------------- reading


def resolve_source(src: str | Path) -> Path:
    """A local file/folder, or a Hub model id (``owner/name``) downloaded with ``huggingface_hub``."""
    path = Path(src)
    if path.exists():
        return path
    if not _REPO_ID.match(str(src)):
        raise FileNotFoundError(f"{src}: no such checkpoint file or folder")
    try:
        from huggingface_hub import snapshot_download

        local = snapshot_download(str(src), allow_patterns=["*.json", "*.safetensors", "*.md"])
    except Exception as err:  # offline, unknown repo, gated...
        raise FileNotFoundError(f"{src}: not a local file or folder, and downloading it from the Hub failed: "
                                f"{err}") from err
    return Path(local)


def _numpy_safe_globals() -> list[Any]:
    """The NumPy globals needed to unpickle plain numeric arrays (their ``np.random.get_state()``), nothing more.

    That is ``ndarray``, ``dtype``, the array reconstruction function and the dtype classes of booleans,
    integers, floats and complex numbers (``numpy.dtypes.UInt32DType``...); object and structured dtypes stay
    refused.
    """
    import numpy as np

    try:
        from numpy._core.multiarray import _reconstruct  # NumPy >= 2
    except ImportError:  # pragma: no cover - NumPy 1.x
        from numpy.core.multiarray import _reconstruct
    numeric = [type(np.dtype(code)) for code in "?bhilqBHILQefdgFDG"]
    # Checkpoints written under NumPy 1.x and 2.x name the function differently; allow both spellings.
    return [np.ndarray, np.dtype, (_reconstruct, "numpy._core.multiarray._reconstruct"),
            (_reconstruct, "numpy.core.multiarray._reconstruct"), *dict.fromkeys(numeric)]


def safe_torch_load(path: Path) -> Any:
    """``torch.load(path, weights_only=True)`` with plain NumPy arrays allowed; never runs pickled code."""
    mmap = zipfile.is_zipfile(path)  # memory-map the (large) optimizer state instead of reading it all
    try:
        with torch.serialization.safe_globals(_numpy_safe_globals()):
            return torch.load(path, map_location="cpu", weights_only=True, mmap=mmap)
    except Exception as err:
        text = " ".join(str(err).split())
        match = re.search(r"WeightsUnpickler error:\s*(.*?)(?:\s*Check the documentation|$)", text)
        reason = match.group(1) if match else text[:300] or type(err).__name__
        raise ConversionError(f"{path}: cannot be read safely with torch.load(weights_only=True): {reason}. "
                              "Only tensors, plain Python values and numeric NumPy arrays are accepted.") from err


def strip_wrapper_prefixes(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Drop ``torch.compile`` (``_orig_mod.``), DDP (``module.``) and ``model.`` prefixes, as their loader does."""
    clean = {}
    for name, tensor in state.items():
        changed = True
        while changed:
            changed = False
            for prefix in WRAPPER_PREFIXES:
                if name.startswith(prefix):
                    name, changed = name[len(prefix):], True
        clean[name] = tensor
    return clean


def load_training_checkpoint(path: str | Path) -> SourceCheckpoint:
    """Read a ``checkpoint-XXXXXXXX.pt`` written by their ``slm.train`` (weights and model args only)."""
    path = Path(path)
    payload = safe_torch_load(path)
    if not isinstance(payload, dict) or "model" not in payload or "model_args" not in payload:
        keys = sorted(payload) if isinstance(payload, dict) else type(payload).__name__
        raise ConversionError(f"{path}: not an slm_scaling training checkpoint: expected a dict with 'model' and "
                              f"'model_args', got {keys}")
    version = payload.get("format_version", NATIVE_FORMAT_VERSION)
    if version != NATIVE_FORMAT_VERSION:
        raise ConversionError(f"{path}: unsupported checkpoint format_version {version!r} (expected 1)")
    model_args = dict(payload["model_args"])
    if "max_block_size" in model_args:  # older checkpoints
        model_args["block_size"] = model_args.pop("max_block_size")
    state = payload["model"]
    if not isinstance(state, dict):
        raise ConversionError(f"{path}: 'model' is a {type(state).__name__}, not a state dict")
    return SourceCheckpoint(path, "training", model_args, strip_wrapper_prefixes(dict(state)),
                            {"step": payload.get("step")})


def _load_safetensors_folder(root: Path) -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    single, index_path = root / "model.safetensors", root / "model.safetensors.index.json"
    if single.exists() and index_path.exists():
        raise ConversionError(f"{root}: both model.safetensors and model.safetensors.index.json: ambiguous weights")
    if single.exists():
        return load_file(single, device="cpu")
    if not index_path.exists():
        raise ConversionError(f"{root}: no model.safetensors or model.safetensors.index.json")
    weight_map = json.loads(index_path.read_text()).get("weight_map")
    if not isinstance(weight_map, dict) or not weight_map:
        raise ConversionError(f"{index_path}: no 'weight_map'")
    state: dict[str, torch.Tensor] = {}
    for name in sorted(set(weight_map.values())):
        if Path(name).name != name or not name.endswith(".safetensors"):
            raise ConversionError(f"{index_path}: invalid shard name {name!r}")
        if not (root / name).exists():
            raise ConversionError(f"{index_path}: shard {name} is missing from {root}")
        state.update(load_file(root / name, device="cpu"))
    return state


def load_native_folder(root: str | Path) -> SourceCheckpoint:
    """Read a folder written by their ``TransformerLM.save_pretrained`` (the Hub checkpoints)."""
    root = Path(root)
    config_path = root / "config.json"
    config = json.loads(config_path.read_text())
    if config.get("format_version") != NATIVE_FORMAT_VERSION or not isinstance(config.get("model_args"), dict):
        raise ConversionError(f"{config_path}: not an slm_scaling export: expected format_version 1 and a "
                              f"'model_args' object, got format_version={config.get('format_version')!r}")
    return SourceCheckpoint(root, "native", dict(config["model_args"]), strip_wrapper_prefixes(_load_safetensors_folder(root)))


# ---------------------------------------------------------------------------------------------- mapping


def _mlp_width(dim: int, hidden_dim: int | None, multiple_of: int) -> int:
    """Their MLP width: ``hidden_dim`` if set, else 2/3 of 4d rounded up to ``multiple_of``."""
    if hidden_dim is not None:
        return int(hidden_dim)
    hidden = int(2 * (4 * dim) / 3)
    return multiple_of * ((hidden + multiple_of - 1) // multiple_of)


def shape_from_args(model_args: dict[str, Any], where: Path | str) -> SlmShape:
    """Validate their ``model_args`` and return the shape; prefix-conditioned models are refused."""
    missing = [k for k in ("dim", "n_layers", "n_heads", "vocab_size") if model_args.get(k) is None]
    if missing:
        raise ConversionError(f"{where}: model_args lacks {missing}")
    if model_args.get("prefix_vocab_size") is not None:
        raise ConversionError(f"{where}: a prefix-conditioned model (prefix_vocab_size="
                              f"{model_args['prefix_vocab_size']}) has no LlamaForCausalLM equivalent")
    dim, n_heads = int(model_args["dim"]), int(model_args["n_heads"])
    n_kv = int(model_args.get("n_kv_heads") or n_heads)
    if dim % n_heads or n_heads % n_kv or (dim // n_heads) % 2:
        raise ConversionError(f"{where}: inconsistent heads: dim={dim}, n_heads={n_heads}, n_kv_heads={n_kv} "
                              "(need dim % n_heads == 0, n_heads % n_kv_heads == 0 and an even head size)")
    return SlmShape(
        dim=dim, n_layers=int(model_args["n_layers"]), n_heads=n_heads, n_kv_heads=n_kv,
        vocab_size=int(model_args["vocab_size"]),
        hidden_dim=_mlp_width(dim, model_args.get("hidden_dim"), int(model_args.get("multiple_of", 256))),
        norm_eps=float(model_args.get("norm_eps", DEFAULT_NORM_EPS)),
        block_size=int(model_args.get("block_size", BLOCK_SIZE)),
    )


def expected_shapes(shape: SlmShape) -> dict[str, tuple[int, ...]]:
    """Every tensor of their state dict (tied head stored as ``tok_embeddings.weight``) and its shape."""
    d, hd, f = shape.dim, shape.head_dim, shape.hidden_dim
    per_layer = {
        "attention.wq.weight": (shape.n_heads * hd, d), "attention.wk.weight": (shape.n_kv_heads * hd, d),
        "attention.wv.weight": (shape.n_kv_heads * hd, d), "attention.wo.weight": (d, shape.n_heads * hd),
        "feed_forward.w1.weight": (f, d), "feed_forward.w3.weight": (f, d), "feed_forward.w2.weight": (d, f),
        "attention_norm.weight": (d,), "ffn_norm.weight": (d,),
    }
    out = {"tok_embeddings.weight": (shape.vocab_size, d), "norm.weight": (d,)}
    for i in range(shape.n_layers):
        out.update({f"layers.{i}.{name}": s for name, s in per_layer.items()})
    return out


def permute_rotary(weight: torch.Tensor, n_heads: int) -> torch.Tensor:
    """Reorder the output rows of a q/k projection from interleaved rotary pairs to half-split pairs.

    Within each head, their row ``2j + r`` (``r`` = 0 real, 1 imaginary part of frequency ``j``) becomes row
    ``r * head_dim/2 + j``, the position transformers' ``rotate_half`` pairs it with.
    """
    out_dim, in_dim = weight.shape
    head_dim = out_dim // n_heads
    return weight.reshape(n_heads, head_dim // 2, 2, in_dim).transpose(1, 2).reshape(out_dim, in_dim).contiguous()


def map_state_dict(state: dict[str, torch.Tensor], shape: SlmShape, where: Path | str) -> dict[str, torch.Tensor]:
    """Their state dict -> ``LlamaForCausalLM``'s, after checking every key and shape."""
    state = {k: v for k, v in state.items() if not _IGNORED_KEYS.match(k)}
    if "output.weight" in state:
        head = state.pop("output.weight")
        if "tok_embeddings.weight" not in state:
            state["tok_embeddings.weight"] = head
        elif head.shape != state["tok_embeddings.weight"].shape or not torch.equal(head, state["tok_embeddings.weight"]):
            raise ConversionError(f"{where}: output.weight differs from tok_embeddings.weight; their model ties "
                                  "the two, so this is not an slm_scaling checkpoint")
    expected = expected_shapes(shape)
    missing = sorted(set(expected) - set(state), key=_natural)
    unexpected = sorted(set(state) - set(expected), key=_natural)
    problems = []
    if missing:
        problems.append(f"missing keys {_preview(missing)}")
    if unexpected:
        problems.append(f"unexpected keys {_preview(unexpected)}")
    mismatched = [f"{k}: {tuple(state[k].shape)} != expected {v}" for k, v in expected.items()
                  if k in state and tuple(state[k].shape) != v]
    if mismatched:
        problems.append(f"shape mismatches {_preview(mismatched)}")
    if problems:
        raise ConversionError(f"{where}: weights do not match model_args (dim={shape.dim}, n_layers={shape.n_layers}, "
                              f"n_heads={shape.n_heads}, vocab_size={shape.vocab_size}): " + "; ".join(problems))

    embed = state["tok_embeddings.weight"]
    out = {"model.embed_tokens.weight": embed, "lm_head.weight": embed, "model.norm.weight": state["norm.weight"]}
    for i in range(shape.n_layers):
        for theirs, ours in _LAYER_MAP.items():
            tensor = state[f"layers.{i}.{theirs}"]
            if theirs == "attention.wq.weight":
                tensor = permute_rotary(tensor, shape.n_heads)
            elif theirs == "attention.wk.weight":
                tensor = permute_rotary(tensor, shape.n_kv_heads)
            out[f"model.layers.{i}.{ours}"] = tensor
    return out


def _natural(key: str) -> list[Any]:
    return [int(p) if p.isdigit() else p for p in re.split(r"(\d+)", key)]


def _preview(items: list[str], n: int = 8) -> str:
    shown = ", ".join(items[:n])
    return f"[{shown}{f', ... ({len(items) - n} more)' if len(items) > n else ''}]"


# ---------------------------------------------------------------------------------------------- config


def check_contract(vocab: int, context: int, n_units: int, min_context: int, where: Path | str) -> None:
    """Vocabulary ``K + 2`` (units, EOS ``K``, pad ``K + 1``) and a context of at least ``min_context``."""
    if vocab != vocab_size(n_units):
        raise ConversionError(f"{where}: vocab_size {vocab} != {vocab_size(n_units)} = K + 2 for K={n_units} units "
                              f"(units 0..{n_units - 1}, EOS {eos_id(n_units)}, pad {pad_id(n_units)}); pass the "
                              "right --n-units")
    if context < min_context:
        raise ConversionError(f"{where}: context {context} < {min_context} tokens (the paper's blocks)")


def check_size(size: str, n_layers: int, d_model: int, n_heads: int, n_kv_heads: int, ffn: int, where: Path | str) -> None:
    """Refuse a checkpoint whose shape differs from this project's size ``size``."""
    from hf_slm.training.sizes import get_size

    s = get_size(size)
    want = {"n_layers": s.n_layers, "d_model": s.d_model, "n_heads": s.n_heads, "n_kv_heads": s.n_heads,
            "intermediate_size": s.intermediate_size}
    got = {"n_layers": n_layers, "d_model": d_model, "n_heads": n_heads, "n_kv_heads": n_kv_heads,
           "intermediate_size": ffn}
    diff = {k: f"{got[k]} != {want[k]}" for k in want if got[k] != want[k]}
    if diff:
        raise ConversionError(f"{where}: not size {size!r}: {diff}")


def llama_config_for(shape: SlmShape, n_units: int):
    """The ``LlamaConfig`` equivalent to their model, with the contract's token ids and tied embeddings."""
    from transformers import LlamaConfig

    return LlamaConfig(
        vocab_size=shape.vocab_size, hidden_size=shape.dim, intermediate_size=shape.hidden_dim,
        num_hidden_layers=shape.n_layers, num_attention_heads=shape.n_heads, num_key_value_heads=shape.n_kv_heads,
        head_dim=shape.head_dim, hidden_act="silu", max_position_embeddings=shape.block_size,
        rms_norm_eps=shape.norm_eps, rope_parameters={"rope_type": "default", "rope_theta": ROPE_THETA},
        attention_bias=False, mlp_bias=False, tie_word_embeddings=True,
        bos_token_id=eos_id(n_units), eos_token_id=eos_id(n_units), pad_token_id=pad_id(n_units),
        dtype="float32",
    )


# ---------------------------------------------------------------------------------------------- convert


def _check_output(out_dir: Path, overwrite: bool) -> None:
    """Fail before any loading if ``out_dir`` is a file, or a non-empty folder without ``overwrite``."""
    if out_dir.exists() and not out_dir.is_dir():
        raise ConversionError(f"{out_dir}: exists and is not a folder")
    if out_dir.is_dir() and any(out_dir.iterdir()) and not overwrite:
        raise ConversionError(f"{out_dir}: folder is not empty (pass overwrite=True / --overwrite to replace it)")


def _set_token_ids(model: Any, n_units: int) -> None:
    for cfg in (model.config, model.generation_config):
        if cfg is not None:
            cfg.bos_token_id = cfg.eos_token_id = eos_id(n_units)
            cfg.pad_token_id = pad_id(n_units)


def _convert_llama_folder(src: Path, out_dir: Path, size: str | None, n_units: int, min_context: int) -> Path:
    """Thin path: an existing transformers Llama folder, validated and saved with the contract's ids."""
    from transformers import LlamaForCausalLM

    model = LlamaForCausalLM.from_pretrained(src)
    cfg = model.config
    check_contract(cfg.vocab_size, cfg.max_position_embeddings, n_units, min_context, src / "config.json")
    if size is not None:
        check_size(size, cfg.num_hidden_layers, cfg.hidden_size, cfg.num_attention_heads,
                   cfg.num_key_value_heads, cfg.intermediate_size, src / "config.json")
    _set_token_ids(model, n_units)
    model.save_pretrained(out_dir)
    return out_dir


def load_source(src: Path) -> SourceCheckpoint | None:
    """Read ``src`` in the authors' layout; ``None`` for a transformers Llama folder (thin path)."""
    if src.is_file() and src.suffix == ".safetensors":
        raise ConversionError(f"{src}: a lone safetensors file has no model_args: pass the folder that holds it "
                              "with its config.json")
    if src.is_file():
        return load_training_checkpoint(src)
    config_path = src / "config.json"
    if not config_path.exists():
        raise ConversionError(f"{src}: folder without config.json: neither an slm_scaling export nor a "
                              "transformers model")
    try:
        config = json.loads(config_path.read_text())
    except json.JSONDecodeError as err:
        raise ConversionError(f"{config_path}: not valid JSON ({err})") from err
    if config.get("model_type") == "llama":
        return None
    if config.get("format_version") == NATIVE_FORMAT_VERSION:
        return load_native_folder(src)
    raise ConversionError(f"{config_path}: unknown layout (model_type={config.get('model_type')!r}): expected an "
                          "slm_scaling export (format_version 1) or a transformers Llama (model_type 'llama')")


def convert_checkpoint(
    src: str | Path,
    out_dir: str | Path,
    *,
    size: str | None = None,
    n_units: int = 500,
    min_context: int = BLOCK_SIZE,
    overwrite: bool = False,
) -> Path:
    """Convert an slm_scaling checkpoint (training ``.pt``, native folder or Hub id) into a ``LlamaForCausalLM``.

    Args:
        src: their ``checkpoint-XXXXXXXX.pt``, a folder written by their ``save_pretrained`` (config.json +
            safetensors), a Hub id such as ``tiagoCuervo/gslm-scaling-823m-82b``, or a transformers Llama folder.
        out_dir: where to write the transformers folder (``config.json``, ``generation_config.json``,
            ``model.safetensors``, ``conversion.json``).
        size: optionally one of this project's sizes ("823M", "85M", ...): refuse a checkpoint of another shape.
        n_units: K, the number of speech units; the vocabulary must be K + 2 (EOS K, pad K + 1).
        min_context: the smallest accepted context (``max_position_embeddings``), 2050 by default.
        overwrite: write into a non-empty ``out_dir``.

    Returns:
        ``out_dir``, loadable with ``LlamaForCausalLM.from_pretrained``.

    Raises:
        FileNotFoundError: ``src`` does not exist (and is not a reachable Hub id).
        ConversionError: (a ``ValueError``) the checkpoint is not in their layout, breaks the token contract,
            has missing/unexpected keys or wrong shapes, or cannot be unpickled safely.
    """
    from transformers import LlamaForCausalLM

    out = Path(out_dir)
    _check_output(out, overwrite)
    src_path = resolve_source(src)
    source = load_source(src_path)
    if source is None:
        return _convert_llama_folder(src_path, out, size, n_units, min_context)

    shape = shape_from_args(source.model_args, source.path)
    check_contract(shape.vocab_size, shape.block_size, n_units, min_context, source.path)
    if size is not None:
        check_size(size, shape.n_layers, shape.dim, shape.n_heads, shape.n_kv_heads, shape.hidden_dim, source.path)
    weights = map_state_dict(source.state, shape, source.path)

    config = llama_config_for(shape, n_units)
    model = LlamaForCausalLM(config)
    model.load_state_dict({k: v.float() for k, v in weights.items()}, strict=True)
    if model.lm_head.weight.data_ptr() != model.model.embed_tokens.weight.data_ptr():  # pragma: no cover
        raise ConversionError(f"{source.path}: the converted LM head is not tied to the embedding")
    _set_token_ids(model, n_units)
    model.save_pretrained(out)
    provenance = {
        "source": str(src), "layout": source.kind, "step": source.meta.get("step"), "model_args": source.model_args,
        "n_units": n_units, "eos_token_id": eos_id(n_units), "pad_token_id": pad_id(n_units),
        "rotary": "wq/wk rows permuted from interleaved to half-split pairs",
    }
    (out / "conversion.json").write_text(json.dumps(provenance, indent=2, default=str) + "\n")
    return out
