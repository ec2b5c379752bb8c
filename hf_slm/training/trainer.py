"""Training a Llama SLM on a token store: one readable loop in the Accelerate idiom.

``train(config, train_data, test_data)`` builds the model, draws each step's batch from the training tokens
(``hf_slm.training.sampling``: the release's random windows by default, sequential blocks as an option),
evaluates the held-out loss along the way, checkpoints, resumes, and writes ``run.json`` and ``model/``.
``train_data`` / ``test_data`` are the two sides of a ``TokenStore`` (``hf_slm.data.store``, memory-mapped) or,
for data already in memory, ``PackedBlocks`` (``hf_slm.data.packing``).

Order of a run, in global steps of ``batch_size`` sequences: step ``s`` trains on ``sampler.batch(s, ...)``,
which depends only on the config and the data, so a resumed run continues exactly where it stopped. Each
process takes its contiguous share of the step's sequences, in micro-batches.

A non-finite loss or gradient norm stops the run before the optimizer applies it (``TrainingDiverged``, naming
the step); the last checkpoint on disk stays as it was, and no weights that are not finite are ever saved.
"""

from __future__ import annotations

import dataclasses
import json
import math
import shutil
import time
from collections import deque
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
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

from hf_slm.data.packing import PackedBlocks
from hf_slm.data.processes import check_launch, has_accelerator_device
from hf_slm.data.store import InMemoryTokens, TokenStore
from hf_slm.data.tokens import Vocabulary
from hf_slm.training.config import RESULT_NEUTRAL, ConfigError, TrainConfig
from hf_slm.training.memory import largest_fitting, measure_memory, usable_memory
from hf_slm.training.record import RECORD_FILE, RunRecord, code_version, flops_6nd, flops_with_attention
from hf_slm.training.sampling import Batch, EvalWindows, Sampler, TokenSource, make_sampler, n_steps_for
from hf_slm.training.schedule import lr_at
from hf_slm.training.sizes import count_parameters, llama_config

CHECKPOINTS = "checkpoints"
STATE_FILE = "trainer_state.json"
MODEL_DIR = "model"

# Dense bf16 tensor-core peak FLOP/s per device, for MFU; the first matching name wins.
PEAK_BF16_FLOPS = (("H100 PCIe", 756e12), ("H100", 989e12), ("H200", 989e12), ("GH200", 989e12), ("A100", 312e12))


class TrainingDiverged(RuntimeError):
    """The loss or the gradient norm stopped being finite; the message names the step and what is kept."""


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


def choose_micro_batch(model: torch.nn.Module, config: TrainConfig, accelerator: Accelerator, n_ids: int) -> int:
    """Sequences per forward pass on each process: ``micro_batch_size`` when set, else the largest divisor of
    the per-process batch that fits in GPU memory (measured; the smallest choice over processes wins), else,
    without CUDA, the whole per-process batch."""
    P = accelerator.num_processes
    if config.micro_batch_size or accelerator.device.type != "cuda":
        return config.per_process_micro_batch(P)
    per_process = config.per_process_micro_batch(P)
    measured = measure_memory(model, config.block_size, n_ids, accelerator.autocast)
    if accelerator.distributed_type == DistributedType.MULTI_GPU:  # DDP's gradient buckets: one more copy
        grads = sum(p.numel() * p.element_size() for p in model.parameters() if p.requires_grad)
        measured = dataclasses.replace(measured, fixed=measured.fixed + grads)
    micro = largest_fitting(per_process, measured, usable_memory(accelerator.device))
    micro = int(accelerator.gather(torch.tensor([micro], device=accelerator.device)).min())
    accelerator.print(f"micro_batch_size: {micro} of {per_process} sequences per process fit (predicted peak "
                      f"{measured.peak(micro) / 2**30:.1f} GiB); gradient accumulation {per_process // micro}")
    return micro


def token_source(data: TokenStore | InMemoryTokens | PackedBlocks, config: TrainConfig) -> TokenSource:
    """The tokens of ``data``: a store side or in-memory tokens as they are; ``PackedBlocks`` as the one stream
    they were cut from (their real tokens, in order), with the config's unit vocabulary."""
    if isinstance(data, PackedBlocks):
        blocks = np.asarray(data.blocks)
        stream = blocks[np.arange(blocks.shape[1])[None, :] < np.asarray(data.lengths)[:, None]]
        return InMemoryTokens([stream] if len(stream) else [], Vocabulary(config.n_units, "units"))
    return data


