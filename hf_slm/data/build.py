"""Build a unit dataset from an audio dataset: load (undecoded), encode shard by shard (resumable, split over
processes), write the card, optionally upload."""

from __future__ import annotations

import hashlib
import itertools
import json
import math
from collections import Counter
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import datasets
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from hf_slm.data.schema import OPTIONAL_STRING_COLUMNS
from hf_slm.data.unit_dataset import (
    UnitDatasetInfo,
    encode_audio_dataset,
    looks_like_hub_id,
    render_card,
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
    streaming: bool = False,
    shard_rows: int = 10_000,
    process_index: int = 0,
    num_processes: int = 1,
) -> Path:
    """Encode ``splits`` of audio dataset ``source`` with ``tokenizer`` into a unit dataset at ``output_dir``.

    The source is cut into shards of ``shard_rows`` rows; process ``process_index`` of ``num_processes``
    encodes shards ``k`` with ``k % num_processes == process_index`` and writes each as its own Parquet file,
    atomically, with a marker holding its skipped-audio counts. A run that is killed and started again skips
    the finished shards, so no utterance is lost or written twice, and the result does not depend on the
    number of processes. The last process to finish a split's shards writes the card (README.md) once every
    shard of every split is there.

    ``split_map`` names the unit dataset split of each source split (default: the same name); source splits
    mapped to one name end up together, e.g. LibriSpeech's three training splits in ``train``. With
    ``test_fraction`` (corpora without a held-out split) utterances go to ``test`` by a seeded hash of their
    id, so the split is the same whatever the sharding. ``rename`` maps kept source columns to the contract's
    names (``speaker_id`` -> ``speaker``). Without an ``id_column`` ids are ``<source split>-<position>``.
    ``streaming`` reads a Hub corpus without downloading it whole.
    """
    if shard_rows < 1 or not 0 <= process_index < num_processes:
        raise ValueError(f"need shard_rows >= 1 and 0 <= process_index < num_processes, got {shard_rows}, "
                         f"{process_index}, {num_processes}")
    ds = load_audio_dataset(source, config=config, audio_column=audio_column, revision=revision, streaming=streaming)
    available = list(ds) if isinstance(ds, (datasets.DatasetDict, datasets.IterableDatasetDict)) else ["train"]
    chosen = list(splits or available)
    missing = [s for s in chosen if s not in available]
    if missing:
        raise ValueError(f"{source}: no split(s) {missing}; have {available}")
    out, split_map = Path(output_dir), dict(split_map or {})
    (out / "data").mkdir(parents=True, exist_ok=True)
    (out / _SHARDS).mkdir(exist_ok=True)
    _claim(out, {"source": str(source), "config": config, "revision": revision, "splits": chosen,
                 "split_map": split_map, "audio_column": audio_column, "id_column": id_column,
                 "keep_columns": list(keep_columns), "rename": dict(rename or {}), "test_fraction": test_fraction,
                 "seed": seed, "shard_rows": shard_rows,
                 "tokenizer": getattr(tokenizer, "to_config", lambda: repr(tokenizer))()})
    encode = dict(audio_column=audio_column, id_column=id_column, keep_columns=keep_columns, batch_size=batch_size,
                  rename=rename)
    for name in chosen:
        part = ds[name] if isinstance(ds, (datasets.DatasetDict, datasets.IterableDatasetDict)) else ds
        target = split_map.get(name, name)
        n_rows = 0
        for k, rows in _shards(part, shard_rows, process_index, num_processes):
            if rows is not None and not (out / _SHARDS / f"{name}-{k:05d}.json").exists():
                _encode_shard(rows, tokenizer, out, name, target, k, k * shard_rows, test_fraction, seed, encode)
            n_rows = (k + 1) * shard_rows if rows is None else k * shard_rows + len(rows)
        (out / _SHARDS / f"{name}.rows").write_text(str(n_rows))
    info = UnitDatasetInfo(tokenizer_id or "unknown", tokenizer_revision, tokenizer.n_units, tokenizer.frame_rate,
                           tokenizer.dedup)
    if _all_shards_done(out, chosen, shard_rows):
        _write_card(out, info, chosen)
    return out


_SHARDS = ".shards"  # per-shard markers (skipped counts) and per-split row counts of a build in progress


