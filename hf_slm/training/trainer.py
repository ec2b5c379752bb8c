"""Training a Llama SLM on packed unit blocks: one readable loop in the Accelerate idiom.

``train(config, train_data, test_data)`` builds the model, visits the budget's blocks in their seeded order,
evaluates the held-out loss along the way, checkpoints, resumes, and writes ``run.json`` and ``model/``.

Order of a run, in global steps of ``batch_size`` blocks: step ``s`` trains on ``order[s*B:(s+1)*B]``, where
``order = block_order(budget, ...)`` depends only on the config, so a resumed run continues exactly where it
stopped. Each process takes its contiguous share of the step's blocks, in micro-batches.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from accelerate import Accelerator
from accelerate.utils import DistributedType, set_seed
from tqdm.auto import tqdm
from transformers import LlamaForCausalLM

from hf_slm.data.budget import Budget, block_order, make_budget
from hf_slm.data.packing import PackedBlocks, labels_for
from hf_slm.data.processes import check_launch, has_accelerator_device
from hf_slm.training.config import RESULT_NEUTRAL, ConfigError, TrainConfig
from hf_slm.training.memory import largest_fitting, measure_memory, usable_memory
from hf_slm.training.record import RECORD_FILE, RunRecord, code_version, flops_6nd, flops_with_attention
from hf_slm.training.schedule import lr_at
from hf_slm.training.sizes import count_parameters, llama_config

CHECKPOINTS = "checkpoints"
STATE_FILE = "trainer_state.json"
MODEL_DIR = "model"

# Dense bf16 tensor-core peak FLOP/s per device, for MFU; the first matching name wins.
PEAK_BF16_FLOPS = (("H100 PCIe", 756e12), ("H100", 989e12), ("H200", 989e12), ("GH200", 989e12), ("A100", 312e12))


@dataclass
class DataPlan:
    """What the run will see: ``n_steps`` steps over ``order`` (block indices), D and U in real tokens."""

    budget: Budget
    n_steps: int
    order: np.ndarray
    tokens_after: np.ndarray  # real (non-pad) tokens seen after each step, cumulative
    D: int
    U: int


@dataclass
class TrainState:
    """The part of a run's state that is not in the model / optimizer: position in the data and the curve."""

    step: int = 0
    curve: list[dict[str, Any]] = field(default_factory=list)
    train_seconds: float = 0.0


# -- setup ---------------------------------------------------------------------------------------------------
def make_accelerator(config: TrainConfig) -> Accelerator:
    """An ``Accelerator`` with the config's mixed precision and tracker (accumulation is set by ``train``).

    Without a GPU it is a CPU accelerator, so that ``torchrun --nproc_per_node N`` gives N gloo processes.
    """
    check_tracker(config.tracker)
    _allow_precision(config.mixed_precision)
    accelerator = Accelerator(
        mixed_precision=config.mixed_precision,
        log_with=config.tracker,
        project_dir=config.output_dir,
        cpu=not has_accelerator_device(),
    )
    check_launch(accelerator.num_processes)
    return accelerator


def _allow_precision(mixed_precision: str) -> None:
    """Accelerate keeps one mixed precision per process; a later run with another one (a sweep, tests) gets a
    fresh ``AcceleratorState``. The process group (``PartialState``) stays as it is."""
    from accelerate.state import AcceleratorState

    shared = AcceleratorState._shared_state
    if shared and shared.get("_mixed_precision") not in (None, mixed_precision):
        AcceleratorState._reset_state()


def check_tracker(name: str | None) -> None:
    """Accelerate drops a tracker whose package is missing without a word; say so instead."""
    from accelerate.tracking import get_available_trackers

    if name not in (None, "all") and name not in {str(t) for t in get_available_trackers()}:
        raise ConfigError(f"tracker={name!r} but its package is not installed: pip install {name} "
                          "(or set tracker=tensorboard, or tracker=null for none)")