def check_vocabulary(config: TrainConfig, train: TokenSource, test: TokenSource) -> Vocabulary:
    """The vocabulary the model is built for; the config's token type (and K for units) must match the data."""
    vocab = train.vocabulary
    if test.vocabulary != vocab:
        raise ConfigError(f"the training and test tokens have different vocabularies ({vocab} vs {test.vocabulary})")
    if vocab.kind != config.token_type:
        raise ConfigError(f"token_type={config.token_type!r} but the training tokens are {vocab.kind!r}")
    if vocab.kind == "units" and vocab.n_ids != config.n_units:
        raise ConfigError(f"n_units={config.n_units} but the training tokens have K={vocab.n_ids} units")
    return vocab


def plan_data(config: TrainConfig, train_tokens: TokenSource, n_params: int) -> Sampler:
    """Resolve D (rounded up to whole steps) and U, and the sampler that draws every step's batch."""
    B, T = config.global_batch_size, config.block_size
    if config.tokens is None and config.tokens_per_param is None:
        raise ConfigError("no data budget: set tokens (D) or tokens_per_param (D/N)")
    requested = config.tokens if config.tokens is not None else round(config.tokens_per_param * n_params)
    n_steps = n_steps_for(requested, B, T)
    unique = config.unique_tokens
    if config.epochs is not None:
        unique = math.ceil(requested / config.epochs)
    weights = np.ones(int(train_tokens.segment_datasets.max(initial=0)) + 1)
    for i, spec in enumerate(config.datasets[: len(weights)]):
        weights[i] = spec.weight
    return make_sampler(config.sampling, train_tokens, T, B, n_steps, config.seed, weights, unique)


def build_model(config: TrainConfig, n_ids: int | None = None) -> LlamaForCausalLM:
    """A freshly initialised Llama of the config's size for ``n_ids`` content ids (default K = ``n_units``),
    initialised as the release (seeded by the caller): see ``init_weights``."""
    cfg = llama_config(config.size, n_ids or config.n_units, config.block_size, config.attn_implementation,
                       tie_embeddings=config.tie_embeddings, norm_eps=config.norm_eps, init_std=config.init_std)
    model = LlamaForCausalLM(cfg)
    init_weights(model, config.init_std, config.scaled_init)
    return model


SCALED_MODULES = {"release": ("o_proj", "up_proj"), "residual": ("o_proj", "down_proj"), "none": ()}


@torch.no_grad()
def init_weights(model: LlamaForCausalLM, std: float = 0.02, scaled: str = "release") -> None:
    """Every linear and embedding matrix from N(0, ``std``) (the padding row included); the projections of
    ``SCALED_MODULES[scaled]`` from N(0, std / sqrt(2 n_layers)); RMSNorm weights stay at 1."""
    n_layers = model.config.num_hidden_layers
    for module in model.modules():
        if isinstance(module, (torch.nn.Linear, torch.nn.Embedding)):
            torch.nn.init.normal_(module.weight, mean=0.0, std=std)
    for name, param in model.named_parameters():
        if any(name.endswith(f"{m}.weight") for m in SCALED_MODULES[scaled]):
            torch.nn.init.normal_(param, mean=0.0, std=std / math.sqrt(2 * n_layers))


def make_optimizer(model: torch.nn.Module, config: TrainConfig, device: torch.device) -> torch.optim.AdamW:
    """AdamW; weight decay on matrices (linear layers, embeddings), none on norms and biases (the release's
    ``configure_optimizers``: decay iff ``p.dim() >= 2``); fused on CUDA."""
    params = [p for p in model.parameters() if p.requires_grad]
    groups = [
        {"params": [p for p in params if p.dim() >= 2], "weight_decay": config.weight_decay},
        {"params": [p for p in params if p.dim() < 2], "weight_decay": 0.0},
    ]
    return torch.optim.AdamW(groups, lr=config.lr, betas=config.betas, eps=config.eps, fused=device.type == "cuda")


# -- batches and evaluation ------------------------------------------------------------------------------------
def to_batch(batch: Batch, device: torch.device) -> dict[str, torch.Tensor]:
    """Model inputs of a sampled batch: ``input_ids`` and already shifted targets (``-100`` = none).

    ``labels`` and ``shift_labels`` are both the targets: the model's loss then skips its own shift (a window of
    ``block_size + 1`` tokens gives ``block_size`` predictions). No attention mask: pad only ever trails.
    """
    ids = torch.from_numpy(batch.input_ids).to(device, non_blocking=True)
    targets = torch.from_numpy(batch.targets).to(device, non_blocking=True)
    return {"input_ids": ids, "labels": targets, "shift_labels": targets}


