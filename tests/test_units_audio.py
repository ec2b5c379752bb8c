import io

import numpy as np
import pytest
import soundfile as sf

from hf_slm.units.audio import AudioError, encode_wav_bytes, load_audio


def sine(seconds=1.0, sr=16000, freq=440.0):
    t = np.arange(int(seconds * sr)) / sr
    return (0.5 * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def test_path_bytes_dict_and_tuple_sources_agree(tmp_path):
    wave = sine()
    path = tmp_path / "a.wav"
    sf.write(path, wave, 16000, subtype="FLOAT")
    data = path.read_bytes()
    for source in (path, str(path), data, {"bytes": data, "path": "a.wav"}, {"bytes": None, "path": str(path)},
                   (wave, 16000)):
        out = load_audio(source)
        assert out.dtype == np.float32 and out.ndim == 1
        np.testing.assert_allclose(out, wave, atol=1e-6)


def test_wav_bytes_round_trip():
    wave = sine(0.5)
    out = load_audio(encode_wav_bytes(wave, 16000))
    np.testing.assert_allclose(out, wave, atol=1 / 2**15)


def test_stereo_is_downmixed():
    left, right = sine(freq=300), sine(freq=500)
    buffer = io.BytesIO()
    sf.write(buffer, np.stack([left, right], axis=1), 16000, format="WAV", subtype="FLOAT")
    np.testing.assert_allclose(load_audio(buffer.getvalue()), (left + right) / 2, atol=1e-6)


def test_resamples_22050_to_16000():
    wave = sine(2.0, sr=22050, freq=440)
    out = load_audio(encode_wav_bytes(wave, 22050), 16000)
    assert len(out) == 32000
    spectrum = np.abs(np.fft.rfft(out))
    assert abs(np.argmax(spectrum) * 16000 / len(out) - 440) < 1


def test_wrong_rate_without_resampling_names_rates_and_source(tmp_path):
    path = tmp_path / "fast.wav"
    sf.write(path, sine(sr=22050), 22050)
    with pytest.raises(AudioError, match=r"fast\.wav.*expected sample rate 16000 Hz, got 22050 Hz"):
        load_audio(path, 16000, resample=False)


def test_missing_file(tmp_path):
    with pytest.raises(AudioError, match=r"nope\.wav.*not found"):
        load_audio(tmp_path / "nope.wav")


def test_corrupt_bytes_name_the_source():
    with pytest.raises(AudioError, match=r"utt-7.*cannot decode"):
        load_audio(b"RIFF\x00\x00not really a wav file at all", name="utt-7")
    with pytest.raises(AudioError, match=r"broken\.wav.*cannot decode"):
        load_audio({"bytes": b"garbage" * 10, "path": "broken.wav"})


def test_empty_and_nan_audio():
    with pytest.raises(AudioError, match="empty"):
        load_audio(encode_wav_bytes(np.zeros(0, np.float32), 16000))
    with pytest.raises(AudioError, match="empty"):
        load_audio(b"")
    with pytest.raises(AudioError, match="NaN"):
        load_audio((np.full(100, np.nan, np.float32), 16000), name="x")
