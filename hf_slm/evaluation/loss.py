"""Test loss of a unit LM on a unit dataset (``--benchmark test_loss=PATH``), scored like the benchmarks.

Each utterance is read as in training: a leading EOS, its units, and the terminal EOS, which counts here (the
release: "test loss includes the terminal EOS"). Reported both ways: ``utterance_mean_loss`` is the mean over
utterances of each utterance's mean NLL (the release's ``evaluate.py --task loss``), ``token_mean_loss`` the
NLL per token over all utterances (the paper's eq. 2 on unpacked utterances). ``loss`` is the first under the
``paper`` preset and the second under ``sum`` / ``mean``.
"""

from __future__ import annotations

from typing import Any

import datasets
import numpy as np
import torch

from hf_slm.evaluation.benchmarks import BenchmarkError
from hf_slm.evaluation.presets import ScoringPreset, get_preset
from hf_slm.evaluation.scoring import sequence_logprobs
from hf_slm.evaluation.token_ids import UnitVocabulary, VocabularyError

NAME = "test_loss"


def evaluate_test_loss(
    model: torch.nn.Module,
    ds: datasets.Dataset,
    vocab: UnitVocabulary,
    scoring: str | ScoringPreset = "paper",
    batch_size: int = 16,
    device: str | torch.device | None = None,
    max_tokens: int | None = None,
    state: Any = None,
    progress: bool = False,
) -> dict:
    """``{"loss", "utterance_mean_loss", "token_mean_loss", "n", "tokens", "scoring"}`` of ``model`` on the
    utterances of unit dataset ``ds`` (nats per token)."""
    preset = get_preset(scoring)
    if "units" not in ds.column_names:
        raise BenchmarkError(f"{NAME}: needs a unit dataset with a 'units' column; have {ds.column_names}")
    if len(ds) == 0:
        raise BenchmarkError(f"{NAME}: the dataset is empty")
    cols = ds.select_columns([c for c in ("id", "units") if c in ds.column_names]).to_dict()
    ids = cols.get("id") or [str(i) for i in range(len(ds))]
    names = [f"{NAME}: utterance {uid!r}" for uid in ids]
    try:
        sequences = [[*vocab.ids(u, n), vocab.eos] for u, n in zip(cols["units"], names, strict=True)]
    except VocabularyError as err:
        raise BenchmarkError(str(err)) from err
    try:
        scores = sequence_logprobs(model, sequences, [[vocab.eos]] * len(sequences), batch_size=batch_size,
                                   device=device, max_tokens=max_tokens, names=names, state=state, progress=progress)
    except ValueError as err:
        raise BenchmarkError(str(err)) from err
    sums = np.array([s for s, _ in scores], dtype=np.float64)
    counts = np.array([n for _, n in scores], dtype=np.float64)
    utterance_mean = float(np.mean(-sums / counts))
    token_mean = float(-sums.sum() / counts.sum())
    return {
        "loss": utterance_mean if preset.name == "paper" else token_mean,
        "utterance_mean_loss": utterance_mean,
        "token_mean_loss": token_mean,
        "n": len(sequences),
        "tokens": int(counts.sum()),
        "scoring": preset.name,
    }
