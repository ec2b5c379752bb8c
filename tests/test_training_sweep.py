import importlib.util
import json
import math
import re
from pathlib import Path

import pytest

from hf_slm.data.unit_dataset import UnitDatasetInfo, save_unit_dataset
from hf_slm.training import PAPER_SIZES, ConfigError, RunRecord, TrainConfig, get_size
from hf_slm.training.sweep import (
    CONFLICT,
    DONE,
    PAPER_EPOCHS,
    PAPER_RATIOS,
    TODO,
    format_table,
    paper_grid,
    pending,
    run_local,
    run_state,
    write_slurm,
)

ROOT = Path(__file__).resolve().parents[1]
CONFIGS = ROOT / "recipes" / "configs"
_spec = importlib.util.spec_from_file_location("_training_mix_helpers", Path(__file__).with_name("test_training_mix.py"))
_mix = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_mix)
K, _split = _mix.K, _mix._split  # tiny unit splits, shared with the training-mix tests
one_thread, store_dir = _mix.one_thread, _mix.store_dir


def _recipe():
    spec = importlib.util.spec_from_file_location("sweep_recipe", ROOT / "recipes" / "sweep.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _finish(run, **changes):
    """Write a finished run.json for ``run`` (its own config unless ``changes`` alter it)."""
    config = run.config().to_dict()
    config.update(changes)
    N = run.n_params
    RunRecord(run=run.name, size=run.size, N=N, N_total=N + 1000, D=run.tokens, U=run.unique_tokens,
              epochs=run.tokens / run.unique_tokens, flops=6.0 * N * run.tokens, flops_attn=7.0 * N * run.tokens,
              loss=2.0, config=config, datasets=[], tokenizer=None, code_version={}).save(run.output_dir)


@pytest.fixture
def base_yaml(tmp_path):
    path = tmp_path / "base.yaml"
    path.write_text("size: demo-s\nn_units: 12\nblock_size: 16\nbatch_size: 4\ntokens: 999\nepochs: 3\n"
                    "lr: 1.0e-3\ntracker: null\nwarmup_min: 1\ndatasets:\n  - units/a\n")
    return path


def test_paper_grid_sizes_budgets_and_names(tmp_path):
    runs = paper_grid(root=tmp_path / "sweep", config_dir=CONFIGS)
    single = [r for r in runs if r.epochs is None]
    multi = [r for r in runs if r.epochs is not None]
    assert len(runs) == 5 * 7 + 5 * 4 and len(single) == 35 and len(multi) == 20
    assert {(r.size, r.tokens_per_param) for r in single} == {(s, float(x)) for s in PAPER_SIZES for x in PAPER_RATIOS}
    assert {(r.size, r.epochs) for r in multi} == {(s, float(e)) for s in PAPER_SIZES for e in PAPER_EPOCHS}
    for r in single:
        assert r.tokens == round(r.tokens_per_param * PAPER_SIZES[r.size].n_non_embedding)
        assert r.unique_tokens == r.tokens
    for r in multi:  # fixed total budget D = 20 N, U = D / epochs
        assert r.tokens_per_param == 20 and r.tokens == 20 * PAPER_SIZES[r.size].n_non_embedding
        assert r.unique_tokens == math.ceil(r.tokens / r.epochs)
    names = [r.name for r in runs]
    assert len(set(names)) == len(names) and len({r.output_dir for r in runs}) == len(runs)
    assert "85M-dn16" in names and "823M-dn20-x10ep" in names

    by_name = {r.name: r for r in runs}
    cfg = by_name["309M-dn64"].config()  # recipes/configs/309M.yaml + the grid's keys
    assert cfg.size == "309M" and cfg.tokens_per_param == 64 and cfg.tokens is None and cfg.epochs is None
    assert cfg.mixed_precision == "bf16" and cfg.block_size == 2050 and len(cfg.datasets) == 7  # from the YAML
    assert cfg.output_dir == str(tmp_path / "sweep" / "309M-dn64") and cfg.run_name == "309M-dn64"
    cfg = by_name["20M-dn20-x8ep"].config()
    assert cfg.tokens_per_param == 20 and cfg.epochs == 8 and cfg.unique_tokens is None


def test_restricted_grid_and_overrides(tmp_path, base_yaml):
    runs = paper_grid(sizes=["demo-xs", "demo-s"], ratios=[0.5, 1, 1.0], epochs=[4], multi_epoch_ratio=2,
                      root=tmp_path, base_config=base_yaml, overrides=["lr=3e-4", "seed=7"])
    assert [r.name for r in runs] == ["demo-xs-dn0.5", "demo-xs-dn1", "demo-s-dn0.5", "demo-s-dn1",
                                      "demo-xs-dn2-x4ep", "demo-s-dn2-x4ep"]
    for run in runs:
        cfg = run.config()
        assert cfg.lr == 3e-4 and cfg.seed == 7 and cfg.size == run.size  # overrides reach every run
        assert cfg.tokens is None  # the base file's budget never survives
        assert cfg.epochs == (4 if "x4ep" in run.name else None) and cfg.tokens_per_param == run.tokens_per_param
    assert paper_grid(sizes=["demo-s"], ratios=[], epochs=[2], root=tmp_path, base_config=base_yaml)[0].epochs == 2
    with pytest.raises(ConfigError, match="tokens_per_param"):
        paper_grid(sizes=["demo-s"], root=tmp_path, base_config=base_yaml, overrides=["tokens_per_param=3"])
    with pytest.raises(ConfigError, match="nope"):
        paper_grid(sizes=["demo-s"], root=tmp_path, base_config=base_yaml, overrides=["nope=1"])
    with pytest.raises(ValueError, match="unknown model size"):
        paper_grid(sizes=["12B"], root=tmp_path, base_config=base_yaml)
    with pytest.raises(FileNotFoundError, match="demo-s.yaml"):
        paper_grid(sizes=["demo-s"], root=tmp_path, config_dir=CONFIGS)
    with pytest.raises(ValueError, match="not unique"):
        paper_grid(sizes=["demo-s", "demo-s"], root=tmp_path, base_config=base_yaml)
    with pytest.raises(ValueError, match="positive"):
        paper_grid(sizes=["demo-s"], ratios=[0], root=tmp_path, base_config=base_yaml)


def test_slurm_array_configs_round_trip_and_skip_finished(tmp_path, base_yaml):
    runs = paper_grid(sizes=["demo-xs", "demo-s"], ratios=[1, 2, 4], epochs=[2], root=tmp_path / "runs",
                      base_config=base_yaml)
    script = tmp_path / "slurm" / "sweep.sh"
    todo = write_slurm(runs, script, accelerate_args="--multi_gpu --num_machines $SLURM_NNODES",
                       sbatch=["partition=gpu", "gpus-per-node=8", "time=24:00:00", "exclusive"],
                       setup=["source .venv/bin/activate"], train_script="recipes/train.py", array_limit=3)
    text = script.read_text()
    assert len(todo) == len(runs) == 8
    assert "#SBATCH --array=0-7%3\n" in text
    for line in ("#SBATCH --partition=gpu", "#SBATCH --gpus-per-node=8", "#SBATCH --time=24:00:00",
                 "#SBATCH --exclusive", "source .venv/bin/activate"):
        assert line + "\n" in text
    assert ('accelerate launch --multi_gpu --num_machines $SLURM_NNODES recipes/train.py --config "$CONFIG"'
            in text)
    listed = re.findall(r"^  (\S+)  # (\S+)$", text, flags=re.M)
    assert [name for _, name in listed] == [r.name for r in runs]  # array index i -> run i
    assert sorted(p.name for p in (script.parent / "configs").iterdir()) == sorted(f"{r.name}.yaml" for r in runs)
    for (path, _), run in zip(listed, runs, strict=True):
        assert Path(path) == script.parent.resolve() / "configs" / f"{run.name}.yaml"
        assert TrainConfig.from_yaml(path) == run.config()  # reads back to an equal config

    _finish(runs[0])
    _finish(runs[5])
    script2 = tmp_path / "again" / "sweep.sh"
    todo = write_slurm(runs, script2)
    text = script2.read_text()
    assert "#SBATCH --array=0-5\n" in text and len(todo) == 6
    names = [name for _, name in re.findall(r"^  (\S+)  # (\S+)$", text, flags=re.M)]
    assert names == [r.name for i, r in enumerate(runs) if i not in (0, 5)]
    assert not (script2.parent / "configs" / f"{runs[0].name}.yaml").exists()
    for run in runs:
        _finish(run)
    with pytest.raises(ValueError, match="every run"):
        write_slurm(runs, tmp_path / "none.sh")


def test_finished_runs_are_skipped_and_conflicts_refused(tmp_path, base_yaml):
    runs = paper_grid(sizes=["demo-xs"], ratios=[1, 2], epochs=[2], root=tmp_path, base_config=base_yaml)
    assert [run_state(r) for r in runs] == [TODO] * 3
    _finish(runs[1])
    assert [run_state(r) for r in runs] == [TODO, DONE, TODO]
    table = format_table(runs)
    assert re.search(r"demo-xs-dn2 .* done ", table) and re.search(r"demo-xs-dn1 .* todo ", table)
    assert table.endswith("3 runs, 1 done, 2 to do")

    calls = []

    def fake_runner(config, progress=True):
        calls.append(config)
        return RunRecord(run=config.run_name, size=config.size, N=1, N_total=1, D=1, U=1, epochs=1.0, flops=6.0,
                         flops_attn=6.0, loss=1.0, config={}, datasets=[], tokenizer=None, code_version={})

    run_local(runs, runner=fake_runner, log=None)
    assert [c.run_name for c in calls] == ["demo-xs-dn1", "demo-xs-dn20-x2ep"]
    assert calls[1] == runs[2].config()

    _finish(runs[0], lr=0.5)  # a record of another config in the run's folder
    assert run_state(runs[0]) == CONFLICT
    calls.clear()
    with pytest.raises(ConfigError, match=r"demo-xs-dn1.*lr"):
        run_local(runs, runner=fake_runner, log=None)
    assert calls == []  # nothing trained before the check
    with pytest.raises(ConfigError, match="demo-xs-dn1"):
        pending(runs)


def test_recipe_lists_runs_and_writes_slurm(tmp_path, base_yaml, capsys):
    recipe = _recipe()
    common = ["--sizes", "demo-xs,demo-s", "--ratios", "1,2", "--epochs", "", "--config", str(base_yaml),
              "--root", str(tmp_path / "runs"), "lr=2e-3"]
    assert recipe.main(["--list", "--json", *common]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [r["name"] for r in rows] == ["demo-xs-dn1", "demo-xs-dn2", "demo-s-dn1", "demo-s-dn2"]
    assert all(r["state"] == TODO for r in rows) and rows[1]["D"] == 2 * get_size("demo-xs").n_non_embedding
    assert rows[0]["extra_overrides"] == ["lr=2e-3"]

    script = tmp_path / "s" / "sweep.sh"
    assert recipe.main(["--slurm", str(script), "--sbatch", "partition=gpu",
                        "--accelerate-args", "--num_processes 4", *common]) == 0
    text = script.read_text()
    assert "#SBATCH --array=0-3\n" in text and "#SBATCH --partition=gpu\n" in text
    assert f"accelerate launch --num_processes 4 {ROOT / 'recipes' / 'train.py'} --config" in text
    assert TrainConfig.from_yaml(script.parent / "configs" / "demo-s-dn2.yaml").lr == 2e-3
    with pytest.raises(SystemExit):
        recipe.main(["--list", *common, "output_dir=elsewhere"])  # grid keys belong to the sweep
    assert "output_dir" in capsys.readouterr().err


@pytest.mark.usefixtures("one_thread", "store_dir")
def test_recipe_run_trains_tiny_grid(tmp_path, capsys):
    info = UnitDatasetInfo(tokenizer="tok", tokenizer_revision="r1", n_units=K, frame_rate=25.0, dedup=False)
    data = save_unit_dataset({"train": _split(40, 0), "test": _split(6, 1)}, tmp_path / "units", info)
    base = tmp_path / "tiny.yaml"
    TrainConfig(size="demo-xs", n_units=K, block_size=16, batch_size=4, warmup_min=1, tracker=None,
                datasets=[str(data)]).to_yaml(base)
    N = get_size("demo-xs").n_non_embedding  # 13,408: D/N = 0.02 is ~268 tokens, 5 steps of 4 x 16
    args = ["--sizes", "demo-xs", "--ratios", "0.02", "--epochs", "2", "--multi-epoch-ratio", "0.03",
            "--config", str(base), "--root", str(tmp_path / "runs"), "--no-progress"]
    recipe = _recipe()
    assert recipe.main(["--run", *args]) == 0

    single = RunRecord.load(tmp_path / "runs" / "demo-xs-dn0.02")
    assert single.finished and single.run == "demo-xs-dn0.02" and single.N == N
    assert round(0.02 * N) <= single.D <= round(0.02 * N) + 4 * 16
    assert single.U == 40 * 21 and single.epochs == pytest.approx(single.D / single.U)  # random windows: the store
    multi = RunRecord.load(tmp_path / "runs" / "demo-xs-dn0.03-x2ep")
    assert multi.finished and round(0.03 * N) <= multi.D <= round(0.03 * N) + 4 * 16
    assert 1.6 < multi.epochs < 2.4 and multi.U < multi.D  # repeated data
    assert multi.config["epochs"] == 2 and multi.config["tokens_per_param"] == 0.03
    capsys.readouterr()

    mtime = (tmp_path / "runs" / "demo-xs-dn0.02" / "run.json").stat().st_mtime_ns
    assert recipe.main(["--run", *args]) == 0  # everything done: nothing retrains
    assert "2 of 2 runs already done; training 0" in capsys.readouterr().out
    assert (tmp_path / "runs" / "demo-xs-dn0.02" / "run.json").stat().st_mtime_ns == mtime
    assert recipe.main(["--list", "--json", *args]) == 0
    assert [r["state"] for r in json.loads(capsys.readouterr().out)] == [DONE, DONE]
    assert recipe.main(["--slurm", str(tmp_path / "s.sh"), *args]) == 0
    assert "no script written" in capsys.readouterr().out and not (tmp_path / "s.sh").exists()
