"""Unit datasets (contract 1): audio dataset -> units -> Parquet shards + dataset card, on disk or the Hub."""

from __future__ import annotations

import math
import os
from collections import Counter, deque
from collections.abc import Callable, Iterable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import datasets
import numpy as np
import pyarrow.compute as pc
import yaml
from tqdm.auto import tqdm

from hf_slm.data.schema import (
    OPTIONAL_STRING_COLUMNS,
    UNIT_FEATURES,
    SchemaError,
    unit_features,
    validate_unit_dataset,
)
from hf_slm.units import AudioError, load_audio
from hf_slm.units.hub import local_or_hub, looks_like_hub_id

__all__ = ["UnitDatasetInfo", "encode_audio_dataset", "load_unit_dataset", "load_unit_info", "looks_like_hub_id",
           "save_unit_dataset"]

CARD_KEY = "hf_slm"
BUILD_DIR = ".shards"  # a build in progress (build.py): settings, shard markers, staged Parquet shards


@dataclass
class UnitDatasetInfo:
    """What a unit dataset card records about how the units were made and how much there is."""

    tokenizer: str
    tokenizer_revision: str | None
    n_units: int
    frame_rate: float
    dedup: bool
    hours: float = 0.0
    frames: int = 0
    tokens: int = 0
    utterances: int = 0
    skipped: dict[str, int] = field(default_factory=dict)
    unigram: dict[str, Any] | None = None  # unigram-compressed datasets: tokenizer folder, vocab, tokens, ratio

    @property
    def dedup_ratio(self) -> float:
        """Tokens kept per frame (1.0 without dedup)."""
        return self.tokens / self.frames if self.frames else math.nan

    def add(self, ds: datasets.Dataset) -> None:
        """Add a split's utterances, seconds, frames and tokens to the totals."""
        table = ds.with_format("arrow")
        self.utterances += len(ds)
        self.hours += float(pc.sum(table["seconds"]).as_py() or 0.0) / 3600
        self.frames += int(pc.sum(table["n_frames"]).as_py() or 0)
        self.tokens += int(pc.sum(pc.list_value_length(table["units"])).as_py() or 0)


