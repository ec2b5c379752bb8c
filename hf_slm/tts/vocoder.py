"""Units -> audio: a unit HiFi-GAN with its duration predictor (transformers' ``SeamlessM4TCodeHifiGan``), the
converter from the published TWIST checkpoint, and a Griffin-Lim "vocoder" for the demo's log-mel units.

**CodeHiFiGAN.** The TWIST vocoder for mHuBERT-25Hz units (``hifigan_lj_mhubert_base_25hz.pt`` + its JSON
config, a textlesslib/fairseq ``CodeGenerator`` trained on LJSpeech) has exactly the layers of transformers'
``SeamlessM4TCodeHifiGan`` once its language and speaker embeddings are given zero width: a unit embedding, a
two-conv duration predictor (log(1 + frames) per deduplicated unit) and a HiFi-GAN generator. So the vocoder
*is* a ``SeamlessM4TCodeHifiGan`` (``from_pretrained`` / ``save_pretrained`` / safetensors / ``push_to_hub``);
:func:`convert_twist_checkpoint` maps the checkpoint's names onto it and folds its weight norm.
:func:`vocode` turns units into a wave: durations predicted for deduplicated units, or given.

**Griffin-Lim.** The demo's tokenizer clusters normalised log-mel frames, so a unit's centroid *is* a (CMVN'd)
log-mel spectrum. :class:`GriffinLimVocoder` undoes the normalisation with band statistics measured on
reference speech, repeats each unit for its mean duration in that speech, and inverts the mel power
spectrogram (least-squares inverse of the encoder's mel filterbank, then librosa's Griffin-Lim). It is not a neural vocoder: the result is buzzy and only roughly
intelligible, but it lets one *listen* to what a model trained on log-mel units generates.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

TWIST_CHECKPOINT = "hifigan_lj_mhubert_base_25hz.pt"
TWIST_CONFIG = "hifigan_lj_mhubert_base_25hz_config.json"


class VocoderError(ValueError):
    """A vocoder checkpoint or config that cannot be used (the message names the file and the field)."""


def code_hifigan_config(
    n_units: int,
    embed_dim: int = 128,
    upsample_rates: Sequence[int] = (5, 4, 4, 2, 2),
    upsample_kernel_sizes: Sequence[int] = (11, 8, 8, 4, 4),
    upsample_initial_channel: int = 512,
    resblock_kernel_sizes: Sequence[int] = (3, 7, 11),
    resblock_dilation_sizes: Sequence[Sequence[int]] = ((1, 3, 5), (1, 3, 5), (1, 3, 5)),
    duration_kernel_size: int = 3,
    duration_dropout: float = 0.5,
    sampling_rate: int = 16000,
):
    """A ``SeamlessM4TConfig`` for a single-speaker unit HiFi-GAN over ``n_units`` units (no language or
    speaker embedding). The defaults are the speech-resynthesis / TWIST layout (320x upsampling, 16 kHz)."""
    from transformers import SeamlessM4TConfig

    return SeamlessM4TConfig(
        unit_hifi_gan_vocab_size=n_units, unit_embed_dim=embed_dim, lang_embed_dim=0, spkr_embed_dim=0,
        vocoder_num_langs=1, vocoder_num_spkrs=1, upsample_rates=list(upsample_rates),
        upsample_kernel_sizes=list(upsample_kernel_sizes), upsample_initial_channel=upsample_initial_channel,
        resblock_kernel_sizes=list(resblock_kernel_sizes),
        resblock_dilation_sizes=[list(d) for d in resblock_dilation_sizes],
        variance_predictor_kernel_size=duration_kernel_size, var_pred_dropout=duration_dropout,
        sampling_rate=sampling_rate, t2u_pad_token_id=n_units, leaky_relu_slope=0.1,
    )


def load_vocoder(path_or_id: str | Path, device: str | None = None, **kwargs: Any):
    """A saved unit vocoder (``SeamlessM4TCodeHifiGan.from_pretrained``: folder or Hub id), in eval mode."""
    from transformers import SeamlessM4TCodeHifiGan

    return SeamlessM4TCodeHifiGan.from_pretrained(str(path_or_id), **kwargs).to(device or "cpu").eval()


def vocoder_units(vocoder) -> int:
    """Number of units the vocoder embeds."""
    return int(vocoder.config.unit_hifi_gan_vocab_size)


@torch.no_grad()
def vocode(vocoder, units: Sequence[int] | np.ndarray, durations: Sequence[int] | np.ndarray | None = None) -> np.ndarray:
    """Float32 wave (at ``vocoder.config.sampling_rate``) of one unit sequence.

    Without ``durations`` the vocoder's duration predictor sets the frames of each (deduplicated) unit; with
    them, unit ``i`` lasts ``durations[i]`` frames (units as the tokenizer wrote them). Raises ValueError on
    units outside ``0..K-1`` (e.g. an EOS left in).
    """
    ids = torch.as_tensor(np.asarray(units, dtype=np.int64), device=vocoder.device).reshape(1, -1)
    k = vocoder_units(vocoder)
    if ids.numel() == 0:
        raise ValueError("no units to vocode")
    if int(ids.min()) < 0 or int(ids.max()) >= k:
        raise ValueError(f"units must be in 0..{k - 1} for this vocoder; got range {int(ids.min())}..{int(ids.max())}")
    hidden = vocoder.unit_embedding(ids).transpose(1, 2)  # [1, C, T]
    if durations is None:
        log_dur = vocoder.dur_predictor(hidden.transpose(1, 2))
        frames = torch.clamp(torch.round(torch.expm1(log_dur)).long(), min=1).view(-1)
    else:
        frames = torch.as_tensor(np.asarray(durations, dtype=np.int64), device=vocoder.device).view(-1)
        if frames.numel() != ids.numel() or int(frames.min()) < 1:
            raise ValueError(f"need one duration >= 1 per unit; got {frames.numel()} for {ids.numel()} units")
    hidden = torch.repeat_interleave(hidden, frames, dim=2)
    n = hidden.shape[-1]
    spkr = vocoder.speaker_embedding(torch.zeros(1, 1, dtype=torch.long, device=vocoder.device)).transpose(1, 2)
    lang = vocoder.language_embedding(torch.zeros(1, 1, dtype=torch.long, device=vocoder.device)).transpose(1, 2)
    hidden = torch.cat([lang.repeat(1, 1, n), hidden, spkr.repeat(1, 1, n)], dim=1)
    return vocoder.hifi_gan(hidden).reshape(-1).float().cpu().numpy()


class UnitVocoder:
    """A ``SeamlessM4TCodeHifiGan`` as a callable ``units -> wave`` with ``sample_rate`` and ``n_units``;
    ``from_pretrained`` / ``save_pretrained`` pass through to transformers (safetensors)."""

    def __init__(self, model) -> None:
        self.model = model.eval()

    @classmethod
    def from_pretrained(cls, path_or_id: str | Path, device: str | None = None, **kwargs: Any) -> UnitVocoder:
        return cls(load_vocoder(path_or_id, device=device, **kwargs))

    def save_pretrained(self, directory: str | Path, **kwargs: Any) -> None:
        self.model.save_pretrained(directory, **kwargs)

    @property
    def sample_rate(self) -> int:
        return int(self.model.config.sampling_rate)

    @property
    def n_units(self) -> int:
        return vocoder_units(self.model)

    def __call__(self, units: Sequence[int], durations: Sequence[int] | None = None) -> np.ndarray:
        return vocode(self.model, units, durations)


# -- TWIST / textlesslib checkpoint -> SeamlessM4TCodeHifiGan ------------------------------------------------
_RENAMES = (  # textlesslib CodeGenerator name prefix -> SeamlessM4TCodeHifiGan name prefix
    ("dict.", "unit_embedding."),
    ("dur_predictor.conv1.0.", "dur_predictor.conv1."),
    ("dur_predictor.conv2.0.", "dur_predictor.conv2."),
    ("dur_predictor.", "dur_predictor."),
    ("conv_pre.", "hifi_gan.conv_pre."),
    ("ups.", "hifi_gan.upsampler."),
    ("resblocks.", "hifi_gan.resblocks."),
    ("conv_post.", "hifi_gan.conv_post."),
)


def twist_config_to_hf(cfg: dict[str, Any], where: str = "config"):
    """The ``SeamlessM4TConfig`` of a textlesslib CodeHiFiGAN config; VocoderError where it does not map."""
    required = ("num_embeddings", "embedding_dim", "upsample_rates", "upsample_kernel_sizes",
                "upsample_initial_channel", "resblock_kernel_sizes", "resblock_dilation_sizes")
    missing = [k for k in required if k not in cfg]
    if missing:
        raise VocoderError(f"{where}: missing field(s) {missing}; is this a CodeHiFiGAN config?")
    for feature in ("multispkr", "multistyle", "f0", "embedder_params"):
        if cfg.get(feature):
            raise VocoderError(f"{where}: '{feature}' vocoders (speaker/style/F0 conditioning) are not supported")
    dur = cfg.get("dur_predictor_params")
    if not dur:
        raise VocoderError(f"{where}: no 'dur_predictor_params'; a vocoder for deduplicated units needs one")
    dim = cfg["embedding_dim"]
    if cfg.get("model_in_dim", dim) != dim or dur["encoder_embed_dim"] != dim or dur["var_pred_hidden_dim"] != dim:
        raise VocoderError(f"{where}: model_in_dim, encoder_embed_dim and var_pred_hidden_dim must equal "
                           f"embedding_dim={dim} to map onto SeamlessM4TCodeHifiGan")
    if dur["var_pred_kernel_size"] != 3:
        raise VocoderError(f"{where}: var_pred_kernel_size {dur['var_pred_kernel_size']} (only 3 maps: the second "
                           "duration conv has padding 1 in both implementations)")
    return code_hifigan_config(
        cfg["num_embeddings"], dim, cfg["upsample_rates"], cfg["upsample_kernel_sizes"],
        cfg["upsample_initial_channel"], cfg["resblock_kernel_sizes"], cfg["resblock_dilation_sizes"],
        dur["var_pred_kernel_size"], dur.get("var_pred_dropout", 0.5), int(cfg.get("sampling_rate", 16000)),
    )


def _fold_weight_norm(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Replace ``x.weight_g`` / ``x.weight_v`` pairs (torch's weight_norm, dim 0) by ``x.weight``."""
    out = {}
    for name, tensor in state.items():
        if name.endswith(".weight_g"):
            continue
        if name.endswith(".weight_v"):
            base = name[: -len("_v")]
            g = state[base + "_g"].float()
            v = tensor.float()
            norm = v.flatten(1).norm(dim=1).view(-1, *([1] * (v.dim() - 1)))
            out[base] = g * v / norm
        else:
            out[name] = tensor
    return out


