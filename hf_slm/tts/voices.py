"""Text-to-speech voices: eSpeak NG (through its C API with ctypes) and Hibari (bundled voice only).

Both voices have ``.name`` (a speaker id such as ``"espeak:en-us"``), ``.sample_rate`` and
``.synthesize(text) -> (wave float32 in [-1, 1], sample_rate)``.

eSpeak NG keeps global state inside the C library and is NOT thread-safe. This module holds one
library handle per process, created lazily on first use (a worker process gets its own), and
serialises every call with a lock. Each utterance starts from a freshly loaded library and
``srand(0)``: libespeak-ng carries synthesis state (pitch flutter, glottal phase) from one utterance
to the next, so otherwise the samples of a text would depend on what the process said before (the
reload costs ~4 ms). Do not load libespeak-ng elsewhere in the same process: the reload would then
not reset it (and would terminate the other user's session).

Speed measured on one core of the 2-core dev VM, 40 five-sentence stories (~41 words, ~12 s each),
two runs: ``espeak:en-us`` 650-740x real time (0.28 s of speech per word at rate 175),
``espeak:en-us+m3`` 700-790x, ``espeak:en`` 760-780x, ``hibari:heart`` 130x (0.34 s per word). With resampling to 16 kHz and WAV
encoding, ``synthesize_dataset`` renders an eSpeak story in ~25 ms (~450x real time per process).

Default speakers: training audio ``en-us``, benchmark audio ``en-us+m3`` (another male eSpeak speaker:
higher pitch range, formants shifted 3-5 %, different stress shaping; same accent and phonemes). Mean
DTW distance per frame between two voices saying the same four sentences, on 40-band log-mel frames
(16 kHz, 25 ms / 10 ms) with per-utterance CMVN: ``en-us`` vs ``+m3`` 0.94; vs ``+m6`` 0.66 (closest
variant), ``en-us`` at pitch 70 0.85, British ``en`` 1.23, ``+f1``..``+f5`` 1.9-2.5; two different
sentences of ``en-us`` 3.39. So ``+m3`` is a clearly different speaker that stays well inside the
between-sentence spread; ``+m6`` is the easier fallback, ``en`` or a female variant harder settings.
"""

from __future__ import annotations

import _ctypes
import ctypes
import os
import threading
import warnings
from dataclasses import dataclass, field

import numpy as np

ESPEAK_SAMPLE_RATE = 22050
TRAIN_VOICE = "en-us"
BENCHMARK_VOICE = "en-us+m3"
HIBARI_SAMPLE_RATE = 24000

# espeak_AUDIO_OUTPUT, espeak_PARAMETER, espeak_POSITION_TYPE and flag values from speak_lib.h.
_AUDIO_OUTPUT_SYNCHRONOUS = 2
_PARAM_RATE = 1
_PARAM_PITCH = 3
_POS_CHARACTER = 1
_CHARS_UTF8 = 1
_EE_OK = 0
_INIT_DONT_EXIT = 0x8000

_SynthCallback = ctypes.CFUNCTYPE(
    ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.c_void_p
)


class _EspeakVoiceStruct(ctypes.Structure):
    _fields_ = [
        ("name", ctypes.c_char_p),
        ("languages", ctypes.c_char_p),
        ("identifier", ctypes.c_char_p),
        ("gender", ctypes.c_ubyte),
        ("age", ctypes.c_ubyte),
        ("variant", ctypes.c_ubyte),
        ("xx1", ctypes.c_ubyte),
        ("score", ctypes.c_int),
        ("spare", ctypes.c_void_p),
    ]


class VoiceError(ValueError):
    """An unknown or unusable TTS voice."""


