"""TTS backends from tiny random configs saved to disk and loaded with from_pretrained; clear errors when a
backend's package, weights or data are missing."""

from __future__ import annotations

import sys

import _tts_helpers as helpers
import numpy as np
import pytest

from hf_slm.tts.backends import BackendUnavailable, KokoroVoice, check_g2p_data, load_voice
from hf_slm.tts.pipeline import TTSPipeline

SHORT, LONG = "The cat sat.", "A dog ran home quickly, and the cat sat on the mat all day long."


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture()
def nltk_data(tmp_path, monkeypatch):
    import nltk

    folder = helpers.make_nltk_data(tmp_path / "nltk_data")
    monkeypatch.setattr(nltk.data, "path", [str(folder)])
    return folder


def test_fastspeech2_from_a_saved_tiny_model(tmp_path, nltk_data):
    folder = helpers.tiny_fastspeech2(tmp_path / "fs2")
    voice = load_voice("fastspeech2", model=str(folder), batch_size=4)
    assert voice.sample_rate == 8000 and voice.name == f"fastspeech2:{folder}"
    (short, sr), (long, _) = voice.synthesize_batch([SHORT, LONG])
    assert sr == 8000 and short.dtype == np.float32
    assert len(long) > 2 * len(short) > 0  # more phonemes, more frames
    alone, _ = voice.synthesize(LONG)
    assert len(alone) == len(long)  # batching cuts each wave to its own length
    wave, rate = TTSPipeline(voice).synthesize(SHORT)
    assert rate == 16000 and len(wave) == 2 * len(voice.synthesize(SHORT)[0])  # resampled once, 8 -> 16 kHz


def test_g2p_data_missing_is_a_clear_error_and_nothing_is_downloaded(tmp_path, monkeypatch):
    import nltk

    monkeypatch.setattr(nltk.data, "path", [str(tmp_path)])
    monkeypatch.setattr(nltk, "download", lambda *a, **k: pytest.fail("tried to download NLTK data"))
    with pytest.raises(BackendUnavailable, match=r"cmudict.*averaged_perceptron_tagger_eng.*nltk.downloader"):
        check_g2p_data()
    with pytest.raises(BackendUnavailable, match="NLTK data"):
        load_voice("fastspeech2", model=str(tmp_path))


def test_vits_from_a_saved_tiny_model(tmp_path):
    folder = helpers.tiny_vits(tmp_path / "vits")
    voice = load_voice("vits", str(folder), seed=3)
    assert voice.sample_rate == 16000
    (short, _), (long, _) = voice.synthesize_batch([SHORT, LONG])
    assert len(long) > 3 * len(short) > 0
    again, _ = voice.synthesize_batch([SHORT, LONG])[0]
    np.testing.assert_array_equal(again, short)  # the seed fixes VITS's noise
    # digits are not in MMS's character vocabulary: the pipeline spells them out first
    assert TTSPipeline(voice).speak(["42"])[0].size > 0


def test_bark_with_speaker_presets_from_a_saved_tiny_model(tmp_path):
    folder = helpers.tiny_bark(tmp_path / "bark")
    one = load_voice("bark", "v2/en_speaker_0", model=str(folder), seed=0, semantic_min_new_tokens=8)
    two = load_voice("bark", "v2/en_speaker_1", model=str(folder), seed=0, semantic_min_new_tokens=8)
    assert one.sample_rate == 24000 and one.name == "bark:v2/en_speaker_0"
    (a, sr), (b, _) = one.synthesize_batch([SHORT, LONG])
    assert sr == 24000 and a.size > 0 and b.size > 0 and np.isfinite(a).all()
    c, _ = two.synthesize_batch([SHORT, LONG])[0]
    assert c.shape != a.shape or not np.allclose(c, a)  # another speaker prompt, other audio
    with pytest.raises(BackendUnavailable, match="preset 'v2/no_such_speaker'"):
        load_voice("bark", "v2/no_such_speaker", model=str(folder))


def test_kokoro_without_weights_or_package_is_a_clear_error(tmp_path, monkeypatch):
    with pytest.raises(BackendUnavailable, match="not on this machine"):
        KokoroVoice(model="hexgrad/not-in-the-cache")
    folder = tmp_path / "kokoro"
    (folder / "voices").mkdir(parents=True)
    with pytest.raises(BackendUnavailable, match=r"lacks \['config.json'"):
        KokoroVoice(model=str(folder))
    for name in ("config.json", "kokoro-v1_0.pth", "voices/af_heart.pt"):
        (folder / name).write_bytes(b"x")
    monkeypatch.setitem(sys.modules, "kokoro", None)  # not installed
    with pytest.raises(BackendUnavailable, match="pip install kokoro"):
        KokoroVoice(model=str(folder))


def test_unknown_backend_or_missing_model_is_a_clear_error(tmp_path):
    with pytest.raises(ValueError, match="unknown TTS backend 'festival'"):
        load_voice("festival")
    with pytest.raises(BackendUnavailable, match="cannot load the VITS"):
        load_voice("vits", str(tmp_path / "nowhere"))
