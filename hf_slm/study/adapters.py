"""The study's only calls into the training and evaluation stages.

Three adapters:

- :func:`load_family_data`: a family's token store (train and held-out sides) and its benchmark datasets;
- :func:`train_run`: one run with ``hf_slm.training.train``;
- :func:`evaluate_model`: a trained model on the family's benchmarks under the study's scoring presets
  (``hf-slm eval``'s presets: ``paper``, the release's rules, by default).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass
class FamilyData:
    """What a family's runs train and are scored on."""

    family: str
    n_units: int
    train: Any  # hf_slm.data.store.TokenStore
    test: Any
    benchmarks: dict[str, Any] = field(default_factory=dict)  # name -> datasets.Dataset (one row per candidate)
    datasets: list[dict[str, Any]] = field(default_factory=list)
    tokenizer: dict[str, Any] | None = None


def load_family_data(family: str, config, benchmarks: Mapping[str, Path], progress: bool = True) -> FamilyData:
    """The token store of a run config's training data (``hf_slm.training.load_training_data``: packed on first
    use, memory-mapped afterwards) and the family's benchmark datasets (their ``test`` split)."""
    from hf_slm.data.unit_dataset import load_unit_dataset
    from hf_slm.training.mix import load_training_data

    data = load_training_data(config, progress=progress)
    benches = {name: load_unit_dataset(path, split="test") for name, path in benchmarks.items()}
    return FamilyData(family=family, n_units=config.n_units, train=data.train, test=data.test, benchmarks=benches,
                      datasets=data.datasets, tokenizer=data.tokenizer)


def train_run(config, data: FamilyData, progress: bool = True):
    """Train one run (``hf_slm.training.train``); a finished run of the same config returns its record."""
    from hf_slm.training import train

    return train(config, data.train, data.test, progress=progress, datasets=data.datasets, tokenizer=data.tokenizer)


def evaluate_model(model_dir: str | Path, data: FamilyData, presets: Sequence[str], batch_size: int = 32,
                   progress: bool = False) -> dict[str, dict[str, dict[str, Any]]]:
    """``{preset: {benchmark: hf-slm eval's result}}`` of the model in ``model_dir`` on the family's benchmarks
    (:func:`hf_slm.evaluation.evaluate_presets`: presets sharing a candidate layout share one forward pass)."""
    from transformers import AutoModelForCausalLM

    from hf_slm.evaluation.benchmarks import evaluate_presets
    from hf_slm.evaluation.token_ids import model_vocabulary

    model = AutoModelForCausalLM.from_pretrained(model_dir).eval()
    vocab = model_vocabulary(model, model_dir, data.n_units)  # a unigram model compresses the benchmark units
    out: dict[str, dict[str, dict[str, Any]]] = {p: {} for p in presets}
    for name, ds in data.benchmarks.items():
        for preset, result in evaluate_presets(model, ds, None, name, presets, vocab=vocab, batch_size=batch_size,
                                               progress=progress).items():
            out[preset][name] = result
    return out
