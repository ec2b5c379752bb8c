"""The token store: unit datasets -> memory-mapped uint16 tokens, shard by shard, resumable, local or Hub."""

from __future__ import annotations

import json
import mmap
import runpy
from pathlib import Path
from types import SimpleNamespace

import _training_helpers as _h
import datasets
import numpy as np
import pytest

from hf_slm.cli import main
from hf_slm.data import store as store_module
from hf_slm.data.store import MixConfig, StoreError, TokenStore, held_out_mask, pack_mix
from hf_slm.training import RunRecord, TrainConfig
from hf_slm.training.run import run_training

one_thread = _h.one_thread
K = _h.K
ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def mix(tmp_path):
    """a: train + test split; b: no test split (held out by id hash); c: test: false (sTinyStories-like)."""
    a = {"train": _h.unit_split(50, 0, vary=True), "test": _h.unit_split(6, 1)}
    b = {"train": _h.unit_split(40, 2, vary=True)}
    c = {"train": _h.unit_split(10, 3), "test": _h.unit_split(5, 4)}
    folders = [_h.save_units(tmp_path / name, splits) for name, splits in zip("abc", (a, b, c), strict=True)]
    config = MixConfig(datasets=[str(folders[0]), str(folders[1]), {"id": str(folders[2]), "test": False}],
                       n_units=K, test_fraction=0.2)
    return config, (a, b, c)


def _pack(config, root, **kwargs):
    return pack_mix(config, root, shard_tokens=150, batch_rows=8, progress=False, **kwargs)


def _dataset_stream(store: TokenStore, d: int) -> np.ndarray:
    parts = [np.asarray(store.segment(i)) for i in range(store.n_segments) if store.segment_datasets[i] == d]
    return np.concatenate(parts) if parts else np.zeros(0, dtype=np.uint16)


def test_pack_writes_every_utterance_then_eos_shard_by_shard(mix, tmp_path):
    config, (a, b, c) = mix
    root = _pack(config, tmp_path / "stores")
    train, test = TokenStore(root, "train"), TokenStore(root, "test")
    held = held_out_mask(b["train"]["id"], 0.2)
    assert 0 < held.sum() < len(held)
    b_train, b_test = b["train"].select(np.flatnonzero(~held)), b["train"].select(np.flatnonzero(held))
    expected_train = [_h.stream_of(a["train"]), _h.stream_of(b_train), _h.stream_of(c["train"])]
    expected_test = [_h.stream_of(a["test"]), _h.stream_of(b_test), np.zeros(0)]
    for d in range(3):  # in order, each utterance followed by EOS, nothing lost or repeated
        np.testing.assert_array_equal(_dataset_stream(train, d), expected_train[d])
        np.testing.assert_array_equal(_dataset_stream(test, d), expected_test[d])
    segment = train.segment(0)
    assert train.n_segments > 3 and segment.dtype == np.uint16 and not segment.flags.writeable
    assert isinstance(getattr(segment.base, "obj", segment.base), mmap.mmap)  # mapped, not read into memory
    for i in range(train.n_segments):  # the utterance index: every utterance ends at an EOS
        offsets = train.utterance_offsets(i)
        assert offsets[-1] == train.lengths[i] and (np.asarray(train.segment(i))[offsets[1:] - 1] == K).all()
    manifest = train.manifest
    assert [d["train_tokens"] for d in manifest["datasets"]] == [len(s) for s in expected_train]
    assert [d["test_tokens"] for d in manifest["datasets"]] == [len(s) for s in expected_test]
    assert [d["train_utterances"] for d in manifest["datasets"]] == [50, len(b_train), 10]
    assert manifest["datasets"][2]["held_out"] == "none (test: false)" and manifest["vocabulary"]["eos"] == K
    assert not list(root.rglob("*.tmp"))

    # cached by the fingerprint of the mix: weights act at sampling time and do not repack
    mtime = (root / "manifest.json").stat().st_mtime_ns
    reweighted = MixConfig(datasets=[{"id": e.id, "test": e.test, "weight": 2.5} for e in config.datasets],
                           n_units=K, test_fraction=0.2)
    assert _pack(reweighted, tmp_path / "stores") == root and (root / "manifest.json").stat().st_mtime_ns == mtime
    changed = MixConfig(datasets=config.datasets[:2], n_units=K, test_fraction=0.2)
    assert _pack(changed, tmp_path / "stores") != root


