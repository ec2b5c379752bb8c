"""Unit dataset builds that meet bad input (issue 16): audio that makes no unit, NaN samples, durations that
overflow, a partial build, a damaged marker, local paths mistaken for Hub ids, and build_units.py's errors."""

import json
import runpy
from collections import Counter
from pathlib import Path

import datasets
import numpy as np
import pytest

from hf_slm.data.build import build_unit_dataset
from hf_slm.data.schema import SchemaError, unit_features
from hf_slm.data.unit_dataset import (
    UnitDatasetInfo,
    encode_audio_dataset,
    load_unit_dataset,
    load_unit_info,
    save_unit_dataset,
)
from hf_slm.units import LogMelEncoder, SpeechTokenizer, TokenizerFileError
from hf_slm.units.audio import encode_wav_bytes

SR = 16000
SCRIPTS = Path(__file__).resolve().parents[1] / "dataset_scripts"
WAV_STRUCT = {"bytes": datasets.Value("binary"), "path": datasets.Value("string")}


def chirp(seconds: float, f0: float = 300.0) -> np.ndarray:
    t = np.arange(int(seconds * SR)) / SR
    return (0.3 * np.sin(2 * np.pi * (f0 + 300 * t) * t)).astype(np.float32)


def float_wav(wave: np.ndarray) -> dict:
    """WAV bytes of float samples (so NaN and Inf survive the encoding)."""
    import io

    import soundfile as sf

    buffer = io.BytesIO()
    sf.write(buffer, wave, SR, format="WAV", subtype="FLOAT")
    return {"bytes": buffer.getvalue(), "path": None}


def audio_dataset(waves: dict[str, dict]) -> datasets.Dataset:
    ds = datasets.Dataset.from_dict({"id": list(waves), "audio": list(waves.values())},
                                    features=datasets.Features({"id": datasets.Value("string"), "audio": WAV_STRUCT}))
    return ds.cast_column("audio", datasets.Audio(sampling_rate=SR, decode=False))


@pytest.fixture(scope="module")
def tokenizer() -> SpeechTokenizer:
    return SpeechTokenizer.fit(LogMelEncoder(n_mels=16), [chirp(1.0, f) for f in (200, 600)], n_units=8, seed=0,
                               n_init=1)


def test_audio_that_makes_no_unit_and_non_finite_audio_are_skipped_and_counted(tokenizer):
    header_then_garbage = encode_wav_bytes(np.zeros(16000, np.float32), SR)[:44] + bytes(range(100))
    nan, inf = chirp(0.5), chirp(0.5)
    nan[100], inf[2000] = np.nan, np.inf
    ds = audio_dataset({
        "good": float_wav(chirp(0.8)), "10ms": float_wav(chirp(0.01)), "1sample": float_wav(chirp(1 / SR)),
        "garbage": {"bytes": header_then_garbage, "path": None}, "nan": float_wav(nan), "inf": float_wav(inf),
        "good2": float_wav(chirp(0.3)),
    })
    skipped = Counter()
    units = encode_audio_dataset(ds, tokenizer, skipped=skipped, batch_size=3)
    assert units["id"] == ["good", "good2"] and all(len(u) for u in units["units"])
    assert skipped == {"too_short": 3, "non_finite": 2}


def test_durations_do_not_wrap_and_are_checked_on_every_row_when_written(tokenizer, tmp_path):
    # 3 minutes of silence at 400 Hz: one run of 72,000 frames (as 12 minutes at 100 Hz), which uint16 stored as 6,464
    silence = SpeechTokenizer(LogMelEncoder(frame_rate=400, n_mels=8), np.eye(8, dtype=np.float32)[:3])
    units = encode_audio_dataset(audio_dataset({"quiet": float_wav(np.zeros(3 * 60 * SR, np.float32))}), silence)
    assert units[0]["durations"] == [72_000] == [units[0]["n_frames"]]
    info = UnitDatasetInfo("tok", None, 3, 400.0, True)
    assert load_unit_dataset(save_unit_dataset({"train": units}, tmp_path / "ok", info), split="train")[0][
        "durations"] == [72_000]

    rows = {"id": [f"u{i}" for i in range(100)], "units": [[1, 2]] * 100, "durations": [[3, 4]] * 100,
            "n_frames": [7] * 99 + [8], "seconds": [0.3] * 100}
    bad = datasets.Dataset.from_dict(rows, features=unit_features())
    with pytest.raises(SchemaError, match=r"row 99 \(id='u99'\) 'durations' sum to 7, not to 'n_frames' = 8"):
        save_unit_dataset({"train": bad}, tmp_path / "bad", UnitDatasetInfo("tok", None, 8, 25.0, True))
    assert not (tmp_path / "bad" / "README.md").exists()


