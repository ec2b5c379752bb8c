"""TTS backends behind one voice interface: transformers' TTS models, Kokoro, and the registry of all backends.

Every voice has ``.name`` (the ``speaker`` written to datasets, e.g. ``"vits:facebook/mms-tts-eng"``),
``.sample_rate``, ``.max_chars`` (longest text it is given; longer texts are split at sentence boundaries by
:class:`hf_slm.tts.pipeline.TTSPipeline`) and ``.synthesize(text) -> (float32 wave, sample_rate)``. Batching
backends also have ``.synthesize_batch(texts) -> list[(wave, sample_rate)]`` (one padded forward pass on the
GPU; each wave cut to its own length).

Backends and what they need:

==============  ==========================================================  ===================================
backend         model (``from_pretrained``: Hub id or local folder)          extra needs
==============  ==========================================================  ===================================
``espeak``      libespeak-ng (bundled by ``espeakng-loader``)                 none; the demo's voice
``hibari``      Hibari's bundled ``heart`` voice (ONNX)                       ``hibari-tts``
``fastspeech2`` ``espnet/fastspeech2_conformer_with_hifigan`` (LJSpeech)      ``g2p-en`` + NLTK data (see below)
``vits``        ``facebook/mms-tts-eng`` (any VITS / MMS-TTS checkpoint)      none
``bark``        ``suno/bark-small`` / ``suno/bark`` + speaker presets          none
``kokoro``      ``hexgrad/Kokoro-82M`` (local folder or Hub cache only)        ``kokoro`` package
==============  ==========================================================  ===================================

g2p-en (the phonemizer of FastSpeech2's tokenizer) needs NLTK's ``cmudict`` and
``averaged_perceptron_tagger_eng`` and, at import, tries to download them (and an older tagger) from the
network. :func:`check_g2p_data` looks for them first and raises :class:`BackendUnavailable` naming the
command that installs them; the import itself runs with ``nltk.download`` disabled, so it never reaches for
the network.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

G2P_NLTK_DATA = {"cmudict": "corpora/cmudict", "averaged_perceptron_tagger_eng": "taggers/averaged_perceptron_tagger_eng"}


class BackendUnavailable(RuntimeError):
    """A TTS backend cannot run here: a package, model weights or data files are missing (the message says
    which and how to get them)."""


def _device(device: str | None) -> str:
    import torch

    return device or ("cuda" if torch.cuda.is_available() else "cpu")


def _load(loader: Callable[..., Any], model: str, what: str, **kwargs: Any) -> Any:
    """``loader(model, **kwargs)``, with a missing / unreachable model turned into BackendUnavailable."""
    try:
        return loader(model, **kwargs)
    except OSError as err:
        raise BackendUnavailable(
            f"cannot load the {what} {model!r}: {err}. Give a local folder (save_pretrained) or a Hub id that is "
            "in the Hugging Face cache (offline machines: download it elsewhere and copy the cache)"
        ) from err


def _lengths_cut(waves: Any, lengths: Sequence[int]) -> list[np.ndarray]:
    array = waves.detach().float().cpu().numpy()
    return [np.ascontiguousarray(array[i, : int(n)], dtype=np.float32) for i, n in enumerate(lengths)]


class _TransformersVoice:
    """Shared parts of the transformers backends: device, batching, seeding."""

    backend = ""
    max_chars = 400

    def __init__(self, model: str, device: str | None, seed: int, batch_size: int) -> None:
        self.model_id = str(model)
        self.device = _device(device)
        self.seed = seed
        self.batch_size = batch_size
        self.name = f"{self.backend}:{self.model_id}"

    def synthesize(self, text: str) -> tuple[np.ndarray, int]:
        """Speak one text; returns (float32 mono wave, native sample rate)."""
        return self.synthesize_batch([text])[0]

    def synthesize_batch(self, texts: Sequence[str]) -> list[tuple[np.ndarray, int]]:
        """Speak several texts in padded batches of ``batch_size``; one (wave, rate) per text, in order."""
        import torch

        out: list[tuple[np.ndarray, int]] = []
        for start in range(0, len(texts), self.batch_size):
            batch = list(texts[start : start + self.batch_size])
            torch.manual_seed(self.seed)  # the stochastic models (VITS noise, Bark sampling) repeat per batch
            with torch.inference_mode():
                out.extend((w, self.sample_rate) for w in self._forward(batch))
        return out

    @property
    def sample_rate(self) -> int:
        raise NotImplementedError

    def _forward(self, texts: list[str]) -> list[np.ndarray]:
        raise NotImplementedError


# -- FastSpeech2 (+ HiFi-GAN) ------------------------------------------------------------------------------
def check_g2p_data() -> None:
    """Raise BackendUnavailable unless g2p-en and the NLTK data it needs are installed (nothing is downloaded)."""
    try:
        import nltk
    except ImportError as err:
        raise BackendUnavailable("the fastspeech2 backend needs g2p-en: pip install 'hf-slm[tts]'") from err
    missing = []
    for name, resource in G2P_NLTK_DATA.items():
        try:
            nltk.data.find(resource)
        except LookupError:
            missing.append(name)
    if missing:
        raise BackendUnavailable(
            f"g2p-en needs the NLTK data {missing}, not found in {list(nltk.data.path)}. On a machine with network: "
            f"python -m nltk.downloader {' '.join(missing)}  (or copy an nltk_data folder and set NLTK_DATA to it)"
        )


@contextlib.contextmanager
def _no_nltk_download() -> Iterator[None]:
    """g2p_en calls ``nltk.download`` at import for data it may not need; keep that off the network."""
    import nltk

    original = nltk.download
    nltk.download = lambda *args, **kwargs: False
    try:
        yield
    finally:
        nltk.download = original


def import_g2p_en() -> Any:
    """The ``g2p_en`` module, imported offline-safe after :func:`check_g2p_data`."""
    check_g2p_data()
    with _no_nltk_download():
        try:
            import g2p_en
        except ImportError as err:
            raise BackendUnavailable("the fastspeech2 backend needs g2p-en: pip install 'hf-slm[tts]'") from err
    return g2p_en


class FastSpeech2Voice(_TransformersVoice):
    """transformers' ``FastSpeech2ConformerWithHifiGan``: the paper's single-speaker (LJSpeech) setting, 22050 Hz.

    model: the joint model (Hub id or folder); tokenizer: the phoneme tokenizer (default: ``model`` when it holds
    a ``vocab.json``, else ``espnet/fastspeech2_conformer``). Deterministic. In a padded batch the conformer's
    convolutions see the padding of the shorter texts, so their durations can differ a little from an unbatched
    run: the pipeline batches texts sorted by length, which keeps the padding small.
    """

    backend = "fastspeech2"
    default_model = "espnet/fastspeech2_conformer_with_hifigan"
    default_tokenizer = "espnet/fastspeech2_conformer"

    def __init__(self, model: str | None = None, tokenizer: str | None = None, device: str | None = None,
                 batch_size: int = 16, revision: str | None = None) -> None:
        from transformers import FastSpeech2ConformerTokenizer, FastSpeech2ConformerWithHifiGan

        model = model or self.default_model
        super().__init__(model, device, seed=0, batch_size=batch_size)
        import_g2p_en()
        tokenizer = tokenizer or (model if (Path(model) / "vocab.json").is_file() else self.default_tokenizer)
        self.tokenizer = _load(FastSpeech2ConformerTokenizer.from_pretrained, tokenizer, "FastSpeech2 tokenizer")
        self.model = _load(FastSpeech2ConformerWithHifiGan.from_pretrained, model, "FastSpeech2 model",
                           revision=revision).to(self.device).eval()

    @property
    def sample_rate(self) -> int:
        return int(self.model.config.vocoder_config.sampling_rate)

    def _forward(self, texts: list[str]) -> list[np.ndarray]:
        enc = self.tokenizer(texts, return_tensors="pt", padding=True).to(self.device)
        out = self.model(enc["input_ids"], attention_mask=enc["attention_mask"], return_dict=True)
        hop = out.waveform.shape[1] // out.spectrogram.shape[1]
        frames = out.duration_outputs.clamp(min=0).sum(dim=1)
        return _lengths_cut(out.waveform, (frames * hop).tolist())


# -- VITS / MMS-TTS --------------------------------------------------------------------------------------
class VitsVoice(_TransformersVoice):
    """transformers' ``VitsModel`` (MMS-TTS, 16 kHz for ``facebook/mms-tts-eng``); ``seed`` fixes its noise."""

    backend = "vits"
    default_model = "facebook/mms-tts-eng"

    def __init__(self, model: str | None = None, device: str | None = None, seed: int = 0, batch_size: int = 16,
                 revision: str | None = None) -> None:
        from transformers import AutoTokenizer, VitsModel

        model = model or self.default_model
        super().__init__(model, device, seed, batch_size)
        self.tokenizer = _load(AutoTokenizer.from_pretrained, model, "VITS tokenizer", revision=revision)
        self.model = _load(VitsModel.from_pretrained, model, "VITS model", revision=revision).to(self.device).eval()

    @property
    def sample_rate(self) -> int:
        return int(self.model.config.sampling_rate)

    def _forward(self, texts: list[str]) -> list[np.ndarray]:
        enc = self.tokenizer(texts, return_tensors="pt", padding=True).to(self.device)
        if enc["input_ids"].shape[1] == 0:
            raise ValueError("no character of the text is in the VITS vocabulary")
        out = self.model(**enc)
        return _lengths_cut(out.waveform, out.sequence_lengths.tolist())


