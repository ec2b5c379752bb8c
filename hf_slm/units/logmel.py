"""Log-mel (or MFCC) features: the GSLM ``LogMel`` baseline encoder, in torch."""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any

import numpy as np
import scipy.fft
import torch
from transformers.audio_utils import mel_filter_bank


@dataclass
class LogMelConfig:
    """Settings of :class:`LogMelEncoder`.

    ``win_ms=None`` uses a window of two hops (80 ms at 25 Hz): with a Hann window and 50 % overlap every
    sample weighs the same, and frame ``t`` is centred on ``(t + 0.5) * hop``.

    ``cmvn`` normalises each feature's mean and variance over the whole utterance, or, with
    ``cmvn_window`` seconds, over the frames of that window that end at the current one (online CMVN, as
    Kaldi's causal sliding CMVN): a frame then depends on the past only, so utterances that share a
    beginning share its units.
    """

    sample_rate: int = 16000
    frame_rate: float = 25
    n_mels: int = 40
    n_mfcc: int | None = None
    win_ms: float | None = None
    deltas: bool = False
    cmvn: bool = True
    cmvn_window: float | None = None
    f_min: float = 0.0
    f_max: float | None = None
    log_floor: float = 1e-6

    def __post_init__(self) -> None:
        hop = self.sample_rate / self.frame_rate if self.frame_rate > 0 else 0.0
        if hop < 1 or hop != int(hop):
            raise ValueError(f"frame_rate {self.frame_rate} Hz does not give a whole hop at {self.sample_rate} Hz "
                             f"(sample_rate / frame_rate = {hop:g} samples)")
        if self.n_mfcc is not None and not 0 < self.n_mfcc <= self.n_mels:
            raise ValueError(f"n_mfcc must be in 1..n_mels={self.n_mels}, got {self.n_mfcc}")
        if self.cmvn_window is not None and self.cmvn_window <= 0:
            raise ValueError(f"cmvn_window must be > 0 seconds, got {self.cmvn_window}")
        if self.win_length < self.hop_length // 2:
            raise ValueError(f"window ({self.win_length} samples) is shorter than half a hop ({self.hop_length})")

    @property
    def hop_length(self) -> int:
        return round(self.sample_rate / self.frame_rate)

    @property
    def win_length(self) -> int:
        if self.win_ms is None:
            return 2 * self.hop_length
        return round(self.win_ms * self.sample_rate / 1000)


def _delta(x: torch.Tensor, width: int = 2) -> torch.Tensor:
    """Regression deltas over time of ``x`` [T, F], edges replicated (HTK formula)."""
    padded = torch.cat([x[:1].expand(width, -1), x, x[-1:].expand(width, -1)])
    n = x.shape[0]
    num = sum(k * (padded[width + k : width + k + n] - padded[width - k : width - k + n]) for k in range(1, width + 1))
    return num / (2 * sum(k * k for k in range(1, width + 1)))


def _causal_cmvn(x: torch.Tensor, window: int) -> torch.Tensor:
    """Normalise frame ``t`` of ``x`` [T, F] by the mean and std of frames ``max(0, t-window+1)..t``."""
    x = x.double()
    x = x - x.mean(0)  # centred first: the running E[x^2] - E[x]^2 then cancels no large mean
    zero = torch.zeros(1, x.shape[1], dtype=x.dtype)
    s1, s2 = torch.cat([zero, x.cumsum(0)]), torch.cat([zero, (x * x).cumsum(0)])
    end = torch.arange(1, x.shape[0] + 1)
    start = (end - window).clamp(min=0)
    n = (end - start)[:, None].to(x.dtype)
    mean = (s1[end] - s1[start]) / n
    var = ((s2[end] - s2[start]) / n - mean * mean).clamp(min=0)
    return ((x - mean) / (var.sqrt() + 1e-5)).float()


