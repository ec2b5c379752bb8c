"""Text normalisation, sentence splitting and the TTS pipeline's batching, resampling and failure counting."""

from __future__ import annotations

import numpy as np
import pytest

from hf_slm.tts.normalize import TextFrontEnd, normalize_text, split_text
from hf_slm.tts.pipeline import Failure, TTSPipeline


def test_numbers_abbreviations_currency_and_unicode_are_spelled_out():
    assert normalize_text("Dr. Smith paid $3.50 on May 2nd, 1999 — “twice”.") == (
        'doctor Smith paid three dollars fifty cents on May second, nineteen ninety-nine -- "twice".')
    assert normalize_text("Mr. Fox ate 1,234 apples, 2.5 pears and 50% of €20 at No. 7.") == (
        "mister Fox ate one thousand two hundred and thirty-four apples, two point five pears and fifty percent "
        "of twenty euros at number seven.")
    assert normalize_text("Zoë’s café") == "Zoe's cafe"


def test_long_texts_are_split_at_sentence_boundaries_without_losing_words():
    text = "One two three. Four five six! Seven, eight nine ten eleven twelve thirteen."
    chunks = split_text(text, 20)
    assert chunks == ["One two three.", "Four five six!", "Seven,", "eight nine ten", "eleven twelve", "thirteen."]
    assert " ".join(chunks).split() == text.split()
    assert split_text(text, 200) == [text]  # short enough: one chunk, sentences kept together
    assert all(len(c) <= 20 for c in split_text("x" * 50 + " y", 20))
    with pytest.raises(ValueError, match="max_chars"):
        split_text(text, 0)


class Beeper:
    """A fake batching backend at 8 kHz: 100 samples per character; fails on texts containing 'boom'."""

    name = "beeper"
    sample_rate = 8000
    max_chars = 30
    batch_size = 4

    def __init__(self):
        self.batches: list[list[str]] = []

    def synthesize(self, text):
        return self.synthesize_batch([text])[0]

    def synthesize_batch(self, texts):
        self.batches.append(list(texts))
        if any("boom" in t for t in texts):
            raise RuntimeError("backend exploded")
        return [(np.full(100 * len(t), 0.5, np.float32), self.sample_rate) for t in texts]


def test_pipeline_batches_chunks_resamples_once_and_counts_failures_by_reason():
    voice = Beeper()
    pipe = TTSPipeline(voice, sample_rate=16000, pause=0.0)
    texts = ["Hello there.", "This text is long. It has two sentences here.", "boom goes it", "...", "Bye 2."]
    out = pipe.speak(texts)
    assert len(out) == 5
    assert out[0].shape == (2 * 100 * len("Hello there."),)  # 8 -> 16 kHz once
    spoken = [c for batch in voice.batches for c in batch]
    assert "This text is long." in spoken and "It has two sentences here." in spoken  # split at the boundary
    assert out[1].shape == (2 * 100 * (len("This text is long.") + len("It has two sentences here.")),)
    assert "Bye two." in spoken  # normalised before synthesis
    assert isinstance(out[2], Failure) and out[2].reason == "backend_error:RuntimeError"
    assert isinstance(out[3], Failure) and out[3].reason == "empty_text"  # no letter or digit: nothing to say
    assert not isinstance(out[4], Failure)  # the failing batch was retried text by text
    assert dict(pipe.failures) == {"backend_error:RuntimeError": 1, "empty_text": 1}
    assert max(len(b) for b in voice.batches) <= voice.batch_size


def test_front_end_without_normalisation_keeps_digits():
    assert TextFrontEnd(normalize=False, max_chars=100).chunks("It is 5  o'clock.") == ["It is 5 o'clock."]
    assert TextFrontEnd().chunks("   ") == []
