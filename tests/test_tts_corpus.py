"""dataset_scripts/synthesize.py: a text dataset streamed through TTS into a unit dataset (or an audio dataset),
resumed after a crash with nothing lost or duplicated; the multi-speaker Story Cloze benchmark."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import datasets
import numpy as np
import pytest

from hf_slm.data.unit_dataset import load_unit_dataset, load_unit_info
from hf_slm.tts import EspeakVoice, TTSPipeline
from hf_slm.tts.corpus import load_tts_info, synthesize_cloze, synthesize_corpus

_spec = importlib.util.spec_from_file_location(
    "synthesize_script", Path(__file__).parents[1] / "dataset_scripts" / "synthesize.py")
script = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(script)

STORIES = ["Tom had a red ball.", "The cat sat on the mat.", "She ran to the park.", "", "It was 3 o'clock.",
           "A big dog barked.", "Mom made a cake.", "The sun was warm.", "...", "They played all day."]


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def text_dataset(tmp_path_factory):
    folder = tmp_path_factory.mktemp("texts") / "stories"
    datasets.DatasetDict({
        "train": datasets.Dataset.from_dict({"text": STORIES}),
        "validation": datasets.Dataset.from_dict({"text": ["The end came soon.", "Bye now."]}),
    }).save_to_disk(str(folder))
    return folder


@pytest.fixture(scope="module")
def tokenizer(tmp_path_factory):
    from hf_slm.units import LogMelEncoder, SpeechTokenizer

    voice = TTSPipeline(EspeakVoice("en-us"))
    tok = SpeechTokenizer.fit(LogMelEncoder(), [voice.synthesize(s)[0] for s in STORIES[:3]], n_units=16, seed=0)
    path = tmp_path_factory.mktemp("tok") / "tokenizer"
    tok.save_pretrained(path)
    return path


def _run(args: list[str]) -> int:
    return script.main(args)


def test_stories_stream_to_units_with_text_speaker_and_card(text_dataset, tokenizer, tmp_path):
    out = tmp_path / "units"
    code = _run(["--text-dataset", str(text_dataset), "--splits", "train", "validation", "--backend", "espeak",
                 "--voices", "en-us", "en-us+m3", "--tokenizer", str(tokenizer), "--output", str(out),
                 "--shard-rows", "4"])
    assert code == 0
    ds = load_unit_dataset(out)
    train, test = ds["train"], ds["test"]  # validation -> test
    assert len(train) == 8 and len(test) == 2  # "" and "..." cannot be spoken: counted, not written
    assert train["id"] == [f"train-{i:08d}" for i in (0, 1, 2, 4, 5, 6, 7, 9)]
    assert train["speaker"][:3] == ["espeak:en-us", "espeak:en-us+m3", "espeak:en-us"]  # row i: voice i mod 2
    assert train["text"][3] == "It was 3 o'clock."  # the source text is kept; the voice heard "three"
    assert all(0 <= max(u) < 16 for u in train["units"])
    info, tts = load_unit_info(out), load_tts_info(out)
    assert info.skipped == {"tts:empty_text": 2} and tts.failures == {"empty_text": 2}
    assert tts.backend == "espeak" and tts.voices == ["espeak:en-us", "espeak:en-us+m3"]
    assert tts.units == info.tokens == sum(len(u) for u in [*train["units"], *test["units"]])
    assert tts.hours == pytest.approx((sum(list(train["seconds"])) + sum(list(test["seconds"]))) / 3600, rel=1e-4)
    assert "Texts that could not be spoken, by reason: empty_text: 2" in (out / "README.md").read_text()
    # the same voice saying the same text gives the same units as speaking it directly
    from hf_slm.units import SpeechTokenizer

    direct = SpeechTokenizer.from_pretrained(tokenizer).encode(TTSPipeline(EspeakVoice("en-us")).synthesize(STORIES[0])[0])
    assert train["units"][0] == direct.units.tolist()


def test_a_crashed_run_resumes_without_losing_or_duplicating_rows(text_dataset, tokenizer, tmp_path, monkeypatch):
    from hf_slm.tts import corpus
    from hf_slm.units import SpeechTokenizer

    tok = SpeechTokenizer.from_pretrained(tokenizer)
    kwargs = dict(tokenizer=tok, shard_rows=3, backend="espeak")
    whole = synthesize_corpus(text_dataset, [EspeakVoice("en-us")], tmp_path / "whole", **kwargs)

    written = []
    real_write = corpus._write_atomic

    def write_then_die(ds, path):  # dies after shard 1's Parquet is in place, before its done-marker
        real_write(ds, path)
        written.append(path.name)
        if len(written) == 2:
            raise KeyboardInterrupt("killed")

    monkeypatch.setattr(corpus, "_write_atomic", write_then_die)
    with pytest.raises(KeyboardInterrupt):
        synthesize_corpus(text_dataset, [EspeakVoice("en-us")], tmp_path / "resumed", **kwargs)
    assert not (tmp_path / "resumed" / "README.md").exists()  # not loadable as complete
    monkeypatch.setattr(corpus, "_write_atomic", real_write)
    # a second process's share first (shards 1, 3), then the first's (0, 2): same rows as the single run
    synthesize_corpus(text_dataset, [EspeakVoice("en-us")], tmp_path / "resumed", process_index=1,
                      num_processes=2, **kwargs)
    assert not (tmp_path / "resumed" / "README.md").exists()
    synthesize_corpus(text_dataset, [EspeakVoice("en-us")], tmp_path / "resumed", process_index=0,
                      num_processes=2, **kwargs)
    a, b = load_unit_dataset(whole)["train"], load_unit_dataset(tmp_path / "resumed")["train"]
    assert sorted(b["id"]) == sorted(a["id"]) and len(set(b["id"])) == len(b)
    order = np.argsort(b["id"])
    assert [b["units"][i] for i in order] == [a["units"][i] for i in np.argsort(a["id"])]
    with pytest.raises(ValueError, match="other settings"):
        synthesize_corpus(text_dataset, [EspeakVoice("en-us")], tmp_path / "resumed", tokenizer=tok, shard_rows=5)


def test_keep_audio_streams_a_data_folder_into_an_audio_dataset(tmp_path):
    import json

    texts = tmp_path / "jsonl"  # a data folder: read with load_dataset(..., streaming=True), as a Hub corpus
    texts.mkdir()
    (texts / "train.jsonl").write_text("".join(json.dumps({"story": t}) + "\n" for t in STORIES))
    out = tmp_path / "audio"
    assert _run(["--text-dataset", str(texts), "--text-column", "story", "--backend", "espeak", "--keep-audio",
                 "--limit", "3", "--output", str(out)]) == 0
    ds = datasets.load_dataset("parquet", data_files=str(out / "data" / "*.parquet"), split="train")
    assert ds.features["audio"].sampling_rate == 16000 and len(ds) == 3
    from hf_slm.units import load_audio

    wave = load_audio(ds.cast_column("audio", datasets.Audio(decode=False))[0]["audio"], sample_rate=16000)
    assert abs(len(wave) / 16000 - ds[0]["seconds"]) < 1e-3
    assert load_tts_info(out).utterances == 3


def test_usage_errors_exit_with_code_2(text_dataset, tmp_path, capsys):
    assert _run(["--text-dataset", str(text_dataset), "--backend", "espeak", "--output", str(tmp_path / "x")]) == 2
    assert "--tokenizer is needed" in capsys.readouterr().err
    assert _run(["--text-dataset", str(tmp_path / "nowhere"), "--backend", "espeak", "--keep-audio",
                 "--output", str(tmp_path / "x")]) == 2
    assert _run(["--text-dataset", str(text_dataset), "--backend", "espeak", "--voices", "xx-nope", "--keep-audio",
                 "--output", str(tmp_path / "x")]) == 2


def test_multi_speaker_story_cloze_benchmark(tokenizer, tmp_path):
    from hf_slm.units import SpeechTokenizer

    rows = [{"id": f"s{i}", "prompt": p, "positive": pos, "negative": neg} for i, (p, pos, neg) in enumerate([
        ("Tom found a ball.", "He played with it.", "He ate the moon."),
        ("The cat was hungry.", "She ate her food.", "She flew to Mars."),
        ("It rained all day.", "We stayed inside.", "The sun burned us."),
    ])]
    src = tmp_path / "cloze"
    datasets.DatasetDict({"test": datasets.Dataset.from_list(rows)}).save_to_disk(str(src))
    voices = [TTSPipeline(EspeakVoice("en-us")), TTSPipeline(EspeakVoice("en-us+f3"))]
    out = synthesize_cloze(src, voices, SpeechTokenizer.from_pretrained(tokenizer), tmp_path / "bench")
    ds = load_unit_dataset(out, split="test")
    assert ds["id"] == ["s0-1", "s0-0", "s1-1", "s1-0", "s2-1", "s2-0"] and ds["label"] == [1, 0] * 3
    assert ds["item_id"] == ["s0", "s0", "s1", "s1", "s2", "s2"]
    assert ds["voice"] == ["espeak:en-us"] * 2 + ["espeak:en-us+f3"] * 2 + ["espeak:en-us"] * 2  # per item
    assert ds["text"][0] == "Tom found a ball. He played with it."
    from hf_slm.evaluation.benchmarks import pair_rows

    pairs = pair_rows(ds["item_id"], ds["label"], "cloze")  # what hf-slm eval reads
    assert len(pairs.item_ids) == 3
    with pytest.raises(ValueError, match="prompt/positive/negative"):
        from hf_slm.tts.corpus import cloze_candidates

        cloze_candidates([{"text": "x"}])


if __name__ == "__main__":
    sys.exit(pytest.main([__file__]))
