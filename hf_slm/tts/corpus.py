"""Text corpus -> speech -> units, without storing audio: the engine of ``dataset_scripts/synthesize.py``.

:func:`synthesize_corpus` streams a text dataset (Hub id such as ``roneneldan/TinyStories``, a data folder or a
``save_to_disk`` folder), speaks row ``i`` with voice ``i mod len(voices)`` through a :class:`TTSPipeline`, and
pipes each batch of waves straight into a ``SpeechTokenizer``: the result is a unit dataset (contract 1 plus
``text`` and ``speaker``) or, with ``keep_audio``, an audio dataset (16 kHz WAV in an ``Audio`` column).

The work is cut into shards of ``shard_rows`` source rows. Process ``p`` of ``P`` (``accelerate launch``) does
the shards ``k`` with ``k % P == p``; each shard is written to Parquet atomically and then marked done with its
failure counts, so a run killed at any point (kill -9 included) and started again redoes only unfinished
shards: nothing lost, nothing twice, and the same rows whatever the number of processes. Texts that cannot be
spoken are counted by reason in the card (``skipped``), never silently dropped.

:func:`synthesize_cloze` is the multi-speaker Story Cloze variant: both candidate stories of an item spoken by
the same voice, voices alternating over items, written as a benchmark unit dataset (``id``, ``item_id``,
``label``, ``units`` ... plus ``voice``, ``text``).
"""

from __future__ import annotations

import itertools
import json
import math
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import datasets
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import yaml
from tqdm.auto import tqdm

from hf_slm.data.schema import unit_features, validate_unit_dataset
from hf_slm.data.unit_dataset import CARD_KEY, UnitDatasetInfo, looks_like_hub_id, render_card

from .pipeline import Failure, TTSPipeline
from .synthesize import to_wav_bytes

TTS_CARD_KEY = "hf_slm_tts"
_STATE = ".synthesis"  # per-shard markers and per-split row counts of a run in progress
TEST_SPLITS = {"validation": "test", "valid": "test", "dev": "test", "test": "test"}


@dataclass
class TTSInfo:
    """What a synthesized dataset's card records about its speech (beside the unit info)."""

    source: str
    backend: str
    voices: list[str]
    sample_rate: int = 16000
    normalize: bool = True
    max_chars: int = 400
    hours: float = 0.0
    utterances: int = 0
    units: int = 0
    failures: dict[str, int] = field(default_factory=dict)


def load_text_dataset(source: str | Path, split: str, config: str | None = None, revision: str | None = None,
                      streaming: bool = True) -> Iterable[Mapping[str, Any]]:
    """Rows of ``split`` of a text dataset: a ``save_to_disk`` folder, a data folder or a Hub id (streamed)."""
    path = Path(source)
    if (path / "dataset_info.json").exists() or (path / "dataset_dict.json").exists():
        ds = datasets.load_from_disk(str(path))
        if isinstance(ds, datasets.DatasetDict):
            if split not in ds:
                raise ValueError(f"{source}: no split {split!r}; have {sorted(ds)}")
            ds = ds[split]
        return ds
    if not path.exists() and not looks_like_hub_id(source):
        raise FileNotFoundError(f"text dataset {str(source)!r}: no such folder, and not a Hub id (owner/name)")
    return datasets.load_dataset(str(source), config, split=split, revision=revision, streaming=streaming)


def _claim(out: Path, settings: dict[str, Any]) -> None:
    """Record the run's settings, or refuse to resume a run of other settings into the same folder."""
    path = out / _STATE / "settings.json"
    settings = json.loads(json.dumps(settings, default=str))
    if path.exists():
        before = json.loads(path.read_text())
        changed = sorted(k for k in set(before) | set(settings) if before.get(k) != settings.get(k))
        if changed:
            raise ValueError(f"{out} holds a synthesis run with other settings ({', '.join(changed)}); use another "
                             "output folder or delete it")
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(settings, indent=2, sort_keys=True))
    tmp.replace(path)


def _shards(rows: Iterable[Mapping[str, Any]], shard_rows: int, limit: int | None) -> Iterator[list]:
    it = iter(rows) if limit is None else itertools.islice(rows, limit)
    while chunk := list(itertools.islice(it, shard_rows)):
        yield chunk


def _write_atomic(ds: datasets.Dataset, path: Path) -> None:
    """Parquet (with the features in its metadata) written under a temporary name, then renamed."""
    tmp = path.with_suffix(".tmp")
    ds.to_parquet(str(tmp))
    tmp.replace(path)


