"""Importers of the released benchmark layouts, on miniature copies spoken by eSpeak NG: sLM21 syntactic/dev and
lexical/dev (gold.csv + wavs), spoken and topic StoryCloze, SALMon; resumption after a crash; skipped files."""

from __future__ import annotations

import json

import _evaluation_helpers as H
import pytest

from hf_slm.cli import main
from hf_slm.evaluation import import_benchmark, load_benchmark
from hf_slm.evaluation.loading import read_card
from hf_slm.units import LogMelEncoder, SpeechTokenizer, load_audio

K = 12




@pytest.fixture(scope="module")
def release(tmp_path_factory):
    root = tmp_path_factory.mktemp("releases")
    gold = H.write_zerospeech(root / "zr2021")
    H.write_storycloze(root / "sSC")
    H.write_storycloze(root / "tSC" / "nested", topic=True)
    H.write_salmon(root / "salmon")
    waves = [load_audio(p) for p in sorted(root.rglob("s0*.wav"))]
    tok = SpeechTokenizer.fit(LogMelEncoder(sample_rate=16000), waves, n_units=K, seed=0)
    tok.save_pretrained(root / "tokenizer")
    return {"root": root, "gold": gold, "tokenizer": root / "tokenizer"}


def _rows(folder):
    loaded = load_benchmark(folder)
    return loaded, loaded.dataset.to_list()


def test_zerospeech_syntactic_dev(release, tmp_path):
    out = import_benchmark("zerospeech-syntactic", release["root"] / "zr2021", tmp_path / "sblimp",
                           tokenizer=str(release["tokenizer"]), shard_rows=4)
    loaded, rows = _rows(out)
    # 3 pairs x 2 voices x 2 = 12 files; one has no wav, so its partner's item is dropped too
    assert loaded.split == "dev" and len(rows) == 10 and loaded.n_units == K
    block = read_card(out)["hf_slm_benchmark"]
    assert block["skipped"] == {"incomplete_item": 1, "missing_audio": 1, "not_in_gold": 1}
    assert block["items"] == 5 and block["benchmark"] == "sblimp"
    by_id = {r["id"]: r for r in rows}
    for g in release["gold"]["syntactic"][:-2]:
        row = by_id[g["filename"]]
        typ, sub = H.SYNTACTIC[g["id"]][:2]
        assert row["pair_id"] == f"{typ}/{sub}/{g['id']}" and row["item_id"] == f"{row['pair_id']}/{g['voice']}"
        assert (row["label"], row["voice"], row["phenomenon"], row["text"]) == (
            g["correct"], g["voice"], typ, g["transcription"])
    tok = SpeechTokenizer.from_pretrained(release["tokenizer"])
    wav = release["root"] / "zr2021" / "syntactic" / "dev" / "s000.wav"
    assert by_id["s000"]["units"] == tok.encode(load_audio(wav)).units.tolist()
    assert sum(r["n_frames"] == sum(r["durations"]) for r in rows) == len(rows)
    # importing again into the finished folder is a no-op; another release there is refused
    assert import_benchmark("zerospeech-syntactic", release["root"] / "zr2021", out,
                            tokenizer=str(release["tokenizer"])) == out
    with pytest.raises(ValueError, match="already holds another dataset"):
        import_benchmark("zerospeech-lexical", release["root"] / "zr2021", out, tokenizer=str(release["tokenizer"]))


def test_zerospeech_lexical_dev_and_scoring(release, tmp_path):
    out = tmp_path / "swuggy"
    assert main(["build-benchmark", "zerospeech-lexical", str(release["root"] / "zr2021" / "lexical" / "dev"),
                 str(out), "--tokenizer", str(release["tokenizer"])]) == 0
    loaded, rows = _rows(out)
    assert len(rows) == 6 and read_card(out)["hf_slm_benchmark"]["skipped"] == {"corrupt": 1, "incomplete_item": 1}
    assert {r["pair_id"] for r in rows} == {"0", "1"} and {r["voice"] for r in rows} == {"Alice", "Bob"}
    words = {r["text"] for r in rows if r["label"] == 1}
    assert words == {w for w, _ in H.LEXICAL}
    assert {r["text"] for r in rows if r["label"] == 0} == {" ".join(n) for _, n in H.LEXICAL}
    # the imported folder is what hf-slm eval scores
    model_dir = tmp_path / "model"
    H.tiny_llama(K).save_pretrained(model_dir)
    assert main(["eval", str(model_dir), "--benchmark", f"sWUGGY={out}", "--output", str(tmp_path / "r.json"),
                 "--no-progress"]) == 0
    result = json.loads((tmp_path / "r.json").read_text())["results"]["swuggy"]
    assert result["n_items"] == 3 and result["n_pairs"] == 2 and result["scoring"] == "paper"
    H.tiny_llama(8).save_pretrained(tmp_path / "model-k8")  # a model of another speech tokenizer
    assert main(["eval", str(tmp_path / "model-k8"), "--benchmark", f"swuggy={out}", "--no-progress"]) == 2


