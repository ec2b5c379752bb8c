"""Stage 1: speech -> discrete units (audio decoding, encoders, k-means, dedup, unigram compression).

Names are imported on first use (PEP 562), so ``hf_slm.units.cli`` and ``hf-slm --help`` do not pay for
torch, transformers and scikit-learn until a command needs them.
"""

from __future__ import annotations

import importlib
from typing import Any

from .dedup import dedup as dedup  # eager: the submodule has the same name and would shadow the function

_EXPORTS = {
    "audio": ["AudioError", "encode_wav_bytes", "load_audio", "resample_wave"],
    "encoders": ["Encoder", "encoder_from_dict"],
    "hubert": ["HubertEncoder"],
    "kmeans": ["assign", "fit_kmeans"],
    "logmel": ["LogMelConfig", "LogMelEncoder"],
    "tokenizer": ["SpeechTokenizer", "TokenizerFileError", "UnitSequence"],
    "unigram": [
        "compress",
        "compress_dataset",
        "compression_ratio",
        "decompress",
        "string_to_units",
        "train_unigram",
        "units_to_string",
    ],
    "convert": ["import_sklearn_kmeans"],
}
_MODULE_OF = {name: module for module, names in _EXPORTS.items() for name in names}

__all__ = sorted([*_MODULE_OF, "dedup"])


def __getattr__(name: str) -> Any:
    if name not in _MODULE_OF:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f".{_MODULE_OF[name]}", __name__), name)


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
