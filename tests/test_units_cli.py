import argparse
import json

import joblib
import numpy as np
import pytest
import soundfile as sf
import torch
from sklearn.cluster import KMeans, MiniBatchKMeans
from transformers import HubertConfig, HubertModel

from hf_slm.units import LogMelEncoder, SpeechTokenizer
from hf_slm.units.cli import register


def run(argv):
    parser = argparse.ArgumentParser()
    register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(argv)
    return args.func(args)


def tone(seconds, sr=16000):
    t = np.arange(int(seconds * sr)) / sr
    return (0.3 * np.sin(2 * np.pi * (300 + 400 * t) * t)).astype(np.float32)


@pytest.fixture(scope="module")
def hubert_dir(tmp_path_factory):
    torch.manual_seed(0)
    config = HubertConfig(
        hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64,
        conv_dim=(16,) * 8, conv_stride=(5, 2, 2, 2, 2, 2, 2, 2), conv_kernel=(10, 3, 3, 3, 3, 2, 2, 2),
        num_conv_pos_embeddings=16, num_conv_pos_embedding_groups=4,
    )
    path = tmp_path_factory.mktemp("hubert")
    HubertModel(config).save_pretrained(path)
    return path


@pytest.mark.parametrize("kind", [KMeans, MiniBatchKMeans])
def test_import_kmeans(kind, hubert_dir, tmp_path, capsys):
    features = np.random.default_rng(0).standard_normal((300, 32)).astype(np.float32)
    km = kind(n_clusters=6, n_init=1, random_state=0, max_iter=10).fit(features)
    joblib.dump(km, tmp_path / "km6.bin")
    out = tmp_path / "tok"
    assert run(["units", "import-kmeans", str(tmp_path / "km6.bin"), str(out), "--encoder-id", str(hubert_dir),
                "--layer", "2", "--frame-rate", "25"]) == 0
    assert "wrote" in capsys.readouterr().out
    config = json.loads((out / "config.json").read_text())
    assert config["encoder"] == {"type": "hubert", "model_id": str(hubert_dir), "revision": None, "layer": 2,
                                 "sample_rate": 16000, "normalize": False, "chunk_seconds": 30.0, "dtype": "float32"}
    tok = SpeechTokenizer.from_pretrained(out)
    np.testing.assert_array_equal(tok.centroids, km.cluster_centers_.astype(np.float32))
    seq = tok.encode(tone(1.0))
    np.testing.assert_array_equal(np.repeat(seq.units, seq.durations), km.predict(tok.encoder.encode(tone(1.0))))


def test_import_kmeans_errors(tmp_path, capsys):
    assert run(["units", "import-kmeans", str(tmp_path / "missing.bin"), str(tmp_path / "o")]) == 2
    assert "not found" in capsys.readouterr().err
    joblib.dump({"something": 1}, tmp_path / "bad.bin")
    assert run(["units", "import-kmeans", str(tmp_path / "bad.bin"), str(tmp_path / "o")]) == 2
    assert "cluster_centers_" in capsys.readouterr().err


@pytest.fixture(scope="module")
def logmel_dir(tmp_path_factory):
    path = tmp_path_factory.mktemp("logmel")
    centroids = np.random.default_rng(0).standard_normal((10, 40)).astype(np.float32)
    SpeechTokenizer(LogMelEncoder(), centroids).save_pretrained(path)
    return path


def test_encode_prints_units(logmel_dir, tmp_path, capsys):
    sf.write(tmp_path / "a.wav", tone(1.0), 16000)
    assert run(["units", "encode", str(tmp_path / "a.wav"), "--tokenizer", str(logmel_dir)]) == 0
    units = [int(u) for u in capsys.readouterr().out.split()]
    assert units and max(units) < 10
    assert run(["units", "encode", str(tmp_path / "a.wav"), "--tokenizer", str(logmel_dir), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["units"] == units and sum(out["durations"]) == out["n_frames"] == 25


def test_encode_errors(logmel_dir, tmp_path, capsys):
    tokenizer = ["--tokenizer", str(logmel_dir)]
    assert run(["units", "encode", str(tmp_path / "missing.wav"), *tokenizer]) == 2
    assert "missing.wav" in capsys.readouterr().err
    sf.write(tmp_path / "fast.wav", tone(1.0, sr=22050), 22050)
    assert run(["units", "encode", str(tmp_path / "fast.wav"), "--no-resample", *tokenizer]) == 2
    assert "expected sample rate 16000 Hz, got 22050 Hz" in capsys.readouterr().err
    sf.write(tmp_path / "empty.wav", np.zeros(0, np.float32), 16000)
    assert run(["units", "encode", str(tmp_path / "empty.wav"), *tokenizer]) == 2
    assert "empty" in capsys.readouterr().err
    assert run(["units", "encode", str(tmp_path / "fast.wav"), "--tokenizer", str(tmp_path / "none")]) == 2
    assert "cannot load tokenizer" in capsys.readouterr().err