# -- Bark ---------------------------------------------------------------------------------------------------
class BarkVoice(_TransformersVoice):
    """transformers' ``BarkModel`` with a speaker preset (the paper's multi-speaker Story Cloze): 24 kHz.

    voice: a preset of the model's ``speaker_embeddings_path.json`` (``"v2/en_speaker_6"``) or a ``.npz`` file
    with ``semantic_prompt``, ``coarse_prompt`` and ``fine_prompt`` (None or "": no speaker prompt). Bark samples, so ``seed`` fixes the output
    of a batch. Texts longer than ~13 s of speech are cut by Bark itself: ``max_chars`` keeps them short.
    """

    backend = "bark"
    default_model = "suno/bark-small"
    max_chars = 220

    def __init__(self, model: str | None = None, voice: str | None = "v2/en_speaker_6", device: str | None = None,
                 seed: int = 0, batch_size: int = 8, revision: str | None = None, **generate_kwargs: Any) -> None:
        from transformers import BarkModel, BarkProcessor

        model = model or self.default_model
        super().__init__(model, device, seed, batch_size)
        self.processor = _load(BarkProcessor.from_pretrained, model, "Bark processor", revision=revision)
        self.model = _load(BarkModel.from_pretrained, model, "Bark model", revision=revision).to(self.device).eval()
        self.voice = voice
        self.generate_kwargs = {"do_sample": True, **generate_kwargs}
        self.name = f"bark:{voice}" if voice else f"bark:{self.model_id}"
        self.history = None
        if voice:
            try:
                self.history = self.processor("", voice_preset=voice)["history_prompt"]
            except (OSError, ValueError, KeyError) as err:
                presets = getattr(self.processor, "available_voice_presets", [])
                presets = list(presets() if callable(presets) else presets)
                raise BackendUnavailable(f"Bark voice preset {voice!r} not found for {model!r}: {err}; presets: "
                                         f"{presets[:8]}{' ...' if len(presets) > 8 else ''}") from err

    @property
    def sample_rate(self) -> int:
        gen = self.model.generation_config
        return int(getattr(gen, "sample_rate", None) or self.model.config.codec_config.sampling_rate)

    def _forward(self, texts: list[str]) -> list[np.ndarray]:
        semantic = self.model.generation_config.semantic_config
        max_length = int(semantic.get("max_input_semantic_length", 256))
        enc = self.processor(texts, max_length=max_length, truncation=True)
        history = None if self.history is None else {k: v.to(self.device) for k, v in self.history.items()}
        waves, lengths = self.model.generate(
            input_ids=enc["input_ids"].to(self.device), attention_mask=enc["attention_mask"].to(self.device),
            history_prompt=history, return_output_lengths=True, **self.generate_kwargs,
        )
        return _lengths_cut(waves, [int(n) for n in lengths])


