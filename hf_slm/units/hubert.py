"""HuBERT hidden-layer features (the paper's speech encoder: ``slprl/mhubert-base-25hz``, layer 11).

The defaults are those of the authors' release (``tiagoCuervo/slm_scaling``, ``slm_data``): features are
``hidden_states[11]`` of the model, the waveform is not normalised, the forward runs in float32, and audio
longer than 30 s is cut into 30 s chunks that are encoded one by one and whose frames are concatenated (a
1-hour file never goes through the model at once). bfloat16 autocast is an option (``dtype``) for speed on
GPUs; ``bench/bench_encode.py --hubert`` reports its agreement with float32 units.

:class:`HubertEncoder` runs the model's own submodules (conv feature encoder, projection, positional
convolution, the first ``layer`` transformer layers) instead of ``HubertModel.forward`` for two reasons:
it stops after the requested layer, and it makes padded batches exact. The base models normalise the first
conv layer with a ``GroupNorm`` over time, so zero padding shifts its statistics and ``forward`` on a padded
batch differs from per-utterance encoding (what TWIST/textlesslib did when they fitted the k-means); here
that norm only sees each item's own samples, computed by the model's own ``GroupNorm`` (two-pass
statistics: audio with a DC offset loses no precision). The remaining convolutions are "valid" ones, whose
valid outputs never read padding, and the transformer gets an attention mask. A test checks the result
against ``HubertModel(...).hidden_states[layer]`` so a change in ``transformers`` cannot go unnoticed.
"""

from __future__ import annotations

import contextlib
import math
import os
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F
from transformers import HubertModel

try:
    from transformers.masking_utils import create_bidirectional_mask
except ImportError:  # transformers < 4.57
    create_bidirectional_mask = None

_DTYPES = {"float32": torch.float32, "fp32": torch.float32, "bfloat16": torch.bfloat16, "bf16": torch.bfloat16,
           "float16": torch.float16, "fp16": torch.float16}


def _first(out: Any) -> torch.Tensor:
    return out[0] if isinstance(out, tuple) else out


def as_dtype(dtype: torch.dtype | str | None) -> torch.dtype:
    """``torch.float32`` (None), ``torch.bfloat16`` or ``torch.float16``, also from their names."""
    if dtype is None:
        return torch.float32
    if isinstance(dtype, str):
        if dtype not in _DTYPES:
            raise ValueError(f"unknown dtype {dtype!r}; expected one of {sorted(_DTYPES)}")
        return _DTYPES[dtype]
    if dtype not in (torch.float32, torch.bfloat16, torch.float16):
        raise ValueError(f"dtype must be float32, bfloat16 or float16, got {dtype}")
    return dtype


def masked_group_norm(h: torch.Tensor, lengths: torch.Tensor, norm: nn.GroupNorm) -> torch.Tensor:
    """``norm(h)`` for h [B, C, T] with statistics over each item's first ``lengths[b]`` steps only.

    Each item goes through ``norm`` itself (the model's module, so exactly what ``HubertModel`` computes on
    that item alone, with torch's two-pass statistics); steps past ``lengths[b]`` are zero, and the following
    "valid" convolutions never read them into a valid output.
    """
    out: torch.Tensor | None = None
    for b, n in enumerate(lengths.tolist()):
        item = norm(h[b : b + 1, :, :n])[0]
        if out is None:  # the norm's output dtype (float32 under autocast)
            out = h.new_zeros(h.shape, dtype=item.dtype)
        out[b, :, :n] = item
    return out if out is not None else h


