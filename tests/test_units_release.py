"""Units exactly as the authors' release (tiagoCuervo/slm_scaling, src/slm_data/backends.py): HuBERT
hidden_states[layer] in float32 without waveform normalisation, 30 s chunks encoded one by one, exact
statistics with a DC offset, and EOS-appended run collapsing. Tiny random HuBERTs stand in for
mhubert-base-25hz (same conv stack: 25 Hz, 720-sample receptive field)."""

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from transformers import HubertConfig, HubertModel

from hf_slm.data.tokens import eos_id
from hf_slm.units import HubertEncoder, LogMelEncoder, SpeechTokenizer, dedup
from hf_slm.units.kmeans import fit_kmeans

SR = 16000


def tiny_hubert(local: bool = False) -> HubertModel:
    """mHuBERT-25Hz's conv stack at toy width. ``local``: per-frame norms only (no GroupNorm over time)."""
    torch.manual_seed(0)
    config = HubertConfig(
        hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64,
        conv_dim=(16,) * 8, conv_stride=(5, 2, 2, 2, 2, 2, 2, 2), conv_kernel=(10, 3, 3, 3, 3, 2, 2, 2),
        num_conv_pos_embeddings=16, num_conv_pos_embedding_groups=4,
        feat_extract_norm="layer" if local else "group", do_stable_layer_norm=local,
    )
    return HubertModel(config).eval()


