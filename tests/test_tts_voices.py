import numpy as np
import pytest

from hf_slm.tts import BENCHMARK_VOICE, TRAIN_VOICE, EspeakVoice, HibariVoice, VoiceError, espeak_voices

SENTENCE = "Tom goes to the beach and finds a big shell near the waves."


def rms(wave: np.ndarray) -> float:
    return float(np.sqrt(np.mean(wave.astype(np.float64) ** 2)))


def test_espeak_speaks_at_22050_hz_with_a_plausible_duration():
    wave, sr = EspeakVoice().synthesize(SENTENCE)
    assert sr == 22050 and wave.dtype == np.float32 and wave.ndim == 1
    assert rms(wave) > 0.02 and np.abs(wave).max() <= 1.0
    seconds_per_word = len(wave) / sr / len(SENTENCE.split())
    assert 0.2 <= seconds_per_word <= 0.6


def test_espeak_is_deterministic_whatever_was_said_before():
    voice = EspeakVoice()
    first, _ = voice.synthesize(SENTENCE)
    EspeakVoice(BENCHMARK_VOICE).synthesize("Something else entirely, said by someone else.")
    again, _ = voice.synthesize(SENTENCE)
    np.testing.assert_array_equal(first, again)


def test_train_and_benchmark_voices_differ():
    train, bench = EspeakVoice(TRAIN_VOICE), EspeakVoice(BENCHMARK_VOICE)
    assert train.name == "espeak:en-us" and bench.name == "espeak:en-us+m3"
    a, _ = train.synthesize(SENTENCE)
    b, _ = bench.synthesize(SENTENCE)
    assert rms(b) > 0.02
    n = min(len(a), len(b))
    assert len(a) != len(b) or not np.allclose(a[:n], b[:n], atol=1e-3)
    assert 0.8 < len(a) / len(b) < 1.25  # same words, similar pace


def test_voice_and_variant_spellings_agree():
    assert EspeakVoice("en-us+m3").name == EspeakVoice("en-us", variant="m3").name
    assert "en-us" in espeak_voices() and "en" in espeak_voices()


def test_unknown_voice_or_variant_is_a_clear_error():
    with pytest.raises(VoiceError, match=r"unknown eSpeak NG voice 'xx-klingon'.*en-us"):
        EspeakVoice("xx-klingon")
    with pytest.raises(VoiceError, match=r"unknown eSpeak NG variant 'nobody'.*m3"):
        EspeakVoice("en-us", variant="nobody")


@pytest.fixture(scope="module")
def hibari():
    pytest.importorskip("hibari")
    try:
        return HibariVoice()
    except (FileNotFoundError, RuntimeError, ImportError) as err:  # bundled voice missing: never download it
        pytest.skip(f"Hibari's bundled voice does not load offline: {err}")


def test_hibari_bundled_voice_speaks_at_24_khz(hibari):
    wave, sr = hibari.synthesize(SENTENCE)
    assert sr == 24000 and wave.dtype == np.float32 and rms(wave) > 0.01
    assert 0.2 <= len(wave) / sr / len(SENTENCE.split()) <= 0.6
    np.testing.assert_array_equal(wave, hibari.synthesize(SENTENCE)[0])
    assert hibari.name == "hibari:heart"
