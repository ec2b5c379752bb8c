"""The frame-feature encoder interface and its (de)serialisation."""

from __future__ import annotations

import importlib
from typing import Any, Protocol, runtime_checkable

import numpy as np


@runtime_checkable
class Encoder(Protocol):
    """What :class:`~hf_slm.units.tokenizer.SpeechTokenizer` needs from a feature encoder."""

    @property
    def sample_rate(self) -> int: ...

    @property
    def frame_rate(self) -> float: ...

    @property
    def dim(self) -> int: ...

    def n_frames(self, n_samples: int) -> int: ...

    def encode(self, wave: np.ndarray) -> np.ndarray: ...

    def encode_batch(self, waves: list[np.ndarray], *, as_tensors: bool = False) -> list[np.ndarray]:
        """Features of each wave; ``as_tensors``: float32 torch tensors on the encoder's device."""
        ...

    def to_dict(self) -> dict[str, Any]: ...


# type -> (module, class); imported on use, so that a log-mel tokenizer never imports HuBERT's modelling code
ENCODERS: dict[str, tuple[str, str]] = {"logmel": ("hf_slm.units.logmel", "LogMelEncoder"),
                                        "hubert": ("hf_slm.units.hubert", "HubertEncoder")}


def encoder_class(kind: str) -> type:
    """The encoder class of a ``to_dict()["type"]``."""
    if kind not in ENCODERS:
        raise ValueError(f"unknown encoder type {kind!r}; expected one of {sorted(ENCODERS)}")
    module, name = ENCODERS[kind]
    return getattr(importlib.import_module(module), name)


def encoder_from_dict(d: dict[str, Any], **kwargs: Any) -> Encoder:
    """Rebuild an encoder from its ``to_dict()``; ``kwargs`` go to the class's ``from_dict``."""
    return encoder_class(d.get("type")).from_dict(d, **kwargs)
