"""The demo study end to end at toy scale (text -> eSpeak speech -> units -> speech and text LMs -> benchmarks
-> report): the models learn (test loss far below log V and below the unigram baseline, the bigger model
beats the smaller at equal D), the records and report hold what the contracts say, a rerun does nothing
twice, and a folder of another study is refused."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import yaml

from hf_slm.cli import main
from hf_slm.study.cli import default_config
from hf_slm.study.config import StudyConfig, StudyConfigError
from hf_slm.study.runner import Study
from hf_slm.training import RunRecord

K = 16
P = 38  # unigram pieces of the speech-unigram family
STEPS, BATCH, BLOCK = 64, 1, 256


def _tiny(output: Path, **changes) -> StudyConfig:
    data = yaml.safe_load(default_config("demo").read_text())
    data.update(output=str(output), departures=["toy scale"])
    data["speech"].update(stories=150, test_stories=6, workers=1)
    data["tokenizer"].update(n_units=K, fit_utterances=40)
    data["benchmarks"].update(items=8)
    data["grid"] = {"sizes": ["demo-xs", "demo-s"], "tokens": [STEPS * BATCH * BLOCK],
                    "multi_epoch": {"sizes": ["demo-xs"], "tokens": STEPS * BLOCK, "epochs": [2]}}
    data["training"].update(batch_size=BATCH, lr=3e-3, min_lr=3e-4, warmup_min=3, curve_points=3,
                            mixed_precision="no")
    data["size_overrides"] = {}
    data["text"] = {"source": "train", "vocab_size": 48}
    data["unigram"] = {"enabled": True, "vocab_size": P + 2, "sizes": ["demo-xs"], "grid": {"tokens": [32 * BLOCK]}}
    data["fits"].update(bootstrap=0, starts="coarse")
    data["report"] = {"figures": ["fig1", "fig3", "fig5"], "html": True}
    for key, value in changes.items():
        data[key] = value
    return StudyConfig.from_dict(data)


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    config = _tiny(tmp_path_factory.mktemp("demo") / "study")
    study = Study(config, progress=False, log=lambda msg: None)
    study.run()
    return study


def _unigram_cross_entropy(train: list, test: list, vocab: int) -> float:
    """Test cross-entropy (nats) of the add-0.5 unigram model of the training tokens (EOS included)."""
    counts = np.bincount(np.concatenate([np.append(u, vocab - 2) for u in train]), minlength=vocab) + 0.5
    probs = counts / counts.sum()
    tokens = np.concatenate([np.append(u, vocab - 2) for u in test])
    return float(-np.log(probs[tokens]).mean())


def test_models_learn_beyond_the_unigram_baseline(study):
    from hf_slm.data.unit_dataset import load_unit_dataset

    for family, k in (("text", 48), ("speech", K)):
        stories = load_unit_dataset(study.corpus.unit_dir(family, "stories"))
        baseline = _unigram_cross_entropy(stories["train"]["units"], stories["test"]["units"], k + 2)
        runs = {r.size: RunRecord.load(Path(r.output_dir)) for r in study.plan()
                if r.family == family and r.unique_tokens is None}
        small, big = runs["demo-xs"], runs["demo-s"]
        assert big.D == small.D
        assert big.loss < small.loss < math.log(k + 2) and baseline < math.log(k + 2), (family, big.loss, small.loss)
        # well below: the bigger model has learned context, not just counts (the tiny one, 48 steps, stays near
        # the unigram baseline)
        assert big.loss < baseline - 0.25 and big.loss < math.log(k + 2) - 0.4, (family, big.loss, baseline)
        assert big.curve[0]["loss"] > big.curve[-1]["loss"]


def test_records_and_report(study):
    runs = study.plan()
    assert len(runs) == 7 and {r.family for r in runs} == {"speech", "text", "speech-unigram"}
    for run in runs:
        record = RunRecord.load(Path(run.output_dir))
        assert record.flops == 6 * record.N * record.D and record.stats["family"] == run.family
        assert record.stats["steps"] == run.steps and len(record.curve) >= 3
        assert set(record.metrics) == {"sblimp", "spoken_storycloze", "topic_storycloze"}
        for name, metric in record.metrics.items():
            assert metric["n"] == 8 and metric["ci_low"] <= metric["accuracy"] <= metric["ci_high"]
            assert metric["scoring"] == "paper" and metric["rule"] == "paper"
            other = record.stats["metrics_by_scoring"]["sum"][name]
            assert other["rule"] == "sum" and other["n"] == 8
        if run.unique_tokens:
            assert record.epochs == pytest.approx(2, rel=0.05)
    report = study.root / "report"
    summary = json.loads((report / "study.json").read_text())
    assert {r["run"] for r in summary["runs"]} == {r.name for r in runs}
    assert set(summary["checks"]) == {"speech", "text", "speech-unigram"}
    assert summary["study"]["departures"] == ["toy scale"]
    assert set(summary["figures"]) == {"fig1", "fig3", "fig5"}
    assert (report / "fig3_text_vs_speech.png").stat().st_size > 5000
    assert (report / "fig5_unit_vs_unigram.png").stat().st_size > 5000
    html = (report / "report.html").read_text()
    assert html.count("data:image/png;base64,") == 3
    md = (report / "report.md").read_text()
    assert "eq.4 not fitted: 2 runs" in md  # too few runs for eq.4: said, not hidden
    assert summary["study"]["timings"]["runs.train"] > 0


def test_the_unigram_family_trains_on_compressed_units_and_is_scored_on_the_speech_benchmarks(study):
    from transformers import PreTrainedTokenizerFast

    from hf_slm.data.unit_dataset import load_unit_dataset, load_unit_info
    from hf_slm.evaluation.token_ids import is_unigram_folder
    from hf_slm.units import decompress

    folder = study.corpus.unit_dir("speech-unigram", "stories")
    stories, info = load_unit_dataset(folder), load_unit_info(folder)
    tokenizer = PreTrainedTokenizerFast.from_pretrained(str(folder / info.unigram["tokenizer"]))
    assert len(tokenizer) == P + 2 and info.n_units == K
    for row in stories["train"].select(range(20)):  # lossless, and shorter: recurring unit strings became pieces
        np.testing.assert_array_equal(decompress(tokenizer, row["tokens"]), row["units"])
    assert info.unigram["ratio"] < 0.8
    assert study.corpus.unit_dir("speech-unigram", "sblimp") == study.corpus.unit_dir("speech", "sblimp")

    (run,) = [r for r in study.plan() if r.family == "speech-unigram"]
    record = RunRecord.load(Path(run.output_dir))
    assert record.stats["vocabulary"] == {"kind": "unigram", "n_ids": P, "eos": P, "pad": P + 1, "size": P + 2}
    assert is_unigram_folder(Path(run.output_dir) / "model")  # the tokenizer travels with the weights
    assert record.curve[0]["loss"] > record.curve[-1]["loss"] and record.loss < math.log(P + 2)
    assert {m["n"] for m in record.metrics.values()} == {8}  # speech benchmarks, compressed at scoring time


def test_rerun_trains_nothing_and_refuses_other_data(study):
    records = {p: p.stat().st_mtime_ns for p in (study.root / "runs").glob("*/run.json")}
    again = Study(study.config, progress=False, log=lambda msg: None)
    assert set(again.states().values()) == {"done"}
    again.run(stages=("data", "runs"))
    assert {p: p.stat().st_mtime_ns for p in records} == records
    other = _tiny(study.root, tokenizer={**study.config.to_dict()["tokenizer"], "n_units": K + 1})
    with pytest.raises(StudyConfigError, match="tokenizer"):
        Study(other, progress=False, log=lambda msg: None).run(stages=("data",))


def test_a_study_of_given_unit_datasets_trains_and_scores_on_them(study, tmp_path):
    """speech.source: units (the paper's study): the runs train on speech.datasets and are scored on
    benchmarks.datasets; the study builds no data of its own."""
    given = {name: str(study.corpus.unit_dir("speech", name)) for name in ("stories", *study.config.benchmarks.names)}
    config = _tiny(tmp_path / "units-study",
                   speech={"source": "units", "datasets": [given["stories"]]},
                   tokenizer={"type": "pretrained", "path": str(study.corpus.tokenizer_dir), "n_units": K},
                   benchmarks={**study.config.to_dict()["benchmarks"],
                               "datasets": {n: given[n] for n in study.config.benchmarks.names}},
                   grid={"sizes": ["demo-xs"], "tokens": [32 * BLOCK]}, text={"source": "none"}, unigram={})
    other = Study(config, progress=False, log=lambda msg: None)
    other.run(stages=("data", "runs"))
    (run,) = other.plan()
    record = RunRecord.load(Path(run.output_dir))
    assert [d["id"] for d in record.datasets] == [given["stories"]] and record.finished
    assert {m["n"] for m in record.metrics.values()} == {8}
    assert sorted(p.name for p in other.root.iterdir()) == ["runs", "stores", "study_config.json"]


def test_demo_cli_help_and_dry_run(capsys, tmp_path):
    with pytest.raises(SystemExit):
        main(["demo", "--help"])
    assert "--output" in capsys.readouterr().out
    assert main(["demo", "--dry-run", "--output", str(tmp_path / "d")]) == 0
    out = capsys.readouterr().out
    assert "speech-demo-m-800k" in out and "text-demo-m-400k" in out and not (tmp_path / "d").exists()
