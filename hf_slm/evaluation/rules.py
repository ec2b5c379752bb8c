"""Scoring rules for candidates and the paired comparison (numpy only, shared by the engine and metrics)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

RULES = ("sum", "mean")

Score = tuple[float, int]
"""A candidate's summed log-probability (nats) and its number of scored tokens."""


def apply_rule(scores: Sequence[Score], rule: str = "sum") -> np.ndarray:
    """Candidate scores under a rule: ``"sum"`` (total log-prob, the SLM standard) or ``"mean"`` (per token)."""
    if rule not in RULES:
        raise ValueError(f"unknown scoring rule {rule!r}; expected one of {RULES}")
    logprobs = np.array([s for s, _ in scores], dtype=np.float64)
    if rule == "sum":
        return logprobs
    counts = np.array([n for _, n in scores], dtype=np.float64)
    if (counts == 0).any():
        raise ValueError(f"rule 'mean' needs at least one scored token; candidate {int(np.argmax(counts == 0))} has none")
    return logprobs / counts


def compare(pos_scores: Sequence[float], neg_scores: Sequence[float]) -> np.ndarray:
    """Per-pair correctness: 1 when the positive scores higher, 0 when lower, 0.5 on a tie."""
    pos, neg = np.asarray(pos_scores, dtype=np.float64), np.asarray(neg_scores, dtype=np.float64)
    if pos.shape != neg.shape:
        raise ValueError(f"got {pos.shape} positive and {neg.shape} negative scores")
    return np.where(pos > neg, 1.0, np.where(pos == neg, 0.5, 0.0))