class HubertEncoder:
    """Features of hidden layer ``layer`` of a ``transformers`` HuBERT model.

    Args:
        model: a ``HubertModel`` or a Hub id / local path to load one from.
        layer: transformer layer whose output is returned (1-based, as ``hidden_states[layer]``; 0 is the
            input of the first layer).
        device: defaults to CUDA when available; the model is moved there.
        dtype: precision of the forward: float32 (the default, as the release), or ``torch.bfloat16`` /
            ``"bf16"`` (or float16) for autocast on the device; the weights stay float32.
        revision: Hub revision when ``model`` is an id.
        sample_rate: input rate the model expects (16 kHz for every public HuBERT).
        normalize: zero-mean/unit-variance normalise each whole waveform before chunking, as the release's
            ``--hubert-normalize`` (False for mHuBERT-25Hz and HuBERT-base, and the release's setting).
        model_id: record this id (and ``revision``) for a model passed as an object, so a saved tokenizer
            refers to it instead of storing the weights.
        batch_seconds: most padded audio (seconds) per forward pass in :meth:`encode_batch`; raise it on a
            large GPU.
        chunk_seconds: audio longer than this is encoded in consecutive chunks of this length, each on its
            own, and their frames concatenated (30 s, as the release); None encodes whole waves.
    """

    def __init__(
        self,
        model: HubertModel | str,
        layer: int = 11,
        device: str | torch.device | None = None,
        dtype: torch.dtype | str | None = None,
        *,
        revision: str | None = None,
        sample_rate: int = 16000,
        normalize: bool = False,
        model_id: str | None = None,
        batch_seconds: float = 160.0,
        chunk_seconds: float | None = 30.0,
    ):
        if isinstance(model, (str, os.PathLike)):
            model_id = str(model)
            model = HubertModel.from_pretrained(model_id, revision=revision)
            revision = revision or getattr(model.config, "_commit_hash", None)
        n_layers = model.config.num_hidden_layers
        if not 0 <= layer <= n_layers:
            raise ValueError(f"layer must be in 0..{n_layers} for this model, got {layer}")
        if chunk_seconds is not None and chunk_seconds <= 0:
            raise ValueError(f"chunk_seconds must be > 0 or None, got {chunk_seconds}")
        self.device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
        self.dtype = as_dtype(dtype)
        self.model = model.to(self.device, dtype=torch.float32).eval()
        self.layer = layer
        self.model_id = model_id
        self.revision = revision
        self.normalize = normalize
        self._sample_rate = sample_rate
        self.batch_seconds = batch_seconds
        self.chunk_seconds = chunk_seconds
        self._conv = list(zip(model.config.conv_kernel, model.config.conv_stride, strict=True))

    @property
    def sample_rate(self) -> int:
        return self._sample_rate

    @property
    def hop_length(self) -> int:
        """Samples per frame: the product of the conv strides (640 for mHuBERT-25Hz, 320 for HuBERT-base)."""
        return math.prod(s for _, s in self._conv)

    @property
    def frame_rate(self) -> float:
        return self.sample_rate / self.hop_length

    @property
    def dim(self) -> int:
        return self.model.config.hidden_size

    @property
    def config(self) -> dict[str, Any]:
        return self.to_dict()

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable description (the weights are referred to by ``model_id`` + ``revision``)."""
        return {
            "type": "hubert",
            "model_id": self.model_id,
            "revision": self.revision,
            "layer": self.layer,
            "sample_rate": self.sample_rate,
            "normalize": self.normalize,
            "chunk_seconds": self.chunk_seconds,
            "dtype": str(self.dtype).removeprefix("torch."),
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any], model: HubertModel | None = None, **kwargs: Any) -> HubertEncoder:
        """Rebuild from :meth:`to_dict`; loads ``d["model_id"]`` at ``d["revision"]`` unless ``model`` is given.
        ``kwargs`` (``device``, ``dtype``, ``batch_seconds``) win over the dict; a dict without
        ``chunk_seconds`` gets the release's 30 s."""
        if model is None:
            if not d.get("model_id"):
                raise ValueError("HubertEncoder config has no model_id and no model was given")
            model = HubertModel.from_pretrained(d["model_id"], revision=d.get("revision"))
        return cls(
            model,
            layer=d["layer"],
            revision=d.get("revision"),
            sample_rate=d.get("sample_rate", 16000),
            normalize=d.get("normalize", False),
            model_id=d.get("model_id"),
            **{"chunk_seconds": d.get("chunk_seconds", 30.0), **kwargs,
               "dtype": kwargs.get("dtype") or d.get("dtype")},
        )

    @property
    def chunk_samples(self) -> int | None:
        """Samples per chunk of long audio (480,000 = 30 s at 16 kHz), or None."""
        return None if self.chunk_seconds is None else max(1, round(self.chunk_seconds * self.sample_rate))

    def conv_frames(self, n_samples: int) -> int:
        """Frames the conv feature encoder makes of ``n_samples`` samples (one chunk), from its kernels and
        strides; 0 below the receptive field (720 samples for mHuBERT-25Hz)."""
        n = n_samples
        for kernel, stride in self._conv:
            n = max(0, (n - kernel) // stride + 1)
        return n

    def chunks(self, n_samples: int) -> list[tuple[int, int]]:
        """``(start, end)`` of the chunks a wave of ``n_samples`` is encoded in; chunks too short for one
        frame are left out, as the release does."""
        size = self.chunk_samples or max(n_samples, 1)
        spans = [(start, min(start + size, n_samples)) for start in range(0, n_samples, size)]
        return [(a, b) for a, b in spans if self.conv_frames(b - a) > 0]

    def n_frames(self, n_samples: int) -> int:
        """Frames produced for ``n_samples`` samples: the sum over its chunks."""
        size = self.chunk_samples
        if size is None or n_samples <= size:
            return self.conv_frames(n_samples)
        whole, rest = divmod(n_samples, size)
        return whole * self.conv_frames(size) + self.conv_frames(rest)

    def encode(self, wave: np.ndarray) -> np.ndarray:
        """Features [T, dim] (float32) of one mono wave at ``sample_rate``."""
        return self.encode_batch([wave])[0]

    def encode_batch(
        self, waves: list[np.ndarray], batch_seconds: float | None = None, as_tensors: bool = False
    ) -> list[np.ndarray] | list[torch.Tensor]:
        """Features of several waves. Long waves are cut into chunks (``chunk_seconds``); the chunks of all
        waves are sorted by length and batched with at most ``batch_seconds`` (default: the encoder's) of
        padded audio per forward pass, so memory is bounded whatever the lengths. Each item equals its
        :meth:`encode` (up to float rounding). ``as_tensors`` leaves them on the encoder's device as float32
        tensors (the tokenizer assigns units there: no round trip through the host)."""
        waves = [self._normalized(w) if self.normalize else np.asarray(w, dtype=np.float32) for w in waves]
        pieces = [(i, a, b) for i, w in enumerate(waves) for a, b in self.chunks(len(w))]
        todo = sorted(range(len(pieces)), key=lambda j: -(pieces[j][2] - pieces[j][1]))
        budget = (batch_seconds or self.batch_seconds) * self.sample_rate
        feats: list[Any] = [None] * len(pieces)
        while todo:
            longest = pieces[todo[0]][2] - pieces[todo[0]][1]
            size = max(1, min(len(todo), int(budget // longest)))
            batch, todo = todo[:size], todo[size:]
            chunks = [waves[i][a:b] for i, a, b in (pieces[j] for j in batch)]
            for j, f in zip(batch, self._encode_padded(chunks, as_tensors), strict=True):
                feats[j] = f
        return [self._join([f for (i, _, _), f in zip(pieces, feats, strict=True) if i == k], as_tensors)
                for k in range(len(waves))]

    def _join(self, parts: list[Any], as_tensors: bool) -> np.ndarray | torch.Tensor:
        """One wave's chunk features, in order, as one [T, dim] array (or tensor)."""
        if as_tensors:
            return torch.cat(parts) if parts else torch.empty((0, self.dim), device=self.device)
        return np.concatenate(parts) if parts else np.empty((0, self.dim), np.float32)

    @staticmethod
    def _normalized(wave: np.ndarray) -> np.ndarray:
        """Zero mean, unit variance over the whole wave (``layer_norm`` without weights, eps 1e-5)."""
        w = torch.from_numpy(np.asarray(wave, dtype=np.float32))
        return F.layer_norm(w, w.shape).numpy()

    def _autocast(self) -> contextlib.AbstractContextManager:
        if self.dtype == torch.float32:
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=self.dtype)

    @torch.inference_mode()
    def _encode_padded(
        self, waves: list[np.ndarray], as_tensors: bool = False
    ) -> list[np.ndarray] | list[torch.Tensor]:
        lengths = [len(w) for w in waves]
        padded = np.zeros((len(waves), max(lengths)), dtype=np.float32)
        for row, w in zip(padded, waves, strict=True):
            row[: len(w)] = w
        x = torch.from_numpy(padded).to(self.device)
        with self._autocast():
            hidden = self.forward(x, torch.tensor(lengths, device=self.device))
        hidden = hidden.float() if as_tensors else hidden.float().cpu().numpy()
        return [hidden[b, : self.conv_frames(n)] for b, n in enumerate(lengths)]

    def forward(self, x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """Hidden states [B, T, dim] of layer ``layer`` for right-padded waves x [B, L] of ``lengths``."""
        model = self.model
        h = x[:, None]
        for i, conv_layer in enumerate(model.feature_extractor.conv_layers):
            kernel, stride = self._conv[i]
            lengths = torch.div(lengths - kernel, stride, rounding_mode="floor") + 1
            norm = getattr(conv_layer, "layer_norm", None)
            if isinstance(norm, nn.GroupNorm):
                h = conv_layer.activation(masked_group_norm(conv_layer.conv(h), lengths, norm))
            else:
                h = conv_layer(h)
        h = _first(model.feature_projection(h.transpose(1, 2)))
        mask = torch.arange(h.shape[1], device=h.device)[None, :] < lengths[:, None]
        return self._transformer(h, mask)

    def _transformer(self, h: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        encoder = self.model.encoder
        h = h.masked_fill(~mask[..., None], 0.0)
        h = h + encoder.pos_conv_embed(h)
        if not self.model.config.do_stable_layer_norm:
            h = encoder.layer_norm(h)
        attention_mask = self._attention_mask(h, mask)
        for layer in encoder.layers[: self.layer]:
            h = _first(layer(h, attention_mask=attention_mask))
        return h

    def _attention_mask(self, h: torch.Tensor, mask: torch.Tensor) -> Any:
        if bool(mask.all()):
            return None
        if create_bidirectional_mask is not None:
            return create_bidirectional_mask(config=self.model.config, inputs_embeds=h, attention_mask=mask)
        additive = torch.zeros(mask.shape, dtype=h.dtype, device=h.device)
        additive = additive.masked_fill(~mask, torch.finfo(h.dtype).min)
        return additive[:, None, None, :]
