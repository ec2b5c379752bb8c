import json

import numpy as np
import pytest
import torch
from safetensors.numpy import save_file
from sklearn.cluster import KMeans
from transformers import HubertConfig, HubertModel

from hf_slm.units import (
    AudioError,
    HubertEncoder,
    LogMelEncoder,
    SpeechTokenizer,
    TokenizerFileError,
    assign,
    dedup,
)
from hf_slm.units.kmeans import fit_kmeans
from hf_slm.units.tokenizer import _FrameReservoir


def tiny_hubert():
    torch.manual_seed(0)
    config = HubertConfig(
        hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64,
        conv_dim=(16,) * 8, conv_stride=(5, 2, 2, 2, 2, 2, 2, 2), conv_kernel=(10, 3, 3, 3, 3, 2, 2, 2),
        num_conv_pos_embeddings=16, num_conv_pos_embedding_groups=4,
    )
    return HubertModel(config).eval()


def speechlike(seconds, seed=0, sr=16000):
    """Piecewise-constant tones with noise: runs of similar frames, like phones."""
    rng = np.random.default_rng(seed)
    n = int(seconds * sr)
    segments = np.repeat(rng.uniform(150, 3000, size=n // 2000 + 1), 2000)[:n]
    phase = 2 * np.pi * np.cumsum(segments) / sr
    return (0.3 * np.sin(phase) + 0.02 * rng.standard_normal(n)).astype(np.float32)


@pytest.fixture(scope="module")
def logmel_tokenizer():
    waves = [speechlike(2.0, seed=i) for i in range(6)]
    return SpeechTokenizer.fit(LogMelEncoder(), waves, n_units=16, seed=0, n_init=1, max_iter=20)


def test_dedup_runs_and_durations():
    rng = np.random.default_rng(0)
    for _ in range(20):
        units = rng.integers(0, 4, size=rng.integers(0, 200)).astype(np.uint16)
        kept, durations = dedup(units)
        assert durations.sum() == len(units)
        assert not np.any(kept[1:] == kept[:-1])
        np.testing.assert_array_equal(np.repeat(kept, durations), units)
    kept, durations = dedup(np.array([3, 3, 3, 1, 1, 3]))
    assert kept.tolist() == [3, 1, 3] and durations.tolist() == [3, 2, 1]


def test_assign_equals_sklearn_predict():
    rng = np.random.default_rng(0)
    features = (rng.standard_normal((3000, 24)) + rng.integers(0, 5, size=(3000, 1)) * 3).astype(np.float32)
    km = KMeans(n_clusters=20, n_init=1, random_state=0).fit(features)
    expected = km.predict(features)
    np.testing.assert_array_equal(assign(features, km.cluster_centers_, chunk_size=700), expected)
    out = assign(torch.from_numpy(features), torch.from_numpy(km.cluster_centers_.astype(np.float32)))
    assert isinstance(out, torch.Tensor)
    np.testing.assert_array_equal(out.numpy(), expected)


def test_fit_kmeans_shapes_and_errors():
    features = np.random.default_rng(1).standard_normal((500, 8)).astype(np.float32)
    assert fit_kmeans(features, 10, n_init=1, max_iter=10).shape == (10, 8)
    with pytest.raises(ValueError, match="at least"):
        fit_kmeans(features[:5], 10)


def test_frame_reservoir_is_a_uniform_sample():
    reservoir = _FrameReservoir(size=200, dim=1, seed=0)
    stream = np.arange(5000, dtype=np.float32)[:, None]
    for start in range(0, 5000, 37):
        reservoir.add(stream[start : start + 37])
    sample = reservoir.frames()[:, 0]
    assert len(sample) == 200 == len(np.unique(sample))
    assert abs(sample.mean() - 2500) < 300


def test_fit_subsamples_frames():
    tok = SpeechTokenizer.fit(LogMelEncoder(), [speechlike(1.0, seed=i) for i in range(4)], n_units=5,
                              max_frames=40, n_init=1, max_iter=5)
    assert tok.centroids.shape == (5, 40)


def test_units_follow_the_encoder_frame_rate(logmel_tokenizer):
    tok = logmel_tokenizer
    assert tok.frame_rate == 25 and tok.n_units == 16 and tok.sample_rate == 16000
    wave = speechlike(3.3, seed=9)
    seq = tok.encode(wave)
    assert seq.n_frames == tok.encoder.n_frames(len(wave)) == len(tok.encoder.encode(wave))
    assert abs(seq.n_frames - 3.3 * 25) <= 1
    assert seq.units.dtype == np.uint16 and seq.durations.dtype == np.uint32
    assert seq.durations.sum() == seq.n_frames
    assert not np.any(seq.units[1:] == seq.units[:-1])
    assert len(seq.units) < seq.n_frames  # tone segments give repeated frames
    assert seq.units.max() < tok.n_units


def test_encode_resamples_other_rates(logmel_tokenizer):
    seq = logmel_tokenizer.encode(speechlike(1.0, sr=8000), sample_rate=8000)
    assert seq.n_frames == 25


def test_no_dedup_keeps_frames(logmel_tokenizer):
    tok = SpeechTokenizer(logmel_tokenizer.encoder, logmel_tokenizer.centroids, dedup=False)
    seq = tok.encode(speechlike(1.0))
    assert seq.durations is None and len(seq.units) == seq.n_frames == 25


def test_logmel_save_load_round_trip(logmel_tokenizer, tmp_path):
    logmel_tokenizer.save_pretrained(tmp_path / "tok")
    config = json.loads((tmp_path / "tok" / "config.json").read_text())
    assert config["encoder"]["type"] == "logmel" and config["n_units"] == 16 and config["dedup"] is True
    loaded = SpeechTokenizer.from_pretrained(tmp_path / "tok")
    waves = [speechlike(s, seed=20 + i) for i, s in enumerate([1.0, 2.5, 0.3])]
    for a, b in zip(logmel_tokenizer.encode_batch(waves), loaded.encode_batch(waves), strict=True):
        np.testing.assert_array_equal(a.units, b.units)
        np.testing.assert_array_equal(a.durations, b.durations)


def test_hubert_save_load_round_trip_and_batch(tmp_path):
    waves = [speechlike(s, seed=i) for i, s in enumerate([1.5, 0.4, 2.0])]
    tok = SpeechTokenizer.fit(HubertEncoder(tiny_hubert(), layer=2), waves, n_units=8, n_init=1, max_iter=20)
    assert tok.frame_rate == 25
    tok.save_pretrained(tmp_path / "tok")
    config = json.loads((tmp_path / "tok" / "config.json").read_text())
    assert config["encoder"]["layer"] == 2 and config["encoder"]["subfolder"] == "encoder"
    assert (tmp_path / "tok" / "encoder" / "model.safetensors").exists()
    loaded = SpeechTokenizer.from_pretrained(tmp_path / "tok")
    singles = [tok.encode(w) for w in waves]
    for single, a, b in zip(singles, tok.encode_batch(waves), loaded.encode_batch(waves), strict=True):
        np.testing.assert_array_equal(single.units, a.units)
        np.testing.assert_array_equal(a.units, b.units)
        assert a.n_frames == b.n_frames


def test_hubert_with_hub_id_stores_reference_only(tmp_path):
    model = tiny_hubert()
    enc = HubertEncoder(model, layer=1, model_id="org/some-hubert", revision="abc123")
    SpeechTokenizer(enc, np.zeros((4, 32), np.float32)).save_pretrained(tmp_path / "tok")
    config = json.loads((tmp_path / "tok" / "config.json").read_text())
    assert config["encoder"]["model_id"] == "org/some-hubert" and config["encoder"]["revision"] == "abc123"
    assert not (tmp_path / "tok" / "encoder").exists()
    loaded = SpeechTokenizer.from_pretrained(tmp_path / "tok", encoder=enc)
    assert loaded.n_units == 4


def test_mismatches_are_clear(logmel_tokenizer, tmp_path):
    with pytest.raises(ValueError, match="centroid dim 7 != encoder dim 40"):
        SpeechTokenizer(LogMelEncoder(), np.zeros((4, 7)))
    folder = tmp_path / "tok"
    logmel_tokenizer.save_pretrained(folder)
    save_file({"centroids": np.zeros((9, 40), np.float32)}, str(folder / "model.safetensors"))
    with pytest.raises(TokenizerFileError, match=r"model\.safetensors.*K=16"):
        SpeechTokenizer.from_pretrained(folder)
    config = json.loads((folder / "config.json").read_text())
    config["encoder"]["n_mels"] = 20
    config["n_units"] = 9
    (folder / "config.json").write_text(json.dumps(config))
    with pytest.raises(TokenizerFileError, match=r"config\.json.*dim 40 != dim 20"):
        SpeechTokenizer.from_pretrained(folder)
    (folder / "config.json").write_text("{}")
    with pytest.raises(TokenizerFileError, match=r"config\.json.*format_version"):
        SpeechTokenizer.from_pretrained(folder)
    with pytest.raises(TokenizerFileError, match="no such tokenizer folder"):
        SpeechTokenizer.from_pretrained(tmp_path / "missing")


def test_fitted_units_separate_two_different_sounds():
    """K-means on the frames of a low hum and of hiss: each sound gets its own unit (edge frames aside)."""
    rng = np.random.default_rng(0)
    t = np.arange(16000) / 16000
    hum = [(0.4 * np.sin(2 * np.pi * 180 * t + p)).astype(np.float32) for p in (0.0, 1.0)]
    hiss = [(0.1 * rng.standard_normal(16000)).astype(np.float32) for _ in range(2)]
    tok = SpeechTokenizer.fit(LogMelEncoder(n_mels=20, cmvn=False), hum + hiss, n_units=2, seed=0, n_init=1,
                              dedup=False)
    hum_units = np.concatenate([tok.encode(w).units for w in hum])
    hiss_units = np.concatenate([tok.encode(w).units for w in hiss])
    unit = np.bincount(hum_units, minlength=2).argmax()
    assert (hum_units == unit).mean() > 0.9 and (hiss_units != unit).all()


def test_a_run_longer_than_uint16_keeps_its_duration():
    """12 minutes of silence at 100 Hz is one run of 72,000 frames: stored as uint16 it wrapped to 6,464.
    (3 minutes at 400 Hz here: the same run, four times cheaper.)"""
    tok = SpeechTokenizer(LogMelEncoder(frame_rate=400, n_mels=8), np.eye(8, dtype=np.float32)[:3])
    seq = tok.encode(np.zeros(3 * 60 * 16000, np.float32))
    assert seq.n_frames == 72_000 and seq.units.tolist() == [seq.units[0]]
    assert seq.durations.tolist() == [72_000] and seq.durations.dtype == np.uint32


def test_a_wave_with_nan_is_refused_not_encoded(logmel_tokenizer):
    wave = speechlike(0.5)
    wave[10] = np.nan
    with pytest.raises(AudioError, match="1 of 8000 samples are NaN or infinite") as err:
        logmel_tokenizer.encode(wave)
    assert err.value.reason == "non_finite"
