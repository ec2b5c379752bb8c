"""From candidate scores to item decisions, and from decisions to a benchmark's accuracy and breakdowns.

An *item* is one question: a positive candidate and its negative(s) said by one voice. A *pair* groups the
items that differ only by voice (sBLIMP and sWUGGY have several voices per minimal pair); a *phenomenon*
groups pairs (sBLIMP's 12 linguistic phenomena, SALMon's parts). Without pairs each item is its own pair;
without phenomena all pairs form one group.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from hf_slm.evaluation.presets import AGGREGATES
from hf_slm.evaluation.stats import binomial_ci

ALL = "all"


def decide(positive: Sequence[float], best_negative: Sequence[float], tie_credit: float = 0.5) -> np.ndarray:
    """Per-item decision: 1 when the positive scores higher than the best negative, ``tie_credit`` on a tie,
    else 0 (scores are higher-is-better)."""
    pos = np.asarray(positive, dtype=np.float64)
    neg = np.asarray(best_negative, dtype=np.float64)
    if pos.shape != neg.shape:
        raise ValueError(f"got {pos.shape} positive and {neg.shape} negative scores")
    if not 0.0 <= tie_credit <= 1.0:
        raise ValueError(f"tie_credit must lie in [0, 1], got {tie_credit}")
    return np.where(pos > neg, 1.0, np.where(pos == neg, float(tie_credit), 0.0))


def _labels(values: Sequence[str | None] | None, n: int, default: Sequence[str], what: str) -> list[str]:
    if values is None:
        return list(default)
    if len(values) != n:
        raise ValueError(f"got {len(values)} {what} for {n} items")
    return [str(v) if v not in (None, "") else d for v, d in zip(values, default, strict=True)]


def summarize_decisions(
    decisions: Sequence[float] | np.ndarray,
    phenomena: Sequence[str | None] | None = None,
    pair_ids: Sequence[str | None] | None = None,
    aggregate: str = "micro",
    confidence: float = 0.95,
    ci_method: str = "wilson",
) -> dict:
    """Accuracy, its binomial confidence interval and the breakdowns of a benchmark's item decisions.

    ``aggregate="macro"`` (the paper's sBLIMP rule): the decisions of each pair are averaged over its items
    (voices), the pairs of each phenomenon are averaged, and ``accuracy`` is the mean over phenomena, with
    ``n`` the number of pairs. ``aggregate="micro"``: ``accuracy`` is the mean over items, ``n`` the number of
    items. Both report ``pair_accuracy`` (mean over pairs), ``voice_pair_accuracy`` (mean over items),
    ``by_phenomenon`` (mean over the phenomenon's pairs), ``n_pairs`` and ``n_items``. The interval is the
    binomial one of the accuracy over ``n`` (Wilson by default; a fractional count is fine).

    Raises ``ValueError`` when a pair's items carry different phenomena.
    """
    if aggregate not in AGGREGATES:
        raise ValueError(f"unknown aggregate {aggregate!r}; expected one of {AGGREGATES}")
    values = np.asarray(decisions, dtype=np.float64)
    n_items = int(values.size)
    if n_items == 0:
        raise ValueError("cannot summarise accuracy over zero items")
    pairs = _labels(pair_ids, n_items, [f"#{i}" for i in range(n_items)], "pair ids")
    groups = _labels(phenomena, n_items, [ALL] * n_items, "phenomena")
    pair_values: dict[str, list[float]] = {}
    pair_group: dict[str, str] = {}
    for pair, group, value in zip(pairs, groups, values.tolist(), strict=True):
        if pair_group.setdefault(pair, group) != group:
            raise ValueError(f"pair {pair!r} spans phenomena {pair_group[pair]!r} and {group!r}")
        pair_values.setdefault(pair, []).append(value)
    by_group: dict[str, list[float]] = {}
    for pair, vals in pair_values.items():
        by_group.setdefault(pair_group[pair], []).append(float(np.mean(vals)))
    by_phenomenon = {group: float(np.mean(by_group[group])) for group in sorted(by_group)}
    pair_means = [v for vals in by_group.values() for v in vals]
    result = {
        "pair_accuracy": float(np.mean(pair_means)),
        "voice_pair_accuracy": float(values.mean()),
        "by_phenomenon": by_phenomenon,
        "n_pairs": len(pair_means),
        "n_items": n_items,
    }
    if aggregate == "macro":
        accuracy, n = float(np.mean(list(by_phenomenon.values()))), len(pair_means)
    else:
        accuracy, n = float(values.mean()), n_items
    low, high = binomial_ci(min(accuracy * n, n), n, confidence=confidence, method=ci_method)
    return {"accuracy": accuracy, "n": n, "ci_low": low, "ci_high": high, **result}