@torch.no_grad()
def evaluate(model, windows: EvalWindows, micro_batch: int, accelerator: Accelerator, subset: np.ndarray) -> float:
    """Mean per-token loss (nats) over the held-out windows ``subset``; shared across processes."""
    model.eval()
    mine = subset[accelerator.process_index :: accelerator.num_processes]
    sums = torch.zeros(2, dtype=torch.float64, device=accelerator.device)
    for start in range(0, len(mine), micro_batch):
        batch = to_batch(windows.batch(mine[start : start + micro_batch]), accelerator.device)
        logits = model(input_ids=batch["input_ids"], use_cache=False).logits
        targets = batch["labels"]
        loss = F.cross_entropy(logits.flatten(0, 1).float(), targets.flatten(), ignore_index=-100, reduction="sum")
        sums += torch.stack([loss.double(), (targets != -100).sum().double()])
    sums = accelerator.reduce(sums, reduction="sum")
    model.train()
    return float(sums[0] / sums[1]) if sums[1] > 0 else float("nan")


def all_finite(model: torch.nn.Module) -> bool:
    """Every parameter finite (checked before anything is saved)."""
    return bool(torch.stack([torch.isfinite(p).all() for p in model.parameters()]).all())


# -- checkpoints -----------------------------------------------------------------------------------------------
def latest_checkpoint(output_dir: str | Path) -> Path | None:
    """The newest complete checkpoint folder under ``output_dir/checkpoints`` (``.tmp`` ones are partial)."""
    root = Path(output_dir) / CHECKPOINTS
    done = sorted(p for p in root.glob("step-*") if p.is_dir() and not p.name.endswith(".tmp"))
    return done[-1] if done else None


def save_checkpoint(accelerator: Accelerator, model: torch.nn.Module, config: TrainConfig, state: TrainState,
                    fingerprint: dict) -> Path:
    """Model, optimizer and RNG states (``accelerator.save_state``) plus the data position and the curve.

    Written to ``step-XXXXXXXX.tmp`` and renamed when complete, so a crash mid-save leaves the previous one.
    """
    if not all_finite(model):
        raise TrainingDiverged(f"step {state.step}: the weights are not finite; not saving a checkpoint")
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