# -- Kokoro ---------------------------------------------------------------------------------------------------
KOKORO_WEIGHTS = "kokoro-v1_0.pth"


def local_model_folder(model: str, files: Sequence[str], revision: str | None = None) -> Path:
    """A folder holding ``files`` of ``model``: the folder itself, or its snapshot in the Hub cache (never
    downloaded); BackendUnavailable naming what is missing otherwise."""
    folder = Path(model)
    if not folder.is_dir():
        from huggingface_hub import snapshot_download
        from huggingface_hub.errors import LocalEntryNotFoundError

        try:
            folder = Path(snapshot_download(model, revision=revision, local_files_only=True))
        except (LocalEntryNotFoundError, OSError, ValueError) as err:
            raise BackendUnavailable(f"weights of {model!r} are not on this machine (no such folder, not in the Hub "
                                     f"cache); download them where there is network, e.g. "
                                     f"`huggingface-cli download {model}`, and copy the cache or folder") from err
    missing = [f for f in files if not (folder / f).is_file()]
    if missing:
        raise BackendUnavailable(f"{folder} lacks {missing} of {model!r}")
    return folder


class KokoroVoice:
    """Kokoro-82M through the ``kokoro`` package (the authors' current TinyStories voice), 24 kHz.

    model: a local folder or a Hub id already in the cache, with ``config.json``, ``kokoro-v1_0.pth`` and
    ``voices/<voice>.pt``; nothing is downloaded. Kokoro's English G2P (misaki) needs its spaCy model installed.
    """

    backend = "kokoro"
    default_model = "hexgrad/Kokoro-82M"
    max_chars = 400
    sample_rate = 24000

    def __init__(self, voice: str = "af_heart", model: str | None = None, lang_code: str = "a",
                 device: str | None = None, revision: str | None = None) -> None:
        model = model or self.default_model
        folder = local_model_folder(model, ("config.json", KOKORO_WEIGHTS, f"voices/{voice}.pt"), revision)
        try:
            from kokoro import KModel, KPipeline
        except ImportError as err:
            raise BackendUnavailable("the kokoro backend needs the kokoro package: pip install kokoro") from err
        self.device = _device(device)
        self.model = KModel(repo_id=model, config=str(folder / "config.json"),
                            model=str(folder / KOKORO_WEIGHTS)).to(self.device).eval()
        self.pipeline = KPipeline(lang_code=lang_code, repo_id=model, model=self.model)
        self.voice_path = str(folder / "voices" / f"{voice}.pt")
        self.name = f"kokoro:{voice}"

    def synthesize(self, text: str) -> tuple[np.ndarray, int]:
        chunks = [r.audio.detach().float().cpu().reshape(-1).numpy() for r in self.pipeline(text, voice=self.voice_path)
                  if r.audio is not None]
        if not chunks:
            raise ValueError("Kokoro returned no audio")
        return np.concatenate(chunks).astype(np.float32), self.sample_rate


