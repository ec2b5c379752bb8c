"""Text items -> a ``datasets`` audio dataset (16 kHz mono 16-bit WAV bytes), optionally in parallel."""

from __future__ import annotations

import io
import itertools
import math
import multiprocessing
from collections.abc import Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from typing import Any, Protocol

import datasets
import numpy as np
import soundfile as sf
from scipy.signal import resample_poly
from tqdm.auto import tqdm

RESERVED_COLUMNS = ("id", "text", "speaker", "seconds", "audio")
_VALUE_TYPES = {str: "string", bool: "bool", int: "int64", float: "float64"}


class Voice(Protocol):
    name: str

    def synthesize(self, text: str) -> tuple[np.ndarray, int]: ...


# hf_slm.units.audio has the same two helpers (encode_wav_bytes, resample_wave), but importing it runs
# hf_slm/units/__init__.py, which imports torch and transformers (~7 s): every spawned worker would pay it.
def to_wav_bytes(wave: np.ndarray, sample_rate: int) -> bytes:
    """16-bit PCM mono WAV bytes of a float wave in [-1, 1] (clipped)."""
    buffer = io.BytesIO()
    clipped = np.clip(np.asarray(wave, dtype=np.float32), -1.0, 1.0)
    sf.write(buffer, clipped, sample_rate, format="WAV", subtype="PCM_16")
    return buffer.getvalue()


def _resample(wave: np.ndarray, orig_sr: int, target_sr: int) -> np.ndarray:
    if orig_sr == target_sr:
        return wave
    g = math.gcd(orig_sr, target_sr)
    return resample_poly(wave, target_sr // g, orig_sr // g).astype(np.float32)


def render(voice: Voice, text: str, sample_rate: int = 16000) -> tuple[bytes, float]:
    """Speak ``text`` and return (WAV bytes at ``sample_rate``, duration in seconds)."""
    wave, sr = voice.synthesize(text)
    wave = _resample(np.asarray(wave, dtype=np.float32), sr, sample_rate)
    if wave.size == 0:
        raise ValueError(f"{voice.name} produced no audio for {text[:60]!r}")
    return to_wav_bytes(wave, sample_rate), wave.size / sample_rate


_WORKER_VOICE: Voice | None = None  # set in each worker process by _init_worker


def _init_worker(voice: Voice) -> None:
    global _WORKER_VOICE
    _WORKER_VOICE = voice


def _render_in_worker(job: tuple[str, int]) -> tuple[bytes, float]:
    text, sample_rate = job
    return render(_WORKER_VOICE, text, sample_rate)


def _render_all(texts: Sequence[str], voice: Voice, sample_rate: int, num_proc: int) -> Iterator[tuple]:
    """(wav bytes, seconds) per text, in order; ``num_proc`` spawned workers each load their own voice."""
    if num_proc <= 1:
        yield from (render(voice, t, sample_rate) for t in texts)
        return
    chunk = max(1, min(32, len(texts) // (4 * num_proc)))
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(num_proc, mp_context=context, initializer=_init_worker,
                             initargs=(voice,)) as pool:
        yield from pool.map(_render_in_worker, [(t, sample_rate) for t in texts], chunksize=chunk)


def _extra_columns(items: Sequence[dict[str, Any]]) -> dict[str, str]:
    """Value type of every extra key (same keys and one scalar type per key across items)."""
    keys = [k for k in items[0] if k not in RESERVED_COLUMNS] if items else []
    types = {}
    for key in keys:
        kinds = {type(item.get(key)) for item in items}
        if len(kinds) != 1 or next(iter(kinds)) not in _VALUE_TYPES:
            raise ValueError(f"column {key!r}: every item needs it as one of str/int/float/bool, got "
                             f"{sorted(k.__name__ for k in kinds)}")
        types[key] = _VALUE_TYPES[next(iter(kinds))]
    return types


def _check_items(items: Sequence[dict[str, Any]]) -> None:
    for i, item in enumerate(items):
        if not isinstance(item.get("id"), str) or not isinstance(item.get("text"), str):
            raise ValueError(f"item {i} needs string 'id' and 'text', got keys {sorted(item)}")
        if not item["text"].strip():
            raise ValueError(f"item {item['id']!r} has empty text")
        for key in ("speaker", "seconds", "audio"):
            if key in item:
                raise ValueError(f"item {item['id']!r}: {key!r} is a column this function writes")
    ids = [item["id"] for item in items]
    if len(set(ids)) != len(ids):
        raise ValueError("item ids are not unique")


def synthesize_dataset(
    items: Sequence[dict[str, Any]],
    voice: Voice,
    sample_rate: int = 16000,
    num_proc: int = 1,
    desc: str = "synthesize",
    rows_per_chunk: int = 1000,
) -> datasets.Dataset:
    """Speak every item's ``text`` with ``voice``; one row per item, in the items' order.

    Columns: ``id``, ``text``, ``speaker`` (``voice.name``), ``seconds`` (float32), ``audio``
    (``datasets.Audio(sampling_rate, decode=False)``: ``{"bytes": mono 16-bit WAV, "path": None}``), plus
    every other key of the items (str/int/float/bool). ``num_proc > 1`` spreads the work over spawned
    processes (each initialises its own voice); the result is identical to ``num_proc=1``. Rows are
    gathered ``rows_per_chunk`` at a time into Arrow chunks: one Arrow binary array holds at most 2 GiB.
    """
    _check_items(items)
    extras = _extra_columns(items)
    # Audio.encode_example needs torchcodec even for ready bytes: store the struct, then cast (no encoding).
    wav_struct = {"bytes": datasets.Value("binary"), "path": datasets.Value("string")}
    features = datasets.Features({
        "id": datasets.Value("string"), "text": datasets.Value("string"), "speaker": datasets.Value("string"),
        "seconds": datasets.Value("float32"), "audio": wav_struct,
        **{key: datasets.Value(kind) for key, kind in extras.items()},
    })
    texts = [item["text"] for item in items]
    bar = tqdm(_render_all(texts, voice, sample_rate, num_proc), total=len(texts), desc=desc, unit="utt")
    rendered = iter(bar)
    chunks = []
    for start in range(0, max(len(items), 1), rows_per_chunk):
        part = items[start : start + rows_per_chunk]
        audio = list(itertools.islice(rendered, len(part)))
        columns: dict[str, list] = {
            "id": [item["id"] for item in part],
            "text": [item["text"] for item in part],
            "speaker": [voice.name] * len(part),
            "seconds": [seconds for _, seconds in audio],
            "audio": [{"bytes": wav, "path": None} for wav, _ in audio],
            **{key: [item[key] for item in part] for key in extras},
        }
        chunks.append(datasets.Dataset.from_dict(columns, features=features))
    bar.close()
    ds = datasets.concatenate_datasets(chunks) if len(chunks) > 1 else chunks[0]
    return ds.cast_column("audio", datasets.Audio(sampling_rate=sample_rate, decode=False))
