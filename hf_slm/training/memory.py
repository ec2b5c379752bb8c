"""The micro-batch of a run: the largest that fits in GPU memory, measured, with accumulation making up the rest.

``micro_batch_size: null`` in a config means "choose it". On CUDA the model's peak memory is measured for a
forward + backward pass of 1 and of 2 sequences; the peak is affine in the micro-batch m (weights and
gradients, plus activations per sequence), so ``peak(m) = fixed + m * per_sequence``, to which AdamW's two
fp32 state tensors per parameter are added. The chosen m is the largest divisor of the per-process batch whose
predicted peak stays under ``headroom`` of the memory this process can use. Without CUDA there is nothing to
measure and the whole per-process batch is one micro-batch.

The measurement runs the eager model (before ``torch.compile``, which only ever needs less), on fixed token
ids, so it draws nothing from the random generators a resumed run must replay. Sharded engines (FSDP,
DeepSpeed) need less than the unsharded model measured here, so the choice errs on the safe side.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass

import torch

from hf_slm.training.config import ConfigError

GIB = 2**30


@dataclass(frozen=True)
class MemoryModel:
    """Predicted peak bytes of a training step at micro-batch m: ``fixed + m * per_sequence``."""

    fixed: float
    per_sequence: float

    def peak(self, micro_batch: int) -> float:
        return self.fixed + micro_batch * self.per_sequence


def divisors(n: int) -> list[int]:
    """The divisors of ``n``, largest first."""
    return sorted((d for d in range(1, n + 1) if n % d == 0), reverse=True)


def largest_fitting(per_process: int, memory: MemoryModel, budget: float) -> int:
    """The largest divisor m of ``per_process`` with ``memory.peak(m) <= budget`` (bytes)."""
    for m in divisors(per_process):
        if memory.peak(m) <= budget:
            return m
    raise ConfigError(
        f"one sequence needs about {memory.peak(1) / GIB:.1f} GiB (weights, gradients, AdamW state and "
        f"activations) but only {budget / GIB:.1f} GiB are usable; use a smaller size or block_size, or a "
        "sharded engine (accelerate config: FSDP / DeepSpeed)"
    )


def measure_memory(
    model: torch.nn.Module,
    block_size: int,
    n_tokens: int,
    autocast: Callable[[], AbstractContextManager] | None = None,
) -> MemoryModel:
    """Peak CUDA memory of forward + backward at 1 and 2 sequences of ``block_size``, plus AdamW's state.

    ``model`` must already sit on its CUDA device; its gradients are cleared afterwards. ``autocast`` makes a
    fresh mixed-precision context per pass (``accelerator.autocast``, or ``lambda: torch.autocast(...)``).
    """
    device = next(model.parameters()).device
    peaks = []
    for m in (1, 2):
        ids = (torch.arange(m * block_size, device=device) % n_tokens).view(m, block_size)
        model.zero_grad(set_to_none=True)
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(device)
        with autocast() if autocast else nullcontext():
            loss = model(input_ids=ids, labels=ids, use_cache=False).loss
        loss.backward()
        torch.cuda.synchronize(device)
        peaks.append(torch.cuda.max_memory_allocated(device))
        del loss, ids
    model.zero_grad(set_to_none=True)
    torch.cuda.empty_cache()
    optimizer_state = 2 * sum(p.numel() * 4 for p in model.parameters() if p.requires_grad)
    per_sequence = max(peaks[1] - peaks[0], 0)
    return MemoryModel(fixed=peaks[0] - per_sequence + optimizer_state, per_sequence=per_sequence)


def usable_memory(device: torch.device, headroom: float = 0.85) -> float:
    """``headroom`` of the memory this process can use on ``device``: what is free plus what it holds already
    (the model's weights, which the measured peak includes, and PyTorch's cache)."""
    free, _ = torch.cuda.mem_get_info(device)
    return headroom * (free + torch.cuda.memory_reserved(device))
