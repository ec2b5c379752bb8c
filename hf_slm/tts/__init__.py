"""Stage 3: text generation, text-to-speech (eSpeak NG, Hibari, FastSpeech2, VITS/MMS, Bark, Kokoro), an
intelligibility judge and unit vocoders."""

from .backends import BACKENDS, BackendUnavailable, load_voice
from .normalize import TextFrontEnd, normalize_text, split_text
from .pipeline import Failure, TTSPipeline
from .synthesize import synthesize_dataset, to_wav_bytes
from .textgen import (
    PARADIGMS,
    ClozeItem,
    MinimalPair,
    Story,
    make_minimal_pairs,
    make_stories,
    make_story_cloze,
    make_topic_cloze,
)
from .voices import (
    BENCHMARK_VOICE,
    TRAIN_VOICE,
    EspeakVoice,
    HibariVoice,
    VoiceError,
    espeak_variants,
    espeak_voices,
)

__all__ = [
    "BACKENDS",
    "BackendUnavailable",
    "Failure",
    "TTSPipeline",
    "TextFrontEnd",
    "load_voice",
    "normalize_text",
    "split_text",
    "BENCHMARK_VOICE",
    "PARADIGMS",
    "TRAIN_VOICE",
    "ClozeItem",
    "EspeakVoice",
    "HibariVoice",
    "MinimalPair",
    "Story",
    "VoiceError",
    "espeak_variants",
    "espeak_voices",
    "make_minimal_pairs",
    "make_stories",
    "make_story_cloze",
    "make_topic_cloze",
    "synthesize_dataset",
    "to_wav_bytes",
]
