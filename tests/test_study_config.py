"""The study config and its plan: demo.yaml and paper.yaml load, the paper's grid is planned exactly (sizes,
D/N, epochs, the release's batch sizes), FLOPs and GPU-hours follow their formulas, bad configs are refused."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import yaml

from hf_slm.cli import main
from hf_slm.study.cli import default_config
from hf_slm.study.config import StudyConfig, StudyConfigError
from hf_slm.study.plan import estimate, format_plan, plan_runs
from hf_slm.training.sizes import PAPER_SIZES

REPO = Path(__file__).resolve().parents[1]
RELEASE_BATCH = {"20M": 64, "85M": 128, "155M": 256, "309M": 252, "823M": 494}


@pytest.mark.parametrize("name", ["demo", "paper"])
def test_recipes_configs_are_the_embedded_ones(name):
    recipe = REPO / "recipes" / "configs" / f"{name}.yaml"
    assert recipe.read_text() == default_config(name).read_text()
    StudyConfig.from_yaml(recipe)


def test_paper_plan_is_the_papers_grid_with_the_release_batches():
    config = StudyConfig.from_yaml(default_config("paper"))
    runs = plan_runs(config)
    single = [r for r in runs if r.unique_tokens is None]
    multi = [r for r in runs if r.unique_tokens is not None]
    assert len(single) == 5 * 7 and len(multi) == 5 * 4
    for r in single:
        ratio = r.tokens / r.N
        assert min(abs(ratio - x) for x in (2, 4, 8, 16, 32, 64, 128)) < 1e-6
    assert sorted({round(r.tokens / r.unique_tokens) for r in multi}) == [2, 4, 8, 10]
    for r in runs:
        assert r.N == PAPER_SIZES[r.size].n_non_embedding and r.batch_size == RELEASE_BATCH[r.size]
        assert r.block_size == 2050 and r.n_units == 500
        assert r.flops == 6 * r.N * r.tokens and r.steps == math.ceil(r.tokens / (r.batch_size * 2050))
    # 823M at D/N = 128 needs 105B tokens of a 10.89B-token mix: the plan shows the repetition
    big = next(r for r in runs if r.name == "speech-823M-dn128")
    assert big.epochs == pytest.approx(128 * big.N / 10.89e9)
    est = estimate(config, runs)
    sustained = 0.4 * 312e12
    assert est["gpu_hours"] == pytest.approx(sum(r.flops_attn for r in runs) / sustained / 3600)
    assert est["disk"]["units"] == pytest.approx(2 * 10.89e9)
    # every run's TrainConfig resolves, with the release's warm-up where it differs from the paper
    from hf_slm.study.runner import Study

    study = Study(config)
    cfg = study.train_config(next(r for r in runs if r.size == "85M"))
    assert cfg.global_batch_size == 128 and cfg.warmup_steps(10_000) == 1000 and cfg.mixed_precision == "bf16"
    cfg = study.train_config(next(r for r in runs if r.size == "309M"))
    assert cfg.warmup_steps(58_800) == 588


def test_dry_run_cli_prints_the_plan(capsys, tmp_path):
    assert main(["study", str(default_config("paper")), "--dry-run", "--set", f"output={tmp_path / 'p'}"]) == 0
    out = capsys.readouterr().out
    assert "55 runs" in out and "speech-823M-dn128" in out and "GPU-h" in out and "unit datasets" in out
    assert main(["study", str(default_config("demo")), "--dry-run", "--json"]) == 0
    plan = json.loads(capsys.readouterr().out)
    families = {r["family"] for r in plan["runs"]}
    assert families == {"speech", "text"} and plan["estimate"]["disk"]["audio"] > 0
    assert not (tmp_path / "p").exists()  # a dry run writes nothing


def test_without_a_text_grid_every_speech_run_has_its_text_run():
    runs = plan_runs(StudyConfig.from_yaml(default_config("demo"), {"text.grid": {}}))
    speech = {r.name.removeprefix("speech-"): r for r in runs if r.family == "speech"}
    text = {r.name.removeprefix("text-"): r for r in runs if r.family == "text"}
    assert speech.keys() == text.keys()
    for key, r in speech.items():
        assert (r.N, r.tokens, r.unique_tokens) == (text[key].N, text[key].tokens, text[key].unique_tokens)
    assert any(r.epochs > 1 for r in speech.values())
    assert "text" in format_plan(StudyConfig.from_yaml(default_config("demo")), runs)


def test_the_text_family_takes_its_own_budgets_over_the_same_sizes():
    config = StudyConfig.from_yaml(default_config("demo"), {"text.grid": {"tokens": [5e4, 1e5], "multi_epoch": {}}})
    runs = plan_runs(config)
    speech = {(r.size, r.tokens, r.unique_tokens) for r in runs if r.family == "speech"}
    text = {(r.size, r.tokens, r.unique_tokens) for r in runs if r.family == "text"}
    assert text == {(size, t, None) for size in config.grid.sizes for t in (50_000, 100_000)}
    assert any(u for _, _, u in speech) and len(speech) == 3 * 3 + 2
    with pytest.raises(StudyConfigError, match="text.grid: the text family trains the study's sizes"):
        StudyConfig.from_yaml(default_config("demo"), {"text.grid": {"sizes": ["demo-xs"]}})
    with pytest.raises(StudyConfigError, match="text.grid budget must be > 0"):
        StudyConfig.from_yaml(default_config("demo"), {"text.grid": {"tokens": [0]}})


def test_a_study_of_unit_datasets_trains_on_them(tmp_path):
    from hf_slm.study.runner import Study

    paper = default_config("paper")
    config = StudyConfig.from_yaml(paper, {"output": str(tmp_path / "study")})
    study = Study(config, log=lambda msg: None)
    train = study.train_config(plan_runs(config)[0])
    assert [(d.id, d.test) for d in train.datasets] == [(d["id"], d.get("test", True)) for d in config.speech.datasets]
    assert train.token_type == "units" and train.n_units == 500
    with pytest.raises(StudyConfigError, match="unigram.datasets: with speech.source: units"):
        StudyConfig.from_yaml(paper, {"unigram.enabled": True})
    compressed = [{"id": "units-unigram/librispeech"}, {"id": "units-unigram/librilight"}]
    config = StudyConfig.from_yaml(paper, {"unigram.enabled": True, "unigram.datasets": compressed,
                                           "output": str(tmp_path / "study")})
    run = next(r for r in plan_runs(config) if r.family == "speech-unigram")
    train = Study(config, log=lambda msg: None).train_config(run)
    assert [d.id for d in train.datasets] == [d["id"] for d in compressed]
    assert train.token_type == "unigram" and train.n_units == 500 and run.n_units == 4998


def _config(tmp_path, **changes) -> Path:
    data = yaml.safe_load(default_config("demo").read_text())
    for dotted, value in changes.items():
        node = data
        *parents, last = dotted.split(".")
        for part in parents:
            node = node[part]
        node[last] = value
    path = tmp_path / "study.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


@pytest.mark.parametrize(("changes", "message"), [
    ({"grid.tokns": [1]}, r"grid: unknown key\(s\) \['tokns'\]"),
    ({"grid.tokens_per_param": [2, 4]}, "exactly one of tokens"),
    ({"speech.source": "units"}, "speech.datasets"),
    ({"benchmarks.scoring": "best"}, "benchmarks.scoring must be one of"),
    ({"grid.multi_epoch.epochs": [1]}, "epochs must be > 1"),
    ({"grid.sizes": ["demo-zz"], "grid.multi_epoch.sizes": ["demo-zz"], "size_overrides": {}}, "unknown model size"),
    ({"training.lr": -1.0, "size_overrides": {}}, "lr must be > 0"),
    ({"grid.sizes": ["demo-m"], "size_overrides": {"demo-xs": {}}}, r"size_overrides: sizes \['demo-xs'\] are not"),
    ({"training.weight_decay": -1.0}, "weight_decay must be >= 0"),
])
def test_bad_configs_name_the_key(tmp_path, changes, message):
    with pytest.raises(StudyConfigError, match=message):
        config = StudyConfig.from_yaml(_config(tmp_path, **changes))
        from hf_slm.study.runner import Study

        study = Study(config)
        study.train_config(plan_runs(config)[0])


def test_bad_config_exits_with_code_2(tmp_path, capsys):
    assert main(["study", str(_config(tmp_path, **{"fits.runs": "some"})), "--dry-run"]) == 2
    assert "fits.runs" in capsys.readouterr().err