def choose_micro_batch(model: torch.nn.Module, config: TrainConfig, accelerator: Accelerator) -> int:
    """Sequences per forward pass on each process: ``micro_batch_size`` when set, else the largest divisor of
    the per-process batch that fits in GPU memory (measured; the smallest choice over processes wins), else,
    without CUDA, the whole per-process batch."""
    P = accelerator.num_processes
    if config.micro_batch_size or accelerator.device.type != "cuda":
        return config.per_process_micro_batch(P)
    per_process = config.per_process_micro_batch(P)
    measured = measure_memory(model, config.block_size, config.n_units, accelerator.autocast)
    if accelerator.distributed_type == DistributedType.MULTI_GPU:  # DDP's gradient buckets: one more copy
        grads = sum(p.numel() * p.element_size() for p in model.parameters() if p.requires_grad)
        measured = dataclasses.replace(measured, fixed=measured.fixed + grads)
    micro = largest_fitting(per_process, measured, usable_memory(accelerator.device))
    micro = int(accelerator.gather(torch.tensor([micro], device=accelerator.device)).min())
    accelerator.print(f"micro_batch_size: {micro} of {per_process} sequences per process fit (predicted peak "
                      f"{measured.peak(micro) / 2**30:.1f} GiB); gradient accumulation {per_process // micro}")
    return micro


def plan_data(config: TrainConfig, train_data: PackedBlocks, n_params: int) -> DataPlan:
    """Resolve D (rounded up to whole steps) and U, and the order in which blocks are visited."""
    B, T = config.global_batch_size, config.block_size
    if train_data.blocks.ndim != 2 or train_data.blocks.shape[1] != T:
        raise ConfigError(f"block_size={T} but the training blocks have shape {tuple(train_data.blocks.shape)}")
    if config.tokens is None and config.tokens_per_param is None:
        raise ConfigError("no data budget: set tokens (D) or tokens_per_param (D/N)")
    requested = config.tokens if config.tokens is not None else round(config.tokens_per_param * n_params)
    n_steps = max(1, math.ceil(requested / (B * T)))
    unique = config.unique_tokens
    if config.epochs is not None:
        unique = math.ceil(requested / config.epochs)
    budget = make_budget(train_data.n_tokens, T, tokens=n_steps * B * T, unique_tokens=unique)
    order = block_order(budget, len(train_data), seed=config.seed)
    lengths = np.asarray(train_data.lengths)[order]
    tokens_after = np.cumsum(lengths.reshape(n_steps, B).sum(axis=1))
    U = int(np.asarray(train_data.lengths)[np.unique(order)].sum())
    return DataPlan(budget, n_steps, order, tokens_after, D=int(tokens_after[-1]), U=U)


def build_model(config: TrainConfig) -> LlamaForCausalLM:
    """A freshly initialised Llama of the config's size (seeded by the caller)."""
    cfg = llama_config(config.size, config.n_units, config.block_size, config.attn_implementation)
    return LlamaForCausalLM(cfg)


def make_optimizer(model: torch.nn.Module, config: TrainConfig, device: torch.device) -> torch.optim.AdamW:
    """AdamW; weight decay on matrices (linear layers, embeddings), none on norms and biases; fused on CUDA."""
    params = [p for p in model.parameters() if p.requires_grad]
    groups = [
        {"params": [p for p in params if p.dim() >= 2], "weight_decay": config.weight_decay},
        {"params": [p for p in params if p.dim() < 2], "weight_decay": 0.0},
    ]
    return torch.optim.AdamW(groups, lr=config.lr, betas=config.betas, eps=config.eps, fused=device.type == "cuda")


# -- batches and evaluation ------------------------------------------------------------------------------------
def to_batch(data: PackedBlocks, idx: np.ndarray, device: torch.device) -> dict[str, torch.Tensor]:
    """Inputs and labels (pad -> -100) of blocks ``idx``. No attention mask: pad only ever trails a block."""
    blocks = np.asarray(data.blocks[idx], dtype=np.int64)
    labels = labels_for(blocks, np.asarray(data.lengths)[idx])
    return {"input_ids": torch.from_numpy(blocks).to(device), "labels": torch.from_numpy(labels).to(device)}


@torch.no_grad()
def evaluate(model, data: PackedBlocks, micro_batch: int, accelerator: Accelerator, blocks: np.ndarray) -> float:
    """Mean per-token loss (nats) over test blocks ``blocks``, ignoring pad; shared across processes."""
    model.eval()
    mine = blocks[accelerator.process_index :: accelerator.num_processes]
    sums = torch.zeros(2, dtype=torch.float64, device=accelerator.device)
    for start in range(0, len(mine), micro_batch):
        batch = to_batch(data, mine[start : start + micro_batch], accelerator.device)
        logits = model(input_ids=batch["input_ids"], use_cache=False).logits[:, :-1]
        targets = batch["labels"][:, 1:]
        loss = F.cross_entropy(logits.flatten(0, 1).float(), targets.flatten(), ignore_index=-100, reduction="sum")
        sums += torch.stack([loss.double(), (targets != -100).sum().double()])
    sums = accelerator.reduce(sums, reduction="sum")
    model.train()
    return float(sums[0] / sums[1]) if sums[1] > 0 else float("nan")


