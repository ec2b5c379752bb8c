"""The learning-rate schedule of the paper (3.1) as the authors' release computes it: linear warm-up from 0,
then half-cycle cosine decay to ``min_lr``."""

from __future__ import annotations

import math


def lr_at(step: int, n_steps: int, warmup: int, lr: float, min_lr: float) -> float:
    """Learning rate of optimizer step ``step`` (0-based) in a run of ``n_steps`` steps.

    - warm-up, ``step < warmup``: ``lr * step / warmup`` (the release's ``_learning_rate``: the first step at 0,
      step ``warmup - 1`` at ``lr (warmup - 1) / warmup``);
    - decay: ``min_lr + (lr - min_lr) * (1 + cos(pi * p)) / 2`` with ``p`` going from 0 at step ``warmup``
      to 1 at the last step ``n_steps - 1``, so the run ends exactly at ``min_lr``;
    - after the run (``step >= n_steps``): ``min_lr``.
    """
    if step < warmup:
        return lr * step / warmup
    decay_steps = max(1, n_steps - 1 - warmup)
    progress = min(1.0, (step - warmup) / decay_steps)
    return min_lr + 0.5 * (lr - min_lr) * (1.0 + math.cos(math.pi * progress))


def lr_lambda(n_steps: int, warmup: int, lr: float, min_lr: float):
    """The same schedule as a ``torch.optim.lr_scheduler.LambdaLR`` multiplier of the peak ``lr``."""
    return lambda step: lr_at(step, n_steps, warmup, lr, min_lr) / lr
