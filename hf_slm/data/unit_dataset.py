"""Unit datasets (contract 1): audio dataset -> units -> Parquet shards + dataset card, on disk or the Hub."""

from __future__ import annotations

import math
import re
from collections import Counter, deque
from collections.abc import Callable, Iterable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
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

CARD_KEY = "hf_slm"


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

    Audio that cannot be used (corrupt, empty, unreadable) is skipped and counted in ``skipped`` by reason;
    stereo and other sample rates are downmixed / resampled by ``load_audio``. ``keep_columns`` are copied,
    under ``rename``'d names where given; the contract's optional columns (``speaker``, ``text``, ``source``)
    are stored as strings, others keep their type. Without an ``id_column`` an utterance's id is
    ``f"{id_prefix}{position}"``, its position in ``audio_ds`` counted from ``first_position``.
    ``decode_workers`` threads decode (and resample) audio ahead of the encoder, so that on a GPU the CPU work
    overlaps the forward passes; 0 decodes in line.
    """
    skipped = Counter() if skipped is None else skipped
    rename = dict(rename or {})
    keep = [c for c in keep_columns if rename.get(c, c) not in UNIT_FEATURES and c != audio_column]
    source_features = getattr(audio_ds, "features", None) or {}
    as_string = {c for c in keep if rename.get(c, c) in OPTIONAL_STRING_COLUMNS or c not in source_features}
    columns: dict[str, list] = {k: [] for k in ("id", "units", "durations", "n_frames", "seconds")}
    extras: dict[str, list] = {}
    batch: list[tuple[str, Mapping[str, Any], np.ndarray]] = []

    def flush() -> None:
        waves = [w for _, _, w in batch]
        for (uid, row, wave), seq in zip(batch, tokenizer.encode_batch(waves), strict=True):
            columns["id"].append(uid)
            columns["units"].append(np.asarray(seq.units, dtype=np.uint16))
            durations = seq.durations if seq.durations is not None else np.ones(len(seq.units), np.uint16)
            columns["durations"].append(np.asarray(durations, dtype=np.uint16))
            columns["n_frames"].append(int(seq.n_frames))
            columns["seconds"].append(len(wave) / tokenizer.sample_rate)
            for c in keep:
                if c in row:
                    extras.setdefault(c, []).append(str(row[c]) if c in as_string else row[c])
        batch.clear()

    def decode(position: int, row: Mapping[str, Any]) -> tuple[str, np.ndarray | AudioError]:
        uid = f"{id_prefix}{position}" if id_column is None else str(row[id_column])
        try:
            return uid, load_audio(row[audio_column], sample_rate=tokenizer.sample_rate, name=uid)
        except AudioError as err:
            return uid, err

    rows = enumerate(tqdm(audio_ds, desc=desc, unit="utt"), start=first_position)
    for row, (uid, wave) in decode_ahead(rows, decode, decode_workers, window=2 * batch_size):
        if isinstance(wave, AudioError):
            skipped[_reason(wave)] += 1
            continue
        batch.append((uid, row, wave))
        if len(batch) >= batch_size:
            flush()
    if batch:
        flush()
    extras = {rename.get(k, k): v for k, v in extras.items() if len(v) == len(columns["id"])}
    source_of = {rename.get(c, c): c for c in keep}
    features = unit_features(
        {k: datasets.Value("string") if source_of[k] in as_string else source_features[source_of[k]] for k in extras},
        durations=tokenizer.dedup,
    )
    if not tokenizer.dedup:
        columns.pop("durations")
    return datasets.Dataset.from_dict({**columns, **extras}, features=features)


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


def _reason(err: AudioError) -> str:
    text = str(err).lower()
    for reason in ("empty", "corrupt", "sample rate", "nan", "silent"):
        if reason in text:
            return reason.replace(" ", "_")
    return "unreadable"


def save_unit_dataset(
    splits: Mapping[str, datasets.Dataset], output_dir: str | Path, info: UnitDatasetInfo,
    max_shard_rows: int = 100_000, pretty_name: str | None = None,
) -> Path:
    """Write ``splits`` as Parquet shards ``data/<split>-XXXXX-of-YYYYY.parquet`` plus a README.md card.

    The card's YAML has the ``configs:`` block that makes ``datasets.load_dataset(output_dir)`` work and an
    ``hf_slm`` block with ``info``. Returns the folder.
    """
    out = Path(output_dir)
    (out / "data").mkdir(parents=True, exist_ok=True)
    for name, ds in splits.items():
        validate_unit_dataset(ds, where=f"split {name!r} for {out}", n_units=info.n_units)
        n_shards = max(1, math.ceil(len(ds) / max_shard_rows))
        for i in range(n_shards):
            shard = ds.shard(num_shards=n_shards, index=i, contiguous=True)
            shard.to_parquet(str(out / "data" / f"{name}-{i:05d}-of-{n_shards:05d}.parquet"))
    (out / "README.md").write_text(render_card(list(splits), info, pretty_name or out.name))
    return out


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
        f"Skipped audio: {skipped}.\n\nColumns: `id`, `units` (uint16), `durations`, `n_frames`, `seconds` "
        "(contract 1 of hf_slm). Load with `datasets.load_dataset(<this folder or repo id>)`.\n"
        + ("" if not info.unigram else
           f"\nUnigram compression: column `tokens` holds ids of the tokenizer in `{info.unigram['tokenizer']}` "
           f"(vocabulary {info.unigram['vocab_size']}: pieces + <eos> + <pad>); {info.unigram['tokens']} tokens, "
           f"{info.unigram['ratio']:.3f} per unit.\n")
    )


def _card_metadata(path_or_id: str | Path, revision: str | None = None) -> dict[str, Any]:
    """The YAML header of a unit dataset's README.md (local folder or Hub dataset id)."""
    local = Path(path_or_id) / "README.md"
    if local.is_file():
        text = local.read_text()
    else:
        from huggingface_hub import hf_hub_download

        text = Path(hf_hub_download(str(path_or_id), "README.md", repo_type="dataset", revision=revision)).read_text()
    parts = text.split("---")
    meta = yaml.safe_load(parts[1]) if text.startswith("---") and len(parts) > 2 else None
    if not meta or CARD_KEY not in meta:
        raise SchemaError(f"{path_or_id}: README.md has no '{CARD_KEY}' metadata block; is this a unit dataset?")
    return meta