def encode_audio_dataset(
    audio_ds: Iterable[Mapping[str, Any]],
    tokenizer: Any,
    audio_column: str = "audio",
    id_column: str | None = "id",
    keep_columns: Iterable[str] = OPTIONAL_STRING_COLUMNS,
    batch_size: int = 16,
    skipped: Counter | None = None,
    desc: str = "encoding",
    rename: Mapping[str, str] | None = None,
    id_prefix: str = "",
    first_position: int = 0,
    decode_workers: int = 2,
) -> datasets.Dataset:
    """Turn rows with audio into a unit dataset with ``tokenizer`` (a ``hf_slm.units.SpeechTokenizer``).

    Audio that cannot be used is skipped and counted in ``skipped`` by reason (``AudioError.reason``):
    ``corrupt``, ``empty``, ``non_finite`` (any NaN/Inf sample), ``too_short`` (no frame of the encoder: a
    1-sample or 10 ms clip, a valid header over a few bytes of data), ... ; stereo and other sample rates are
    downmixed / resampled by ``load_audio``. No row with 0 units is written. ``keep_columns`` are copied,
    under ``rename``'d names where given, when the source has them (every row must then have them); the
    contract's optional columns (``speaker``, ``text``, ``source``) are stored as strings, others keep their
    type. Without an ``id_column`` an utterance's id is ``f"{id_prefix}{position}"``, its position in
    ``audio_ds`` counted from ``first_position``. ``decode_workers`` threads decode (and resample) audio ahead
    of the encoder, so that on a GPU the CPU work overlaps the forward passes; 0 decodes in line.

    Raises:
        ValueError: a row lacks the id column, or has other kept columns than the rows before it.
        SchemaError: the tokenizer produced rows that break contract 1 (checked on every row).
    """
    skipped = Counter() if skipped is None else skipped
    rename = dict(rename or {})
    keep = [c for c in keep_columns if rename.get(c, c) not in UNIT_FEATURES and c != audio_column]
    source_features = getattr(audio_ds, "features", None) or {}
    as_string = {c for c in keep if rename.get(c, c) in OPTIONAL_STRING_COLUMNS or c not in source_features}
    columns: dict[str, list] = {k: [] for k in ("id", "units", "durations", "n_frames", "seconds")}
    present: list[str] | None = None  # the kept columns the rows have (the first row decides)
    extras: dict[str, list] = {}
    batch: list[tuple[str, Mapping[str, Any], np.ndarray]] = []
    n_frames_of = getattr(getattr(tokenizer, "encoder", None), "n_frames", None)

    def flush() -> None:
        waves = [w for _, _, w in batch]
        for (uid, row, wave), seq in zip(batch, tokenizer.encode_batch(waves), strict=True):
            if seq.n_frames == 0 or len(seq.units) == 0:
                skipped["too_short"] += 1
                continue
            columns["id"].append(uid)
            columns["units"].append(np.asarray(seq.units, dtype=np.uint16))
            durations = seq.durations if seq.durations is not None else np.ones(len(seq.units), np.uint32)
            columns["durations"].append(np.asarray(durations, dtype=np.uint32))
            columns["n_frames"].append(int(seq.n_frames))
            columns["seconds"].append(len(wave) / tokenizer.sample_rate)
            for c in present or ():
                extras.setdefault(c, []).append(str(row[c]) if c in as_string else row[c])
        batch.clear()

    def decode(position: int, row: Mapping[str, Any]) -> tuple[str, np.ndarray | AudioError]:
        if id_column is not None and id_column not in row:
            return "", ValueError(f"row {position}: no id column {id_column!r}; columns are {sorted(row)}")
        uid = f"{id_prefix}{position}" if id_column is None else str(row[id_column])
        try:
            return uid, load_audio(row[audio_column], sample_rate=tokenizer.sample_rate, name=uid)
        except AudioError as err:
            return uid, err

    rows = enumerate(tqdm(audio_ds, desc=desc, unit="utt"), start=first_position)
    for row, (uid, wave) in decode_ahead(rows, decode, decode_workers, window=2 * batch_size):
        if isinstance(wave, ValueError) and not isinstance(wave, AudioError):
            raise wave
        has = [c for c in keep if c in row]
        if present is None:
            present = has
        elif has != present:
            odd = sorted(set(has) ^ set(present))
            raise ValueError(f"row {uid!r}: kept column(s) {odd} are in some rows and not in others")
        if isinstance(wave, AudioError):
            skipped[wave.reason] += 1
            continue
        if n_frames_of is not None and n_frames_of(len(wave)) == 0:
            skipped["too_short"] += 1
            continue
        batch.append((uid, row, wave))
        if len(batch) >= batch_size:
            flush()
    if batch:
        flush()
    extras = {rename.get(k, k): v for k, v in extras.items()}
    source_of = {rename.get(c, c): c for c in keep}
    features = unit_features(
        {k: datasets.Value("string") if source_of[k] in as_string else source_features[source_of[k]]
         for k in (rename.get(c, c) for c in present or ())},
        durations=tokenizer.dedup,
    )
    if not tokenizer.dedup:
        columns.pop("durations")
    extras = {k: extras.get(k, []) for k in (rename.get(c, c) for c in present or ())}
    ds = datasets.Dataset.from_dict({**columns, **extras}, features=features)
    validate_unit_dataset(ds, where=f"units of {desc!r}", n_units=getattr(tokenizer, "n_units", None), check_rows=None)
    return ds


def decode_ahead(
    items: Iterable[tuple[int, Any]], decode: Callable[[int, Any], Any], workers: int, window: int
) -> Iterator[tuple[Any, Any]]:
    """``(item, decode(position, item))`` in input order, with up to ``window`` items decoded ahead on
    ``workers`` threads (audio decoding and resampling release the GIL); ``workers=0`` decodes in line."""
    if workers <= 0:
        for position, item in items:
            yield item, decode(position, item)
        return
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="decode") as pool:
        pending: deque = deque()
        for position, item in items:
            pending.append((item, pool.submit(decode, position, item)))
            if len(pending) >= window:
                item, future = pending.popleft()
                yield item, future.result()
        while pending:
            item, future = pending.popleft()
            yield item, future.result()


def save_unit_dataset(
    splits: Mapping[str, datasets.Dataset], output_dir: str | Path, info: UnitDatasetInfo,
    max_shard_rows: int = 100_000, pretty_name: str | None = None,
) -> Path:
    """Write ``splits`` as Parquet shards ``data/<split>-XXXXX-of-YYYYY.parquet`` plus a README.md card.

    The card's YAML has the ``configs:`` block that makes ``datasets.load_dataset(output_dir)`` work and an
    ``hf_slm`` block with ``info``. Returns the folder.
    """
    out = Path(output_dir)
    if out.exists() and not out.is_dir():
        raise NotADirectoryError(f"{out}: is a file; the unit dataset needs a folder")
    (out / "data").mkdir(parents=True, exist_ok=True)
    for name, ds in splits.items():
        validate_unit_dataset(ds, where=f"split {name!r} for {out}", n_units=info.n_units, check_rows=None)
    for name, ds in splits.items():
        for stale in (out / "data").glob(f"{name}-*-of-*.parquet"):  # an earlier save with more shards
            stale.unlink()
        n_shards = max(1, math.ceil(len(ds) / max_shard_rows))
        for i in range(n_shards):
            shard = ds.shard(num_shards=n_shards, index=i, contiguous=True)
            shard.to_parquet(str(out / "data" / f"{name}-{i:05d}-of-{n_shards:05d}.parquet"))
    write_atomically(out / "README.md", render_card(list(splits), info, pretty_name or out.name))
    return out