def convert_twist_checkpoint(checkpoint: str | Path, config: str | Path, output_dir: str | Path) -> Path:
    """Convert a TWIST / textlesslib CodeHiFiGAN (``.pt`` with a ``generator`` state dict + JSON config) into a
    ``SeamlessM4TCodeHifiGan`` folder (config.json + model.safetensors). Nothing is unpickled but tensors."""
    from transformers import SeamlessM4TCodeHifiGan

    cfg_path, ckpt_path = Path(config), Path(checkpoint)
    hf_config = twist_config_to_hf(json.loads(cfg_path.read_text()), where=str(cfg_path))
    try:
        raw = torch.load(ckpt_path, map_location="cpu", weights_only=True)
    except Exception as err:  # an unreadable or non-tensor pickle: name the file
        raise VocoderError(f"{ckpt_path}: cannot read as a tensors-only checkpoint ({err})") from err
    state = raw.get("generator") if isinstance(raw, dict) else None
    if not isinstance(state, dict):
        raise VocoderError(f"{ckpt_path}: no 'generator' state dict (keys: {sorted(raw)[:8] if isinstance(raw, dict) else type(raw)})")
    renamed = {}
    for name, tensor in _fold_weight_norm(state).items():
        new = next((dst + name[len(src):] for src, dst in _RENAMES if name.startswith(src)), None)
        if new is None:
            raise VocoderError(f"{ckpt_path}: unexpected parameter {name!r} in the generator")
        renamed[new] = tensor
    model = SeamlessM4TCodeHifiGan(hf_config)
    own = model.state_dict()
    renamed.update({k: own[k] for k in ("speaker_embedding.weight", "language_embedding.weight")})  # zero-width
    missing = sorted(set(own) - set(renamed))
    unexpected = sorted(set(renamed) - set(own))
    if missing or unexpected:
        raise VocoderError(f"{ckpt_path}: parameters do not match the config {cfg_path.name}: missing {missing[:5]}, "
                           f"unexpected {unexpected[:5]}")
    shapes = [k for k in own if own[k].shape != renamed[k].shape]
    if shapes:
        raise VocoderError(f"{ckpt_path}: shape mismatch for {shapes[:5]} (checkpoint vs config {cfg_path.name})")
    model.load_state_dict(renamed, strict=True)
    out = Path(output_dir)
    model.eval().save_pretrained(out)
    (out / "README.md").write_text(
        "---\ntags: [speech, vocoder, hf-slm]\n---\n\n# Unit HiFi-GAN (converted)\n\n"
        f"`SeamlessM4TCodeHifiGan` converted by hf_slm from `{ckpt_path.name}` + `{cfg_path.name}` "
        f"({hf_config.unit_hifi_gan_vocab_size} units, {hf_config.sampling_rate} Hz). Load with "
        "`hf_slm.tts.vocoder.load_vocoder(path)`; `vocode(vocoder, units)`.\n")
    return out