def speechlike(seconds: float, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    n = int(seconds * SR)
    tones = np.repeat(rng.uniform(150, 3000, size=n // 1600 + 1), 1600)[:n]
    return (0.3 * np.sin(2 * np.pi * np.cumsum(tones) / SR) + 0.02 * rng.standard_normal(n)).astype(np.float32)


@torch.no_grad()
def release_features(model: HubertModel, wave: np.ndarray, layer: int, chunk: int) -> np.ndarray:
    """What the release computes: ``model(chunk).hidden_states[layer]`` of each chunk (chunks shorter than the
    720-sample receptive field left out), concatenated."""
    parts = [model(torch.from_numpy(wave[s : s + chunk])[None], output_hidden_states=True).hidden_states[layer][0]
             for s in range(0, len(wave), chunk) if len(wave[s : s + chunk]) >= 720]
    return torch.cat(parts).numpy()


def test_defaults_are_the_release_settings():
    enc = HubertEncoder(tiny_hubert(), layer=2, device="cpu")
    assert (enc.dtype, enc.normalize, enc.chunk_seconds, enc.chunk_samples) == (torch.float32, False, 30.0, 480_000)
    assert next(enc.model.parameters()).dtype == torch.float32
    assert enc.to_dict()["dtype"] == "float32" and enc.to_dict()["chunk_seconds"] == 30.0
    assert HubertEncoder.from_dict({**enc.to_dict(), "model_id": "x"}, model=tiny_hubert()).chunk_seconds == 30.0
    old = {k: v for k, v in enc.to_dict().items() if k not in ("dtype", "chunk_seconds")}  # a config from before
    again = HubertEncoder.from_dict({**old, "model_id": "x"}, model=tiny_hubert(), dtype="bf16")
    assert (again.chunk_seconds, again.dtype) == (30.0, torch.bfloat16)
    # Frame counts add up over 30 s chunks: 749 per chunk (the 720-sample receptive field), as the release.
    assert enc.n_frames(480_000) == 749 and enc.n_frames(2 * 480_000 + 700) == 2 * 749
    assert enc.n_frames(3600 * SR) == 120 * 749


def test_chunks_are_encoded_one_by_one_as_the_release():
    model = tiny_hubert()
    enc = HubertEncoder(model, layer=2, chunk_seconds=0.25, device="cpu")
    for n in (2 * 4000 + 1500, 4000 + 700):  # the last chunk: 1500 samples (2 frames); 700 (< 720: left out)
        wave = speechlike(n / SR, seed=n)
        feats = enc.encode(wave)
        ref = release_features(model, wave, layer=2, chunk=4000)
        assert feats.shape == ref.shape == (enc.n_frames(n), 32)
        np.testing.assert_allclose(feats, ref, atol=2e-5)


def test_units_equal_the_unchunked_ones_away_from_the_chunk_edges():
    # A model whose features are local (per-frame norms, layer 0: conv stack + positional conv of 16 frames).
    model = tiny_hubert(local=True)
    wave = speechlike(3.0, seed=1)
    whole = HubertEncoder(model, layer=0, chunk_seconds=None, device="cpu").encode(wave)
    chunked = HubertEncoder(model, layer=0, chunk_seconds=1.0, device="cpu").encode(wave)
    per_chunk = 24  # 16000 samples -> 24 frames; the unchunked wave has one more frame across each edge
    assert len(whole) == 74 and len(chunked) == 3 * per_chunk
    tokenizer = SpeechTokenizer(LogMelEncoder(n_mels=32), whole[::5])  # 15 centroids on these features
    for c in range(3):
        inner = slice(9, per_chunk - 9)  # the positional conv reaches 8 frames: beyond that, the same input
        np.testing.assert_allclose(chunked[c * per_chunk :][inner], whole[c * (per_chunk + 1) :][inner], atol=1e-5)
        np.testing.assert_array_equal(tokenizer.units_of(chunked[c * per_chunk :][inner]).units,
                                      tokenizer.units_of(whole[c * (per_chunk + 1) :][inner]).units)


def test_long_audio_never_reaches_the_model_longer_than_a_chunk_or_a_batch():
    enc = HubertEncoder(tiny_hubert(), layer=1, chunk_seconds=0.25, batch_seconds=0.6, device="cpu")
    seen = []
    forward = enc.forward
    enc.forward = lambda x, lengths: seen.append(tuple(x.shape)) or forward(x, lengths)
    waves = [speechlike(1.5, seed=2), speechlike(0.2, seed=3), speechlike(0.55, seed=4)]
    feats = enc.encode_batch(waves)
    assert max(b * t for b, t in seen) <= 0.6 * SR and max(t for _, t in seen) <= 4000
    assert sum(b for b, _ in seen) == 6 + 1 + 3  # chunks: 6 of the 1.5 s wave, 1, 2 + an 800-sample rest
    for wave, f in zip(waves, feats, strict=True):
        np.testing.assert_allclose(f, enc.encode(wave), atol=1e-5)


@pytest.mark.parametrize("offset", [0.0, 100.0])
def test_a_dc_offset_loses_no_precision(offset):
    """mHuBERT's first conv is normalised over time (GroupNorm): with an offset of 100 a one-pass
    E[x^2] - E[x]^2 variance in float32 was off by 0.14 on these features; two-pass statistics are exact."""
    model = tiny_hubert()
    wave = speechlike(0.6, seed=5) + np.float32(offset)
    enc = HubertEncoder(model, layer=2, device="cpu")
    ref = release_features(model, wave, layer=2, chunk=480_000)
    np.testing.assert_allclose(enc.encode(wave), ref, atol=2e-5)
    padded = enc.encode_batch([wave, speechlike(0.3, seed=6) + np.float32(offset)])[0]  # padded batch: same
    np.testing.assert_allclose(padded, ref, atol=2e-5)


def test_normalize_is_the_release_layer_norm_over_the_whole_wave():
    model = tiny_hubert()
    wave = 3 * speechlike(0.6, seed=7) + 0.5
    enc = HubertEncoder(model, layer=1, normalize=True, chunk_seconds=0.25, device="cpu")
    normalised = torch.nn.functional.layer_norm(torch.from_numpy(wave), wave.shape).numpy()
    np.testing.assert_allclose(enc.encode(wave), release_features(model, normalised, 1, 4000), atol=2e-5)


def test_bf16_is_an_option_and_its_unit_agreement_is_measured():
    waves = [speechlike(1.0, seed=10 + i) for i in range(2)]
    fp32 = HubertEncoder(tiny_hubert(), layer=2, device="cpu")
    bf16 = HubertEncoder(tiny_hubert(), layer=2, device="cpu", dtype="bf16")
    f32, f16 = fp32.encode_batch(waves), bf16.encode_batch(waves)
    error = max(float(np.abs(a - b).max()) for a, b in zip(f32, f16, strict=True))
    assert 1e-3 < error < 0.5  # bf16 autocast really ran, and stays close
    tokenizer = SpeechTokenizer(fp32, fit_kmeans(np.concatenate(f32), 16, n_init=1), dedup=False)
    a = np.concatenate([tokenizer.units_of(f).units for f in f32])
    b = np.concatenate([tokenizer.units_of(f).units for f in f16])
    agreement = float((a == b).mean())
    print(f"bf16 vs fp32 unit agreement (tiny random HuBERT, K=16, {len(a)} frames): {agreement:.3f}")
    assert len(a) == 2 * 24 and agreement >= 0.9


def test_dedup_with_eos_gives_the_release_codes():
    """tests/data/release_collapse.json: frame-level unit streams and what the release's ``collapse_codes``
    (EOS appended, consecutive duplicates collapsed) made of them."""
    fixture = json.loads((Path(__file__).parent / "data" / "release_collapse.json").read_text())
    k = fixture["eos"]
    rng = np.random.default_rng(0)
    centroids = rng.standard_normal((k, 8)).astype(np.float32)
    tokenizer = SpeechTokenizer(LogMelEncoder(n_mels=8), centroids)
    for stream, release in zip(fixture["streams"], fixture["release"], strict=True):
        units, durations = dedup(np.asarray(stream, dtype=np.uint16))
        assert np.r_[units, eos_id(k)].tolist() == release
        seq = tokenizer.units_of(centroids[stream])  # frames whose nearest centroids are the stream
        assert len(seq.units) + 1 == len(release) and np.r_[seq.units, k].tolist() == release
        assert seq.durations.sum() == seq.n_frames == len(stream)
