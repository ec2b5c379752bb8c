"""Build a unit dataset from an audio dataset: load (undecoded), encode shard by shard (resumable, split over
processes), write the card, optionally upload.

A build in progress lives in ``<output>/.shards/``, which ``datasets.load_dataset(<output>)`` does not see:
``build.json`` (the settings; resuming with other settings is refused), ``data/*.parquet`` (finished
shards), one marker ``<source split>-<k>.json`` per finished shard (its skipped audio by reason and its
totals per split) and ``<source split>.rows``. Every file is written to a temporary name and renamed, so a
kill leaves whole files only. When every shard is done, the card (README.md, totals from the markers) is
written and ``.shards/data`` becomes ``data/`` in one rename: until then the folder does not load at all,
never with some of its rows or wrong splits.
"""

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

from hf_slm.data.schema import OPTIONAL_STRING_COLUMNS
from hf_slm.data.unit_dataset import (
    BUILD_DIR,
    UnitDatasetInfo,
    encode_audio_dataset,
    looks_like_hub_id,
    render_card,
    write_atomically,
)

FORMAT = 2  # of a build in progress: staged shards and markers with totals


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
        try:
            ds = datasets.load_from_disk(str(path))
        except IndexError as e:  # datasets cannot reopen a saved split of 0 rows
            empty = sorted(str(p.parent) for p in path.glob("**/state.json") if not _read_json(p).get("_data_files"))
            if not empty:
                raise
            raise ValueError(f"{source}: has no rows ({', '.join(empty)}: a saved dataset of 0 rows)") from e
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
    atomically, with a marker holding its skipped-audio counts and totals. A run that is killed and started
    again skips the finished shards, so no utterance is lost or written twice, and the result does not depend
    on the number of processes. The process that finds every shard of every split done writes the card and
    publishes the shards (see the module docstring); until then ``load_dataset(output_dir)`` finds no data.

    ``split_map`` names the unit dataset split of each source split (default: the same name); source splits
    mapped to one name end up together, e.g. LibriSpeech's three training splits in ``train``. With
    ``test_fraction`` (corpora without a held-out split) utterances go to ``test`` by a seeded hash of their
    id, so the split is the same whatever the sharding. ``rename`` maps kept source columns to the contract's
    names (``speaker_id`` -> ``speaker``). Without an ``id_column`` ids are ``<source split>-<position>``.
    ``streaming`` reads a Hub corpus without downloading it whole.

    Raises:
        ValueError: bad settings, a source without the audio or id column, a split without rows, an output
            folder that holds something else, or a build with other settings to resume.
        FileNotFoundError: a source that is neither a folder nor a Hub id.
    """
    if shard_rows < 1 or not 0 <= process_index < num_processes:
        raise ValueError(f"need shard_rows >= 1 and 0 <= process_index < num_processes, got {shard_rows}, "
                         f"{process_index}, {num_processes}")
    out, split_map = Path(output_dir), dict(split_map or {})
    _check_output(out)
    ds = load_audio_dataset(source, config=config, audio_column=audio_column, revision=revision, streaming=streaming)
    available = list(ds) if isinstance(ds, (datasets.DatasetDict, datasets.IterableDatasetDict)) else ["train"]
    chosen = list(splits or available)
    missing = [s for s in chosen if s not in available]
    if missing:
        raise ValueError(f"{source}: no split(s) {missing}; have {available}")
    parts = {name: ds[name] if isinstance(ds, (datasets.DatasetDict, datasets.IterableDatasetDict)) else ds
             for name in chosen}
    for name, part in parts.items():
        _check_split(source, name, part, id_column)
    (out / BUILD_DIR).mkdir(parents=True, exist_ok=True)
    _claim(out, {"format": FORMAT, "source": str(source), "config": config, "revision": revision, "splits": chosen,
                 "split_map": split_map, "audio_column": audio_column, "id_column": id_column,
                 "keep_columns": list(keep_columns), "rename": dict(rename or {}), "test_fraction": test_fraction,
                 "seed": seed, "shard_rows": shard_rows,
                 "tokenizer": getattr(tokenizer, "to_config", lambda: repr(tokenizer))()})
    encode = dict(audio_column=audio_column, id_column=id_column, keep_columns=keep_columns, batch_size=batch_size,
                  rename=rename)
    for name, part in parts.items():
        target = split_map.get(name, name)
        n_rows = 0
        for k, rows in _shards(part, shard_rows, process_index, num_processes):
            if rows is not None and not _marker(out, name, k).exists():
                _encode_shard(rows, tokenizer, out, name, target, k, k * shard_rows, test_fraction, seed, encode)
            n_rows = (k + 1) * shard_rows if rows is None else k * shard_rows + len(rows)
        if n_rows == 0:
            raise ValueError(f"{source}: split {name!r} has no rows")
        write_atomically(out / BUILD_DIR / f"{name}.rows", str(n_rows))
    if _all_shards_done(out, chosen, shard_rows):
        info = UnitDatasetInfo(tokenizer_id or "unknown", tokenizer_revision, tokenizer.n_units,
                               tokenizer.frame_rate, tokenizer.dedup)
        _finish(out, info, chosen, shard_rows)
    return out


def _check_output(out: Path) -> None:
    """Refuse an output path that is a file, or a non-empty folder that is not (a build of) a unit dataset."""
    if out.exists() and not out.is_dir():
        raise ValueError(f"output {out}: is a file; give a folder (new or empty) for the unit dataset")
    if out.is_dir() and any(out.iterdir()) and not (out / BUILD_DIR / "build.json").exists():
        raise ValueError(f"output {out}: a folder with other content; give a new or empty folder")


def _check_split(source: str | Path, name: str, part: Any, id_column: str | None) -> None:
    columns = getattr(part, "column_names", None)  # None for a stream of unknown features
    if id_column is not None and columns is not None and id_column not in columns:
        raise ValueError(f"{source}: split {name!r} has no id column {id_column!r}; columns are {columns}. Name "
                         "the column (--id-column) or number the rows instead (id_column=None, --no-id-column)")
    if isinstance(part, datasets.Dataset) and len(part) == 0:
        raise ValueError(f"{source}: split {name!r} has no rows")


def _read_json(path: Path) -> Any:
    """A build file's content; an unreadable one is named, with what to do."""
    try:
        return json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as e:
        raise ValueError(f"{path}: unreadable build file ({e}); delete it to redo its part of the build") from e


