"""Text -> 16 kHz speech with any backend: normalise, split long texts, batch, resample once, count failures.

:class:`TTSPipeline` wraps a voice of :mod:`hf_slm.tts.backends` (or ``EspeakVoice`` / ``HibariVoice``). Each
text is normalised and cut into chunks at sentence boundaries (``TextFrontEnd``); the chunks of a whole batch of
texts go to the backend together (sorted by length, in ``voice.synthesize_batch`` when it has one), then each
text's chunks are joined with a short pause and resampled from the backend's rate to ``sample_rate`` once.
A text that cannot be spoken is returned as a :class:`Failure` with a reason and counted in
``pipeline.failures``; a failing batch is retried text by text so one bad text never costs the others.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy.signal import resample_poly

from .backends import BackendUnavailable
from .normalize import TextFrontEnd


@dataclass(frozen=True)
class Failure:
    """Why a text produced no audio (``reason`` is a short key, ``detail`` the message)."""

    reason: str
    detail: str = ""


def resample(wave: np.ndarray, orig_sr: int, target_sr: int) -> np.ndarray:
    """Polyphase resampling (scipy) of a float wave; the identity when the rates agree."""
    if orig_sr == target_sr:
        return np.asarray(wave, dtype=np.float32)
    g = math.gcd(int(orig_sr), int(target_sr))
    return resample_poly(wave, target_sr // g, orig_sr // g).astype(np.float32)


@dataclass
class TTSPipeline:
    """Speak texts with ``voice`` at ``sample_rate`` (see the module docstring).

    ``front_end.max_chars`` defaults to the voice's own ``max_chars``; ``pause`` seconds of silence join the
    chunks of one text; ``max_seconds`` (optional) turns longer outputs into ``too_long`` failures.
    """

    voice: Any
    sample_rate: int = 16000
    front_end: TextFrontEnd | None = None
    pause: float = 0.15
    max_seconds: float | None = None
    failures: Counter = field(default_factory=Counter)

    def __post_init__(self) -> None:
        if self.front_end is None:
            self.front_end = TextFrontEnd(max_chars=getattr(self.voice, "max_chars", 400))

    @property
    def name(self) -> str:
        return self.voice.name

    def synthesize(self, text: str) -> tuple[np.ndarray, int]:
        """One text -> (wave at ``sample_rate``, ``sample_rate``); raises ValueError on a failure."""
        result = self.speak([text])[0]
        if isinstance(result, Failure):
            raise ValueError(f"{self.name} could not speak {text[:60]!r}: {result.reason} {result.detail}")
        return result, self.sample_rate

    def speak(self, texts: Sequence[str]) -> list[np.ndarray | Failure]:
        """One float32 wave at ``sample_rate`` or one :class:`Failure` per text, in order."""
        results: list[np.ndarray | Failure | None] = [None] * len(texts)
        jobs: list[tuple[int, str]] = []
        for i, text in enumerate(texts):
            try:
                chunks = self.front_end.chunks(text)
            except Exception as err:  # a normaliser error is this text's failure, counted
                results[i] = Failure("normalize_error", f"{type(err).__name__}: {err}")
                continue
            if not chunks:
                results[i] = Failure("empty_text", "nothing speakable after normalisation")
            jobs.extend((i, c) for c in chunks)
        audio = self._run([c for _, c in jobs])
        pieces: dict[int, list] = {}
        for (i, _), out in zip(jobs, audio, strict=True):
            pieces.setdefault(i, []).append(out)
        for i, outs in pieces.items():
            results[i] = self._join(outs)
        for r in results:
            if isinstance(r, Failure):
                self.failures[r.reason] += 1
        return results  # type: ignore[return-value]

    def _run(self, chunks: list[str]) -> list[tuple[np.ndarray, int] | Failure]:
        """Backend output per chunk; batched in order of length, a failing batch retried chunk by chunk."""
        order = sorted(range(len(chunks)), key=lambda k: len(chunks[k]))
        batched = getattr(self.voice, "synthesize_batch", None)
        size = getattr(self.voice, "batch_size", 1) if batched else 1
        out: list = [None] * len(chunks)
        for start in range(0, len(order), size):
            idx = order[start : start + size]
            try:
                got = batched([chunks[k] for k in idx]) if batched else [self.voice.synthesize(chunks[idx[0]])]
            except (ImportError, BackendUnavailable):
                raise  # the backend cannot run at all: not a property of this text
            except Exception as err:  # isolated below, then counted by reason
                if len(idx) == 1:
                    got = [Failure(_reason(err), f"{type(err).__name__}: {err}")]
                else:
                    got = [self._one(chunks[k]) for k in idx]
            for k, g in zip(idx, got, strict=True):
                out[k] = g
        return out

    def _one(self, chunk: str) -> tuple[np.ndarray, int] | Failure:
        try:
            return self.voice.synthesize(chunk)
        except Exception as err:  # this chunk's failure, counted by reason
            return Failure(_reason(err), f"{type(err).__name__}: {err}")

    def _join(self, outs: list) -> np.ndarray | Failure:
        failed = next((o for o in outs if isinstance(o, Failure)), None)
        if failed is not None:
            return failed
        rate = outs[0][1]
        gap = np.zeros(int(round(self.pause * rate)), np.float32)
        parts = []
        for k, (wave, sr) in enumerate(outs):
            if sr != rate:
                return Failure("backend_error", f"chunks came back at {rate} and {sr} Hz")
            parts.extend([gap, wave] if k else [wave])
        wave = resample(np.concatenate(parts), rate, self.sample_rate)
        if wave.size == 0 or not np.any(wave):
            return Failure("no_audio", "the backend returned silence")
        if not np.all(np.isfinite(wave)):
            return Failure("non_finite", "the backend returned NaN or inf samples")
        if self.max_seconds is not None and wave.size > self.max_seconds * self.sample_rate:
            return Failure("too_long", f"{wave.size / self.sample_rate:.1f} s > {self.max_seconds} s")
        return np.clip(wave, -1.0, 1.0)


def _reason(err: Exception) -> str:
    """A short failure key from an exception: out-of-memory, out-of-vocabulary, else the backend error's type."""
    text = f"{type(err).__name__} {err}".lower()
    if "out of memory" in text:
        return "out_of_memory"
    if "vocabulary" in text or "unknown token" in text:
        return "out_of_vocabulary"
    return f"backend_error:{type(err).__name__}"