class _Espeak:
    """The per-process libespeak-ng handle (see the module docstring)."""

    def __init__(self) -> None:
        import espeakng_loader

        self._lib_path = espeakng_loader.get_library_path()
        self._data_path = espeakng_loader.get_data_path().encode()
        self._libc = ctypes.CDLL(None)
        self.lock = threading.RLock()
        self._chunks: list[np.ndarray] = []
        self._callback = _SynthCallback(self._collect)  # kept referenced: C holds the pointer
        self.lib: ctypes.CDLL | None = None
        self.sample_rate = self._load()

    def _load(self) -> int:
        """dlopen + espeak_Initialize; returns the library's sample rate."""
        self.lib = ctypes.CDLL(self._lib_path)
        _declare(self.lib)
        rate = self.lib.espeak_Initialize(_AUDIO_OUTPUT_SYNCHRONOUS, 0, self._data_path, _INIT_DONT_EXIT)
        if rate <= 0:
            raise RuntimeError(f"espeak_Initialize failed ({rate}) with data path {self._data_path.decode()}")
        self.lib.espeak_SetSynthCallback(self._callback)
        return int(rate)

    def _reload(self) -> None:
        """Fresh library state: libespeak-ng keeps static synthesis state (pitch flutter index, glottal
        phase) across utterances, so without this the audio of a text depends on what was said before."""
        self.lib.espeak_Terminate()
        _ctypes.dlclose(self.lib._handle)
        shared = _is_loaded(self._lib_path)
        self._load()
        if shared:
            warnings.warn("libespeak-ng is loaded elsewhere in this process: its state cannot be reset, so "
                          "eSpeak audio will depend on what was synthesized before", stacklevel=4)

    def _collect(self, wav, n: int, events) -> int:
        if wav and n > 0:
            self._chunks.append(np.ctypeslib.as_array(wav, shape=(n,)).copy())
        return 0  # 0 = continue synthesis

    def voices(self) -> list[tuple[str, str]]:
        """(identifier, name) of the installed language voices, e.g. ("gmw/en-US", "English (America)")."""
        with self.lock:
            array = self.lib.espeak_ListVoices(None)
            out, i = [], 0
            while array[i]:
                voice = array[i].contents
                out.append((voice.identifier.decode(), voice.name.decode()))
                i += 1
        return out

    def set_voice(self, name: str) -> bool:
        return self.lib.espeak_SetVoiceByName(name.encode()) == _EE_OK

    def synthesize(self, voice: str, rate: int, pitch: int | None, text: str) -> np.ndarray:
        """int16 samples of ``text`` spoken by ``voice``, from a fresh library state and ``srand(0)``, so
        the same call always gives the same samples; raises VoiceError for an unknown voice."""
        with self.lock:
            self._reload()
            if not self.set_voice(voice):
                raise VoiceError(_unknown_voice_message(voice))
            self.lib.espeak_SetParameter(_PARAM_RATE, rate, 0)
            if pitch is not None:
                self.lib.espeak_SetParameter(_PARAM_PITCH, pitch, 0)
            data = text.encode("utf-8") + b"\0"
            self._chunks = []
            self._libc.srand(0)  # espeak draws noise from the C library's rand()
            err = self.lib.espeak_Synth(data, len(data), 0, _POS_CHARACTER, 0, _CHARS_UTF8, None, None)
            self.lib.espeak_Synchronize()
            chunks, self._chunks = self._chunks, []
        if err != _EE_OK:
            raise RuntimeError(f"espeak_Synth failed with error {err} for text {text[:60]!r}")
        return np.concatenate(chunks) if chunks else np.zeros(0, np.int16)


def _is_loaded(path: str) -> bool:
    """Whether the shared library at ``path`` is still mapped in this process (dlopen RTLD_NOLOAD)."""
    try:
        handle = ctypes.CDLL(path, mode=os.RTLD_NOLOAD | os.RTLD_LAZY)
    except OSError:
        return False
    _ctypes.dlclose(handle._handle)
    return True


def _declare(lib: ctypes.CDLL) -> None:
    """ctypes signatures of the libespeak-ng functions used here (speak_lib.h)."""
    lib.espeak_Initialize.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_char_p, ctypes.c_int]
    lib.espeak_Initialize.restype = ctypes.c_int
    lib.espeak_SetSynthCallback.argtypes = [_SynthCallback]
    lib.espeak_SetSynthCallback.restype = None
    lib.espeak_SetVoiceByName.argtypes = [ctypes.c_char_p]
    lib.espeak_SetVoiceByName.restype = ctypes.c_int
    lib.espeak_SetParameter.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int]
    lib.espeak_SetParameter.restype = ctypes.c_int
    lib.espeak_Synth.argtypes = [
        ctypes.c_void_p, ctypes.c_size_t, ctypes.c_uint, ctypes.c_int, ctypes.c_uint,
        ctypes.c_uint, ctypes.POINTER(ctypes.c_uint), ctypes.c_void_p,
    ]
    lib.espeak_Synth.restype = ctypes.c_int
    lib.espeak_Synchronize.argtypes = []
    lib.espeak_Synchronize.restype = ctypes.c_int
    lib.espeak_Terminate.argtypes = []
    lib.espeak_Terminate.restype = ctypes.c_int
    lib.espeak_ListVoices.argtypes = [ctypes.c_void_p]
    lib.espeak_ListVoices.restype = ctypes.POINTER(ctypes.POINTER(_EspeakVoiceStruct))


_ESPEAK: _Espeak | None = None
_ESPEAK_PID: int | None = None


