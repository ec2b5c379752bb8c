"""Speech -> discrete units: an encoder, k-means centroids and optional deduplication.

A saved tokenizer is a folder (or Hub repo) with
- ``config.json``: format version, K, feature dim, dedup, frame and sample rate, and the encoder's
  description (log-mel settings, or the HuBERT model id + revision + layer);
- ``model.safetensors``: the centroids ``[K, dim]`` float32 under the key ``centroids``;
- ``encoder/``: the HuBERT weights (``save_pretrained``), only when the model has no Hub id to refer to.
Nothing is unpickled when loading.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from huggingface_hub import ModelHubMixin, hf_hub_download
from safetensors.numpy import load_file, save_file
from tqdm.auto import tqdm

from .audio import AudioError, load_audio
from .dedup import dedup as run_length
from .encoders import Encoder, encoder_from_dict
from .hub import local_or_hub
from .kmeans import assign, fit_kmeans

CONFIG_NAME = "config.json"
WEIGHTS_NAME = "model.safetensors"
ENCODER_SUBFOLDER = "encoder"
FORMAT_VERSION = 1
MAX_UNITS = 1 << 16  # units are stored as uint16

MODEL_CARD = """
---
{{ card_data }}
---

# Speech tokenizer (hf_slm)

Speech -> discrete units: frame features of an encoder, nearest of K k-means centroids, optionally with
consecutive duplicates removed, as in "Scaling Properties of Speech Language Models" (Cuervo & Marxer 2024).