UNIGRAM_TOKENIZER_DIR = "unigram_tokenizer"


def save_unigram_dataset(splits: Mapping[str, datasets.Dataset], output_dir: str | Path, info: UnitDatasetInfo,
                         tokenizer: Any, pretty_name: str | None = None) -> tuple[Path, datasets.DatasetDict]:
    """Unigram-compress ``splits`` (paper 4.3) with ``tokenizer`` (``hf_slm.units.train_unigram``) and save them
    as a unit dataset whose ``tokens`` column holds the piece ids, the card's ``unigram`` block describing them
    and the tokenizer in ``<output>/unigram_tokenizer`` (what ``token_type: unigram`` training reads). Returns
    the folder and the compressed splits."""
    from hf_slm.units import compress_dataset, compression_ratio  # loads tokenizers: only when compressing

    compressed = compress_dataset(datasets.DatasetDict(splits), tokenizer)
    ratio = compression_ratio(compressed)
    tokens = sum(sum(len(t) for t in part["tokens"]) for part in compressed.values())
    info = replace(info, unigram={"tokenizer": UNIGRAM_TOKENIZER_DIR, "vocab_size": len(tokenizer),
                                  "tokens": tokens, "ratio": ratio})
    out = save_unit_dataset(dict(compressed), output_dir, info, pretty_name=pretty_name)
    tokenizer.save_pretrained(out / UNIGRAM_TOKENIZER_DIR)
    return out, compressed


