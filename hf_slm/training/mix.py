"""The training mix: the config's unit datasets (local folders or Hub ids) -> a packed token store -> train / test.

The store is packed on first use (``hf_slm.data.store.pack_mix``, cached under ``store_dir`` by a fingerprint of
the mix) and read by memory map afterwards; ``hf-slm pack`` does the packing ahead of time. Per dataset: its
``train_split`` trains; its ``test_split`` (or, where it has none, a ``test_fraction`` of its train split chosen by
a hash of the utterance id) joins the held-out set unless the dataset says ``test: false`` (the paper keeps
sTinyStories out of the test set). ``weight`` acts when batches are drawn (``hf_slm.training.sampling``).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hf_slm.data.store import StoreError, TokenStore, pack_mix
from hf_slm.training.config import ConfigError, TrainConfig


@dataclass
class TrainingData:
    """The train and test sides of the mix's store plus what the run record keeps about where they came from."""

    train: TokenStore
    test: TokenStore
    datasets: list[dict[str, Any]]
    tokenizer: dict[str, Any] | None
    store: Path


def load_training_data(config: TrainConfig, progress: bool = True) -> TrainingData:
    """Pack the config's datasets into a token store (unless already packed) and open both sides.

    Under several processes the main one packs while the others wait, then every process maps the same files.
    ``datasets`` in the result: per dataset its id, resolved revision (the Hub commit), the weight this run
    samples it with, its held-out rule and token counts.
    """
    from hf_slm.data.processes import process_state

    if not config.datasets:
        raise ConfigError("datasets: no training data; list unit dataset folders or Hub ids under 'datasets'")
    state = process_state()
    try:
        with state.main_process_first():
            root = pack_mix(config.mix(), config.store_dir, shard_tokens=config.store_shard_tokens,
                            progress=progress and state.is_main_process)
    except StoreError as err:
        raise ConfigError(str(err)) from None
    train, test = TokenStore(root, "train"), TokenStore(root, "test")
    datasets = [{**entry, "weight": spec.weight} for entry, spec in zip(train.datasets, config.datasets, strict=True)]
    return TrainingData(train=train, test=test, datasets=datasets, tokenizer=train.tokenizer, store=root)