def load_unit_info(path_or_id: str | Path, revision: str | None = None) -> UnitDatasetInfo:
    """Read the ``hf_slm`` block of a unit dataset's card (local folder or Hub dataset id)."""
    return UnitDatasetInfo(**_card_metadata(path_or_id, revision)[CARD_KEY])


def _local_data_files(folder: Path, meta: dict[str, Any]) -> dict[str, list[str]]:
    """``{split: [absolute patterns]}`` of the card's default config."""
    configs = meta.get("configs") or []
    config = next((c for c in configs if c.get("config_name", "default") == "default"), None)
    if config is None:
        raise SchemaError(f"{folder}: README.md has no default entry under 'configs:'")
    files = config["data_files"]
    entries = files if isinstance(files, list) else [{"split": k, "path": v} for k, v in files.items()]
    out: dict[str, list[str]] = {}
    for entry in entries:
        paths = entry["path"] if isinstance(entry["path"], list) else [entry["path"]]
        out.setdefault(entry["split"], []).extend(str(folder / p) for p in paths)
    return out


def looks_like_hub_id(source: str | Path) -> bool:
    """``owner/name`` (what ``load_dataset`` would look up on the Hub), as opposed to a local path."""
    text = str(source)
    return re.fullmatch(r"[A-Za-z0-9][\w.-]*/[\w.-]+", text) is not None and not text.startswith((".", "~"))


def load_unit_dataset(
    path_or_id: str | Path, split: str | None = None, revision: str | None = None, streaming: bool = False
) -> datasets.Dataset | datasets.DatasetDict:
    """Load a unit dataset (local folder or Hub id) with ``datasets.load_dataset`` and validate it.

    A local folder is read through the ``parquet`` builder with the card's data files: ``datasets`` 5 caches
    a folder loaded by path under its README config without looking at the files, so a rebuilt folder would
    otherwise come back with its old rows.
    """
    if not Path(path_or_id).exists() and not looks_like_hub_id(path_or_id):
        raise FileNotFoundError(f"unit dataset {path_or_id!r}: no such folder, and not a Hub id (owner/name)")
    meta = _card_metadata(path_or_id, revision=revision)
    info = UnitDatasetInfo(**meta[CARD_KEY])
    if Path(path_or_id).is_dir():
        data_files = _local_data_files(Path(path_or_id), meta)
        if split is not None and split not in data_files:
            raise ValueError(f"unit dataset {path_or_id}: no split {split!r}; have {sorted(data_files)}")
        ds = datasets.load_dataset("parquet", data_files=data_files, split=split, streaming=streaming)
    else:
        ds = datasets.load_dataset(str(path_or_id), split=split, revision=revision, streaming=streaming)
    if not streaming:
        for name, part in (ds.items() if isinstance(ds, datasets.DatasetDict) else [(split, ds)]):
            validate_unit_dataset(part, where=f"{path_or_id} split {name!r}", n_units=info.n_units)
    return ds