def _claim(out: Path, settings: dict[str, Any]) -> None:
    """Record the build's settings, or refuse to resume a build of other settings into the same folder."""
    path = out / _SHARDS / "build.json"
    settings = json.loads(json.dumps(settings, default=str))
    if path.exists():
        before = json.loads(path.read_text())
        changed = sorted(k for k in set(before) | set(settings) if before.get(k) != settings.get(k))
        if changed:
            raise ValueError(f"{out} holds a build with other settings ({', '.join(changed)}); "
                             "use another output folder or delete it")
        return
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(settings, indent=2, sort_keys=True))
    tmp.replace(path)


def _shards(part, shard_rows: int, process_index: int, num_processes: int):
    """``(k, rows of shard k)`` for this process's shards and ``(k, None)`` for the others, in order."""
    if isinstance(part, datasets.Dataset):
        for k in range(max(1, math.ceil(len(part) / shard_rows))):
            mine = k % num_processes == process_index
            yield k, part.select(range(k * shard_rows, min(len(part), (k + 1) * shard_rows))) if mine else None
        return
    it, k = iter(part), 0
    while True:
        chunk = list(itertools.islice(it, shard_rows))  # another process's rows are read, never decoded
        if not chunk:
            return
        yield k, chunk if k % num_processes == process_index else None
        k += 1


def _encode_shard(rows, tokenizer, out: Path, name: str, target: str, k: int, first_row: int,
                  test_fraction: float | None, seed: int, encode: dict) -> None:
    skipped: Counter = Counter()
    units = encode_audio_dataset(rows, tokenizer, skipped=skipped, desc=f"units {name} shard {k}",
                                 id_prefix=f"{name}-", first_position=first_row, **encode)
    parts = {target: units}
    if test_fraction:
        if target == "test":
            raise ValueError(f"split {name!r} is already a test split; drop test_fraction")
        held = np.array([_hashed_share(uid, seed) < test_fraction for uid in units["id"]], dtype=bool)
        parts = {"train": units.select(np.flatnonzero(~held)), "test": units.select(np.flatnonzero(held))}
    for split, data in parts.items():
        if len(data) == 0:
            continue
        path = out / "data" / f"{split}-{name}-{k:05d}.parquet"
        tmp = path.with_suffix(".tmp")
        data.to_parquet(str(tmp))
        tmp.replace(path)
    (out / _SHARDS / f"{name}-{k:05d}.json").write_text(json.dumps(dict(skipped)))


def _hashed_share(uid: str, seed: int) -> float:
    """A number in [0, 1) that depends only on the utterance id and the seed."""
    digest = hashlib.blake2b(f"{seed}:{uid}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2**64


def _all_shards_done(out: Path, names: Sequence[str], shard_rows: int) -> bool:
    for name in names:
        rows = out / _SHARDS / f"{name}.rows"
        if not rows.exists():
            return False
        n_shards = max(1, math.ceil(int(rows.read_text()) / shard_rows))
        if any(not (out / _SHARDS / f"{name}-{k:05d}.json").exists() for k in range(n_shards)):
            return False
    return True


def _write_card(out: Path, info: UnitDatasetInfo, names: Sequence[str]) -> None:
    """Totals from the shards' Parquet files and markers, then the card that makes the folder loadable."""
    splits = sorted({p.name.split("-", 1)[0] for p in (out / "data").glob("*.parquet")})
    for split in splits:
        files = sorted((out / "data").glob(f"{split}-*.parquet"))
        info.add(datasets.Dataset(pa.concat_tables(pq.read_table(f, columns=list(_TOTALS)) for f in files)))
    for marker in sorted((out / _SHARDS).glob("*-[0-9][0-9][0-9][0-9][0-9].json")):  # <split>-<shard>.json
        for reason, count in json.loads(marker.read_text()).items():
            info.skipped[reason] = info.skipped.get(reason, 0) + count
    tmp = out / "README.md.tmp"  # several processes may get here; each writes the same card
    tmp.write_text(render_card(splits, info, out.name))
    tmp.replace(out / "README.md")


_TOTALS = ("units", "n_frames", "seconds")  # the columns UnitDatasetInfo.add sums


def push_unit_dataset(folder: str | Path, repo_id: str, private: bool = False, revision: str | None = None) -> str:
    """Upload a saved unit dataset folder (Parquet shards + card) to the Hub; returns the commit URL."""
    from huggingface_hub import HfApi

    api = HfApi()
    api.create_repo(repo_id, repo_type="dataset", private=private, exist_ok=True)
    commit = api.upload_folder(folder_path=str(folder), repo_id=repo_id, repo_type="dataset", revision=revision,
                               commit_message="Upload unit dataset (hf_slm)", ignore_patterns=[f"{_SHARDS}/*"])
    return str(commit)
