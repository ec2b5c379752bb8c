import numpy as np
import pytest
import torch
from transformers import HubertConfig, HubertModel

from hf_slm.units.encoders import encoder_from_dict
from hf_slm.units.hubert import HubertEncoder
from hf_slm.units.logmel import LogMelEncoder


def tiny_hubert(feat_extract_norm="group", do_stable_layer_norm=False):
    torch.manual_seed(0)
    config = HubertConfig(
        hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64,
        conv_dim=(16,) * 8, conv_stride=(5, 2, 2, 2, 2, 2, 2, 2), conv_kernel=(10, 3, 3, 3, 3, 2, 2, 2),
        num_conv_pos_embeddings=16, num_conv_pos_embedding_groups=4,
        feat_extract_norm=feat_extract_norm, do_stable_layer_norm=do_stable_layer_norm,
    )
    return HubertModel(config).eval()


def chirp(seconds, sr=16000, seed=0):
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * sr)) / sr
    f = 200 + 1500 * t / max(seconds, 1e-3)
    return (0.3 * np.sin(2 * np.pi * f * t) + 0.05 * rng.standard_normal(t.size)).astype(np.float32)


@pytest.mark.parametrize("kwargs", [{}, {"n_mfcc": 13, "deltas": True}, {"win_ms": 25}, {"frame_rate": 50}])
@pytest.mark.parametrize("seconds", [0.01, 0.05, 1.0, 2.345])
def test_logmel_n_frames_matches_encode(kwargs, seconds):
    enc = LogMelEncoder(**kwargs)
    wave = chirp(seconds)
    feats = enc.encode(wave)
    assert feats.shape == (enc.n_frames(len(wave)), enc.dim)
    assert feats.dtype == np.float32
    assert abs(len(feats) - seconds * enc.frame_rate) <= 1


def test_logmel_default_is_25hz_40_mels_with_cmvn():
    enc = LogMelEncoder()
    assert (enc.frame_rate, enc.dim, enc.sample_rate) == (25, 40, 16000)
    feats = enc.encode(chirp(3.0))
    assert len(feats) == 75
    np.testing.assert_allclose(feats.mean(0), 0, atol=1e-4)
    np.testing.assert_allclose(feats.std(0), 1, atol=1e-2)


def test_logmel_cmvn_removes_gain():
    enc = LogMelEncoder()
    wave = chirp(1.0)
    np.testing.assert_allclose(enc.encode(wave), enc.encode(wave * 0.1), atol=1e-2)


def test_sliding_cmvn_depends_on_the_past_only_and_removes_gain():
    enc = LogMelEncoder(frame_rate=12.5, cmvn_window=1.0)
    shared, rng = chirp(2.0, seed=1), np.random.default_rng(0)
    a = np.concatenate([shared, chirp(1.0, seed=2)])
    b = np.concatenate([shared, 0.1 * rng.standard_normal(16000).astype(np.float32)])
    fa, fb = enc.encode(a), enc.encode(b)
    n_shared = 2 * 12 - 1  # frames whose 160 ms window lies inside the shared 2 s
    np.testing.assert_array_equal(fa[:n_shared], fb[:n_shared])
    assert np.abs(fa[n_shared + 2 :] - fb[n_shared + 2 :]).max() > 0.5
    np.testing.assert_allclose(enc.encode(a * 0.1), fa, atol=1e-2)  # a constant gain is a mean shift in log


def test_logmel_batch_equals_single():
    enc = LogMelEncoder(n_mfcc=20, deltas=True)
    waves = [chirp(s, seed=i) for i, s in enumerate([1.3, 0.2, 2.0, 0.0, 0.7])]
    for wave, feats in zip(waves, enc.encode_batch(waves), strict=True):
        np.testing.assert_allclose(feats, enc.encode(wave), atol=1e-5)


def test_logmel_dict_round_trip():
    enc = LogMelEncoder(n_mels=24, n_mfcc=12, cmvn=False)
    again = encoder_from_dict(enc.to_dict())
    wave = chirp(0.8)
    np.testing.assert_array_equal(enc.encode(wave), again.encode(wave))
    with pytest.raises(ValueError, match="unknown"):
        LogMelEncoder.from_dict({"type": "logmel", "n_bins": 3})


def test_hubert_frame_rate_and_counts_from_conv_strides():
    enc = HubertEncoder(tiny_hubert(), layer=2)
    assert enc.frame_rate == 25 and enc.dim == 32
    for n in (0, 399, 400, 16000, 23456):
        expected = int(enc.model._get_feat_extract_output_lengths(torch.tensor(n)).clamp(min=0))
        assert enc.n_frames(n) == expected
    assert abs(enc.n_frames(16000 * 3) - 75) <= 1


@pytest.mark.parametrize("layer", [0, 1, 2])
def test_hubert_features_match_transformers_hidden_states(layer):
    model = tiny_hubert()
    enc = HubertEncoder(model, layer=layer)
    wave = chirp(1.2)
    with torch.no_grad():
        ref = model(torch.from_numpy(wave)[None], output_hidden_states=True).hidden_states[layer][0].numpy()
    np.testing.assert_allclose(enc.encode(wave), ref, atol=1e-5)


@pytest.mark.parametrize("norm", ["group", "layer"])
def test_hubert_padded_batch_equals_single_encodes(norm):
    enc = HubertEncoder(tiny_hubert(feat_extract_norm=norm, do_stable_layer_norm=norm == "layer"), layer=2)
    waves = [chirp(s, seed=i) for i, s in enumerate([1.0, 0.37, 2.1, 0.01, 0.6])]
    batch = enc.encode_batch(waves)
    for wave, feats in zip(waves, batch, strict=True):
        single = enc.encode(wave)
        assert feats.shape == single.shape == (enc.n_frames(len(wave)), enc.dim)
        np.testing.assert_allclose(feats, single, atol=1e-4)
    # Small budgets split the batch without changing results.
    for small, feats in zip(enc.encode_batch(waves, batch_seconds=1.0), batch, strict=True):
        np.testing.assert_allclose(small, feats, atol=1e-4)


def test_hubert_layer_out_of_range():
    with pytest.raises(ValueError, match="layer"):
        HubertEncoder(tiny_hubert(), layer=3)


def test_logmel_batches_by_padded_seconds_and_blocks_long_audio():
    """A long file next to short ones is not padded into them (issue 16: one 10-minute file with fifteen
    1.5 s files peaked at 6.1 GB): batches hold at most ``batch_seconds`` of padded audio, and the spectra of
    a longer file are computed that much at a time."""
    enc = LogMelEncoder(batch_seconds=4.0)
    seen = []
    log_mel = enc._log_mel
    enc._log_mel = lambda windows: seen.append(tuple(windows.shape)) or log_mel(windows)
    waves = [chirp(0.5, seed=i) for i in range(14)]
    waves.insert(7, chirp(20.0, seed=99))
    feats = enc.encode_batch(waves)
    hop = enc.cfg.hop_length
    assert max(b * t * hop for b, t, _ in seen) <= 4.0 * 16000
    assert sum(t for b, t, _ in seen if b == 1) == enc.n_frames(len(waves[7]))  # the long file: alone, in blocks
    assert sorted(b for b, t, _ in seen if b > 1) == [7, 7]  # the short ones: 7 (of 0.54 s padded) a batch
    single = LogMelEncoder(batch_seconds=1e6)
    for wave, f in zip(waves, feats, strict=True):
        np.testing.assert_allclose(f, single.encode(wave), atol=1e-5)