def test_spoken_and_topic_storycloze_and_salmon(release, tmp_path):
    tok = str(release["tokenizer"])
    for layout, name in (("sSC", "spoken_storycloze"), ("tSC", "topic_storycloze")):
        out = import_benchmark(layout, release["root"] / layout, tmp_path / layout, tokenizer=tok)
        loaded, rows = _rows(out)
        block = read_card(out)["hf_slm_benchmark"]
        assert block["benchmark"] == name and block["skipped"] == {"unrecognised_name": 1}
        assert loaded.split == "test" and len(rows) == 4
        assert [(r["id"], r["item_id"], r["label"]) for r in rows] == [
            ("0_1a2b_correct", "1a2b", 1), ("1_1a2b_incorrect", "1a2b", 0),
            ("2_3c4d_correct", "3c4d", 1), ("3_3c4d_incorrect", "3c4d", 0)]
    out = import_benchmark("salmon", release["root"] / "salmon", tmp_path / "salmon", tokenizer=tok)
    loaded, rows = _rows(out)
    assert len(rows) == 9 and {r["phenomenon"] for r in rows} == {"speaker_consistency", "gender_consistency"}
    first = [r for r in rows if r["item_id"] == "speaker_consistency/0"]
    assert [(r["id"], r["label"]) for r in first] == [
        ("speaker_consistency/sample_0_0", 1), ("speaker_consistency/sample_0_1", 0),
        ("speaker_consistency/sample_0_2", 0)]


class CrashingTokenizer:
    """The tokenizer, except that encoding raises after ``budget`` batches (a process killed mid-import)."""

    def __init__(self, tokenizer, budget: int | None):
        self.tokenizer, self.budget, self.batches = tokenizer, budget, 0

    def __getattr__(self, name):
        return getattr(self.tokenizer, name)

    def encode_batch(self, waves):
        if self.budget is not None and self.batches >= self.budget:
            raise KeyboardInterrupt("killed")
        self.batches += 1
        return self.tokenizer.encode_batch(waves)


def test_import_resumes_after_a_crash_without_losing_or_repeating_work(release, tmp_path):
    tok = SpeechTokenizer.from_pretrained(release["tokenizer"])
    src = release["root"] / "zr2021"
    options = dict(tokenizer_id="tok", shard_rows=4, batch_size=2)
    reference = import_benchmark("zerospeech-syntactic", src, tmp_path / "ref", tokenizer=tok, **options)
    crashing = CrashingTokenizer(tok, budget=3)  # shard 0 (2 batches) done, killed inside shard 1
    with pytest.raises(KeyboardInterrupt):
        import_benchmark("zerospeech-syntactic", src, tmp_path / "out", tokenizer=crashing, **options)
    assert not (tmp_path / "out" / "README.md").exists()
    resumed = CrashingTokenizer(tok, budget=None)
    out = import_benchmark("zerospeech-syntactic", src, tmp_path / "out", tokenizer=resumed, **options)
    assert resumed.batches == 3  # shards 1 and 2 (10 files: 4 + 4 + 2 in batches of 2), not shard 0 again
    got, want = load_benchmark(out).dataset, load_benchmark(reference).dataset
    assert got.to_list() == want.to_list()
    assert read_card(out)["hf_slm_benchmark"] == read_card(reference)["hf_slm_benchmark"]
    assert not (out / ".import").exists()


def test_bad_releases_are_named(release, tmp_path):
    with pytest.raises(FileNotFoundError, match="no syntactic/dev/gold.csv"):
        import_benchmark("zerospeech-syntactic", tmp_path, tmp_path / "x", tokenizer=str(release["tokenizer"]))
    bad = tmp_path / "zr" / "syntactic" / "dev"
    bad.mkdir(parents=True)
    (bad / "gold.csv").write_text("filename,id,voice,type,subtype,correct\nf1,0,A,t,s,yes\n")
    with pytest.raises(ValueError, match=r"gold.csv:2: column 'correct' is 'yes'"):
        import_benchmark("zerospeech-syntactic", tmp_path / "zr", tmp_path / "y", tokenizer=str(release["tokenizer"]))
    assert main(["build-benchmark", "sSC", str(release["root"] / "sSC"), str(tmp_path / "z")]) == 2