class LogMelEncoder:
    """Per-frame log-mel filterbank (or MFCC) features at ``frame_rate`` Hz.

    Frames are hop = ``sample_rate / frame_rate`` samples apart (640 at 16 kHz / 25 Hz) and the signal is
    zero-padded by ``(win - hop) / 2`` on each side, so a wave of n samples gives ``n // hop`` frames for the
    default window. Per-utterance mean/variance normalisation (``cmvn``) removes most of the speaker's and
    channel's spectral tilt, which makes units less speaker-dependent.

    :meth:`encode_batch` groups waves sorted by length so that a batch holds at most ``batch_seconds`` of
    padded audio, and computes the spectra of a batch in blocks of frames of that size: memory and cache
    use stay bounded whatever the lengths (a 10-minute file next to short ones is not padded into them).
    ``batch_seconds`` changes no feature.
    """

    def __init__(
        self, sample_rate: int = 16000, frame_rate: float = 25, n_mels: int = 40, *, batch_seconds: float = 60.0,
        **kwargs: Any,
    ):
        if batch_seconds <= 0:
            raise ValueError(f"batch_seconds must be > 0, got {batch_seconds}")
        self.batch_seconds = batch_seconds
        self.cfg = LogMelConfig(sample_rate=sample_rate, frame_rate=frame_rate, n_mels=n_mels, **kwargs)
        cfg = self.cfg
        self.n_fft = 1 << (cfg.win_length - 1).bit_length()
        self._pad = max(0, (cfg.win_length - cfg.hop_length) // 2)
        self._window = torch.hann_window(cfg.win_length, periodic=True, dtype=torch.float32)
        mel = mel_filter_bank(
            num_frequency_bins=self.n_fft // 2 + 1,
            num_mel_filters=cfg.n_mels,
            min_frequency=cfg.f_min,
            max_frequency=cfg.f_max or cfg.sample_rate / 2,
            sampling_rate=cfg.sample_rate,
            norm="slaney",
            mel_scale="slaney",
        )
        self._mel = torch.from_numpy(mel.astype(np.float32))  # [n_freq, n_mels]
        self._dct = None
        if cfg.n_mfcc is not None:
            dct = scipy.fft.dct(np.eye(cfg.n_mels), type=2, norm="ortho", axis=0)[: cfg.n_mfcc]
            self._dct = torch.from_numpy(dct.T.astype(np.float32))  # [n_mels, n_mfcc]

    @property
    def sample_rate(self) -> int:
        return self.cfg.sample_rate

    @property
    def frame_rate(self) -> float:
        return float(self.cfg.frame_rate)

    @property
    def dim(self) -> int:
        base = self.cfg.n_mfcc or self.cfg.n_mels
        return base * (3 if self.cfg.deltas else 1)

    @property
    def config(self) -> dict[str, Any]:
        return self.to_dict()

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable description; ``LogMelEncoder.from_dict`` rebuilds an identical encoder."""
        return {"type": "logmel", **asdict(self.cfg)}

    @classmethod
    def from_dict(cls, d: dict[str, Any], **kwargs: Any) -> LogMelEncoder:
        """Rebuild from :meth:`to_dict`; ``kwargs``: ``batch_seconds`` (``device``/``dtype`` are ignored: the
        log-mel encoder runs on CPU in float32)."""
        names = {f.name for f in fields(LogMelConfig)}
        unknown = set(d) - names - {"type"}
        if unknown:
            raise ValueError(f"unknown LogMelEncoder settings: {sorted(unknown)}")
        runtime = {k: v for k, v in kwargs.items() if k == "batch_seconds" and v is not None}
        return cls(**{k: v for k, v in d.items() if k in names}, **runtime)

    def n_frames(self, n_samples: int) -> int:
        """Number of frames :meth:`encode` returns for a wave of ``n_samples`` samples."""
        padded = n_samples + 2 * self._pad
        if padded < self.cfg.win_length:
            return 0
        return (padded - self.cfg.win_length) // self.cfg.hop_length + 1

    def encode(self, wave: np.ndarray) -> np.ndarray:
        """Features [T, dim] (float32) of one mono wave at ``sample_rate``."""
        return self.encode_batch([wave])[0]

    @torch.no_grad()
    def encode_batch(
        self, waves: list[np.ndarray], batch_seconds: float | None = None, as_tensors: bool = False
    ) -> list[np.ndarray] | list[torch.Tensor]:
        """Features of several waves; each item equals its :meth:`encode` (``as_tensors``: as CPU tensors).

        Waves are sorted by length and batched with at most ``batch_seconds`` (default: the encoder's) of
        padded audio per batch; a longer wave goes alone, its spectra computed ``batch_seconds`` at a time.
        """
        budget = max(1, round((batch_seconds or self.batch_seconds) * self.sample_rate))
        todo = sorted(range(len(waves)), key=lambda i: -len(waves[i]))
        out: list[np.ndarray] = [np.empty((0, self.dim), np.float32)] * len(waves)
        while todo:
            longest = len(waves[todo[0]]) + 2 * self._pad
            size = max(1, min(len(todo), budget // max(longest, 1)))
            batch, todo = todo[:size], todo[size:]
            for i, feats in zip(batch, self._encode_padded([waves[i] for i in batch], budget), strict=True):
                out[i] = feats
        return [torch.from_numpy(f) for f in out] if as_tensors else out

    def _encode_padded(self, waves: list[np.ndarray], budget: int) -> list[np.ndarray]:
        cfg = self.cfg
        lengths = [len(w) for w in waves]
        frames = [self.n_frames(n) for n in lengths]
        if max(frames) == 0:
            return [np.empty((0, self.dim), np.float32) for _ in waves]
        # Padding past an item's own frames never enters them, so items can share one zero-padded batch.
        padded = np.zeros((len(waves), max(max(lengths) + 2 * self._pad, cfg.win_length)), np.float32)
        for row, w in zip(padded, waves, strict=True):
            row[self._pad : self._pad + len(w)] = w
        windows = torch.from_numpy(padded).unfold(1, cfg.win_length, cfg.hop_length)  # a view [B, T, win]
        n_out = self.cfg.n_mfcc or self.cfg.n_mels
        feats = torch.empty(len(waves), max(frames), n_out)
        step = max(1, budget // (len(waves) * cfg.hop_length))  # frames per block: ~budget samples at once
        for t in range(0, max(frames), step):
            feats[:, t : t + step] = self._log_mel(windows[:, t : min(t + step, max(frames))])
        return [self._finish(f[:t]) for f, t in zip(feats, frames, strict=True)]

    def _log_mel(self, windows: torch.Tensor) -> torch.Tensor:
        """Log-mel (or MFCC) features [B, T, n] of frames [B, T, win]."""
        power = torch.view_as_real(torch.fft.rfft(windows * self._window, n=self.n_fft)).pow(2).sum(-1)
        feats = torch.log(power @ self._mel + self.cfg.log_floor)
        return feats @ self._dct if self._dct is not None else feats

    def _finish(self, f: torch.Tensor) -> np.ndarray:
        """Deltas and per-utterance CMVN over the item's own frames."""
        if f.shape[0] == 0:
            return np.empty((0, self.dim), np.float32)
        if self.cfg.deltas:
            d = _delta(f)
            f = torch.cat([f, d, _delta(d)], dim=1)
        if self.cfg.cmvn and self.cfg.cmvn_window is not None:
            f = _causal_cmvn(f, max(1, round(self.cfg.cmvn_window * self.cfg.frame_rate)))
        elif self.cfg.cmvn:
            f = (f - f.mean(0)) / (f.std(0, unbiased=False) + 1e-5)
        return f.numpy().astype(np.float32, copy=False)