def data_fingerprint(train_tokens: TokenSource, test_tokens: TokenSource) -> dict[str, Any]:
    """"Is this the same data?": the store's fingerprint and sizes, or a hash of in-memory tokens."""
    return {"train": train_tokens.fingerprint(), "test": test_tokens.fingerprint()}


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
    train_data: TokenStore | InMemoryTokens | PackedBlocks,
    test_data: TokenStore | InMemoryTokens | PackedBlocks,
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
    ``tokenizer`` (ids and revisions) are copied into the record (default: the store's, else the config's
    dataset ids). A unigram store's tokenizer is saved into ``model/`` next to the weights.
    Raises ``TrainingDiverged`` when the loss or the gradient norm is not finite.
    """
    out = Path(config.output_dir)
    train_tokens, test_tokens = token_source(train_data, config), token_source(test_data, config)
    vocab = check_vocabulary(config, train_tokens, test_tokens)
    fingerprint = data_fingerprint(train_tokens, test_tokens)
    done = finished_record(config, fingerprint)
    if done is not None:
        return done
    windows = EvalWindows(test_tokens, config.block_size)
    if len(windows) == 0:
        raise ConfigError("the test set is empty: the held-out loss needs at least two test tokens")
    if isinstance(train_data, TokenStore):
        datasets = datasets if datasets is not None else train_data.datasets
        tokenizer = tokenizer if tokenizer is not None else train_data.tokenizer
    accelerator = accelerator or make_accelerator(config)
    B, P, rank = config.global_batch_size, accelerator.num_processes, accelerator.process_index

    set_seed(config.seed)
    model = build_model(config, vocab.n_ids).to(accelerator.device)
    raw_model = model
    micro = choose_micro_batch(model, config, accelerator, vocab.n_ids)
    accelerator.gradient_accumulation_steps = grad_accum = config.grad_accum_steps(P, micro)
    N, N_total = count_parameters(model)
    try:
        sampler = plan_data(config, train_tokens, N)
    except ValueError as err:
        raise ConfigError(str(err)) from None
    size = config.model_size
    flops_per_token = flops_with_attention(N, 1, size.n_layers, size.d_model, config.block_size)
    warmup = config.warmup_steps(sampler.n_steps)
    eval_subset = np.random.default_rng(config.seed).permutation(len(windows))[: config.eval_blocks or len(windows)]
    all_test = np.arange(len(windows))

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
    bar = tqdm(total=sampler.n_steps, initial=state.step, desc=run_name, unit="step",
               disable=not (progress and accelerator.is_main_process))
    model.train()
    window_seconds, window_steps = 0.0, 0
    stop_at = min(sampler.n_steps, config.stop_after or sampler.n_steps)
    first = rank * (B // P)  # this process's share of each step's sequences, read ahead on a thread
    batches = read_ahead(sampler.batch, ((s, first + m * micro, first + (m + 1) * micro)
                                         for s in range(state.step, stop_at) for m in range(grad_accum)))
    try:
        while state.step < stop_at:
            t0 = time.perf_counter()
            step = state.step
            lr = lr_at(step, sampler.n_steps, warmup, config.lr, config.min_lr)
            for group in optimizer.param_groups:
                group["lr"] = lr
            train_loss = torch.zeros((), device=accelerator.device)
            for _ in range(grad_accum):
                batch = to_batch(next(batches), accelerator.device)
                # accumulate(): gradients sync and optimizer.step() / zero_grad() act on the last micro-batch only;
                # backward() divides the loss by grad_accum, so the update is the mean over the global batch.
                with accelerator.accumulate(model):
                    loss = model(**batch, use_cache=False).loss  # no KV cache to build in training
                    accelerator.backward(loss)
                    train_loss += loss.detach() / grad_accum
                    if accelerator.sync_gradients:
                        norm = accelerator.clip_grad_norm_(model.parameters(), config.grad_clip or math.inf)
                        norm = torch.zeros(()) if norm is None else norm  # engines that clip inside their step
                        check_finite(accelerator, step, train_loss, norm, out)
                    optimizer.step()
                    optimizer.zero_grad(set_to_none=True)
            state.step = step + 1
            elapsed = time.perf_counter() - t0
            state.train_seconds += elapsed
            window_seconds, window_steps = window_seconds + elapsed, window_steps + 1
            bar.update(1)

            if state.step % config.log_every == 0 or state.step == stop_at:
                tokens_per_s = window_steps * B * config.block_size / max(window_seconds, 1e-9)
                logs = {"train/loss": train_loss.item(), "train/lr": lr, "train/grad_norm": float(norm),
                        "train/tokens_per_s": tokens_per_s, "train/tokens": sampler.tokens_after(state.step)}
                if peak:
                    logs["train/mfu"] = tokens_per_s * flops_per_token / (peak * P)
                accelerator.log(logs, step=state.step)
                bar.set_postfix({"loss": f"{logs['train/loss']:.3f}", "tok/s": f"{tokens_per_s:,.0f}",
                                 **({"mfu": f"{logs['train/mfu']:.1%}"} if peak else {})})
                window_seconds, window_steps = 0.0, 0
            if config.eval_every and state.step % config.eval_every == 0 and state.step < sampler.n_steps:
                test_loss = evaluate(model, windows, micro, accelerator, eval_subset)
                check_finite(accelerator, step, torch.tensor(test_loss), torch.zeros(()), out, what="test loss")
                state.curve.append(curve_point(state.step, sampler, N, test_loss))
                accelerator.log({"test/loss": test_loss}, step=state.step)
            stopping = state.step == stop_at < sampler.n_steps
            if stopping or (config.checkpoint_every and state.step % config.checkpoint_every == 0
                            and state.step < sampler.n_steps):
                save_checkpoint(accelerator, raw_model, config, state, fingerprint)

        finished = state.step >= sampler.n_steps
        if finished:
            test_loss = evaluate(model, windows, micro, accelerator, all_test)
            check_finite(accelerator, state.step - 1, torch.tensor(test_loss), torch.zeros(()), out, what="test loss")
            state.curve.append(curve_point(state.step, sampler, N, test_loss))
            accelerator.log({"test/loss": test_loss}, step=state.step)
    finally:
        batches.close()
        bar.close()
        if config.tracker:
            accelerator.end_training()
    record = make_record(config, sampler, state, N, N_total, finished, datasets, tokenizer)
    record.stats.update({"steps": state.step, "n_steps": sampler.n_steps, "warmup": warmup,
                         "grad_accum": grad_accum, "micro_batch": micro, "processes": P,
                         "train_seconds": round(state.train_seconds, 3),
                         "tokens_per_s": state.step * B * config.block_size / max(state.train_seconds, 1e-9),
                         "device": device_name(accelerator.device), "data": fingerprint,
                         "vocabulary": vocab.to_dict(), **sampler.describe()})
    if finished:
        accelerator.wait_for_everyone()
        if not all_finite(raw_model):
            raise TrainingDiverged(f"step {state.step}: the final weights are not finite; not saving them")
        save_model(accelerator, model, raw_model, out / MODEL_DIR)
        if accelerator.is_main_process:
            save_tokenizer(train_tokens, out / MODEL_DIR)
            record.save(out)
            shutil.rmtree(out / CHECKPOINTS, ignore_errors=True)
    return record


def read_ahead(read, keys: Iterator[tuple], depth: int = 2) -> Iterator[Batch]:
    """``read(*key)`` for every key, in order, computed up to ``depth`` keys ahead on one background thread, so
    that the memory-mapped reads overlap the GPU's work (the reads are pure functions of the key)."""
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="read-ahead") as pool:
        pending: deque = deque()
        for key in keys:
            pending.append(pool.submit(read, *key))
            if len(pending) > depth:
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()


