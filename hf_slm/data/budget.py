"""Data budgets: how many tokens a run sees (D), how many of them are unique (U), and in what order."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Budget:
    """A run's data budget in blocks of ``block_size`` tokens.

    ``tokens`` is D (tokens seen) and ``unique_tokens`` is U (distinct tokens available); D / U epochs.
    """

    tokens: int
    unique_tokens: int
    block_size: int

    def __post_init__(self) -> None:
        if self.tokens <= 0 or self.unique_tokens <= 0:
            raise ValueError(f"budget needs tokens > 0 and unique_tokens > 0, got D={self.tokens}, U={self.unique_tokens}")

    @property
    def epochs(self) -> float:
        return self.tokens / self.unique_tokens

    @property
    def n_blocks(self) -> int:
        """Blocks seen during the run (rounded up so that at least D tokens are seen)."""
        return math.ceil(self.tokens / self.block_size)

    @property
    def n_unique_blocks(self) -> int:
        return math.ceil(self.unique_tokens / self.block_size)


def make_budget(
    available_tokens: int, block_size: int, tokens: int | None = None, unique_tokens: int | None = None,
    tokens_per_param: float | None = None, n_params: int | None = None,
) -> Budget:
    """Resolve a budget from ``--tokens D`` or ``--tokens-per-param D/N`` and ``--unique-tokens U``.

    U defaults to min(D, available tokens); asking for more unique tokens than the data hold is an error.
    """
    if tokens is None:
        if tokens_per_param is None or n_params is None:
            raise ValueError("give either tokens (D) or tokens_per_param (D/N) together with n_params")
        tokens = int(round(tokens_per_param * n_params))
    unique = min(tokens, available_tokens) if unique_tokens is None else unique_tokens
    if unique > available_tokens:
        raise ValueError(f"unique_tokens={unique} exceeds the {available_tokens} tokens the training data hold")
    return Budget(tokens=int(tokens), unique_tokens=int(unique), block_size=block_size)


def block_order(budget: Budget, n_available_blocks: int, seed: int = 0) -> np.ndarray:
    """Indices of the blocks a run visits, in order.

    The run draws its ``n_unique_blocks`` once (seeded) and visits them in a fresh seeded permutation each
    epoch until ``n_blocks`` have been seen. The order depends only on the arguments, so a resumed run can
    skip to its position.
    """
    if budget.n_unique_blocks > n_available_blocks:
        raise ValueError(f"budget needs {budget.n_unique_blocks} unique blocks, data have {n_available_blocks}")
    rng = np.random.default_rng(seed)
    pool = rng.permutation(n_available_blocks)[: budget.n_unique_blocks]
    n_epochs = math.ceil(budget.n_blocks / len(pool))
    order = np.concatenate([pool[rng.permutation(len(pool))] for _ in range(n_epochs)])
    return order[: budget.n_blocks]
