"""HuBERT hidden-layer features (the paper's speech encoder: ``slprl/mhubert-base-25hz``, layer 11).

:class:`HubertEncoder` runs the model's own submodules (conv feature encoder, projection, positional
convolution, the first ``layer`` transformer layers) instead of ``HubertModel.forward`` for two reasons:
it stops after the requested layer, and it makes padded batches exact. The base models normalise the first
conv layer with a ``GroupNorm`` over time, so zero padding shifts its statistics and ``forward`` on a padded
batch differs from per-utterance encoding (what TWIST/textlesslib did when they fitted the k-means); here
that norm only sees each item's own samples. The remaining convolutions are "valid" ones, whose valid
outputs never read padding, and the transformer gets an attention mask. A test checks the result against
``HubertModel(...).hidden_states[layer]`` so a change in ``transformers`` cannot go unnoticed.
"""

from __future__ import annotations

import contextlib
import math
import os
from typing import Any

import numpy as np
import torch
from torch import nn
from transformers import HubertModel

try:
    from transformers.masking_utils import create_bidirectional_mask
except ImportError:  # transformers < 4.57
    create_bidirectional_mask = None


def _first(out: Any) -> torch.Tensor:
    return out[0] if isinstance(out, tuple) else out


def masked_group_norm(h: torch.Tensor, lengths: torch.Tensor, norm: nn.GroupNorm) -> torch.Tensor:
    """``norm(h)`` for h [B, C, T] with statistics over each item's first ``lengths[b]`` steps only.

    This tensor is the largest of the encoder (512 channels at 3.2 kHz), so the statistics come from two
    float32 reductions over the zero-masked input (sum and sum of squares) and the result from one affine
    pass; steps past ``lengths[b]`` hold values that the following "valid" convolutions never read.
    """
    b, c, t = h.shape
    per_group = c // norm.num_groups
    valid = torch.arange(t, device=h.device)[None, :] < lengths[:, None]
    x = h.masked_fill(~valid[:, None, :], 0).reshape(b, norm.num_groups, -1)
    count = (lengths.to(torch.float32) * per_group).clamp(min=1)[:, None]
    mean = x.sum(dim=-1, dtype=torch.float32) / count
    mean_sq = torch.linalg.vector_norm(x, dim=-1, dtype=torch.float32) ** 2 / count
    rstd = torch.rsqrt((mean_sq - mean * mean).clamp(min=0) + norm.eps)
    scale = rstd.repeat_interleave(per_group, dim=1)
    shift = (-mean * rstd).repeat_interleave(per_group, dim=1)
    if norm.affine:
        scale, shift = scale * norm.weight.float(), shift * norm.weight.float() + norm.bias.float()
    return torch.addcmul(shift[:, :, None], h, scale[:, :, None]).to(h.dtype)