def test_a_partial_build_is_invisible_to_load_dataset_until_complete(tokenizer, tmp_path):
    waves = {f"u{i}": float_wav(chirp(0.2 + 0.05 * i, 200 + 40 * i)) for i in range(8)}
    audio_dataset(waves).save_to_disk(str(tmp_path / "audio"))
    out = tmp_path / "units"
    kwargs = dict(shard_rows=2, test_fraction=0.3, num_processes=2)
    build_unit_dataset(tmp_path / "audio", tokenizer, out, process_index=0, **kwargs)  # half the shards: a crash
    assert len(list((out / ".shards" / "data").glob("*.parquet"))) >= 2 and not (out / "data").exists()
    with pytest.raises(FileNotFoundError):  # not some of the rows under guessed splits: nothing
        datasets.load_dataset(str(out))
    with pytest.raises(SchemaError, match="unfinished unit dataset build"):
        load_unit_info(out)
    build_unit_dataset(tmp_path / "audio", tokenizer, out, process_index=1, **kwargs)
    loaded = datasets.load_dataset(str(out))
    reference = build_unit_dataset(tmp_path / "audio", tokenizer, tmp_path / "ref", shard_rows=2, test_fraction=0.3)
    expected = load_unit_dataset(reference)
    assert sorted(loaded) == ["test", "train"] and len(loaded["test"]) > 0
    for split in ("train", "test"):
        assert sorted(loaded[split]["id"]) == sorted(expected[split]["id"])
    assert not list(out.rglob("*.tmp")) and not (out / ".shards" / "data").exists()
    assert load_unit_info(out).utterances == 8 and load_unit_info(out).frames == load_unit_info(reference).frames


def test_an_unreadable_shard_marker_is_named(tokenizer, tmp_path):
    audio_dataset({f"u{i}": float_wav(chirp(0.3)) for i in range(4)}).save_to_disk(str(tmp_path / "audio"))
    build_unit_dataset(tmp_path / "audio", tokenizer, tmp_path / "units", shard_rows=2, num_processes=2)
    marker = tmp_path / "units" / ".shards" / "train-00000.json"
    assert json.loads(marker.read_text())["splits"]["train"]["utterances"] == 2
    marker.write_text('{"skipped": {"cor')  # as a non-atomic write cut by a kill left it
    with pytest.raises(ValueError, match=r"train-00000\.json: unreadable build file .*delete it"):
        build_unit_dataset(tmp_path / "audio", tokenizer, tmp_path / "units", shard_rows=2, num_processes=2,
                           process_index=1)


