"""Build a unit dataset from an audio dataset: load (undecoded), encode each split, save, optionally upload."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import datasets

from hf_slm.data.schema import OPTIONAL_STRING_COLUMNS
from hf_slm.data.unit_dataset import (
    UnitDatasetInfo,
    encode_audio_dataset,
    looks_like_hub_id,
    save_unit_dataset,
)


def load_audio_dataset(
    source: str | Path,
    split: str | None = None,
    config: str | None = None,
    audio_column: str = "audio",
    revision: str | None = None,
    streaming: bool = False,
) -> datasets.Dataset | datasets.DatasetDict | datasets.IterableDataset | datasets.IterableDatasetDict:
    """An audio dataset with ``audio_column`` left undecoded (``{"bytes", "path"}``), for ``load_audio``.

    ``source`` is a ``save_to_disk`` folder, a data folder (Parquet, audio files) or a Hub dataset id.
    Decoding stays ours: ``datasets`` 5 decodes ``Audio`` through torchcodec, which needs CUDA libraries.
    """
    path = Path(source)
    if (path / "dataset_info.json").exists() or (path / "dataset_dict.json").exists():
        ds = datasets.load_from_disk(str(path))
        if isinstance(ds, datasets.DatasetDict) and split is not None:
            if split not in ds:
                raise ValueError(f"{source}: no split {split!r}; have {sorted(ds)}")
            ds = ds[split]
    elif path.exists() or looks_like_hub_id(source):
        ds = datasets.load_dataset(str(source), config, split=split, revision=revision, streaming=streaming)
    else:
        raise FileNotFoundError(f"audio dataset {str(source)!r}: no such folder, and not a Hub id (owner/name)")
    columns = ds.column_names if not isinstance(ds, dict) else next(iter(ds.values())).column_names
    if audio_column not in (columns or []):
        raise ValueError(f"{source}: no audio column {audio_column!r}; columns are {columns}")
    return ds.cast_column(audio_column, datasets.Audio(decode=False))


def build_unit_dataset(
    source: str | Path,
    tokenizer: Any,
    output_dir: str | Path,
    splits: Sequence[str] | None = None,
    config: str | None = None,
    audio_column: str = "audio",
    id_column: str | None = "id",
    keep_columns: Sequence[str] = OPTIONAL_STRING_COLUMNS,
    tokenizer_id: str | None = None,
    tokenizer_revision: str | None = None,
    test_fraction: float | None = None,
    seed: int = 0,
    batch_size: int = 16,
    split_map: Mapping[str, str] | None = None,
    rename: Mapping[str, str] | None = None,
    revision: str | None = None,
) -> Path:
    """Encode ``splits`` of audio dataset ``source`` with ``tokenizer`` into a unit dataset at ``output_dir``.

    ``split_map`` names the unit dataset split of each source split (default: the same name); source splits
    mapped to one name are concatenated, e.g. LibriSpeech's three training splits into ``train``. With
    ``test_fraction`` (corpora without a held-out split) a seeded share of ``train`` becomes ``test``.
    ``rename`` maps kept source columns to the contract's names (``speaker_id`` -> ``speaker``). Without an
    ``id_column`` ids are ``<source split>-<position>``. Unusable audio is skipped and counted in the card.
    """
    ds = load_audio_dataset(source, config=config, audio_column=audio_column, revision=revision)
    available = list(ds) if isinstance(ds, datasets.DatasetDict) else ["train"]
    chosen = list(splits or available)
    missing = [s for s in chosen if s not in available]
    if missing:
        raise ValueError(f"{source}: no split(s) {missing}; have {available}")
    split_map = dict(split_map or {})
    info = UnitDatasetInfo(tokenizer_id or "unknown", tokenizer_revision, tokenizer.n_units, tokenizer.frame_rate,
                           tokenizer.dedup)
    parts: dict[str, list[datasets.Dataset]] = {}
    for name in chosen:
        part = ds[name] if isinstance(ds, datasets.DatasetDict) else ds
        skipped: Counter = Counter()
        encoded = encode_audio_dataset(part, tokenizer, audio_column=audio_column, id_column=id_column,
                                       keep_columns=keep_columns, batch_size=batch_size, skipped=skipped,
                                       desc=f"units {name}", rename=rename, id_prefix=f"{name}-")
        parts.setdefault(split_map.get(name, name), []).append(encoded)
        for reason, count in skipped.items():
            info.skipped[reason] = info.skipped.get(reason, 0) + count
    out = {name: datasets.concatenate_datasets(p) if len(p) > 1 else p[0] for name, p in parts.items()}
    if test_fraction:
        if "test" in out:
            raise ValueError(f"{source} already has a 'test' split; drop test_fraction")
        held = out.pop("train").train_test_split(test_size=test_fraction, seed=seed)
        out.update(train=held["train"], test=held["test"])
    for part in out.values():
        info.add(part)
    return save_unit_dataset(out, output_dir, info)


def push_unit_dataset(folder: str | Path, repo_id: str, private: bool = False, revision: str | None = None) -> str:
    """Upload a saved unit dataset folder (Parquet shards + card) to the Hub; returns the commit URL."""
    from huggingface_hub import HfApi

    api = HfApi()
    api.create_repo(repo_id, repo_type="dataset", private=private, exist_ok=True)
    commit = api.upload_folder(folder_path=str(folder), repo_id=repo_id, repo_type="dataset", revision=revision,
                               commit_message="Upload unit dataset (hf_slm)")
    return str(commit)