class _Speaker:
    """Voices over rows: row ``position`` is spoken by ``pipelines[position % n]``, in batches per voice."""

    def __init__(self, pipelines: Sequence[TTSPipeline], batch_size: int) -> None:
        self.pipelines, self.batch_size = list(pipelines), batch_size

    def speak(self, positions: Sequence[int], texts: Sequence[str]) -> list[np.ndarray | Failure]:
        out: list[Any] = [None] * len(texts)
        n = len(self.pipelines)
        for v, pipe in enumerate(self.pipelines):
            mine = [i for i, p in enumerate(positions) if p % n == v]
            for start in range(0, len(mine), self.batch_size):
                idx = mine[start : start + self.batch_size]
                for i, wave in zip(idx, pipe.speak([texts[i] for i in idx]), strict=True):
                    out[i] = wave
        return out


def synthesize_corpus(
    source: str | Path,
    voices: Sequence[Any],
    output_dir: str | Path,
    tokenizer: Any | None = None,
    keep_audio: bool = False,
    splits: Sequence[str] = ("train",),
    config: str | None = None,
    revision: str | None = None,
    text_column: str = "text",
    id_column: str | None = None,
    shard_rows: int = 1000,
    batch_size: int = 16,
    limit: int | None = None,
    backend: str | None = None,
    tokenizer_id: str | None = None,
    tokenizer_revision: str | None = None,
    front_end: Any | None = None,
    process_index: int = 0,
    num_processes: int = 1,
    streaming: bool = True,
) -> Path:
    """Speak ``splits`` of text dataset ``source`` and write a unit dataset (or, ``keep_audio``, an audio dataset)
    to ``output_dir``; see the module docstring. ``limit`` caps the rows read per split; ``validation`` / ``dev``
    splits become ``test``. Returns the folder (complete once every process has finished)."""
    if tokenizer is None and not keep_audio:
        raise ValueError("give a speech tokenizer (units) or keep_audio=True (an audio dataset)")
    if not voices:
        raise ValueError("no voices")
    if shard_rows < 1 or not 0 <= process_index < num_processes:
        raise ValueError(f"need shard_rows >= 1 and 0 <= process_index < num_processes, got {shard_rows}, "
                         f"{process_index}, {num_processes}")
    pipelines = [v if isinstance(v, TTSPipeline) else TTSPipeline(v, front_end=front_end) for v in voices]
    out = Path(output_dir)
    (out / "data").mkdir(parents=True, exist_ok=True)
    fe = pipelines[0].front_end
    info = TTSInfo(str(source), backend or type(pipelines[0].voice).__name__, [p.name for p in pipelines],
                   pipelines[0].sample_rate, fe.normalize, fe.max_chars)
    _claim(out, {"source": str(source), "config": config, "revision": revision, "splits": list(splits),
                 "text_column": text_column, "id_column": id_column, "shard_rows": shard_rows, "limit": limit,
                 "keep_audio": keep_audio, "tts": {k: v for k, v in asdict(info).items() if k not in _TOTALS},
                 "tokenizer": None if tokenizer is None else tokenizer.to_config()})
    speaker = _Speaker(pipelines, batch_size)
    for split in splits:
        rows = load_text_dataset(source, split, config, revision, streaming)
        target = TEST_SPLITS.get(split, split)
        n_rows = 0
        for k, chunk in enumerate(_shards(rows, shard_rows, limit)):
            n_rows += len(chunk)
            marker = out / _STATE / f"{split}-{k:05d}.json"
            if k % num_processes != process_index or marker.exists():
                continue
            first = k * shard_rows
            ds, failures = _shard_dataset(chunk, first, split, speaker, tokenizer, keep_audio, text_column,
                                          id_column, desc=f"TTS {split} shard {k}")
            if ds is not None:
                _write_atomic(ds, out / "data" / f"{target}-{split}-{k:05d}.parquet")
            marker.write_text(json.dumps(dict(failures)))
        (out / _STATE / f"{split}.rows").write_text(str(n_rows))
    if _all_done(out, splits, shard_rows):
        _write_card(out, info, tokenizer, tokenizer_id, tokenizer_revision, keep_audio)
    return out


_TOTALS = ("hours", "utterances", "units", "failures")


