import math
from pathlib import Path

import _training_helpers as _h
import datasets
import numpy as np
import pytest
import torch
from safetensors.torch import load_file
from transformers import LlamaForCausalLM

from hf_slm.data import PackedBlocks, eos_id, pack_blocks, pad_id
from hf_slm.data.store import MixConfig, TokenStore, pack_mix
from hf_slm.training import ConfigError, RunRecord, TrainConfig, TrainingDiverged, latest_checkpoint, train
from hf_slm.training import trainer as trainer_module

one_thread = _h.one_thread
pytestmark = pytest.mark.usefixtures("one_thread")

K, T = 16, 32


def _data(n_train=32, n_test=4):
    """A repetitive unit stream (0..K-1 twice, EOS); 32 utterances of 33 tokens fill 33 blocks exactly."""
    seqs = [list(range(K)) * 2 for _ in range(n_train + n_test)]
    train = pack_blocks(seqs[:n_train], T, eos_id(K), pad_id(K))
    test = pack_blocks(seqs[n_train:], T, eos_id(K), pad_id(K))
    return train, test


def _config(tmp_path, name="run", **changes):
    base = dict(size="demo-xs", n_units=K, block_size=T, batch_size=4, micro_batch_size=2, tokens=8 * 4 * T,
                lr=3e-3, min_lr=3e-4, warmup_min=2, eval_every=2, tracker=None, output_dir=str(tmp_path / name))
    base.update(changes)
    return TrainConfig(**base)


def test_loss_decreases_and_record_is_complete(tmp_path):
    train_data, test_data = _data()
    cfg = _config(tmp_path, tokens=30 * 4 * T, eval_every=10)
    record = train(cfg, train_data, test_data, progress=False)
    losses = [p["loss"] for p in record.curve]
    assert [p["step"] for p in record.curve] == [10, 20, 30]
    assert losses[-1] < losses[0] < math.log(K + 2)
    assert losses[-1] < 0.6 * math.log(K + 2)
    assert record.loss == losses[-1] and record.finished
    assert record.D == 30 * 4 * T and record.flops == 6 * record.N * record.D
    assert record.flops_attn > record.flops and record.epochs == pytest.approx(record.D / record.U)
    assert record.U == 32 * 33 and record.stats["sampling"] == "paper"  # random windows over the whole stream
    assert RunRecord.load(tmp_path / "run" / "run.json") == record
    model = LlamaForCausalLM.from_pretrained(tmp_path / "run" / "model")
    assert model.config.vocab_size == K + 2 and model.config.eos_token_id == K
    assert latest_checkpoint(cfg.output_dir) is None  # checkpoints are removed once the model is saved


def _assert_same_run(straight, resumed, tmp_path, name):
    """The resumed run ``name`` has the uninterrupted run's curve and final weights (within 1e-6)."""
    assert [p["step"] for p in resumed.curve] == [p["step"] for p in straight.curve] == [2, 4, 6, 8]
    np.testing.assert_allclose([p["loss"] for p in resumed.curve], [p["loss"] for p in straight.curve], atol=1e-6)
    a = LlamaForCausalLM.from_pretrained(tmp_path / "straight" / "model").state_dict()
    b = LlamaForCausalLM.from_pretrained(tmp_path / name / "model").state_dict()
    assert all(torch.allclose(a[k], b[k], atol=1e-6) for k in a)


@pytest.mark.parametrize("sampling", ["paper", "sequential"])
def test_resume_equals_uninterrupted(tmp_path, sampling):
    train_data, test_data = _data()
    straight = train(_config(tmp_path, "straight", checkpoint_every=3, sampling=sampling), train_data, test_data,
                     progress=False)
    assert straight.stats["sampling"] == sampling

    cfg = _config(tmp_path, "resumed", checkpoint_every=3, sampling=sampling)
    stopped = train(TrainConfig(**{**cfg.__dict__, "stop_after": 4}), train_data, test_data, progress=False)
    assert not stopped.finished and stopped.stats["steps"] == 4
    assert not (tmp_path / "resumed" / "run.json").exists()
    assert latest_checkpoint(cfg.output_dir).name == "step-00000004"
    resumed = train(cfg, train_data, test_data, progress=False)

    _assert_same_run(straight, resumed, tmp_path, "resumed")


def test_gradient_accumulation_keeps_the_global_batch(tmp_path):
    blocks = np.tile(np.arange(T) % K, (16, 1)).astype(np.int64)
    blocks[:, ::5] = (blocks[:, ::5] + np.arange(16)[:, None]) % K  # blocks differ from one another
    data = PackedBlocks(blocks=blocks, lengths=np.full(16, T))
    states = {}
    for micro in (4, 1):
        cfg = _config(tmp_path, f"mb{micro}", micro_batch_size=micro, tokens=2 * 4 * T, grad_clip=None)
        record = train(cfg, data, data, progress=False)
        assert record.stats["grad_accum"] == 4 // micro and record.stats["steps"] == 2
        assert record.D == 2 * 4 * T
        states[micro] = LlamaForCausalLM.from_pretrained(tmp_path / f"mb{micro}" / "model").state_dict()
    for micro in (1,):
        assert all(torch.allclose(states[4][k], states[micro][k], atol=1e-5) for k in states[4])