# -- checkpoints -----------------------------------------------------------------------------------------------
def latest_checkpoint(output_dir: str | Path) -> Path | None:
    """The newest complete checkpoint folder under ``output_dir/checkpoints`` (``.tmp`` ones are partial)."""
    root = Path(output_dir) / CHECKPOINTS
    done = sorted(p for p in root.glob("step-*") if p.is_dir() and not p.name.endswith(".tmp"))
    return done[-1] if done else None


def save_checkpoint(accelerator: Accelerator, config: TrainConfig, state: TrainState, fingerprint: dict) -> Path:
    """Model, optimizer and RNG states (``accelerator.save_state``) plus the data position and the curve.

    Written to ``step-XXXXXXXX.tmp`` and renamed when complete, so a crash mid-save leaves the previous one.
    """
    root = Path(config.output_dir) / CHECKPOINTS
    final = root / f"step-{state.step:08d}"
    tmp = final.with_name(final.name + ".tmp")
    accelerator.save_state(str(tmp))
    if accelerator.is_main_process:
        payload = {"step": state.step, "curve": state.curve, "train_seconds": state.train_seconds,
                   "config": config.result_dict(), "data": fingerprint}
        (tmp / STATE_FILE).write_text(json.dumps(payload, indent=2))
        if final.exists():
            shutil.rmtree(final)
        tmp.rename(final)
        for old in sorted(p for p in root.glob("step-*") if not p.name.endswith(".tmp"))[: -config.keep_checkpoints]:
            shutil.rmtree(old, ignore_errors=True)
    accelerator.wait_for_everyone()
    return final


def load_checkpoint(accelerator: Accelerator, path: Path, config: TrainConfig, fingerprint: dict) -> TrainState:
    """Restore a checkpoint after checking that it belongs to this config and this data."""
    saved = json.loads((path / STATE_FILE).read_text())
    _check_same_run(saved["config"], saved.get("data"), config, fingerprint, where=str(path))
    accelerator.load_state(str(path))
    return TrainState(step=saved["step"], curve=saved["curve"], train_seconds=saved.get("train_seconds", 0.0))


def data_fingerprint(train_data: PackedBlocks, test_data: PackedBlocks) -> dict[str, Any]:
    """Sizes and a hash of (up to 256 evenly spaced) blocks and all lengths: "is this the same data?"."""

    def one(data: PackedBlocks) -> dict[str, Any]:
        n = len(data)
        rows = np.unique(np.linspace(0, max(n - 1, 0), num=min(n, 256)).astype(np.int64)) if n else []
        digest = hashlib.sha1(np.ascontiguousarray(np.asarray(data.lengths, dtype=np.int64)).tobytes())
        digest.update(np.ascontiguousarray(np.asarray(data.blocks[rows], dtype=np.int64)).tobytes())
        return {"blocks": n, "tokens": data.n_tokens, "sha1": digest.hexdigest()}

    return {"train": one(train_data), "test": one(test_data)}


def _check_same_run(saved_config: dict, saved_data: dict | None, config: TrainConfig, fingerprint: dict,
                    where: str) -> None:
    now = json.loads(json.dumps(config.result_dict()))
    before = {k: v for k, v in saved_config.items() if k not in RESULT_NEUTRAL}
    changed = sorted(k for k in set(now) | set(before) if now.get(k) != before.get(k))
    if changed:
        detail = ", ".join(f"{k}: {before.get(k)!r} -> {now.get(k)!r}" for k in changed)
        raise ConfigError(f"{where} is a different run ({detail}); use another output_dir or delete it")
    if saved_data is not None and saved_data != fingerprint:
        raise ConfigError(f"{where} was trained on different data ({saved_data} vs {fingerprint}); "
                          "use another output_dir or delete it")


def finished_record(config: TrainConfig, fingerprint: dict | None = None) -> RunRecord | None:
    """The record of a finished run of this config in ``output_dir``, or None (different config: error)."""
    path = Path(config.output_dir) / RECORD_FILE
    if not path.exists():
        return None
    record = RunRecord.load(path)
    data = record.stats.get("data") if fingerprint is not None else None
    _check_same_run(record.config, data, config, fingerprint or {}, where=str(path))
    return record if record.finished else None


