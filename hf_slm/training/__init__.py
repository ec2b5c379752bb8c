"""Stage 4: Llama SLMs of the paper's sizes, the training config, the loop, and the run record (contract 3)."""

from hf_slm.training.config import ConfigError, DatasetSpec, TrainConfig
from hf_slm.training.record import RecordError, RunRecord, flops_6nd, flops_with_attention
from hf_slm.training.schedule import lr_at, lr_lambda
from hf_slm.training.sizes import (
    DEMO_SIZES,
    PAPER_SIZES,
    SIZES,
    ModelSize,
    count_parameters,
    get_size,
    llama_config,
    meta_model,
)
from hf_slm.training.trainer import evaluate, latest_checkpoint, make_accelerator, plan_data, train

__all__ = [
    "DEMO_SIZES", "PAPER_SIZES", "SIZES", "ConfigError", "DatasetSpec", "ModelSize", "RecordError", "RunRecord",
    "TrainConfig", "count_parameters", "evaluate", "flops_6nd", "flops_with_attention", "get_size",
    "latest_checkpoint", "llama_config", "lr_at", "lr_lambda", "make_accelerator", "meta_model", "plan_data",
    "train",
]