def test_finished_run_is_skipped_and_a_different_one_refused(tmp_path, monkeypatch):
    train_data, test_data = _data()
    cfg = _config(tmp_path, tokens=2 * 4 * T)
    first = train(cfg, train_data, test_data, progress=False)

    def no_training(*args, **kwargs):
        raise AssertionError("a finished run must not train again")

    monkeypatch.setattr(trainer_module, "build_model", no_training)
    again = train(TrainConfig(**{**cfg.__dict__, "log_every": 1}), train_data, test_data, progress=False)
    assert again == first
    with pytest.raises(ConfigError, match="lr"):
        train(TrainConfig(**{**cfg.__dict__, "lr": 1e-3}), train_data, test_data, progress=False)


def test_budget_errors_are_clear(tmp_path):
    train_data, test_data = _data(n_train=4)
    with pytest.raises(ConfigError, match="no data budget"):
        train(_config(tmp_path, tokens=None), train_data, test_data, progress=False)
    with pytest.raises(ValueError, match="unique_tokens"):
        train(_config(tmp_path, unique_tokens=10**6), train_data, test_data, progress=False)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_bf16_on_gpu(tmp_path):
    train_data, test_data = _data()
    record = train(_config(tmp_path, mixed_precision="bf16", tokens=10 * 4 * T), train_data, test_data, progress=False)
    assert record.finished and math.isfinite(record.loss)
    compiled = train(_config(tmp_path, "compiled", mixed_precision="bf16", tokens=10 * 4 * T, compile=True),
                     train_data, test_data, progress=False)  # torch.compile with the shifted-targets loss
    assert compiled.loss == pytest.approx(record.loss, rel=0.05)


def test_micro_batch_is_the_whole_batch_without_cuda(tmp_path):
    train_data, test_data = _data()
    record = train(_config(tmp_path, micro_batch_size=None, tokens=2 * 4 * T), train_data, test_data, progress=False)
    assert record.stats["micro_batch"] == 4 and record.stats["grad_accum"] == 1


def test_a_missing_tracker_package_is_named(tmp_path, monkeypatch):
    import accelerate.tracking

    monkeypatch.setattr(accelerate.tracking, "get_available_trackers", lambda: ["tensorboard"])
    train_data, test_data = _data()
    with pytest.raises(ConfigError, match="tracker='trackio'.*pip install trackio"):
        train(_config(tmp_path, tracker="trackio"), train_data, test_data, progress=False)