def _espeak() -> _Espeak:
    """The libespeak-ng handle of this process, initialised on first use. A forked child keeps the
    inherited library (reloaded before each utterance anyway) but gets a fresh lock."""
    global _ESPEAK, _ESPEAK_PID
    if _ESPEAK is None:
        _ESPEAK = _Espeak()
    elif _ESPEAK_PID != os.getpid():
        _ESPEAK.lock = threading.RLock()
    _ESPEAK_PID = os.getpid()
    return _ESPEAK


def espeak_voices() -> list[str]:
    """Names accepted as ``EspeakVoice(voice=...)``: the language voices shipped with ``espeakng_loader``
    (lower-case identifiers without their family folder, e.g. ``"en-us"``, ``"en-gb-x-rp"``, ``"en"``)."""
    return sorted({ident.rsplit("/", 1)[-1].lower() for ident, _ in _espeak().voices()})


def espeak_variants() -> list[str]:
    """Names of the voice variants usable as ``EspeakVoice(variant=...)`` (e.g. ``"m3"``, ``"f3"``)."""
    import espeakng_loader

    folder = os.path.join(espeakng_loader.get_data_path(), "voices", "!v")
    return sorted(os.listdir(folder)) if os.path.isdir(folder) else []


def _unknown_voice_message(voice: str) -> str:
    english = [n for n in espeak_voices() if n.startswith("en")]
    return (f"unknown eSpeak NG voice {voice!r}; English voices: {', '.join(english)} "
            f"(all voices: espeak_voices(); variants such as 'm3', 'f3': espeak_variants())")


@dataclass
class EspeakVoice:
    """An eSpeak NG voice driven through libespeak-ng (22050 Hz).

    voice: a language voice from ``espeak_voices()`` (``"en-us"``, ``"en"`` = British, ``"en-gb-x-rp"``,
    ...), optionally with its variant as ``"en-us+m3"``; variant: a speaker variant from
    ``espeak_variants()`` (``"m3"``, ``"f3"``, ...), used as ``voice+variant``; rate: words per minute
    (80..450); pitch: base pitch 0..100 (None keeps the voice's default). Raises VoiceError on
    construction for an unknown voice or variant. The same text always gives the same samples.
    """

    voice: str = "en-us"
    rate: int = 175
    pitch: int | None = None
    variant: str | None = None
    name: str = field(init=False)

    def __post_init__(self) -> None:
        if "+" in self.voice and self.variant is None:
            self.voice, self.variant = self.voice.split("+", 1)
        self.name = "espeak:" + self._full_voice()
        if self.variant is not None and self.variant not in espeak_variants():
            raise VoiceError(f"unknown eSpeak NG variant {self.variant!r}; variants: "
                             f"{', '.join(espeak_variants())}")
        engine = _espeak()
        with engine.lock:
            if not engine.set_voice(self._full_voice()):
                raise VoiceError(_unknown_voice_message(self._full_voice()))

    def _full_voice(self) -> str:
        return f"{self.voice}+{self.variant}" if self.variant else self.voice

    @property
    def sample_rate(self) -> int:
        return _espeak().sample_rate

    def synthesize(self, text: str) -> tuple[np.ndarray, int]:
        """Speak ``text``; returns (float32 mono wave in [-1, 1], 22050)."""
        engine = _espeak()
        samples = engine.synthesize(self._full_voice(), self.rate, self.pitch, text)
        return samples.astype(np.float32) / 32768.0, engine.sample_rate


class HibariVoice:
    """Hibari's bundled voice ``heart`` (American English, female, 24 kHz); never downloads anything.

    seed fixes Hibari's noise component, so the same text always gives the same audio.
    """

    bundled_voice = "heart"

    def __init__(self, seed: int = 0, speed: float = 1.0) -> None:
        from hibari import Hibari
        from hibari.voices import voice_path

        path = voice_path(self.bundled_voice, download_missing=False)
        self._tts = Hibari(voice=self.bundled_voice, model=path, threads=1)
        self.seed = seed
        self.speed = speed
        self.name = f"hibari:{self.bundled_voice}"

    def __getstate__(self) -> dict:
        return {"seed": self.seed, "speed": self.speed}  # the ONNX session is rebuilt, not pickled

    def __setstate__(self, state: dict) -> None:
        self.__init__(**state)

    @property
    def sample_rate(self) -> int:
        return HIBARI_SAMPLE_RATE

    def synthesize(self, text: str) -> tuple[np.ndarray, int]:
        """Speak ``text``; returns (float32 mono wave, 24000)."""
        wave = self._tts(text, speed=self.speed, seed=self.seed)
        return np.asarray(wave, dtype=np.float32), HIBARI_SAMPLE_RATE
