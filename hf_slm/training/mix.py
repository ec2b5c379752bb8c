"""The training mix: unit datasets (local folders or Hub ids) -> weighted train / test sequences -> blocks.

Per dataset: its ``train_split`` trains; its ``test_split`` (or, where it has none, a seeded
``test_fraction`` of its train split) joins the held-out set unless the dataset says ``test: false`` (the
paper keeps sTinyStories out of the test set). ``weight`` repeats a dataset (2.0) or subsamples it (0.5).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import datasets
import numpy as np

from hf_slm.data.packing import PackedBlocks, pack_blocks
from hf_slm.data.tokens import eos_id, pad_id
from hf_slm.training.config import ConfigError, DatasetSpec, TrainConfig


@dataclass
class TrainingData:
    """Packed train / test blocks plus what the run record keeps about where they came from."""

    train: PackedBlocks
    test: PackedBlocks
    datasets: list[dict[str, Any]]
    tokenizer: dict[str, Any] | None


def unit_sequences(ds: datasets.Dataset) -> list[np.ndarray]:
    """The ``units`` column as one int64 array per utterance, read column-wise through Arrow (no row loop)."""
    if len(ds) == 0:
        return []
    column = ds.with_format("arrow")[:]["units"].combine_chunks()
    values = column.flatten().to_numpy(zero_copy_only=False).astype(np.int64)
    offsets = column.offsets.to_numpy()
    return np.split(values, (offsets - offsets[0])[1:-1])


def weighted(sequences: list[np.ndarray], weight: float, seed: int) -> list[np.ndarray]:
    """``floor(weight)`` full copies plus a seeded ``weight % 1`` share of the utterances."""
    whole, frac = divmod(weight, 1.0)
    rng = np.random.default_rng(seed)
    extra = rng.permutation(len(sequences))[: round(frac * len(sequences))]
    return sequences * int(whole) + [sequences[i] for i in sorted(extra)]


def split_sequences(
    spec: DatasetSpec, splits: datasets.DatasetDict, test_fraction: float, seed: int
) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Train and held-out utterances of one dataset (held-out empty when ``spec.test`` is False)."""
    if spec.train_split not in splits:
        raise ConfigError(f"datasets: {spec.id} has no split {spec.train_split!r} (splits: {sorted(splits)})")
    train = unit_sequences(splits[spec.train_split])
    if spec.test_split in splits:
        test = unit_sequences(splits[spec.test_split]) if spec.test else []
        return train, test
    if not spec.test:
        return train, []
    held_out = np.random.default_rng(seed).random(len(train)) < test_fraction
    return [s for s, h in zip(train, held_out, strict=True) if not h], [s for s, h in zip(train, held_out, strict=True) if h]


def load_training_data(config: TrainConfig) -> TrainingData:
    """Load, weight, split and pack the config's datasets into ``config.block_size`` blocks."""
    from hf_slm.data.unit_dataset import load_unit_dataset, load_unit_info

    if not config.datasets:
        raise ConfigError("datasets: no training data; list unit dataset folders or Hub ids under 'datasets'")
    train: list[np.ndarray] = []
    test: list[np.ndarray] = []
    meta, tokenizers = [], set()
    for i, spec in enumerate(config.datasets):
        info = load_unit_info(spec.id, revision=spec.revision)
        if info.n_units != config.n_units:
            raise ConfigError(f"n_units={config.n_units} but dataset {spec.id} has K={info.n_units} units")
        splits = load_unit_dataset(spec.id, revision=spec.revision)
        if isinstance(splits, datasets.Dataset):
            splits = datasets.DatasetDict({spec.train_split: splits})
        tr, te = split_sequences(spec, splits, config.test_fraction, seed=config.seed + i)
        tr = weighted(tr, spec.weight, seed=config.seed + i)
        train += tr
        test += te
        tokenizers.add((info.tokenizer, info.tokenizer_revision))
        meta.append({"id": spec.id, "revision": spec.revision, "weight": spec.weight, "test": spec.test,
                     "train_tokens": int(sum(len(s) for s in tr)), "test_tokens": int(sum(len(s) for s in te))})
    if len(tokenizers) > 1:
        raise ConfigError(f"datasets: the mix uses different speech tokenizers {sorted(map(str, tokenizers))}")
    (tok_id, tok_rev), = tokenizers
    k = config.n_units
    return TrainingData(
        train=pack_blocks(train, config.block_size, eos_id(k), pad_id(k)),
        test=pack_blocks(test, config.block_size, eos_id(k), pad_id(k)),
        datasets=meta,
        tokenizer={"id": tok_id, "revision": tok_rev},
    )