# -- the loop --------------------------------------------------------------------------------------------------
def train(
    config: TrainConfig,
    train_data: PackedBlocks,
    test_data: PackedBlocks,
    accelerator: Accelerator | None = None,
    progress: bool = True,
    *,
    datasets: list[Any] | None = None,
    tokenizer: Any = None,
) -> RunRecord:
    """Train ``config.size`` on ``train_data``, evaluate on ``test_data``; return (and save) the run record.

    A finished run in ``config.output_dir`` (``run.json`` with the same config and data) is returned as is;
    an interrupted one resumes from its latest checkpoint. With ``stop_after`` the run stops there, leaves a
    checkpoint and returns an unfinished record (``finished=False``, not saved). ``datasets`` and
    ``tokenizer`` (ids and revisions) are copied into the record (default: the config's datasets).
    """
    out = Path(config.output_dir)
    fingerprint = data_fingerprint(train_data, test_data)
    done = finished_record(config, fingerprint)
    if done is not None:
        return done
    if len(test_data) == 0:
        raise ConfigError("the test set is empty: the held-out loss needs at least one block")
    accelerator = accelerator or make_accelerator(config)
    B, P, rank = config.global_batch_size, accelerator.num_processes, accelerator.process_index

    set_seed(config.seed)
    model = build_model(config).to(accelerator.device)
    raw_model = model
    micro = choose_micro_batch(model, config, accelerator)
    accelerator.gradient_accumulation_steps = grad_accum = config.grad_accum_steps(P, micro)
    N, N_total = count_parameters(model)
    plan = plan_data(config, train_data, N)
    size = config.model_size
    flops_per_token = flops_with_attention(N, 1, size.n_layers, size.d_model, config.block_size)
    warmup = config.warmup_steps(plan.n_steps)
    eval_rng = np.random.default_rng(config.seed)
    eval_subset = eval_rng.permutation(len(test_data))[: config.eval_blocks or len(test_data)]
    all_test = np.arange(len(test_data))

    optimizer = make_optimizer(model, config, accelerator.device)
    if config.compile:
        model = torch.compile(model, mode=config.compile_mode)
    model, optimizer = accelerator.prepare(model, optimizer)

    state = TrainState()
    checkpoint = latest_checkpoint(out)
    if checkpoint is not None:
        state = load_checkpoint(accelerator, checkpoint, config, fingerprint)
    run_name = config.run_name or out.name
    if config.tracker:
        accelerator.init_trackers(run_name, config=_flat(config.to_dict()))

    peak = peak_flops(accelerator.device)
    bar = tqdm(total=plan.n_steps, initial=state.step, desc=run_name, unit="step",
               disable=not (progress and accelerator.is_main_process))
    model.train()
    window_seconds, window_steps = 0.0, 0
    stop_at = min(plan.n_steps, config.stop_after or plan.n_steps)
    while state.step < stop_at:
        t0 = time.perf_counter()
        step = state.step
        lr = lr_at(step, plan.n_steps, warmup, config.lr, config.min_lr)
        for group in optimizer.param_groups:
            group["lr"] = lr
        first = step * B + rank * (B // P)  # this process's share of the step's blocks
        train_loss = torch.zeros((), device=accelerator.device)
        for m in range(grad_accum):
            batch = to_batch(train_data, plan.order[first + m * micro : first + (m + 1) * micro], accelerator.device)
            # accumulate(): gradients sync and optimizer.step() / zero_grad() act on the last micro-batch only;
            # backward() divides the loss by grad_accum, so the update is the mean over the global batch.
            with accelerator.accumulate(model):
                loss = model(**batch, use_cache=False).loss  # no KV cache to build in training
                accelerator.backward(loss)
                if accelerator.sync_gradients and config.grad_clip:
                    accelerator.clip_grad_norm_(model.parameters(), config.grad_clip)
                optimizer.step()
                optimizer.zero_grad(set_to_none=True)
            train_loss += loss.detach() / grad_accum
        state.step = step + 1
        elapsed = time.perf_counter() - t0
        state.train_seconds += elapsed
        window_seconds, window_steps = window_seconds + elapsed, window_steps + 1
        bar.update(1)

        if state.step % config.log_every == 0 or state.step == stop_at:
            tokens_per_s = window_steps * B * config.block_size / max(window_seconds, 1e-9)
            logs = {"train/loss": train_loss.item(), "train/lr": lr, "train/tokens_per_s": tokens_per_s,
                    "train/tokens": int(plan.tokens_after[step])}
            if peak:
                logs["train/mfu"] = tokens_per_s * flops_per_token / (peak * P)
            accelerator.log(logs, step=state.step)
            bar.set_postfix({"loss": f"{logs['train/loss']:.3f}", "tok/s": f"{tokens_per_s:,.0f}",
                             **({"mfu": f"{logs['train/mfu']:.1%}"} if peak else {})})
            window_seconds, window_steps = 0.0, 0
        if config.eval_every and state.step % config.eval_every == 0 and state.step < plan.n_steps:
            test_loss = evaluate(model, test_data, micro, accelerator, eval_subset)
            state.curve.append(curve_point(state.step, plan, N, test_loss))
            accelerator.log({"test/loss": test_loss}, step=state.step)
        stopping = state.step == stop_at < plan.n_steps
        if stopping or (config.checkpoint_every and state.step % config.checkpoint_every == 0
                        and state.step < plan.n_steps):
            save_checkpoint(accelerator, config, state, fingerprint)
    bar.close()

    finished = state.step >= plan.n_steps
    if finished:
        test_loss = evaluate(model, test_data, micro, accelerator, all_test)
        state.curve.append(curve_point(state.step, plan, N, test_loss))
        accelerator.log({"test/loss": test_loss}, step=state.step)
    record = make_record(config, plan, state, N, N_total, finished, datasets, tokenizer)
    record.stats.update({"steps": state.step, "n_steps": plan.n_steps, "warmup": warmup,
                         "grad_accum": grad_accum, "micro_batch": micro, "processes": P,
                         "train_seconds": round(state.train_seconds, 3),
                         "tokens_per_s": state.step * B * config.block_size / max(state.train_seconds, 1e-9),
                         "device": device_name(accelerator.device), "data": fingerprint})
    if finished:
        accelerator.wait_for_everyone()
        save_model(accelerator, model, raw_model, out / MODEL_DIR)
        if accelerator.is_main_process:
            record.save(out)
            shutil.rmtree(out / CHECKPOINTS, ignore_errors=True)
    if config.tracker:
        accelerator.end_training()
    return record


def save_model(accelerator: Accelerator, model, raw_model: LlamaForCausalLM, path: Path) -> None:
    """``save_pretrained`` (safetensors + config); sharded engines gather the full state dict first."""
    sharded = accelerator.distributed_type in (DistributedType.FSDP, DistributedType.DEEPSPEED)
    state_dict = accelerator.get_state_dict(model) if sharded else None
    raw_model.save_pretrained(path, state_dict=state_dict, is_main_process=accelerator.is_main_process)


def curve_point(step: int, plan: DataPlan, N: int, loss: float) -> dict[str, Any]:
    """One point of the test-loss curve: after ``step`` steps, tokens seen, 6 N D so far, loss."""
    tokens = int(plan.tokens_after[step - 1]) if step else 0
    return {"step": step, "tokens": tokens, "flops": flops_6nd(N, tokens), "loss": loss}


def make_record(config: TrainConfig, plan: DataPlan, state: TrainState, N: int, N_total: int, finished: bool,
                datasets: list[Any] | None, tokenizer: Any) -> RunRecord:
    """The run record of a (finished or stopped) run."""
    size = config.model_size
    D = int(plan.tokens_after[state.step - 1]) if state.step else 0
    loss = state.curve[-1]["loss"] if state.curve else None
    if loss is not None and not math.isfinite(loss):
        loss = None
    return RunRecord(
        run=config.run_name or Path(config.output_dir).name,
        size=config.size,
        N=N,
        N_total=N_total,
        D=D,
        U=plan.U,
        epochs=D / plan.U,
        flops=flops_6nd(N, D),
        flops_attn=flops_with_attention(N, D, size.n_layers, size.d_model, config.block_size),
        loss=loss,
        curve=list(state.curve),
        config=config.to_dict(),
        datasets=datasets if datasets is not None else [d.id for d in config.datasets],
        tokenizer=tokenizer,
        code_version=code_version(),
        finished=finished,
    )


def peak_flops(device: torch.device) -> float | None:
    """Dense bf16 peak FLOP/s of one ``device`` from ``PEAK_BF16_FLOPS``; None when unknown (CPU included)."""
    if device.type != "cuda":
        return None
    name = torch.cuda.get_device_name(device)
    return next((value for key, value in PEAK_BF16_FLOPS if key in name), None)


def device_name(device: torch.device) -> str:
    return torch.cuda.get_device_name(device) if device.type == "cuda" else str(device)


def _flat(config: dict[str, Any]) -> dict[str, Any]:
    """Tracker hyper-parameters must be scalars: lists and None become text."""
    return {k: v if isinstance(v, (int, float, str, bool)) else json.dumps(v) for k, v in config.items()}