def test_tensorboard_tracker_logs_the_curves(tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    train_data, test_data = _data()
    train(_config(tmp_path, tracker="tensorboard", tokens=4 * 4 * T, log_every=1), train_data, test_data,
          progress=False)
    events = list((tmp_path / "run").rglob("events.out.tfevents.*"))
    assert events, "no TensorBoard event file under the output folder"
    acc = EventAccumulator(str(events[0].parent))
    acc.Reload()
    tags = set(acc.Tags()["scalars"])
    assert {"train/loss", "train/tokens_per_s", "test/loss"} <= tags
    assert [e.step for e in acc.Scalars("train/loss")] == [1, 2, 3, 4]


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_measured_micro_batch_fits_and_predicts_the_peak(tmp_path):
    from hf_slm.training.memory import measure_memory
    from hf_slm.training.trainer import build_model, make_optimizer

    cfg = _config(tmp_path, size="demo-m", block_size=256)
    model = build_model(cfg).cuda()
    predicted = measure_memory(model, 256, K, lambda: torch.autocast("cuda", dtype=torch.bfloat16))
    optimizer = make_optimizer(model, cfg, torch.device("cuda"))
    ids = torch.arange(8 * 256, device="cuda").view(8, 256) % K
    torch.cuda.reset_peak_memory_stats()
    for _ in range(2):
        with torch.autocast("cuda", dtype=torch.bfloat16):
            loss = model(input_ids=ids, labels=ids).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
    assert torch.cuda.max_memory_allocated() <= 1.1 * predicted.peak(8)
    record = train(_config(tmp_path, "auto", micro_batch_size=None, mixed_precision="bf16"), *_data(), progress=False)
    assert record.stats["micro_batch"] == 4  # a tiny model: the whole batch fits


def test_runs_with_different_mixed_precision_share_a_process(tmp_path):
    """Accelerate keeps one mixed precision per process; sweeps and tests run several in one."""
    train_data, test_data = _data()
    losses = []
    for i, precision in enumerate(("no", "bf16", "no")):
        record = train(_config(tmp_path, f"r{i}", mixed_precision=precision, tokens=2 * 4 * T), train_data, test_data,
                       progress=False)
        losses.append([p["loss"] for p in record.curve])
    assert losses[0] == losses[2]  # fp32 again after bf16: the same numbers
    assert losses[1] != losses[0] and losses[1] == pytest.approx(losses[0], rel=0.05)  # bf16 autocast did run


def test_a_diverging_run_stops_naming_the_step_and_keeps_the_last_good_checkpoint(tmp_path):
    train_data, test_data = _data()
    cfg = _config(tmp_path, lr=1e4, min_lr=0.0, warmup=2, tokens=8 * 4 * T, checkpoint_every=1, eval_every=None)
    with pytest.raises(TrainingDiverged, match=r"step \d+: training diverged .*last good checkpoint is .*step-0"):
        train(cfg, train_data, test_data, progress=False)
    kept = latest_checkpoint(cfg.output_dir)
    weights = load_file(kept / "model.safetensors")
    assert weights and all(torch.isfinite(w).all() for w in weights.values())  # never NaN on disk
    assert not (tmp_path / "run" / "model").exists() and not (tmp_path / "run" / "run.json").exists()
    # the record of a run whose loss went NaN still serialises (JSON has no NaN)
    record = RunRecord(run="r", size="demo-xs", N=1, N_total=2, D=1, U=1, epochs=1.0, flops=6.0, flops_attn=6.0,
                       loss=None, curve=[{"step": 1, "tokens": 1, "flops": 6.0, "loss": float("nan")}],
                       stats={"tokens_per_s": float("inf")})
    assert RunRecord.load(record.save(tmp_path / "nan")).curve[0]["loss"] is None


def _store(tmp_path) -> Path:
    """The stream of ``_data`` as a token store (32 train and 4 test utterances of 0..K-1 twice, then EOS)."""
    feats = datasets.Features({"id": datasets.Value("string"), "units": datasets.List(datasets.Value("uint16")),
                               "n_frames": datasets.Value("int32"), "seconds": datasets.Value("float32")})

    def split(n, tag):
        return datasets.Dataset.from_dict({"id": [f"{tag}{i}" for i in range(n)], "units": [list(range(K)) * 2] * n,
                                           "n_frames": [2 * K] * n, "seconds": [1.0] * n}, features=feats)

    folder = _h.save_units(tmp_path / "units", {"train": split(32, "a"), "test": split(4, "b")}, k=K)
    return pack_mix(MixConfig(datasets=[str(folder)], n_units=K), tmp_path / "stores", progress=False)


KILLER = """
import os, signal, sys
import torch
from hf_slm.data.store import TokenStore
from hf_slm.training import TrainConfig, trainer
torch.set_num_threads(1)
train_data, test_data = TokenStore(sys.argv[3], "train"), TokenStore(sys.argv[3], "test")
real, calls = trainer.to_batch, []
def to_batch_then_die(*args, **kwargs):
    calls.append(1)
    if len(calls) == int(sys.argv[2]):
        os.kill(os.getpid(), signal.SIGKILL)  # a hard crash in the middle of a step, between checkpoints
    return real(*args, **kwargs)
trainer.to_batch = to_batch_then_die
trainer.train(TrainConfig.from_yaml(sys.argv[1]), train_data, test_data, progress=False)
"""


def test_a_run_on_the_store_killed_mid_step_resumes_to_the_uninterrupted_curve(tmp_path):
    import os
    import subprocess
    import sys

    root = _store(tmp_path)
    train_data, test_data = TokenStore(root, "train"), TokenStore(root, "test")
    straight = train(_config(tmp_path, "straight", checkpoint_every=3), train_data, test_data, progress=False)
    assert straight.U == 32 * 33 and straight.stats["data"]["train"]["store"] == root.name
    cfg = _config(tmp_path, "killed", checkpoint_every=3)
    cfg.to_yaml(tmp_path / "killed.yaml")
    script = tmp_path / "killer.py"
    script.write_text(KILLER)
    # 2 micro-batches a step, 3 test batches an evaluation (5 windows, every 2 steps): call 17 is the first of
    # step 6, so the run dies inside step 6 and, resumed from the step-3 checkpoint, redoes steps 4 to 6
    done = subprocess.run([sys.executable, str(script), str(tmp_path / "killed.yaml"), "17", str(root)],
                          capture_output=True, text=True, timeout=120, env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert done.returncode == -9, done.stderr[-2000:]
    assert latest_checkpoint(cfg.output_dir).name == "step-00000003"
    assert not (tmp_path / "killed" / "run.json").exists()

    resumed = train(cfg, train_data, test_data, progress=False)
    _assert_same_run(straight, resumed, tmp_path, "killed")