# -- Griffin-Lim for log-mel units --------------------------------------------------------------------------
class GriffinLimVocoder:
    """Log-mel centroid spectra -> audio by Griffin-Lim (see the module docstring: not a neural vocoder).

    tokenizer: a ``SpeechTokenizer`` with a ``LogMelEncoder`` (log-mel or MFCC, with or without deltas/CMVN).
    reference: a few waves of speech (16 kHz) that set the band means/std that CMVN removed and each unit's mean
    duration in frames (units never seen there last the mean of all units).
    """

    def __init__(self, tokenizer, reference: Iterable[np.ndarray], n_iter: int = 32) -> None:
        from hf_slm.units.logmel import LogMelEncoder

        encoder = tokenizer.encoder
        if not isinstance(encoder, LogMelEncoder):
            raise VocoderError(f"Griffin-Lim needs a log-mel tokenizer; this one has {type(encoder).__name__}")
        self.tokenizer, self.n_iter = tokenizer, n_iter
        self.cfg = encoder.cfg
        self.n_fft = encoder.n_fft
        self._inverse_mel = np.linalg.pinv(encoder._mel.numpy().astype(np.float64))  # [n_mels, n_freq]
        raw = LogMelEncoder.from_dict({**encoder.to_dict(), "cmvn": False, "deltas": False, "n_mfcc": None})
        waves = [np.asarray(w, dtype=np.float32) for w in reference]
        if not waves:
            raise ValueError("Griffin-Lim needs at least one reference wave")
        feats = np.concatenate([raw.encode(w) for w in waves])
        self.mean, self.std = feats.mean(0), feats.std(0) + 1e-5
        self.durations = self._unit_durations(waves)

    def _unit_durations(self, waves: list[np.ndarray]) -> np.ndarray:
        k = self.tokenizer.n_units
        total, count = np.zeros(k), np.zeros(k)
        for w in waves:
            seq = self.tokenizer.encode(w)
            dur = seq.durations if seq.durations is not None else np.ones(len(seq.units))
            np.add.at(total, np.asarray(seq.units), dur)
            np.add.at(count, np.asarray(seq.units), 1)
        mean_all = total.sum() / max(count.sum(), 1)
        return np.where(count > 0, total / np.maximum(count, 1), mean_all)

    @property
    def sample_rate(self) -> int:
        return self.cfg.sample_rate

    @property
    def n_units(self) -> int:
        return self.tokenizer.n_units

    def log_mel(self, units: Sequence[int], durations: Sequence[int] | None = None) -> np.ndarray:
        """The de-normalised log-mel frames [T, n_mels] of a unit sequence."""
        import librosa

        units = np.asarray(units, dtype=np.int64)
        centroids = np.asarray(self.tokenizer.centroids, dtype=np.float64)
        base = self.cfg.n_mfcc or self.cfg.n_mels
        frames = centroids[units, :base]
        if self.cfg.n_mfcc:
            frames = librosa.feature.inverse.mfcc_to_mel(frames.T, n_mels=self.cfg.n_mels, ref=1.0).T
            frames = np.log(np.maximum(frames, 1e-10))
        if self.cfg.cmvn:
            frames = frames * self.std + self.mean
        reps = np.asarray(durations if durations is not None else np.maximum(1, np.round(self.durations[units])),
                          dtype=np.int64)
        return np.repeat(frames, reps, axis=0)

    def __call__(self, units: Sequence[int], durations: Sequence[int] | None = None) -> np.ndarray:
        """Float32 wave at ``sample_rate`` of one unit sequence."""
        import librosa

        if len(units) == 0:
            raise ValueError("no units to vocode")
        mel_power = np.maximum(np.exp(self.log_mel(units, durations)) - self.cfg.log_floor, 0.0)  # [T, n_mels]
        # the encoder's own filterbank, inverted by least squares (librosa's NNLS inversion is ~50x slower)
        power = np.maximum(mel_power @ self._inverse_mel, 0.0)  # [T, n_fft // 2 + 1]
        wave = librosa.griffinlim(np.sqrt(power).T, n_iter=self.n_iter, hop_length=self.cfg.hop_length,
                                  win_length=self.cfg.win_length, n_fft=self.n_fft, random_state=0)
        peak = float(np.abs(wave).max()) or 1.0
        return (0.9 * wave / peak).astype(np.float32)
