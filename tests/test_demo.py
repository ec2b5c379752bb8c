"""The demo study end to end at toy scale: every stage runs, leaves its outputs, and a rerun reuses them."""

import json

import pytest

from hf_slm.cli import main
from hf_slm.demo import BENCHMARKS, Demo, DemoConfig, RunSpec, default_grid
from hf_slm.training import RunRecord


@pytest.fixture(scope="module")
def demo_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("demo")
    runs = [RunSpec(size, tokens) for size in ("demo-xs", "demo-s") for tokens in (2048, 4096)]
    runs.append(RunSpec("demo-xs", 4096, unique_tokens=2048))
    config = DemoConfig(output=str(out), n_train_stories=40, n_test_stories=6, n_pairs=6, n_units=16,
                        batch_size=4, num_proc=1, runs=runs, mixed_precision="no")
    Demo(config).run()
    return out, config


def test_default_grid_is_three_sizes_by_three_budgets_plus_a_multi_epoch_run():
    grid = default_grid()
    single = [r for r in grid if r.unique_tokens is None]
    assert len({r.size for r in single}) == 3 and all(sum(r.size == s for r in single) == 3 for s in {r.size for r in single})
    assert any(r.unique_tokens and r.tokens / r.unique_tokens >= 2 for r in grid)
    assert len({r.name for r in grid}) == len(grid)


def test_every_stage_leaves_its_outputs(demo_dir):
    out, config = demo_dir
    for name in ("fig1_loss_vs_compute.png", "fig2_metrics_vs_compute.png", "fig4_metrics_vs_loss.png", "report.md"):
        assert (out / name).stat().st_size > 0
    assert (out / "tokenizer" / "config.json").exists()
    for group in ("stories", *BENCHMARKS):
        assert (out / "units" / group / "README.md").exists()
    for spec in config.runs:
        record = RunRecord.load(out / "runs" / spec.name / "run.json")
        assert record.flops == 6 * record.N * record.D
        steps = record.stats["steps"]
        assert steps == -(-spec.tokens // (config.batch_size * config.block_size))  # D rounded up to whole steps
        assert 0 < record.D <= steps * config.batch_size * config.block_size  # D counts real tokens, not pad
        assert record.curve[-1]["tokens"] == record.D and record.loss == record.curve[-1]["loss"]
        assert set(record.metrics) == set(BENCHMARKS)
        for metric in record.metrics.values():
            assert metric["n"] == config.n_pairs and metric["ci_low"] <= metric["accuracy"] <= metric["ci_high"]
        if spec.unique_tokens:
            assert record.epochs == pytest.approx(record.D / record.U) and record.epochs > 1.5
    report = (out / "report.md").read_text()
    assert all(spec.name in report for spec in config.runs) and "beat" in report


def test_rerun_reuses_finished_stages(demo_dir, capsys):
    out, config = demo_dir
    records = {p: p.stat().st_mtime_ns for p in (out / "runs").glob("*/run.json")}
    tokenizer = (out / "tokenizer" / "config.json").stat().st_mtime_ns
    Demo(config).run()
    assert {p: p.stat().st_mtime_ns for p in records} == records
    assert (out / "tokenizer" / "config.json").stat().st_mtime_ns == tokenizer


def test_cli_help_and_config_record(demo_dir, capsys):
    out, config = demo_dir
    with pytest.raises(SystemExit):
        main(["demo", "--help"])
    assert "--output" in capsys.readouterr().out
    saved = json.loads((out / "demo_config.json").read_text())
    assert saved["n_units"] == config.n_units and len(saved["runs"]) == len(config.runs)


def test_other_settings_in_the_same_folder_are_refused(demo_dir):
    out, config = demo_dir
    other = DemoConfig(**{**config.__dict__, "n_units": config.n_units + 1})
    with pytest.raises(ValueError, match="n_units"):
        Demo(other).run()