def check_finite(accelerator: Accelerator, step: int, loss: torch.Tensor, grad_norm: torch.Tensor, out: Path,
                 what: str = "loss") -> None:
    """Raise ``TrainingDiverged`` naming the step when ``loss`` or ``grad_norm`` is not finite on any process
    (called before the optimizer applies the step, so the weights in memory and on disk stay finite)."""
    bad = (~torch.isfinite(loss.detach().float()) | ~torch.isfinite(grad_norm.detach().float())).float()
    bad = bad.to(accelerator.device)
    if accelerator.num_processes > 1:
        bad = accelerator.reduce(bad, reduction="sum")
    if bool(bad > 0):
        kept = latest_checkpoint(out)
        where = f"the last good checkpoint is {kept}" if kept else "no checkpoint was saved before it"
        raise TrainingDiverged(
            f"step {step + 1}: training diverged ({what} {float(loss):.4g}, gradient norm {float(grad_norm):.4g}); "
            f"stopped before applying it, nothing saved; {where}. Lower lr or lengthen the warm-up")


def save_tokenizer(tokens: TokenSource, path: Path) -> None:
    """A unigram store's tokenizer next to the model (``AutoTokenizer.from_pretrained(model_dir)``)."""
    folder = getattr(tokens, "tokenizer_dir", None)
    if folder is not None:
        from transformers import PreTrainedTokenizerFast

        PreTrainedTokenizerFast.from_pretrained(str(folder)).save_pretrained(path)


def save_model(accelerator: Accelerator, model, raw_model: LlamaForCausalLM, path: Path) -> None:
    """``save_pretrained`` (safetensors + config); sharded engines gather the full state dict first."""
    sharded = accelerator.distributed_type in (DistributedType.FSDP, DistributedType.DEEPSPEED)
    state_dict = accelerator.get_state_dict(model) if sharded else None
    raw_model.save_pretrained(path, state_dict=state_dict, is_main_process=accelerator.is_main_process)


def curve_point(step: int, sampler: Sampler, N: int, loss: float) -> dict[str, Any]:
    """One point of the test-loss curve: after ``step`` steps, tokens seen, 6 N D so far, loss."""
    tokens = sampler.tokens_after(step)
    return {"step": step, "tokens": tokens, "flops": flops_6nd(N, tokens), "loss": loss}


def make_record(config: TrainConfig, sampler: Sampler, state: TrainState, N: int, N_total: int, finished: bool,
                datasets: list[Any] | None, tokenizer: Any) -> RunRecord:
    """The run record of a (finished or stopped) run."""
    size = config.model_size
    D = sampler.tokens_after(state.step)
    loss = state.curve[-1]["loss"] if state.curve else None
    if loss is not None and not math.isfinite(loss):
        loss = None
    return RunRecord(
        run=config.run_name or Path(config.output_dir).name,
        size=config.size,
        N=N,
        N_total=N_total,
        D=D,
        U=sampler.U,
        epochs=D / sampler.U,
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