class HubertEncoder:
    """Features of hidden layer ``layer`` of a ``transformers`` HuBERT model.

    Args:
        model: a ``HubertModel`` or a Hub id / local path to load one from.
        layer: transformer layer whose output is returned (1-based, as ``hidden_states[layer]``; 0 is the
            input of the first layer).
        device: defaults to CUDA when available; the model is moved there.
        dtype: cast the model to this dtype. When None the weights stay float32 and CUDA runs under bf16
            autocast.
        revision: Hub revision when ``model`` is an id.
        sample_rate: input rate the model expects (16 kHz for every public HuBERT).
        normalize: zero-mean/unit-variance normalise each waveform (False for mHuBERT-25Hz and HuBERT-base).
        model_id: record this id (and ``revision``) for a model passed as an object, so a saved tokenizer
            refers to it instead of storing the weights.
        batch_seconds: most padded audio (seconds) per forward pass in :meth:`encode_batch`; raise it on a
            large GPU.
    """

    def __init__(
        self,
        model: HubertModel | str,
        layer: int = 11,
        device: str | torch.device | None = None,
        dtype: torch.dtype | None = None,
        *,
        revision: str | None = None,
        sample_rate: int = 16000,
        normalize: bool = False,
        model_id: str | None = None,
        batch_seconds: float = 160.0,
    ):
        if isinstance(model, (str, os.PathLike)):
            model_id = str(model)
            model = HubertModel.from_pretrained(model_id, revision=revision)
            revision = revision or getattr(model.config, "_commit_hash", None)
        n_layers = model.config.num_hidden_layers
        if not 0 <= layer <= n_layers:
            raise ValueError(f"layer must be in 0..{n_layers} for this model, got {layer}")
        self.device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
        self.dtype = dtype
        self.model = model.to(self.device, dtype=dtype).eval() if dtype else model.to(self.device).eval()
        self.layer = layer
        self.model_id = model_id
        self.revision = revision
        self.normalize = normalize
        self._sample_rate = sample_rate
        self.batch_seconds = batch_seconds
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
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any], model: HubertModel | None = None, **kwargs: Any) -> HubertEncoder:
        """Rebuild from :meth:`to_dict`; loads ``d["model_id"]`` at ``d["revision"]`` unless ``model`` is given."""
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
            **kwargs,
        )

    def n_frames(self, n_samples: int) -> int:
        """Frames produced for ``n_samples`` samples, from the conv kernels and strides."""
        n = n_samples
        for kernel, stride in self._conv:
            n = max(0, (n - kernel) // stride + 1)
        return n

    def encode(self, wave: np.ndarray) -> np.ndarray:
        """Features [T, dim] (float32) of one mono wave at ``sample_rate``."""
        return self.encode_batch([wave])[0]

    def encode_batch(
        self, waves: list[np.ndarray], batch_seconds: float | None = None, as_tensors: bool = False
    ) -> list[np.ndarray] | list[torch.Tensor]:
        """Features of several waves, batched by length with at most ``batch_seconds`` (default: the
        encoder's) of padded audio per forward pass. Each item equals its :meth:`encode` (up to float
        rounding). ``as_tensors`` leaves them on the encoder's device as float32 tensors (the tokenizer assigns
        units there: no round trip through the host)."""
        empty = torch.empty((0, self.dim), device=self.device) if as_tensors else np.empty((0, self.dim), np.float32)
        out = [empty for _ in waves]
        todo = sorted((i for i, w in enumerate(waves) if self.n_frames(len(w)) > 0), key=lambda i: -len(waves[i]))
        budget = (batch_seconds or self.batch_seconds) * self.sample_rate
        while todo:
            longest = len(waves[todo[0]])
            size = max(1, min(len(todo), int(budget // longest)))
            batch, todo = todo[:size], todo[size:]
            for i, feats in zip(batch, self._encode_padded([waves[i] for i in batch], as_tensors), strict=True):
                out[i] = feats
        return out

    def _autocast(self) -> contextlib.AbstractContextManager:
        if self.device.type == "cuda" and self.dtype is None:
            return torch.autocast("cuda", dtype=torch.bfloat16)
        return contextlib.nullcontext()

    @torch.inference_mode()
    def _encode_padded(
        self, waves: list[np.ndarray], as_tensors: bool = False
    ) -> list[np.ndarray] | list[torch.Tensor]:
        lengths = [len(w) for w in waves]
        x = torch.zeros(len(waves), max(lengths), dtype=torch.float32)
        for row, w in zip(x, waves, strict=True):
            w = torch.as_tensor(np.asarray(w, dtype=np.float32))
            if self.normalize:
                w = (w - w.mean()) / torch.sqrt(w.var(unbiased=False) + 1e-7)
            row[: len(w)] = w
        x = x.to(self.device, dtype=self.dtype or torch.float32)
        with self._autocast():
            hidden = self.forward(x, torch.tensor(lengths, device=self.device))
        hidden = hidden.float() if as_tensors else hidden.float().cpu().numpy()
        return [hidden[b, : self.n_frames(n)] for b, n in enumerate(lengths)]

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