def _claim(out: Path, settings: dict[str, Any]) -> None:
    """Record the build's settings, or refuse to resume a build of other settings into the same folder."""
    path = out / BUILD_DIR / "build.json"
    settings = json.loads(json.dumps(settings, default=str))
    if path.exists():
        before = _read_json(path)
        changed = sorted(k for k in set(before) | set(settings) if before.get(k) != settings.get(k))
        if changed:
            raise ValueError(f"{out} holds a build with other settings ({', '.join(changed)}); "
                             "use another output folder or delete it")
        return
    write_atomically(path, json.dumps(settings, indent=2, sort_keys=True))


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


def _marker(out: Path, name: str, k: int) -> Path:
    return out / BUILD_DIR / f"{name}-{k:05d}.json"


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
    staging = out / BUILD_DIR / "data"
    staging.mkdir(parents=True, exist_ok=True)
    totals = {}
    for split, data in parts.items():
        if len(data) == 0:
            continue
        path = staging / f"{split}-{name}-{k:05d}.parquet"
        tmp = path.with_suffix(".tmp")
        data.to_parquet(str(tmp))
        tmp.replace(path)
        part = UnitDatasetInfo("", None, 0, 0.0, False)
        part.add(data)
        totals[split] = {"utterances": part.utterances, "seconds": part.hours * 3600, "frames": part.frames,
                         "tokens": part.tokens}
    write_atomically(_marker(out, name, k), json.dumps({"skipped": dict(sorted(skipped.items())), "splits": totals}))


