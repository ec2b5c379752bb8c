import io

import datasets
import numpy as np
import pytest
import soundfile as sf

from hf_slm.tts import EspeakVoice, make_stories, synthesize_dataset, to_wav_bytes


@pytest.fixture(scope="module")
def items():
    return [{"id": s.id, "text": s.text, "topic": s.topic, "index": i}
            for i, s in enumerate(make_stories(4, seed=5))]


@pytest.fixture(scope="module")
def dataset(items):
    return synthesize_dataset(items, EspeakVoice(), desc="test")


def test_dataset_has_16khz_wav_bytes_and_matching_seconds(items, dataset):
    assert dataset.column_names == ["id", "text", "speaker", "seconds", "audio", "topic", "index"]
    assert dataset.features["audio"] == datasets.Audio(sampling_rate=16000, decode=False)
    assert dataset.features["seconds"] == datasets.Value("float32")
    assert dataset["id"] == [it["id"] for it in items] and dataset["index"] == [0, 1, 2, 3]
    assert set(dataset["speaker"]) == {"espeak:en-us"}
    for row in dataset:
        assert row["audio"]["path"] is None
        info = sf.info(io.BytesIO(row["audio"]["bytes"]))
        assert (info.samplerate, info.channels, info.subtype) == (16000, 1, "PCM_16")
        wave, _ = sf.read(io.BytesIO(row["audio"]["bytes"]), dtype="float32")
        assert row["seconds"] == pytest.approx(len(wave) / 16000, abs=1e-4)
        assert 0.2 <= row["seconds"] / len(row["text"].split()) <= 0.6
        assert np.sqrt(np.mean(wave**2)) > 0.02


def test_parallel_synthesis_gives_the_same_dataset(items, dataset):
    parallel = synthesize_dataset(items, EspeakVoice(), num_proc=2, desc="test")
    assert parallel.to_dict() == dataset.to_dict()


def test_bad_items_are_rejected():
    voice = EspeakVoice()
    with pytest.raises(ValueError, match="needs string 'id' and 'text'"):
        synthesize_dataset([{"id": "a"}], voice)
    with pytest.raises(ValueError, match="not unique"):
        synthesize_dataset([{"id": "a", "text": "Hi."}, {"id": "a", "text": "Ho."}], voice)
    with pytest.raises(ValueError, match="column 'extra'"):
        synthesize_dataset([{"id": "a", "text": "Hi.", "extra": [1]}], voice)


def test_to_wav_bytes_round_trips():
    wave = 0.5 * np.sin(np.linspace(0, 100, 16000)).astype(np.float32)
    back, sr = sf.read(io.BytesIO(to_wav_bytes(wave, 16000)), dtype="float32")
    assert sr == 16000 and np.abs(back - wave).max() < 1e-4


def test_chunked_rows_give_the_same_dataset(items, dataset):
    chunked = synthesize_dataset(items, EspeakVoice(), rows_per_chunk=3, desc="test")
    assert chunked.features == dataset.features
    assert chunked["id"] == dataset["id"] and chunked["index"] == dataset["index"]
    assert [a["bytes"] for a in chunked["audio"]] == [a["bytes"] for a in dataset["audio"]]
