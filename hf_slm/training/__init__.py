"""Stage 4: Llama SLMs of the paper's sizes, the training config, the loop, and the run record (contract 3).

The names below are imported on first use (PEP 562), so that ``hf_slm.training.cli`` (and ``hf-slm --help``)
does not pull in torch and transformers.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "ConfigError": "config", "DatasetSpec": "config", "TrainConfig": "config",
    "RecordError": "record", "RunRecord": "record", "flops_6nd": "record", "flops_with_attention": "record",
    "lr_at": "schedule", "lr_lambda": "schedule",
    "DEMO_SIZES": "sizes", "PAPER_SIZES": "sizes", "SIZES": "sizes", "ModelSize": "sizes",
    "count_parameters": "sizes", "get_size": "sizes", "llama_config": "sizes", "meta_model": "sizes",
    "TrainingDiverged": "trainer", "evaluate": "trainer", "latest_checkpoint": "trainer",
    "make_accelerator": "trainer", "plan_data": "trainer", "train": "trainer",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{_EXPORTS[name]}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))