def test_local_paths_are_never_looked_up_on_the_hub(tmp_path, monkeypatch, capsys):
    import huggingface_hub

    def no_hub(*args, **kwargs):
        raise AssertionError(f"Hub lookup for {args}")

    monkeypatch.setattr(huggingface_hub, "hf_hub_download", no_hub)
    monkeypatch.setattr(datasets, "load_dataset", no_hub)
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "a.txt").write_text("x")
    (tmp_path / "file.txt").write_text("x")
    monkeypatch.chdir(tmp_path)
    for load in (load_unit_info, load_unit_dataset):
        with pytest.raises(SchemaError, match=r"notes: not a unit dataset \(no README\.md card\)"):
            load(tmp_path / "notes")
        with pytest.raises(SchemaError, match="file.txt: is a file"):
            load("file.txt")
        for missing in (tmp_path / "gone" / "units", "notes/units"):  # an absolute path; a local folder's child
            with pytest.raises(FileNotFoundError, match="no such file or folder, and not a Hub id"):
                load(missing)
    with pytest.raises(TokenizerFileError, match="no such tokenizer folder"):
        SpeechTokenizer.from_pretrained("notes/tokenizer")
    compress = runpy.run_path(str(SCRIPTS / "compress_units.py"))["main"]
    assert compress([str(tmp_path / "notes"), "--output", str(tmp_path / "c")]) == 2
    assert "notes" in (err := capsys.readouterr().err) and "unit dataset" in err


def test_build_units_script_errors_are_one_line_with_exit_2(tokenizer, tmp_path, monkeypatch, capsys):
    import huggingface_hub

    tokenizer.save_pretrained(tmp_path / "tok")
    audio_dataset({"a": float_wav(chirp(0.3))}).save_to_disk(str(tmp_path / "audio"))
    audio_dataset({"a": float_wav(chirp(0.3))}).remove_columns("id").save_to_disk(str(tmp_path / "no_ids"))
    audio_dataset({}).save_to_disk(str(tmp_path / "empty"))
    (tmp_path / "not_a_tokenizer").mkdir()
    (tmp_path / "file").write_text("x")
    main = runpy.run_path(str(SCRIPTS / "build_units.py"))["main"]

    def fails(argv: list[str], message: str) -> None:
        capsys.readouterr()
        assert main([*argv, "--output", str(tmp_path / "out")] if "--output" not in argv else argv) == 2
        err = capsys.readouterr().err
        errors = [line for line in err.splitlines() if line.startswith("build_units: error:")]
        assert len(errors) == 1 and message in errors[0] and "Traceback" not in err, err

    tok = ["--tokenizer", str(tmp_path / "tok")]
    fails([str(tmp_path / "audio"), "--tokenizer", str(tmp_path / "not_a_tokenizer")], "config.json: missing")
    fails([str(tmp_path / "audio"), "--tokenizer", str(tmp_path / "nowhere")], "no such tokenizer folder")
    fails([str(tmp_path / "no_ids"), *tok], "has no id column 'id'; columns are ['audio']")
    fails([str(tmp_path / "audio"), *tok, "--output", str(tmp_path / "file")], "is a file")
    fails([str(tmp_path / "empty"), *tok], "has no rows")
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    fails([str(tmp_path / "audio"), *tok, "--push-to-hub", "me/units"], "offline mode is on")
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(huggingface_hub, "get_token", lambda: "hf_x")
    monkeypatch.setattr("hf_slm.data.build.push_unit_dataset", lambda *a: (_ for _ in ()).throw(
        ConnectionError("cannot reach huggingface.co")))
    main = runpy.run_path(str(SCRIPTS / "build_units.py"))["main"]
    assert main([str(tmp_path / "audio"), *tok, "--output", str(tmp_path / "pushed"), "--push-to-hub", "me/u"]) == 2
    assert "ConnectionError: cannot reach huggingface.co); the unit dataset is complete on disk" in capsys.readouterr().err
    assert load_unit_dataset(tmp_path / "pushed")["train"]["id"] == ["a"]

    assert main([str(tmp_path / "no_ids"), *tok, "--no-id-column", "--output", str(tmp_path / "numbered")]) == 0
    assert load_unit_dataset(tmp_path / "numbered")["train"]["id"] == ["train-0"]


def test_kept_columns_present_in_some_rows_only_are_an_error(tokenizer):
    rows = [{"id": "a", "audio": float_wav(chirp(0.3)), "text": "one"}, {"id": "b", "audio": float_wav(chirp(0.3))}]
    with pytest.raises(ValueError, match=r"row 'b': kept column\(s\) \['text'\] are in some rows and not in others"):
        encode_audio_dataset(rows, tokenizer, keep_columns=["text"])
