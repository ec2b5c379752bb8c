"""Audio dataset -> unit dataset (contract 1): encoding, skipped audio, card totals, load_dataset round trip."""

from collections import Counter
from pathlib import Path

import datasets
import numpy as np
import pytest

from hf_slm.data.unit_dataset import (
    UnitDatasetInfo,
    encode_audio_dataset,
    load_unit_dataset,
    load_unit_info,
    save_unit_dataset,
)
from hf_slm.units import LogMelEncoder, SpeechTokenizer
from hf_slm.units.audio import encode_wav_bytes

SR = 16000


def _chirp(seconds: float, f0: float) -> np.ndarray:
    t = np.arange(int(seconds * SR)) / SR
    return (0.3 * np.sin(2 * np.pi * (f0 + 300 * t) * t)).astype(np.float32)


@pytest.fixture(scope="module")
def tokenizer() -> SpeechTokenizer:
    waves = [_chirp(1.0, f) for f in (200, 400, 800)]
    return SpeechTokenizer.fit(LogMelEncoder(n_mels=16), waves, n_units=8, seed=0)


@pytest.fixture(scope="module")
def audio_ds() -> datasets.Dataset:
    good = [encode_wav_bytes(_chirp(s, f), SR) for s, f in ((0.8, 200), (1.2, 500), (0.6, 900))]
    rows = {
        "id": ["a", "b", "corrupt", "c", "empty"],
        "audio": [{"bytes": good[0], "path": None}, {"bytes": good[1], "path": None},
                  {"bytes": b"not a wav file", "path": None}, {"bytes": good[2], "path": None},
                  {"bytes": encode_wav_bytes(np.zeros(0, np.float32), SR), "path": None}],
        "text": ["one", "two", "three", "four", "five"],
        "label": [1, 0, 1, 0, 1],
        "seconds": [9.0] * 5,  # a source column named like a contract column must not leak into the units
    }
    wav_struct = {"bytes": datasets.Value("binary"), "path": datasets.Value("string")}  # cast, not encoded
    features = datasets.Features({"id": datasets.Value("string"), "audio": wav_struct,
                                  "text": datasets.Value("string"), "label": datasets.Value("int64"),
                                  "seconds": datasets.Value("float32")})
    ds = datasets.Dataset.from_dict(rows, features=features)
    return ds.cast_column("audio", datasets.Audio(sampling_rate=SR, decode=False))


def test_encoding_skips_and_counts_bad_audio_and_keeps_source_columns(tokenizer, audio_ds):
    skipped = Counter()
    ds = encode_audio_dataset(audio_ds, tokenizer, keep_columns=["text", "label", "seconds"], skipped=skipped)
    assert ds["id"] == ["a", "b", "c"]
    assert skipped == {"corrupt": 1, "empty": 1}
    assert ds.features["label"] == datasets.Value("int64") and ds["label"] == [1, 0, 0]
    assert ds["text"] == ["one", "two", "four"]
    np.testing.assert_allclose(ds["seconds"], [0.8, 1.2, 0.6], atol=1e-6)
    for row in ds:
        units = np.asarray(row["units"])
        assert len(units) and not (units[1:] == units[:-1]).any()  # deduplicated
        assert sum(row["durations"]) == row["n_frames"] == tokenizer.encoder.n_frames(round(row["seconds"] * SR))


def test_decoding_ahead_in_threads_changes_nothing(tokenizer, audio_ds):
    results = {}
    for workers in (0, 3):
        skipped = Counter()
        ds = encode_audio_dataset(audio_ds, tokenizer, batch_size=2, skipped=skipped, decode_workers=workers)
        results[workers] = (ds.to_dict(), skipped)
    assert results[0] == results[3] and results[3][1] == {"corrupt": 1, "empty": 1}


