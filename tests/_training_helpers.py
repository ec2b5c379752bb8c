"""Shared pieces of the data-store and training tests: tiny unit datasets on disk, and test-speed fixtures.

Load with ``importlib`` (the suite runs with ``--import-mode=importlib``)::

    _h = load_helpers()  # see the top of each test module
"""

from __future__ import annotations

from pathlib import Path

import datasets
import numpy as np
import pytest
import torch

from hf_slm.data.unit_dataset import UnitDatasetInfo, save_unit_dataset

K = 12
FEATURES = datasets.Features({"id": datasets.Value("string"), "units": datasets.List(datasets.Value("uint16")),
                              "n_frames": datasets.Value("int32"), "seconds": datasets.Value("float32")})


def unit_split(n: int, seed: int, length: int = 20, k: int = K, vary: bool = False) -> datasets.Dataset:
    """``n`` utterances of random units 0..k-1 (``length`` each, or 1..length when ``vary``)."""
    rng = np.random.default_rng(seed)
    sizes = rng.integers(1, length + 1, size=n) if vary else np.full(n, length)
    units = [rng.integers(0, k, size=s).astype(np.uint16) for s in sizes]
    return datasets.Dataset.from_dict({
        "id": [f"u{seed}-{i}" for i in range(n)], "units": units, "n_frames": [int(s) for s in sizes],
        "seconds": [float(s) / 25 for s in sizes]}, features=FEATURES)


def unit_info(k: int = K) -> UnitDatasetInfo:
    return UnitDatasetInfo(tokenizer="tok", tokenizer_revision="r1", n_units=k, frame_rate=25.0, dedup=False)


def save_units(folder: Path, splits: dict[str, datasets.Dataset], k: int = K) -> Path:
    """A unit dataset folder (Parquet + card), quietly."""
    datasets.disable_progress_bars()
    try:
        return save_unit_dataset(splits, folder, unit_info(k))
    finally:
        datasets.enable_progress_bars()


def stream_of(ds: datasets.Dataset, eos: int = K, column: str = "units") -> np.ndarray:
    """What the store must hold for ``ds``: each utterance followed by EOS, in order."""
    return np.concatenate([np.append(np.asarray(u, dtype=np.int64), eos) for u in ds[column]])


@pytest.fixture
def one_thread():
    """Tiny models train several times faster on one intra-op thread (no oversubscription on a shared CPU)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture
def store_dir(tmp_path, monkeypatch):
    """Token stores of the test go under its tmp folder (also for subprocesses, through the environment)."""
    folder = tmp_path / "stores"
    monkeypatch.setenv("HF_SLM_STORE_DIR", str(folder))
    return folder