def test_a_crash_mid_pack_resumes_without_losing_or_duplicating(mix, tmp_path, monkeypatch):
    config, _ = mix
    clean = _pack(config, tmp_path / "clean")
    real, markers = store_module._write_json, []

    def crash_after_the_third_part(path, payload):
        if "parts" in str(path) and not path.name.endswith("done.json"):
            markers.append(path)
            if len(markers) == 3:  # this part's shards are renamed into place, its marker is not written
                raise KeyboardInterrupt("power cut")
        real(path, payload)

    monkeypatch.setattr(store_module, "_write_json", crash_after_the_third_part)
    with pytest.raises(KeyboardInterrupt):
        _pack(config, tmp_path / "crashed")
    monkeypatch.setattr(store_module, "_write_json", real)
    crashed = tmp_path / "crashed" / clean.name
    assert not (crashed / "manifest.json").exists() and len(list((crashed / "parts").glob("*.json"))) == 2
    assert _pack(config, tmp_path / "crashed") == crashed
    for side in ("train", "test"):
        got, want = TokenStore(crashed, side), TokenStore(clean, side)
        assert [s["file"] for s in got.shards] == [s["file"] for s in want.shards]
        for i in range(want.n_segments):
            np.testing.assert_array_equal(got.segment(i), want.segment(i))


def test_sources_are_decided_locally_first_and_errors_name_them(mix, tmp_path, monkeypatch):
    import huggingface_hub

    def no_hub(*args, **kwargs):
        raise AssertionError("looked up on the Hub")

    monkeypatch.setattr(huggingface_hub.HfApi, "dataset_info", no_hub)
    monkeypatch.setattr(huggingface_hub, "hf_hub_download", no_hub)
    config, _ = mix
    a = config.datasets[0].id
    (tmp_path / "plain").mkdir()
    (tmp_path / "file.txt").write_text("x")
    cases = [(str(tmp_path / "missing" / "units"), "no such folder, and not a Hub id"),
             (str(tmp_path / "plain"), "plain: the folder has no README.md card"),
             (str(tmp_path / "file.txt"), "is a file, not a unit dataset folder")]
    for ident, message in cases:
        with pytest.raises(StoreError, match=message):
            pack_mix(MixConfig(datasets=[ident], n_units=K), tmp_path / "s", progress=False)
    with pytest.raises(StoreError, match=f"n_units={K + 1} but dataset .*a has K={K}"):
        pack_mix(MixConfig(datasets=[a], n_units=K + 1), tmp_path / "s", progress=False)
    bad = _h.save_units(tmp_path / "bad", {"train": _h.unit_split(3, 9, k=K + 5)}, k=K + 5)
    card = bad / "README.md"
    card.write_text(card.read_text().replace(f"n_units: {K + 5}", f"n_units: {K}"))  # a card that lies about K
    with pytest.raises(StoreError, match=r"bad split 'train': column 'units' has id 1[2-6] outside 0..11"):
        pack_mix(MixConfig(datasets=[str(bad)], n_units=K), tmp_path / "s", progress=False)
    with pytest.raises(StoreError, match="not unigram-compressed"):
        pack_mix(MixConfig(datasets=[a], n_units=K, token_type="unigram"), tmp_path / "s", progress=False)
    root = _pack(MixConfig(datasets=[a], n_units=K), tmp_path / "s")
    shard = root / TokenStore(root).shards[0]["file"]
    shard.write_bytes(shard.read_bytes()[:-2])  # a truncated shard is found, not read as garbage
    with pytest.raises(StoreError, match=f"{shard.name}: expected .* bytes"):
        TokenStore(root).segment(0)


SHA = "0123456789abcdef0123456789abcdef01234567"


@pytest.mark.usefixtures("one_thread")
def test_a_hub_dataset_is_streamed_at_its_resolved_commit_and_the_run_records_it(mix, tmp_path, monkeypatch):
    """The Hub's two answers (the commit of 'main', the README) and ``load_dataset`` are served from a local copy;
    everything else (revision resolution, pinning, streaming, the record) is the real code path."""
    import huggingface_hub

    _, (a, _, _) = mix
    local = _h.save_units(tmp_path / "hub-copy", a)
    calls = []

    def dataset_info(self, repo_id, revision=None, **kwargs):
        calls.append(("info", repo_id, revision))
        return SimpleNamespace(sha=SHA)

    def hf_hub_download(repo_id, filename, repo_type=None, revision=None, **kwargs):
        calls.append(("file", repo_id, filename, revision))
        return str(local / filename)

    real_load = datasets.load_dataset

    def load_dataset(path, *args, split=None, revision=None, streaming=False, **kwargs):
        if path != "owner/units":
            return real_load(path, *args, split=split, revision=revision, streaming=streaming, **kwargs)
        calls.append(("load", path, split, revision, streaming))
        files = sorted(str(p) for p in (local / "data").glob(f"{split}-*.parquet"))
        return real_load("parquet", data_files={split: files}, split=split, streaming=streaming)

    monkeypatch.setattr(huggingface_hub.HfApi, "dataset_info", dataset_info)
    monkeypatch.setattr(huggingface_hub, "hf_hub_download", hf_hub_download)
    monkeypatch.setattr(datasets, "load_dataset", load_dataset)
    cfg = TrainConfig(size="demo-xs", n_units=K, block_size=16, batch_size=4, tokens=2 * 4 * 16, warmup_min=1,
                      tracker=None, datasets=["owner/units"], store_dir=str(tmp_path / "stores"),
                      output_dir=str(tmp_path / "run"))
    run_training(cfg, progress=False)
    record = RunRecord.load(tmp_path / "run")
    assert record.datasets[0]["id"] == "owner/units" and record.datasets[0]["revision"] == SHA
    assert record.datasets[0]["requested_revision"] is None and record.datasets[0]["local"] is False
    assert ("info", "owner/units", "main") in calls and ("file", "owner/units", "README.md", SHA) in calls
    assert {c[3] for c in calls if c[0] == "load"} == {SHA}  # streamed at the resolved commit, both splits
    assert {c[2] for c in calls if c[0] == "load"} == {"train", "test"} and all(c[4] for c in calls if c[0] == "load")


