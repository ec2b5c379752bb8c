import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

import _training_helpers as _h
import pytest

from hf_slm.data.processes import LaunchError
from hf_slm.data.unit_dataset import UnitDatasetInfo, save_unit_dataset
from hf_slm.training import RunRecord, TrainConfig
from hf_slm.training.cli import register
from hf_slm.training.hub import render_model_card
from hf_slm.training.mix import load_training_data
from hf_slm.training.run import run_training
from hf_slm.training.trainer import make_accelerator

one_thread, store_dir = _h.one_thread, _h.store_dir
pytestmark = pytest.mark.usefixtures("one_thread", "store_dir")

K = _h.K
_split = _h.unit_split


@pytest.fixture
def unit_dirs(tmp_path):
    info = UnitDatasetInfo(tokenizer="tok", tokenizer_revision="r1", n_units=K, frame_rate=25.0, dedup=False)
    a = save_unit_dataset({"train": _split(40, 0), "test": _split(6, 1)}, tmp_path / "a", info)
    b = save_unit_dataset({"train": _split(30, 2)}, tmp_path / "b", info)  # no test split, like sTinyStories
    return a, b


def test_mix_splits_and_test_flag(unit_dirs, tmp_path):
    a, b = unit_dirs
    cfg = TrainConfig(n_units=K, block_size=16, datasets=[str(a), {"id": str(b), "test": False, "weight": 2.0}])
    data = load_training_data(cfg, progress=False)
    assert data.train.n_tokens == (40 + 30) * 21 and data.test.n_tokens == 6 * 21  # b stays out of the test set
    assert data.tokenizer == {"id": "tok", "revision": "r1"}  # weight 2.0 copies no token: the sampler weighs
    assert [d["weight"] for d in data.datasets] == [1.0, 2.0] and data.datasets[1]["test_tokens"] == 0
    held = load_training_data(TrainConfig(n_units=K, block_size=16, datasets=[str(b)], test_fraction=0.2),
                              progress=False)
    assert held.train.n_tokens + held.test.n_tokens == 30 * 21 and held.test.n_tokens > 0
    with pytest.raises(ValueError, match="n_units"):
        load_training_data(TrainConfig(n_units=K + 1, datasets=[str(a)]))


def test_train_command_end_to_end(unit_dirs, tmp_path, capsys):
    a, b = unit_dirs
    config = tmp_path / "c.yaml"
    TrainConfig(size="demo-xs", n_units=K, block_size=16, batch_size=4, tokens=4 * 4 * 16, warmup_min=1,
                tracker=None, datasets=[str(a), {"id": str(b), "test": False}]).to_yaml(config)
    parser = argparse.ArgumentParser()
    register(parser.add_subparsers())
    out = tmp_path / "run"
    args = parser.parse_args(["train", "--config", str(config), f"output_dir={out}", "run_name=tiny", "--no-progress"])
    assert args.func(args) == 0
    record = RunRecord.load(out)
    assert record.run == "tiny" and record.finished and record.stats["steps"] == 4
    assert 4 * 4 * 16 - 16 < record.D <= 4 * 4 * 16  # real tokens: the one partial block may be drawn
    assert record.tokenizer == {"id": "tok", "revision": "r1"} and record.datasets[1]["test"] is False
    card = render_model_card(record, "me/tiny")
    assert "# tiny" in card and "me/tiny" in card and "$" not in card.replace("$fields", "")


ROOT = Path(__file__).resolve().parents[1]


def test_two_processes_train_the_same_run_as_one(unit_dirs, tmp_path):
    a, _ = unit_dirs
    config = tmp_path / "c.yaml"
    TrainConfig(size="demo-xs", n_units=12, block_size=16, batch_size=4, tokens=6 * 4 * 16, warmup_min=1, lr=3e-3,
                eval_every=3, grad_clip=None, tracker=None, datasets=[str(a)]).to_yaml(config)
    two = tmp_path / "two"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "GLOO_SOCKET_IFNAME": "lo"}
    done = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
         str(ROOT / "recipes" / "train.py"), "--config", str(config), f"output_dir={two}", "--no-progress"],
        env=env, capture_output=True, text=True, timeout=120,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.count("finished=True") == 1  # only the main process reports
    parallel = json.loads((two / "run.json").read_text())
    single = run_training(TrainConfig.from_yaml(config, [f"output_dir={tmp_path / 'one'}"]), progress=False)

    assert parallel["stats"]["processes"] == 2 and parallel["stats"]["micro_batch"] == 2
    assert [p["step"] for p in parallel["curve"]] == [p["step"] for p in single.curve] == [3, 6]
    assert [p["loss"] for p in parallel["curve"]] == pytest.approx([p["loss"] for p in single.curve], abs=1e-5)
    assert parallel["D"] == single.D


def test_a_launch_accelerate_does_not_see_is_refused(tmp_path, monkeypatch):
    config = TrainConfig(size="demo-xs", tracker=None, output_dir=str(tmp_path))
    make_accelerator(config)  # the process state is set up once, as one process
    monkeypatch.setenv("WORLD_SIZE", "2")
    with pytest.raises(LaunchError, match="launched as 2 processes but Accelerate set up 1"):
        make_accelerator(config)