```python
from hf_slm.units import SpeechTokenizer
tokenizer = SpeechTokenizer.from_pretrained("<this repo>")
units = tokenizer.encode(wave_16khz).units
```
"""


@dataclass
class UnitSequence:
    """Units of one utterance.

    Attributes:
        units: unit ids 0..K-1 (after dedup when the tokenizer dedups).
        durations: frames per kept unit (uint32, sums to ``n_frames``); None without dedup.
        n_frames: frames before dedup.
    """

    units: np.ndarray
    durations: np.ndarray | None
    n_frames: int


class TokenizerFileError(ValueError):
    """A saved tokenizer whose files are missing, malformed or inconsistent."""


class SpeechTokenizer(
    ModelHubMixin,
    library_name="hf-slm",
    tags=["speech", "speech-tokenizer", "k-means", "hf-slm"],
    paper_url="https://arxiv.org/abs/2404.00685",
    model_card_template=MODEL_CARD,
):
    """Turn 16 kHz speech into unit sequences.

    Args:
        encoder: a :class:`LogMelEncoder`, :class:`HubertEncoder` or anything following
            :class:`~hf_slm.units.encoders.Encoder`.
        centroids: k-means centroids [K, encoder.dim].
        dedup: remove consecutive repeated units (and return their durations).
    """

    def __init__(self, encoder: Encoder, centroids: np.ndarray | torch.Tensor, dedup: bool = True):
        centroids = np.asarray(centroids.cpu() if isinstance(centroids, torch.Tensor) else centroids,
                               dtype=np.float32)
        if centroids.ndim != 2:
            raise ValueError(f"centroids must be [K, dim], got shape {centroids.shape}")
        if centroids.shape[1] != encoder.dim:
            raise ValueError(f"centroid dim {centroids.shape[1]} != encoder dim {encoder.dim}")
        if not 0 < centroids.shape[0] <= MAX_UNITS:
            raise ValueError(f"K must be in 1..{MAX_UNITS}, got {centroids.shape[0]}")
        self.encoder = encoder
        self.centroids = centroids
        self.dedup = dedup
        self._centroids_t = torch.from_numpy(centroids).to(getattr(encoder, "device", "cpu"))

    @property
    def n_units(self) -> int:
        """K, the number of units."""
        return self.centroids.shape[0]

    @property
    def frame_rate(self) -> float:
        return self.encoder.frame_rate

    @property
    def sample_rate(self) -> int:
        return self.encoder.sample_rate

    def __repr__(self) -> str:
        return (f"SpeechTokenizer(encoder={self.encoder.to_dict()}, n_units={self.n_units}, "
                f"dedup={self.dedup})")

    # ---- encoding -------------------------------------------------------------------------------------

    def _wave(self, wave: Any, sample_rate: int | None) -> np.ndarray:
        """A float32 wave at the encoder's rate; any NaN/Inf sample raises ``AudioError`` (never encoded)."""
        if isinstance(wave, np.ndarray) and wave.ndim == 1 and sample_rate in (None, self.sample_rate):
            wave = wave.astype(np.float32, copy=False)
            if not np.isfinite(wave).all():
                bad = wave.size - int(np.count_nonzero(np.isfinite(wave)))
                raise AudioError(f"<wave>: {bad} of {wave.size} samples are NaN or infinite", "non_finite")
            return wave
        if isinstance(wave, (np.ndarray, torch.Tensor, list)):
            wave = (np.asarray(wave, dtype=np.float32), sample_rate or self.sample_rate)
        return load_audio(wave, self.sample_rate)

    def units_of(self, features: np.ndarray) -> UnitSequence:
        """Units of one utterance's features [T, dim]."""
        return self._sequence(assign(features, self._centroids_t))

    def units_of_batch(self, features: list[np.ndarray] | list[torch.Tensor]) -> list[UnitSequence]:
        """Units of several utterances' features (arrays, or tensors on any device), assigned in one pass."""
        if not features:
            return []
        if isinstance(features[0], torch.Tensor):
            frames = assign(torch.cat([f.to(self._centroids_t.device) for f in features]), self._centroids_t)
            frames = frames.cpu().numpy()
        else:
            frames = assign(np.concatenate(features), self._centroids_t)
        splits = np.cumsum([len(f) for f in features])[:-1]
        return [self._sequence(f) for f in np.split(frames, splits)]

    def _sequence(self, frames: np.ndarray) -> UnitSequence:
        units = frames.astype(np.uint16)
        if not self.dedup:
            return UnitSequence(units, None, len(units))
        units, durations = run_length(units)  # uint32: a run can outlast uint16 (65,535 frames = 11 min at 100 Hz)
        return UnitSequence(units, durations.astype(np.uint32), len(frames))

    def encode(self, wave: Any, sample_rate: int | None = None) -> UnitSequence:
        """Units of one mono wave (at ``sample_rate``, default the encoder's), or of any
        :func:`~hf_slm.units.audio.load_audio` source."""
        return self.units_of(self.encoder.encode(self._wave(wave, sample_rate)))

    def encode_batch(self, waves: list[Any], sample_rate: int | None = None) -> list[UnitSequence]:
        """Units of several waves, encoded as one padded batch by the encoder."""
        feats = self.encoder.encode_batch([self._wave(w, sample_rate) for w in waves], as_tensors=True)
        return self.units_of_batch(feats)

    # ---- fitting --------------------------------------------------------------------------------------

    @classmethod
    def fit(
        cls,
        encoder: Encoder,
        waves: Any,
        n_units: int = 500,
        max_frames: int = 500_000,
        seed: int = 0,
        dedup: bool = True,
        batch_size: int = 16,
        **kmeans_kwargs: Any,
    ) -> SpeechTokenizer:
        """Fit k-means with ``n_units`` centroids on frames of ``waves``.

        ``waves`` is any iterable of waves at the encoder's rate or :func:`load_audio` sources; when it
        holds more than ``max_frames`` frames, a uniform sample of ``max_frames`` (reservoir sampling,
        seeded) is used.
        """
        sample = _FrameReservoir(max_frames, encoder.dim, seed)
        batch: list[np.ndarray] = []
        total = len(waves) if hasattr(waves, "__len__") else None
        for wave in tqdm(waves, total=total, desc="k-means features", unit="utt"):
            batch.append(wave if isinstance(wave, np.ndarray) else load_audio(wave, encoder.sample_rate))
            if len(batch) == batch_size:
                sample.add_all(encoder.encode_batch(batch))
                batch = []
        if batch:
            sample.add_all(encoder.encode_batch(batch))
        centroids = fit_kmeans(sample.frames(), n_units, seed=seed, **kmeans_kwargs)
        return cls(encoder, centroids, dedup=dedup)

    # ---- saving and loading ---------------------------------------------------------------------------

    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path: str | Path, **kwargs: Any) -> SpeechTokenizer:
        """Load from a local folder or a Hub repo id (``revision=`` pins a commit); see ``ModelHubMixin``."""
        try:
            source = local_or_hub(pretrained_model_name_or_path, "tokenizer")
        except FileNotFoundError as e:
            raise TokenizerFileError(f"{pretrained_model_name_or_path}: no such tokenizer folder, and not a Hub id "
                                     "(owner/name)") from e
        if isinstance(source, Path) and not source.is_dir():
            raise TokenizerFileError(f"{source}: is a file; a tokenizer is a folder with {CONFIG_NAME} and "
                                     f"{WEIGHTS_NAME}")
        return super().from_pretrained(str(source), **kwargs)

    def to_config(self) -> dict[str, Any]:
        """The ``config.json`` content."""
        return make_config(self.centroids, self.encoder.to_dict(), self.dedup, self.frame_rate, self.sample_rate)

    def _save_pretrained(self, save_directory: Path) -> None:
        config = self.to_config()
        if config["encoder"]["type"] == "hubert" and _needs_weights(self.encoder):
            self.encoder.model.save_pretrained(save_directory / ENCODER_SUBFOLDER)
            config["encoder"]["subfolder"] = ENCODER_SUBFOLDER
        write_files(save_directory, config, self.centroids)

    @classmethod
    def _from_pretrained(
        cls,
        *,
        model_id: str,
        revision: str | None,
        cache_dir: str | Path | None,
        force_download: bool,
        local_files_only: bool,
        token: str | bool | None,
        encoder: Encoder | dict | None = None,
        dedup: bool | None = None,
        device: str | None = None,
        dtype: torch.dtype | None = None,
        **unused: Any,
    ) -> SpeechTokenizer:
        hub = dict(revision=revision, cache_dir=cache_dir, force_download=force_download,
                   local_files_only=local_files_only, token=token)

        def fetch(name: str) -> str:
            if os.path.isdir(model_id):
                path = os.path.join(model_id, name)
                if not os.path.isfile(path):
                    raise TokenizerFileError(f"{path}: missing (not a SpeechTokenizer folder?)")
                return path
            return hf_hub_download(model_id, name, **hub)

        config_path = fetch(CONFIG_NAME)
        config = read_config(config_path)
        weights_path = fetch(WEIGHTS_NAME)
        centroids = read_centroids(weights_path, config, config_path)
        if not isinstance(encoder, (type(None), dict)):
            if encoder.dim != config["dim"]:
                raise TokenizerFileError(f"{config_path}: dim {config['dim']} != given encoder's dim {encoder.dim}")
        else:
            encoder = _load_encoder(config["encoder"], model_id, hub, device=device, dtype=dtype)
        if encoder.dim != config["dim"]:
            raise TokenizerFileError(
                f"{config_path}: centroid dim {config['dim']} != dim {encoder.dim} of the encoder it names"
            )
        if config.get("frame_rate") not in (None, encoder.frame_rate):
            raise TokenizerFileError(
                f"{config_path}: frame_rate {config['frame_rate']} != {encoder.frame_rate} Hz of the encoder"
            )
        return cls(encoder, centroids, dedup=config["dedup"] if dedup is None else dedup)