def _row_ids(chunk: list, first: int, split: str, id_column: str | None) -> list[str]:
    if id_column is None:
        return [f"{split}-{first + i:08d}" for i in range(len(chunk))]
    missing = [i for i, row in enumerate(chunk) if id_column not in row]
    if missing:
        raise ValueError(f"split {split!r}: row {first + missing[0]} has no id column {id_column!r}")
    return [str(row[id_column]) for row in chunk]


def _shard_dataset(chunk: list, first: int, split: str, speaker: _Speaker, tokenizer: Any, keep_audio: bool,
                   text_column: str, id_column: str | None, desc: str) -> tuple[datasets.Dataset | None, Counter]:
    """Speak one shard and return (its rows, or None when nothing was spoken; failures by reason)."""
    if chunk and text_column not in chunk[0]:
        raise ValueError(f"split {split!r}: no text column {text_column!r}; columns are {sorted(chunk[0])}")
    ids = _row_ids(chunk, first, split, id_column)
    texts = [str(row.get(text_column) or "") for row in chunk]
    positions = list(range(first, first + len(chunk)))
    names = [speaker.pipelines[p % len(speaker.pipelines)].name for p in positions]
    rate = speaker.pipelines[0].sample_rate
    failures: Counter = Counter()
    kept: list[int] = []
    waves: list[np.ndarray] = []
    step = 4 * speaker.batch_size * len(speaker.pipelines)
    for start in tqdm(range(0, len(chunk), step), desc=desc, unit="batch", leave=False):
        part = range(start, min(len(chunk), start + step))
        for i, result in zip(part, speaker.speak([positions[i] for i in part], [texts[i] for i in part]), strict=True):
            if isinstance(result, Failure):
                failures[result.reason] += 1
            else:
                kept.append(i)
                waves.append(result)
    if not kept:
        return None, failures
    columns: dict[str, Any] = {"id": [ids[i] for i in kept]}
    features: dict[str, Any] = {"id": datasets.Value("string")}
    if keep_audio:  # WAV bytes stored as they are, then typed as Audio (no re-encoding)
        columns["audio"] = [{"bytes": to_wav_bytes(w, rate), "path": None} for w in waves]
        features["audio"] = {"bytes": datasets.Value("binary"), "path": datasets.Value("string")}
    else:
        if tokenizer.sample_rate != rate:
            raise ValueError(f"the tokenizer expects {tokenizer.sample_rate} Hz audio, the voices give {rate} Hz")
        seqs = tokenizer.encode_batch(waves)
        features = dict(unit_features(durations=tokenizer.dedup))
        columns["units"] = [np.asarray(s.units, np.uint16) for s in seqs]
        if tokenizer.dedup:
            columns["durations"] = [np.asarray(s.durations, np.uint16) for s in seqs]
        columns["n_frames"] = [int(s.n_frames) for s in seqs]
    columns["seconds"] = [len(w) / rate for w in waves]
    features["seconds"] = datasets.Value("float32")
    columns["text"] = [texts[i] for i in kept]
    columns["speaker"] = [names[i] for i in kept]
    features.update(text=datasets.Value("string"), speaker=datasets.Value("string"))
    ds = datasets.Dataset.from_dict(columns, features=datasets.Features(features))
    if keep_audio:
        return ds.cast_column("audio", datasets.Audio(sampling_rate=rate, decode=False)), failures
    validate_unit_dataset(ds, where=desc, n_units=tokenizer.n_units)
    return ds, failures


def _all_done(out: Path, splits: Sequence[str], shard_rows: int) -> bool:
    for split in splits:
        rows = out / _STATE / f"{split}.rows"
        if not rows.exists():
            return False
        n_shards = math.ceil(int(rows.read_text()) / shard_rows)
        if any(not (out / _STATE / f"{split}-{k:05d}.json").exists() for k in range(n_shards)):
            return False
    return True


def _totals(out: Path, keep_audio: bool) -> tuple[dict[str, pa.Table], Counter]:
    """Per unit-dataset split, the concatenated columns needed for the card; failures of every shard."""
    tables: dict[str, list] = {}
    cols = ["seconds"] if keep_audio else ["units", "n_frames", "seconds"]
    for path in sorted((out / "data").glob("*.parquet")):
        tables.setdefault(path.name.split("-", 1)[0], []).append(pq.read_table(path, columns=cols))
    failures: Counter = Counter()
    for marker in sorted((out / _STATE).glob("*-[0-9][0-9][0-9][0-9][0-9].json")):
        failures.update(json.loads(marker.read_text()))
    return {k: pa.concat_tables(v) for k, v in tables.items()}, failures