def test_decode_ahead_keeps_order_and_returns_errors():
    import random
    import time

    from hf_slm.data.unit_dataset import decode_ahead

    def decode(position, item):
        time.sleep(random.uniform(0, 0.003))  # threads finish out of order
        return ValueError(item) if item % 7 == 0 else item * 10 + position

    out = list(decode_ahead(enumerate(range(50), start=100), decode, workers=4, window=8))
    assert [item for item, _ in out] == list(range(50))
    assert all(isinstance(r, ValueError) if i % 7 == 0 else r == i * 10 + 100 + i for i, r in out)


def test_saved_dataset_loads_with_load_dataset_and_card_totals(tokenizer, audio_ds, tmp_path):
    ds = encode_audio_dataset(audio_ds, tokenizer)
    info = UnitDatasetInfo("tok", None, tokenizer.n_units, tokenizer.frame_rate, tokenizer.dedup)
    info.add(ds.select([0, 1]))
    info.add(ds.select([2]))
    out = save_unit_dataset({"train": ds.select([0, 1]), "test": ds.select([2])}, tmp_path / "u", info)

    loaded = datasets.load_dataset(str(out))
    assert loaded["train"]["id"] == ["a", "b"] and loaded["test"]["id"] == ["c"]
    assert [list(u) for u in loaded["train"]["units"]] == [list(u) for u in ds.select([0, 1])["units"]]
    card = load_unit_info(out)
    assert card.utterances == 3
    assert card.hours == pytest.approx(2.6 / 3600, rel=1e-5)
    assert card.frames == sum(ds["n_frames"]) and card.tokens == sum(len(u) for u in ds["units"])
    assert load_unit_dataset(out, split="test")["id"] == ["c"]


def test_a_rebuilt_folder_loads_its_new_rows(tokenizer, audio_ds, tmp_path):
    ds = encode_audio_dataset(audio_ds, tokenizer)
    info = UnitDatasetInfo("tok", None, tokenizer.n_units, tokenizer.frame_rate, tokenizer.dedup)
    save_unit_dataset({"test": ds}, tmp_path / "bench", info)
    assert len(load_unit_dataset(tmp_path / "bench", split="test")) == 3
    save_unit_dataset({"test": ds.select([1])}, tmp_path / "bench", info)
    assert load_unit_dataset(tmp_path / "bench", split="test")["id"] == ["b"]
    with pytest.raises(ValueError, match="no split 'train'"):
        load_unit_dataset(tmp_path / "bench", split="train")


def _build_units_script():
    import runpy
    from pathlib import Path

    return runpy.run_path(str(Path(__file__).resolve().parents[1] / "dataset_scripts" / "build_units.py"))["main"]


def test_build_units_script_from_a_saved_audio_dataset(tokenizer, audio_ds, tmp_path, capsys):
    tokenizer.save_pretrained(tmp_path / "tok")
    datasets.DatasetDict({"train": audio_ds}).save_to_disk(str(tmp_path / "audio"))
    main = _build_units_script()
    code = main([str(tmp_path / "audio"), "--tokenizer", str(tmp_path / "tok"), "--output", str(tmp_path / "units"),
                 "--keep-columns", "text", "--test-fraction", "0.35"])
    assert code == 0
    loaded = load_unit_dataset(tmp_path / "units")
    assert sorted(loaded) == ["test", "train"]
    assert loaded["train"]["id"] == ["a", "b"] and loaded["test"]["id"] == ["c"]  # by id hash: c's is 0.30 < 0.35
    card = load_unit_info(tmp_path / "units")
    assert card.skipped == {"corrupt": 1, "empty": 1} and card.utterances == 3 and card.n_units == tokenizer.n_units

    assert main([str(tmp_path / "nowhere"), "--tokenizer", str(tmp_path / "tok"), "--output", str(tmp_path / "x")]) == 2
    assert "no such folder" in capsys.readouterr().err
    assert main([str(tmp_path / "audio"), "--tokenizer", str(tmp_path / "tok"), "--output", str(tmp_path / "y"),
                 "--audio-column", "wav"]) == 2
    assert "no audio column 'wav'" in capsys.readouterr().err