def _needs_weights(encoder: Any) -> bool:
    """A HuBERT model without a Hub id (or loaded from a local folder) is saved with the tokenizer."""
    return not encoder.model_id or os.path.isdir(encoder.model_id)


def _load_encoder(d: dict, model_id: str, hub: dict, **kwargs: Any) -> Encoder:
    if d.get("type") != "hubert":
        return encoder_from_dict(d)
    from transformers import HubertModel

    model = None
    if d.get("subfolder"):
        if os.path.isdir(model_id):
            model = HubertModel.from_pretrained(os.path.join(model_id, d["subfolder"]))
        else:
            model = HubertModel.from_pretrained(model_id, subfolder=d["subfolder"], revision=hub["revision"],
                                                cache_dir=hub["cache_dir"], token=hub["token"],
                                                local_files_only=hub["local_files_only"])
    return encoder_from_dict(d, model=model, **kwargs)


def make_config(
    centroids: np.ndarray, encoder: dict[str, Any], dedup: bool, frame_rate: float | None, sample_rate: int
) -> dict[str, Any]:
    """``config.json`` of a tokenizer with these centroids and this encoder description."""
    return {
        "format": "hf_slm.SpeechTokenizer",
        "format_version": FORMAT_VERSION,
        "n_units": int(centroids.shape[0]),
        "dim": int(centroids.shape[1]),
        "dedup": bool(dedup),
        "frame_rate": frame_rate,
        "sample_rate": sample_rate,
        "encoder": encoder,
    }


