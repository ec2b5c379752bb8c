"""Decode audio into float32 mono waveforms at a fixed sample rate.

Every audio input of the pipeline goes through :func:`load_audio`, so that corrupt, empty or unusable
audio fails here with one kind of error (:class:`AudioError`) whose message names the source.
"""

from __future__ import annotations

import io
import math
import os
from pathlib import Path
from typing import Any

import numpy as np
import soundfile as sf
from scipy.signal import resample_poly

REASONS = ("not_found", "corrupt", "empty", "non_finite", "wrong_sample_rate", "unsupported", "too_short")


class AudioError(ValueError):
    """Audio that cannot be used: unreadable, corrupt, empty, with NaN/Inf samples, at the wrong sample rate,
    or shorter than one frame of the encoder.

    ``reason`` is one of :data:`REASONS`, the key under which a dataset build counts the skipped item.
    """

    def __init__(self, message: str, reason: str = "corrupt"):
        super().__init__(message)
        self.reason = reason

    def __reduce__(self) -> tuple:
        return type(self), (str(self), self.reason)


def _describe(source: Any, name: str | None) -> str:
    if name is not None:
        return str(name)
    if isinstance(source, (str, os.PathLike)):
        return str(source)
    if isinstance(source, dict):
        return str(source.get("path") or source.get("id") or "<audio dict>")
    if isinstance(source, (bytes, bytearray, memoryview)):
        return f"<{len(source)} bytes>"
    return f"<{type(source).__name__}>"


def _decode(source: Any, where: str) -> tuple[np.ndarray, int]:
    """Return (samples [n] or [n, channels], sample rate) from any supported source."""
    if isinstance(source, tuple) and len(source) == 2:
        array, sr = source
        return np.asarray(array, dtype=np.float32), int(sr)
    if isinstance(source, dict):
        if source.get("array") is not None:
            return np.asarray(source["array"], dtype=np.float32), int(source["sampling_rate"])
        if source.get("bytes") is not None:
            return _decode(bytes(source["bytes"]), where)
        if source.get("path"):
            return _decode(source["path"], where)
        raise AudioError(f"{where}: audio dict has neither 'bytes' nor 'path'", "unsupported")
    if isinstance(source, (bytes, bytearray, memoryview)):
        if len(source) == 0:
            raise AudioError(f"{where}: empty audio (0 bytes)", "empty")
        file: Any = io.BytesIO(bytes(source))
    elif isinstance(source, (str, os.PathLike)):
        if not Path(source).is_file():
            raise AudioError(f"{where}: audio file not found", "not_found")
        file = str(source)
    else:
        raise AudioError(f"{where}: unsupported audio source type {type(source).__name__}", "unsupported")
    try:
        array, sr = sf.read(file, dtype="float32", always_2d=False)
    except (sf.LibsndfileError, RuntimeError, TypeError) as e:
        raise AudioError(f"{where}: cannot decode audio, corrupt or unsupported format ({e})") from e
    return array, int(sr)


def _to_mono(array: np.ndarray, where: str) -> np.ndarray:
    if array.ndim == 2:
        # soundfile gives [n, channels]; a (channels, n) array from a tuple source is transposed.
        if array.shape[0] < array.shape[1] and array.shape[0] <= 8:
            array = array.T
        return array.mean(axis=1)
    if array.ndim != 1:
        raise AudioError(f"{where}: expected 1-D or 2-D audio, got shape {array.shape}", "unsupported")
    return array


def resample_wave(wave: np.ndarray, orig_sr: int, target_sr: int) -> np.ndarray:
    """Polyphase resampling (``scipy.signal.resample_poly``) from ``orig_sr`` to ``target_sr``."""
    if orig_sr == target_sr:
        return wave
    g = math.gcd(orig_sr, target_sr)
    return resample_poly(wave, target_sr // g, orig_sr // g).astype(np.float32)


def load_audio(
    source: Any, sample_rate: int = 16000, *, resample: bool = True, name: str | None = None
) -> np.ndarray:
    """Decode ``source`` into a float32 mono waveform at ``sample_rate``.

    Args:
        source: a path, raw encoded bytes (WAV, FLAC, OGG...), a ``datasets`` ``Audio(decode=False)`` dict
            ``{"bytes": ..., "path": ...}`` (or a decoded one with ``array``/``sampling_rate``), or an
            ``(array, sample_rate)`` tuple.
        sample_rate: the rate the caller needs.
        resample: resample audio at another rate; when False such audio raises :class:`AudioError`.
        name: how to call the source in error messages (an utterance id, say); defaults to its path.

    Returns:
        A 1-D float32 array. Stereo is downmixed by averaging the channels.

    Raises:
        AudioError: unreadable or corrupt data, a missing file, empty audio, any NaN or infinite sample
            (never replaced silently: such audio is usually a broken decode), or a wrong rate with
            ``resample=False``. The message names the source and the reason; ``err.reason`` is its key.
    """
    where = _describe(source, name)
    array, sr = _decode(source, where)
    wave = _to_mono(np.asarray(array, dtype=np.float32), where)
    if wave.size == 0:
        raise AudioError(f"{where}: empty audio (0 samples)", "empty")
    bad = wave.size - int(np.count_nonzero(np.isfinite(wave)))
    if bad:
        raise AudioError(f"{where}: {bad} of {wave.size} samples are NaN or infinite", "non_finite")
    if sr != sample_rate:
        if not resample:
            raise AudioError(f"{where}: expected sample rate {sample_rate} Hz, got {sr} Hz", "wrong_sample_rate")
        wave = resample_wave(wave, sr, sample_rate)
    return np.ascontiguousarray(wave, dtype=np.float32)


def encode_wav_bytes(wave: np.ndarray, sample_rate: int) -> bytes:
    """Encode a mono waveform in [-1, 1] as 16-bit PCM WAV bytes."""
    buffer = io.BytesIO()
    sf.write(buffer, np.clip(np.asarray(wave, dtype=np.float32), -1.0, 1.0), sample_rate, format="WAV",
             subtype="PCM_16")
    return buffer.getvalue()