# -- registry ---------------------------------------------------------------------------------------------------
def _espeak(voice: str | None = None, **kwargs: Any):
    from .voices import EspeakVoice

    return EspeakVoice(voice or "en-us", **kwargs)


def _hibari(voice: str | None = None, **kwargs: Any):
    from .voices import HibariVoice

    if voice not in (None, HibariVoice.bundled_voice):
        raise BackendUnavailable(f"only Hibari's bundled voice {HibariVoice.bundled_voice!r} is available offline")
    return HibariVoice(**kwargs)


def _fastspeech2(voice: str | None = None, **kwargs: Any):
    if voice not in (None, "ljspeech"):
        raise ValueError(f"fastspeech2 is single-speaker (LJSpeech); got voice {voice!r}")
    return FastSpeech2Voice(**kwargs)


def _vits(voice: str | None = None, **kwargs: Any):
    return VitsVoice(model=voice or kwargs.pop("model", None), **kwargs)  # a VITS "voice" is its checkpoint


def _bark(voice: str | None = None, **kwargs: Any):
    return BarkVoice(voice="v2/en_speaker_6" if voice is None else voice, **kwargs)  # "": no speaker prompt


def _kokoro(voice: str | None = None, **kwargs: Any):
    return KokoroVoice(voice=voice or "af_heart", **kwargs)


BACKENDS: dict[str, Callable[..., Any]] = {
    "espeak": _espeak, "hibari": _hibari, "fastspeech2": _fastspeech2, "vits": _vits, "bark": _bark, "kokoro": _kokoro,
}


def load_voice(backend: str, voice: str | None = None, **kwargs: Any):
    """A voice of ``backend`` (see :data:`BACKENDS`). ``voice``: the eSpeak voice (``"en-us+m3"``), the Bark
    preset, the Kokoro voice, the VITS checkpoint; ``kwargs``: the backend's options (``model``, ``device``,
    ``seed``, ``batch_size``, ...)."""
    if backend not in BACKENDS:
        raise ValueError(f"unknown TTS backend {backend!r}; backends: {', '.join(BACKENDS)}")
    kwargs = {k: v for k, v in kwargs.items() if v is not None}
    return BACKENDS[backend](voice, **kwargs)