def write_files(directory: str | Path, config: dict[str, Any], centroids: np.ndarray) -> None:
    """Write ``config.json`` and ``model.safetensors`` (the centroids) into ``directory``."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    (directory / CONFIG_NAME).write_text(json.dumps(config, indent=2, sort_keys=True) + "\n")
    save_file({"centroids": np.ascontiguousarray(centroids, dtype=np.float32)}, str(directory / WEIGHTS_NAME))


_REQUIRED = {"format_version": int, "n_units": int, "dim": int, "dedup": bool, "encoder": dict}


def read_config(path: str | Path) -> dict[str, Any]:
    """Read and validate a tokenizer ``config.json``; errors name the file and the field."""
    try:
        config = json.loads(Path(path).read_text())
    except (OSError, json.JSONDecodeError) as e:
        raise TokenizerFileError(f"{path}: cannot read tokenizer config ({e})") from e
    for field, kind in _REQUIRED.items():
        if not isinstance(config.get(field), kind):
            raise TokenizerFileError(f"{path}: field {field!r} missing or not {kind.__name__}")
    if config["format_version"] > FORMAT_VERSION:
        raise TokenizerFileError(f"{path}: format_version {config['format_version']} is newer than this code "
                                 f"({FORMAT_VERSION}); upgrade hf_slm")
    if "type" not in config["encoder"]:
        raise TokenizerFileError(f"{path}: field 'encoder.type' missing")
    return config


def read_centroids(path: str | Path, config: dict[str, Any], config_path: str | Path) -> np.ndarray:
    """Centroids [K, dim] from ``model.safetensors``, checked against the config."""
    try:
        tensors = load_file(str(path))
    except Exception as e:
        raise TokenizerFileError(f"{path}: cannot read safetensors ({e})") from e
    if "centroids" not in tensors:
        raise TokenizerFileError(f"{path}: no 'centroids' tensor (has {sorted(tensors)})")
    centroids = tensors["centroids"]
    expected = (config["n_units"], config["dim"])
    if centroids.shape != expected:
        raise TokenizerFileError(
            f"{path}: centroids have shape {centroids.shape} but {config_path} says K={expected[0]}, "
            f"dim={expected[1]}"
        )
    return centroids


class _FrameReservoir:
    """A uniform sample of at most ``size`` frames from a stream (Algorithm R).

    Memory grows with the frames kept, up to ``size * dim * 4`` bytes (1.5 GB for 500k HuBERT frames).
    """

    def __init__(self, size: int, dim: int, seed: int):
        self.size = size
        self.chunks: list[np.ndarray] = [np.empty((0, dim), np.float32)]
        self.buffer: np.ndarray | None = None
        self.seen = 0
        self.rng = np.random.default_rng(seed)

    def add(self, feats: np.ndarray) -> None:
        n = len(feats)
        direct = max(0, min(n, self.size - self.seen))
        if direct:
            self.chunks.append(np.asarray(feats[:direct], dtype=np.float32))
        if direct < n:
            if self.buffer is None:
                self.buffer = np.concatenate(self.chunks)
                self.chunks = []
            positions = np.arange(self.seen + direct, self.seen + n)
            slots = self.rng.integers(0, positions + 1)
            keep = slots < self.size
            self.buffer[slots[keep]] = feats[direct:][keep]
        self.seen += n

    def add_all(self, feats_list: list[np.ndarray]) -> None:
        for feats in feats_list:
            self.add(feats)

    def frames(self) -> np.ndarray:
        return self.buffer if self.buffer is not None else np.concatenate(self.chunks)
