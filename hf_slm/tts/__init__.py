"""Stage 3: text generation and text-to-speech for the demo's synthetic spoken corpus."""

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