def _write_card(out: Path, info: TTSInfo, tokenizer: Any, tokenizer_id: str | None,
                tokenizer_revision: str | None, keep_audio: bool) -> None:
    tables, failures = _totals(out, keep_audio)
    info.failures = dict(sorted(failures.items()))
    info.utterances = sum(t.num_rows for t in tables.values())
    info.hours = sum(float(pc.sum(t["seconds"]).as_py() or 0.0) for t in tables.values()) / 3600
    if keep_audio:
        text = _audio_card(sorted(tables), out.name)
    else:
        unit_info = UnitDatasetInfo(tokenizer_id or "unknown", tokenizer_revision, tokenizer.n_units,
                                    tokenizer.frame_rate, tokenizer.dedup,
                                    skipped={f"tts:{k}": v for k, v in info.failures.items()})
        for table in tables.values():
            unit_info.add(datasets.Dataset(table))
        info.units = unit_info.tokens
        text = render_card(sorted(tables), unit_info, out.name)
    tmp = out / "README.md.tmp"  # several processes may get here; each writes the same card
    tmp.write_text(_with_tts_block(text, info))
    tmp.replace(out / "README.md")


def _audio_card(splits: list[str], name: str) -> str:
    meta = {"pretty_name": name, "tags": ["speech", "tts", "hf-slm"],
            "configs": [{"config_name": "default",
                         "data_files": [{"split": s, "path": f"data/{s}-*.parquet"} for s in splits]}]}
    return (f"---\n{yaml.safe_dump(meta, sort_keys=False)}---\n\n# {name}\n\nColumns: `id`, `audio` (16-bit WAV), "
            "`seconds`, `text`, `speaker`. Load with `datasets.load_dataset(<this folder or repo id>)`.\n")


def _with_tts_block(card: str, info: TTSInfo) -> str:
    """The card with a ``hf_slm_tts`` block in its YAML header and a paragraph on how the speech was made."""
    _, header, body = card.split("---\n", 2)
    meta = yaml.safe_load(header)
    meta[TTS_CARD_KEY] = asdict(info)
    failures = ", ".join(f"{k}: {v}" for k, v in info.failures.items()) or "none"
    units = f", {info.units} units" if CARD_KEY in meta else ""
    para = (f"\n## Speech\n\nSynthesized from `{info.source}` with the `{info.backend}` backend, voices "
            f"{', '.join(f'`{v}`' for v in info.voices)} (row i spoken by voice i mod {len(info.voices)}), "
            f"{'normalised text, ' if info.normalize else ''}chunks of at most {info.max_chars} characters, "
            f"{info.sample_rate} Hz: {info.hours:.3f} hours, {info.utterances} utterances{units}. "
            f"Texts that could not be spoken, by reason: {failures}.\n")
    return f"---\n{yaml.safe_dump(meta, sort_keys=False)}---\n{body}{para}"


def load_tts_info(folder: str | Path) -> TTSInfo:
    """The ``hf_slm_tts`` block of a synthesized dataset's card."""
    text = (Path(folder) / "README.md").read_text()
    return TTSInfo(**yaml.safe_load(text.split("---\n", 2)[1])[TTS_CARD_KEY])


# -- multi-speaker Story Cloze ------------------------------------------------------------------------------
ROC_COLUMNS = ("InputSentence1", "InputSentence2", "InputSentence3", "InputSentence4",
               "RandomFifthSentenceQuiz1", "RandomFifthSentenceQuiz2", "AnswerRightEnding")


