"""A whole training job from a config: pack (or open) the mix's token store, train, optionally share."""

from __future__ import annotations

from accelerate import Accelerator, PartialState

from hf_slm.training.config import TrainConfig
from hf_slm.training.record import RunRecord


def run_training(
    config: TrainConfig, push_to_hub: str | None = None, progress: bool = True, accelerator: Accelerator | None = None
) -> RunRecord:
    """``load_training_data`` -> ``train`` -> (``push_to_hub``); what ``hf-slm train`` and the recipe run."""
    from hf_slm.training.hub import push_to_hub as push
    from hf_slm.training.mix import load_training_data
    from hf_slm.training.trainer import train

    data = load_training_data(config, progress=progress)
    record = train(config, data.train, data.test, accelerator=accelerator, progress=progress,
                   datasets=data.datasets, tokenizer=data.tokenizer)
    if push_to_hub and record.finished and PartialState().is_main_process:
        push(config.output_dir, push_to_hub)
    return record