def _fit_tokenizer_script():
    import runpy
    from pathlib import Path

    return runpy.run_path(str(Path(__file__).resolve().parents[1] / "dataset_scripts" / "fit_tokenizer.py"))["main"]


def test_fit_tokenizer_script_logmel_and_hubert(audio_ds, tmp_path, capsys):
    import torch
    from transformers import HubertConfig, HubertModel

    datasets.DatasetDict({"train": audio_ds}).save_to_disk(str(tmp_path / "audio"))
    main = _fit_tokenizer_script()
    for name in ("a", "b"):
        assert main([str(tmp_path / "audio"), "--output", str(tmp_path / name), "--encoder", "logmel",
                     "--frame-rate", "50", "--n-mels", "16", "--n-units", "6", "--seed", "3"]) == 0
    assert "skipped 2 unusable" in capsys.readouterr().out  # the corrupt and the empty file
    a, b = SpeechTokenizer.from_pretrained(tmp_path / "a"), SpeechTokenizer.from_pretrained(tmp_path / "b")
    assert a.n_units == 6 and a.frame_rate == 50 and a.encoder.dim == 16
    np.testing.assert_array_equal(a.centroids, b.centroids)  # seeded: the same tokenizer twice
    units = a.encode(_chirp(1.0, 300)).units
    assert len(units) > 1 and units.max() < 6

    torch.manual_seed(0)
    config = HubertConfig(hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64,
                          conv_dim=(16,) * 8, conv_stride=(5, 2, 2, 2, 2, 2, 2, 2),
                          conv_kernel=(10, 3, 3, 3, 3, 2, 2, 2), num_conv_pos_embeddings=16,
                          num_conv_pos_embedding_groups=4)
    HubertModel(config).save_pretrained(tmp_path / "hubert")
    assert main([str(tmp_path / "audio"), "--output", str(tmp_path / "h"), "--model-id", str(tmp_path / "hubert"),
                 "--layer", "1", "--n-units", "5", "--device", "cpu"]) == 0
    hubert = SpeechTokenizer.from_pretrained(tmp_path / "h")
    assert hubert.n_units == 5 and hubert.frame_rate == 25 and hubert.encoder.layer == 1
    assert len(hubert.encode(_chirp(1.0, 300)).units) > 1

    assert main([str(tmp_path / "audio"), "--output", str(tmp_path / "x"), "--encoder", "logmel",
                 "--n-units", "10000"]) == 2
    assert "n_clusters=10000" in capsys.readouterr().err


def test_build_merges_source_splits_renames_columns_and_numbers_rows_without_ids(tokenizer, audio_ds, tmp_path):
    from hf_slm.data.build import build_unit_dataset

    source = datasets.DatasetDict({"clean": audio_ds.select([0, 1]), "other": audio_ds.select([2, 3]),
                                   "eval": audio_ds.select([4, 3])}).remove_columns("id")
    source.save_to_disk(str(tmp_path / "audio"))
    out = build_unit_dataset(tmp_path / "audio", tokenizer, tmp_path / "units", id_column=None,
                             keep_columns=["label"], rename={"label": "speaker"},
                             split_map={"clean": "train", "other": "train", "eval": "test"})
    loaded = load_unit_dataset(out)
    assert loaded["train"]["id"] == ["clean-0", "clean-1", "other-1"]  # other-0 is the corrupt file
    assert loaded["test"]["id"] == ["eval-1"]  # eval-0 is the empty one
    assert loaded["train"].features["speaker"] == datasets.Value("string") and loaded["train"]["speaker"] == ["1", "0", "0"]
    assert load_unit_info(out).skipped == {"corrupt": 1, "empty": 1}


def _unit_rows(folder):
    loaded = load_unit_dataset(folder)
    return {split: sorted((r["id"], tuple(r["units"])) for r in part) for split, part in loaded.items()}