def _hashed_share(uid: str, seed: int) -> float:
    """A number in [0, 1) that depends only on the utterance id and the seed."""
    digest = hashlib.blake2b(f"{seed}:{uid}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2**64


def _n_shards(out: Path, name: str, shard_rows: int) -> int | None:
    """Shards of source split ``name``, once a process has read through it (else None)."""
    rows = out / BUILD_DIR / f"{name}.rows"
    if not rows.exists():
        return None
    try:
        return max(1, math.ceil(int(rows.read_text()) / shard_rows))
    except ValueError as e:
        raise ValueError(f"{rows}: unreadable build file ({e}); delete it to redo its part of the build") from e


def _all_shards_done(out: Path, names: Sequence[str], shard_rows: int) -> bool:
    for name in names:
        n_shards = _n_shards(out, name, shard_rows)
        if n_shards is None or any(not _marker(out, name, k).exists() for k in range(n_shards)):
            return False
    return True


def _finish(out: Path, info: UnitDatasetInfo, names: Sequence[str], shard_rows: int) -> None:
    """Card totals from the shard markers, the card, then the shards published as ``data/`` in one rename.

    Several processes may get here at once: each writes the same card, and one rename wins."""
    staging, data = out / BUILD_DIR / "data", out / "data"
    totals: dict[str, Counter] = {}
    for name in names:
        for k in range(_n_shards(out, name, shard_rows) or 0):
            marker = _read_json(_marker(out, name, k))
            if not isinstance(marker, dict) or not isinstance(marker.get("splits"), dict):
                raise ValueError(f"{_marker(out, name, k)}: not a shard marker of this version; delete it to "
                                 "re-encode the shard")
            for reason, count in marker["skipped"].items():
                info.skipped[reason] = info.skipped.get(reason, 0) + count
            for split, part in marker["splits"].items():
                shard = f"{split}-{name}-{k:05d}.parquet"
                if not (staging / shard).exists() and not (data / shard).exists():
                    raise ValueError(f"{_marker(out, name, k)}: its shard {shard} is missing; delete the marker "
                                     "to re-encode the shard")
                totals.setdefault(split, Counter()).update(part)
    info.skipped = dict(sorted(info.skipped.items()))
    splits = sorted(s for s, t in totals.items() if t["utterances"])
    if not splits:
        raise ValueError(f"{out}: every utterance was skipped ({info.skipped}); nothing to write")
    info.utterances = sum(totals[s]["utterances"] for s in splits)
    info.hours = sum(totals[s]["seconds"] for s in splits) / 3600
    info.frames = sum(totals[s]["frames"] for s in splits)
    info.tokens = sum(totals[s]["tokens"] for s in splits)
    write_atomically(out / "README.md", render_card(splits, info, out.name))
    _publish(staging, data)


def _publish(staging: Path, data: Path) -> None:
    """Move the staged shards to ``data/``: one rename of the folder (another process may have done it)."""
    if not staging.is_dir():
        return
    if not data.exists():
        try:
            staging.rename(data)
            return
        except FileNotFoundError:  # another process renamed it first
            return
        except OSError:
            if not data.is_dir():
                raise
    for shard in staging.glob("*.parquet"):  # data/ exists: shards of this build published before
        shard.replace(data / shard.name)
    try:
        staging.rmdir()
    except OSError:
        pass  # a concurrent process may still be moving its files; it removes the folder itself


def push_unit_dataset(folder: str | Path, repo_id: str, private: bool = False, revision: str | None = None) -> str:
    """Upload a saved unit dataset folder (Parquet shards + card) to the Hub; returns the commit URL."""
    from huggingface_hub import HfApi

    api = HfApi()
    api.create_repo(repo_id, repo_type="dataset", private=private, exist_ok=True)
    commit = api.upload_folder(folder_path=str(folder), repo_id=repo_id, repo_type="dataset", revision=revision,
                               commit_message="Upload unit dataset (hf_slm)", ignore_patterns=[f"{BUILD_DIR}/*"])
    return str(commit)