def cloze_candidates(rows: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """One row per spoken candidate (``id``, ``item_id``, ``label``, ``text``) from cloze items given as
    ``prompt`` / ``positive`` / ``negative`` (+ ``id``), or in the ROCStories Story Cloze layout."""
    out = []
    for n, row in enumerate(rows):
        if all(c in row for c in ROC_COLUMNS):
            prompt = " ".join(str(row[f"InputSentence{i}"]) for i in range(1, 5))
            right = int(row["AnswerRightEnding"])
            endings = {1: row["RandomFifthSentenceQuiz1"], 2: row["RandomFifthSentenceQuiz2"]}
            positive, negative = endings[right], endings[3 - right]
            item = str(row.get("InputStoryid", n))
        elif all(c in row for c in ("prompt", "positive", "negative")):
            prompt, positive, negative = row["prompt"], row["positive"], row["negative"]
            item = str(row.get("id", n))
        else:
            raise ValueError(f"cloze row {n}: need prompt/positive/negative or the ROCStories columns; "
                             f"got {sorted(row)}")
        for label, ending in ((1, positive), (0, negative)):
            out.append({"id": f"{item}-{label}", "item_id": item, "label": label,
                        "text": f"{prompt} {ending}".strip()})
    return out


def synthesize_cloze(
    source: str | Path, voices: Sequence[Any], tokenizer: Any, output_dir: str | Path, split: str = "test",
    config: str | None = None, revision: str | None = None, batch_size: int = 16, limit: int | None = None,
    backend: str | None = None, tokenizer_id: str | None = None, tokenizer_revision: str | None = None,
) -> Path:
    """Speak a Story Cloze set as a multi-speaker benchmark unit dataset (split ``test``): item ``j``'s two
    candidates are spoken by voice ``j mod len(voices)``. Items with a candidate that could not be spoken are
    dropped whole (a benchmark needs both) and counted. Columns: contract 1 + ``item_id``, ``label``, ``voice``,
    ``text``, ``speaker``."""
    pipelines = [v if isinstance(v, TTSPipeline) else TTSPipeline(v) for v in voices]
    rows = load_text_dataset(source, split, config, revision, streaming=False)
    cands = cloze_candidates(itertools.islice(rows, limit) if limit else rows)
    # a candidate's position is its item's index: both candidates of an item get the same voice
    items = {item: j for j, item in enumerate(dict.fromkeys(c["item_id"] for c in cands))}
    positions = [items[c["item_id"]] for c in cands]
    voice_of = [p % len(pipelines) for p in positions]
    texts = [c["text"] for c in cands]
    waves = _Speaker(pipelines, batch_size).speak(positions, texts)
    failures = Counter(w.reason for w in waves if isinstance(w, Failure))
    bad = {cands[i]["item_id"] for i, w in enumerate(waves) if isinstance(w, Failure)}
    keep = [i for i in range(len(cands)) if cands[i]["item_id"] not in bad]
    if not keep:
        raise ValueError(f"{source}: no cloze item could be spoken (failures: {dict(failures)})")
    seqs = tokenizer.encode_batch([waves[i] for i in keep])
    rate = pipelines[0].sample_rate
    columns = {
        "id": [cands[i]["id"] for i in keep],
        "units": [np.asarray(s.units, np.uint16) for s in seqs],
        **({"durations": [np.asarray(s.durations, np.uint16) for s in seqs]} if tokenizer.dedup else {}),
        "n_frames": [int(s.n_frames) for s in seqs],
        "seconds": [len(waves[i]) / rate for i in keep],
        "item_id": [cands[i]["item_id"] for i in keep],
        "label": [cands[i]["label"] for i in keep],
        "voice": [pipelines[voice_of[i]].name for i in keep],
        "speaker": [pipelines[voice_of[i]].name for i in keep],
        "text": [texts[i] for i in keep],
    }
    features = unit_features({"item_id": datasets.Value("string"), "label": datasets.Value("int64"),
                              "voice": datasets.Value("string"), "speaker": datasets.Value("string"),
                              "text": datasets.Value("string")}, durations=tokenizer.dedup)
    ds = datasets.Dataset.from_dict(columns, features=features)
    out = Path(output_dir)
    validate_unit_dataset(ds, where=str(out), n_units=tokenizer.n_units)
    (out / "data").mkdir(parents=True, exist_ok=True)
    _write_atomic(ds, out / "data" / "test-00000-of-00001.parquet")
    unit_info = UnitDatasetInfo(tokenizer_id or "unknown", tokenizer_revision, tokenizer.n_units,
                                tokenizer.frame_rate, tokenizer.dedup,
                                skipped={f"tts:{k}": v for k, v in sorted(failures.items())})
    unit_info.add(ds)
    info = TTSInfo(str(source), backend or type(pipelines[0].voice).__name__, [p.name for p in pipelines], rate,
                   pipelines[0].front_end.normalize, pipelines[0].front_end.max_chars, unit_info.hours, len(ds),
                   unit_info.tokens, dict(sorted(failures.items())))
    (out / "README.md").write_text(_with_tts_block(render_card(["test"], unit_info, out.name), info))
    return out