def test_sharded_build_is_the_same_for_any_number_of_processes(tokenizer, audio_ds, tmp_path):
    from hf_slm.data.build import build_unit_dataset

    big = datasets.concatenate_datasets([audio_ds] * 4).map(lambda row, i: {"id": f"u{i}"}, with_indices=True)
    big.save_to_disk(str(tmp_path / "audio"))
    one = build_unit_dataset(tmp_path / "audio", tokenizer, tmp_path / "one", shard_rows=3, test_fraction=0.3)
    for rank in (0, 1, 2):
        build_unit_dataset(tmp_path / "audio", tokenizer, tmp_path / "three", shard_rows=3, test_fraction=0.3,
                           process_index=rank, num_processes=3)
    assert _unit_rows(tmp_path / "three") == _unit_rows(one)
    rows = _unit_rows(one)
    assert len(rows["train"]) + len(rows["test"]) == 12 and rows["test"]  # 20 rows, 8 corrupt or empty
    assert load_unit_info(one).skipped == load_unit_info(tmp_path / "three").skipped == {"corrupt": 4, "empty": 4}
    (tmp_path / "pq" / "data").mkdir(parents=True)
    big.to_parquet(str(tmp_path / "pq" / "data" / "train-0.parquet"))
    streamed = build_unit_dataset(tmp_path / "pq", tokenizer, tmp_path / "streamed", shard_rows=7,
                                  test_fraction=0.3, streaming=True)
    assert _unit_rows(streamed) == rows  # another shard size, read as an IterableDataset


def test_build_units_script_under_torchrun_gives_the_one_process_result(tokenizer, audio_ds, tmp_path):
    import os
    import subprocess
    import sys
    from pathlib import Path

    from hf_slm.data.build import build_unit_dataset

    big = datasets.concatenate_datasets([audio_ds] * 2).map(lambda row, i: {"id": f"u{i}"}, with_indices=True)
    big.save_to_disk(str(tmp_path / "audio"))
    tokenizer.save_pretrained(tmp_path / "tok")
    script = Path(__file__).resolve().parents[1] / "dataset_scripts" / "build_units.py"
    done = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", str(script),
         str(tmp_path / "audio"), "--tokenizer", str(tmp_path / "tok"), "--output", str(tmp_path / "two"),
         "--shard-rows", "3", "--test-fraction", "0.3"],
        env={**os.environ, "OMP_NUM_THREADS": "1", "GLOO_SOCKET_IFNAME": "lo"},  # gloo over loopback
        capture_output=True, text=True, timeout=120,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.count("wrote ") == 1
    one = build_unit_dataset(tmp_path / "audio", tokenizer, tmp_path / "one", shard_rows=3, test_fraction=0.3)
    assert _unit_rows(tmp_path / "two") == _unit_rows(one)
    assert load_unit_info(tmp_path / "two").skipped == {"corrupt": 2, "empty": 2}


KILLER = """
import os, signal, sys
from hf_slm.data import build
from hf_slm.units import SpeechTokenizer
real, calls = build.encode_audio_dataset, []
def encode_then_die(*args, **kwargs):
    calls.append(1)
    if len(calls) == 3:
        os.kill(os.getpid(), signal.SIGKILL)  # a hard crash while encoding the third shard
    return real(*args, **kwargs)
build.encode_audio_dataset = encode_then_die
build.build_unit_dataset(sys.argv[1], SpeechTokenizer.from_pretrained(sys.argv[2]), sys.argv[3], shard_rows=3)
"""