def write_atomically(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` through a temporary file in the same folder and a rename, so that a reader
    (or a process killed halfway) never sees half a file; the temporary name is unique per process."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(text)
    tmp.replace(path)


def render_card(split_names: list[str], info: UnitDatasetInfo, pretty_name: str) -> str:
    """The README.md dataset card: YAML metadata (configs + hf_slm info) and a human-readable summary."""
    meta = {
        "pretty_name": pretty_name,
        "tags": ["speech", "speech-units", "hf-slm"],
        "configs": [{
            "config_name": "default",
            "data_files": [{"split": s, "path": f"data/{s}-*.parquet"} for s in split_names],
        }],
        CARD_KEY: asdict(info),
    }
    header = yaml.safe_dump(meta, sort_keys=False)
    skipped = ", ".join(f"{k}: {v}" for k, v in info.skipped.items()) or "none"
    return (
        f"---\n{header}---\n\n# {pretty_name}\n\n"
        f"Speech units from `{info.tokenizer}` (revision `{info.tokenizer_revision}`), K = {info.n_units}, "
        f"{info.frame_rate:g} Hz, dedup {'on' if info.dedup else 'off'}.\n\n"
        "| hours | utterances | frames | tokens | tokens / frame |\n|---|---|---|---|---|\n"
        f"| {info.hours:.2f} | {info.utterances} | {info.frames} | {info.tokens} | {info.dedup_ratio:.3f} |\n\n"
        f"Skipped audio: {skipped}.\n\nColumns: `id`, `units` (uint16), `durations` (uint32), `n_frames`, `seconds` "
        "(contract 1 of hf_slm). Load with `datasets.load_dataset(<this folder or repo id>)`.\n"
        + ("" if not info.unigram else
           f"\nUnigram compression: column `tokens` holds ids of the tokenizer in `{info.unigram['tokenizer']}` "
           f"(vocabulary {info.unigram['vocab_size']}: pieces + <eos> + <pad>); {info.unigram['tokens']} tokens, "
           f"{info.unigram['ratio']:.3f} per unit.\n")
    )


def _card_metadata(path_or_id: str | Path, revision: str | None = None) -> dict[str, Any]:
    """The YAML header of a unit dataset's README.md (local folder or Hub dataset id).

    Whether ``path_or_id`` is local or a Hub id is decided first (:func:`~hf_slm.units.hub.local_or_hub`): a
    missing path or a local folder that is not a unit dataset fails at once with an error naming it, never
    with a Hub lookup.
    """
    source = local_or_hub(path_or_id, "unit dataset")
    if isinstance(source, Path):
        text = _local_card(source)
    else:
        from huggingface_hub import hf_hub_download

        text = Path(hf_hub_download(source, "README.md", repo_type="dataset", revision=revision)).read_text()
    parts = text.split("---")
    try:
        meta = yaml.safe_load(parts[1]) if text.startswith("---") and len(parts) > 2 else None
    except yaml.YAMLError as e:
        raise SchemaError(f"{path_or_id}: README.md has a malformed YAML header ({e})") from e
    if not isinstance(meta, dict) or CARD_KEY not in meta:
        raise SchemaError(f"{path_or_id}: README.md has no '{CARD_KEY}' metadata block; is this a unit dataset?")
    return meta


def _local_card(folder: Path) -> str:
    if not folder.is_dir():
        raise SchemaError(f"{folder}: is a file, not a unit dataset folder")
    card = folder / "README.md"
    if card.is_file():
        return card.read_text()
    if (folder / BUILD_DIR).is_dir():
        raise SchemaError(f"{folder}: an unfinished unit dataset build (no README.md card yet); run the same "
                          "build_units.py command again to finish it")
    raise SchemaError(f"{folder}: not a unit dataset (no README.md card); build one with "
                      "dataset_scripts/build_units.py")


def load_unit_info(path_or_id: str | Path, revision: str | None = None) -> UnitDatasetInfo:
    """Read the ``hf_slm`` block of a unit dataset's card (local folder or Hub dataset id)."""
    return _info(_card_metadata(path_or_id, revision), path_or_id)


def _info(meta: dict[str, Any], where: str | Path) -> UnitDatasetInfo:
    try:
        return UnitDatasetInfo(**meta[CARD_KEY])
    except TypeError as e:
        raise SchemaError(f"{where}: README.md '{CARD_KEY}' block does not match UnitDatasetInfo ({e})") from e


def card_data_files(card: dict[str, Any]) -> dict[str, list[str]] | None:
    """``{split: [patterns]}`` (relative to the dataset root) of a dataset card's default ``configs:`` entry, in
    either of its layouts (a list of ``{split, path}`` or a ``{split: path}`` mapping); None without one."""
    configs = card.get("configs") or []
    config = next((c for c in configs if c.get("config_name", "default") == "default"), None)
    if config is None:
        return None
    files = config["data_files"]
    entries = files if isinstance(files, list) else [{"split": k, "path": v} for k, v in files.items()]
    out: dict[str, list[str]] = {}
    for entry in entries:
        out.setdefault(entry["split"], []).extend(entry["path"] if isinstance(entry["path"], list) else [entry["path"]])
    return out


def _local_data_files(folder: Path, meta: dict[str, Any]) -> dict[str, list[str]]:
    """``{split: [absolute patterns]}`` of the card's default config."""
    files = card_data_files(meta)
    if files is None:
        raise SchemaError(f"{folder}: README.md has no default entry under 'configs:'")
    return {split: [str(folder / p) for p in paths] for split, paths in files.items()}


def load_unit_dataset(
    path_or_id: str | Path, split: str | None = None, revision: str | None = None, streaming: bool = False
) -> datasets.Dataset | datasets.DatasetDict:
    """Load a unit dataset (local folder or Hub id) with ``datasets.load_dataset`` and validate it.

    A local folder is read through the ``parquet`` builder with the card's data files: ``datasets`` 5 caches
    a folder loaded by path under its README config without looking at the files, so a rebuilt folder would
    otherwise come back with its old rows. Local vs Hub is decided before any lookup: a missing path, or a
    folder that is not a unit dataset, raises ``FileNotFoundError`` / ``SchemaError`` naming it at once.
    """
    source = local_or_hub(path_or_id, "unit dataset")
    meta = _card_metadata(source, revision=revision)
    info = _info(meta, path_or_id)
    if isinstance(source, Path):
        data_files = _local_data_files(source, meta)
        if split is not None and split not in data_files:
            raise ValueError(f"unit dataset {path_or_id}: no split {split!r}; have {sorted(data_files)}")
        ds = datasets.load_dataset("parquet", data_files=data_files, split=split, streaming=streaming)
    else:
        ds = datasets.load_dataset(source, split=split, revision=revision, streaming=streaming)
    if not streaming:
        for name, part in (ds.items() if isinstance(ds, datasets.DatasetDict) else [(split, ds)]):
            validate_unit_dataset(part, where=f"{path_or_id} split {name!r}", n_units=info.n_units)
    return ds