@pytest.mark.usefixtures("one_thread")
def test_unigram_compressed_datasets_train_with_the_tokenizer_s_vocabulary(tmp_path, capsys):
    from transformers import AutoTokenizer, LlamaForCausalLM

    rng = np.random.default_rng(0)
    words = [rng.integers(0, K, size=rng.integers(2, 5)) for _ in range(10)]  # recurring unit "words"

    def split(n, tag):
        units = [np.concatenate([words[i] for i in rng.integers(0, 10, size=6)]).astype(np.uint16) for _ in range(n)]
        return datasets.Dataset.from_dict({"id": [f"{tag}{i}" for i in range(n)], "units": units,
                                           "n_frames": [len(u) for u in units], "seconds": [1.0] * n},
                                          features=_h.FEATURES)

    src = _h.save_units(tmp_path / "units", {"train": split(80, "a"), "test": split(10, "b")})
    compress = runpy.run_path(str(ROOT / "dataset_scripts" / "compress_units.py"))["main"]
    assert compress([str(src), "--output", str(tmp_path / "uni"), "--vocab-size", "40"]) == 0
    assert compress([str(tmp_path / "nowhere" / "x"), "--output", str(tmp_path / "y")]) == 2
    assert "no such folder, and not a Hub id" in capsys.readouterr().err
    P = 38  # pieces; <eos> = 38, <pad> = 39
    compressed = datasets.load_dataset("parquet", data_files=str(tmp_path / "uni" / "data" / "train-*.parquet"),
                                       split="train")

    cfg = TrainConfig(size="demo-xs", n_units=K, token_type="unigram", block_size=16, batch_size=4,
                      tokens=3 * 4 * 16, warmup_min=1, tracker=None, datasets=[str(tmp_path / "uni")],
                      store_dir=str(tmp_path / "stores"), output_dir=str(tmp_path / "run"))
    record = run_training(cfg, progress=False)
    store = TokenStore(next((tmp_path / "stores").glob("*/manifest.json")).parent)
    np.testing.assert_array_equal(_dataset_stream(store, 0), _h.stream_of(compressed, eos=P, column="tokens"))
    assert store.vocabulary.n_ids == P and record.stats["vocabulary"] == {"kind": "unigram", "n_ids": P, "eos": P,
                                                                          "pad": P + 1, "size": P + 2}
    assert record.tokenizer["unigram"]["pieces"] == P and record.tokenizer["id"] == "tok"
    tokenizer = AutoTokenizer.from_pretrained(tmp_path / "run" / "model")  # saved with the weights
    assert (len(tokenizer), tokenizer.eos_token_id, tokenizer.pad_token_id) == (P + 2, P, P + 1)
    model = LlamaForCausalLM.from_pretrained(tmp_path / "run" / "model")
    assert (model.config.vocab_size, model.config.eos_token_id, model.config.pad_token_id) == (P + 2, P, P + 1)
    from hf_slm.training.hub import render_model_card

    assert f"unigram tokenizer of {P} pieces" in render_model_card(record, "me/uni")
    with pytest.raises(ValueError, match="token_type='units' but the training tokens are 'unigram'"):
        from hf_slm.training import train

        train(TrainConfig(**{**cfg.__dict__, "token_type": "units", "output_dir": str(tmp_path / "r2")}),
              store, TokenStore(store.root, "test"), progress=False)


def test_pack_command(mix, tmp_path, capsys):
    config, _ = mix
    a = config.datasets[0].id
    yaml_path = tmp_path / "c.yaml"
    TrainConfig(n_units=K, datasets=[a], store_dir=str(tmp_path / "stores"), lr=1e-3).to_yaml(yaml_path)
    assert main(["pack", "--config", str(yaml_path), f"{config.datasets[2].id}:test=false", "--json",
                 "--no-progress"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert Path(summary["store"]).parent == tmp_path / "stores" and "shards" not in summary["train"]
    assert [d["test"] for d in summary["datasets"]] == [True, False]
    assert main(["pack", "--config", str(tmp_path)]) == 2
    assert "is a folder; --config takes a YAML file" in capsys.readouterr().err
    assert main(["pack", a, f"{a}:weight=abc", "--store-dir", str(tmp_path / "stores")]) == 2
    assert "weight expects a number > 0, got 'abc'" in capsys.readouterr().err
