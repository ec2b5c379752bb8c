"""The study's only calls into the training and evaluation stages.

Three adapters, so that swapping in the token store (memory-mapped batches instead of blocks packed in RAM)
and ``hf-slm eval``'s Python API (``evaluate_all(..., scoring="paper")``) changes a few lines here:

- :func:`load_family_data`: a family's training / held-out blocks and its benchmark datasets;
- :func:`train_run`: one run with ``hf_slm.training.train``;
- :func:`evaluate_model`: a trained model on the family's benchmarks under the study's scoring presets.

Scoring presets today: ``sum`` and ``mean`` are the scorer's rules; ``paper`` (the release's rules) is
approximated by ``mean`` over whole utterances, which is what the generated benchmarks hold (one candidate
= the whole utterance, scored after a leading EOS); the release's tie rules and sBLIMP's macro mean over
phenomena come with ``hf-slm eval``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

PRESET_RULES = {"paper": "mean", "mean": "mean", "sum": "sum"}


@dataclass
class FamilyData:
    """What a family's runs train and are scored on."""

    family: str
    n_units: int
    train: Any  # hf_slm.data.PackedBlocks
    test: Any
    benchmarks: dict[str, Any] = field(default_factory=dict)  # name -> datasets.Dataset (one row per candidate)
    datasets: list[dict[str, Any]] = field(default_factory=list)
    tokenizer: dict[str, Any] | None = None


def load_family_data(family: str, stories: Path, benchmarks: Mapping[str, Path], n_units: int, block_size: int,
                     tokenizer: str | None = None) -> FamilyData:
    """Pack the ``stories`` dataset's train and test splits into blocks (in RAM, as the trainer reads them
    today) and load the benchmark datasets; refuse a dataset whose K differs from ``n_units``."""
    from hf_slm.data import eos_id, pack_blocks, pad_id
    from hf_slm.data.unit_dataset import load_unit_dataset, load_unit_info
    from hf_slm.training.mix import unit_sequences

    info = load_unit_info(stories)
    if info.n_units != n_units:
        raise ValueError(f"{stories}: K = {info.n_units}, but the study's {family} family has K = {n_units}")
    splits = load_unit_dataset(stories)
    missing = [s for s in ("train", "test") if s not in splits]
    if missing:
        raise ValueError(f"{stories}: no {missing} split; the study trains on 'train' and measures the loss on 'test'")
    train = pack_blocks(unit_sequences(splits["train"]), block_size, eos_id(n_units), pad_id(n_units))
    test = pack_blocks(unit_sequences(splits["test"]), block_size, eos_id(n_units), pad_id(n_units))
    benches = {name: load_unit_dataset(path, split="test") for name, path in benchmarks.items()}
    return FamilyData(family=family, n_units=n_units, train=train, test=test, benchmarks=benches,
                      datasets=[{"id": str(stories), "revision": None, "tokens": int(train.n_tokens)}],
                      tokenizer={"id": tokenizer or info.tokenizer, "revision": info.tokenizer_revision})


def train_run(config, data: FamilyData, progress: bool = True):
    """Train one run (``hf_slm.training.train``); a finished run of the same config returns its record."""
    from hf_slm.training import train

    return train(config, data.train, data.test, progress=progress, datasets=data.datasets, tokenizer=data.tokenizer)


def evaluate_model(model_dir: str | Path, data: FamilyData, presets: Sequence[str], batch_size: int = 32,
                   progress: bool = False) -> dict[str, dict[str, dict[str, Any]]]:
    """``{preset: {benchmark: {accuracy, n, ci_low, ci_high, rule, scoring}}}`` of the model in ``model_dir``.

    Each candidate is scored once (one forward pass); every preset's decision comes from those scores.
    """
    import numpy as np
    from transformers import AutoModelForCausalLM

    from hf_slm.evaluation import accuracy_summary, apply_rule, compare, pair_rows, score_units

    model = AutoModelForCausalLM.from_pretrained(model_dir).eval()
    out: dict[str, dict[str, dict[str, Any]]] = {p: {} for p in presets}
    for name, ds in data.benchmarks.items():
        cols = ds.select_columns(["item_id", "label", "units"]).to_dict()
        pairs = pair_rows([str(i) for i in cols["item_id"]], [int(v) for v in cols["label"]], name)
        scores = score_units(model, cols["units"], data.n_units, batch_size=batch_size)
        for preset in presets:
            rule = PRESET_RULES[preset]
            values = apply_rule(scores, rule)
            summary = accuracy_summary(compare(values[pairs.positive], values[pairs.negative]))
            margin = values[pairs.positive] - values[pairs.negative]
            out[preset][name] = {**summary, "rule": rule, "scoring": preset,
                                 "mean_margin": float(np.mean(margin))}
    return out