def test_a_killed_build_resumes_without_losing_or_duplicating_utterances(tokenizer, audio_ds, tmp_path):
    import subprocess
    import sys

    from hf_slm.data.build import build_unit_dataset

    big = datasets.concatenate_datasets([audio_ds] * 3).map(lambda row, i: {"id": f"u{i}"}, with_indices=True)
    big.save_to_disk(str(tmp_path / "audio"))
    tokenizer.save_pretrained(tmp_path / "tok")
    out = tmp_path / "units"
    killed = subprocess.run([sys.executable, "-c", KILLER, str(tmp_path / "audio"), str(tmp_path / "tok"), str(out)])
    assert killed.returncode == -9
    assert len(list((out / ".shards" / "data").glob("*.parquet"))) == 2 and not (out / "README.md").exists()
    build_unit_dataset(tmp_path / "audio", tokenizer, out, shard_rows=3)
    reference = build_unit_dataset(tmp_path / "audio", tokenizer, tmp_path / "ref", shard_rows=3)
    assert _unit_rows(out) == _unit_rows(reference)
    assert len(_unit_rows(out)["train"]) == 9 and load_unit_info(out).utterances == 9


def test_resuming_into_a_folder_of_another_build_is_refused(tokenizer, audio_ds, tmp_path):
    from hf_slm.data.build import build_unit_dataset

    datasets.DatasetDict({"train": audio_ds}).save_to_disk(str(tmp_path / "audio"))
    build_unit_dataset(tmp_path / "audio", tokenizer, tmp_path / "units", shard_rows=2)
    build_unit_dataset(tmp_path / "audio", tokenizer, tmp_path / "units", shard_rows=2)  # same build: a no-op
    with pytest.raises(ValueError, match="shard_rows"):
        build_unit_dataset(tmp_path / "audio", tokenizer, tmp_path / "units", shard_rows=3)


def test_compress_units_script_adds_tokens_that_decode_to_the_units(tmp_path, capsys):
    import runpy

    from transformers import PreTrainedTokenizerFast

    from hf_slm.units import decompress

    rng = np.random.default_rng(0)
    words = [rng.integers(0, 20, size=rng.integers(3, 7)) for _ in range(15)]  # recurring unit "words"
    def utterances(n):
        return [np.concatenate([words[i] for i in rng.integers(0, 15, size=8)]).astype(np.uint16) for _ in range(n)]
    def split(n, tag):
        units = utterances(n)
        return datasets.Dataset.from_dict(
            {"id": [f"{tag}{i}" for i in range(n)], "units": units, "n_frames": [len(u) for u in units],
             "seconds": [len(u) / 25 for u in units]},
            features=datasets.Features({"id": datasets.Value("string"),
                                        "units": datasets.List(datasets.Value("uint16")),
                                        "n_frames": datasets.Value("int32"), "seconds": datasets.Value("float32")}))
    info = UnitDatasetInfo("tok", None, 20, 25.0, False)
    src = save_unit_dataset({"train": split(200, "a"), "test": split(20, "b")}, tmp_path / "units", info)
    script = Path(__file__).resolve().parents[1] / "dataset_scripts" / "compress_units.py"
    main = runpy.run_path(str(script))["main"]
    assert main([str(src), "--output", str(tmp_path / "compressed"), "--vocab-size", "60"]) == 0
    out = load_unit_dataset(tmp_path / "compressed")
    tokenizer = PreTrainedTokenizerFast.from_pretrained(tmp_path / "compressed" / "unigram_tokenizer")
    assert len(tokenizer) == 60
    for part in out.values():
        for row in part:
            assert decompress(tokenizer, row["tokens"]).tolist() == list(row["units"])
    card = load_unit_info(tmp_path / "compressed")
    n_tokens = sum(len(t) for part in out.values() for t in part["tokens"])
    n_units = sum(len(u) for part in out.values() for u in part["units"])
    assert card.unigram["tokens"] == n_tokens and card.unigram["ratio"] == pytest.approx(n_tokens / n_units)
    assert card.unigram["ratio"] < 0.6  # recurring words become pieces
    assert "tokens per unit" in capsys.readouterr().out
    assert main([str(src), "--output", str(tmp_path / "x"), "--train-split", "dev"]) == 2
