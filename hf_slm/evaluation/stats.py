"""Accuracy with binomial confidence intervals for paired-choice benchmarks.

The intervals are closed forms (Wilson score, Clopper-Pearson "exact"); they agree with
``scipy.stats.binomtest(k, n).proportion_ci`` for integer ``k`` and also accept the fractional ``k`` that
ties (counted 0.5) produce.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy import stats

CI_METHODS = ("wilson", "exact")


def _wilson(k: float, n: int, z: float) -> tuple[float, float]:
    p = k / n
    denom = 1 + z * z / n
    center = (p + z * z / (2 * n)) / denom
    half = z / denom * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return max(0.0, center - half), min(1.0, center + half)


def _clopper_pearson(k: float, n: int, alpha: float) -> tuple[float, float]:
    low = 0.0 if k <= 0 else float(stats.beta.ppf(alpha / 2, k, n - k + 1))
    high = 1.0 if k >= n else float(stats.beta.ppf(1 - alpha / 2, k + 1, n - k))
    return low, high


def binomial_ci(k: float, n: int, confidence: float = 0.95, method: str = "wilson") -> tuple[float, float]:
    """Two-sided confidence interval ``(low, high)`` for a proportion of ``k`` successes in ``n`` trials."""
    if n <= 0:
        raise ValueError(f"need n >= 1 trials, got {n}")
    if not 0 <= k <= n:
        raise ValueError(f"successes k={k} must lie in [0, n={n}]")
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must lie in (0, 1), got {confidence}")
    if method == "wilson":
        low, high = _wilson(float(k), n, float(stats.norm.ppf(0.5 + confidence / 2)))
    elif method == "exact":
        low, high = _clopper_pearson(float(k), n, 1 - confidence)
    else:
        raise ValueError(f"unknown CI method {method!r}; expected one of {CI_METHODS}")
    return float(low), float(high)


def accuracy_summary(
    correct: Sequence[float] | np.ndarray, confidence: float = 0.95, method: str = "wilson"
) -> dict[str, float | int]:
    """``{"accuracy", "n", "ci_low", "ci_high"}`` of per-pair correctness values (1, 0, or 0.5 for a tie)."""
    values = np.asarray(correct, dtype=np.float64)
    if values.size == 0:
        raise ValueError("cannot summarise accuracy over zero pairs")
    k, n = float(values.sum()), int(values.size)
    low, high = binomial_ci(k, n, confidence=confidence, method=method)
    return {"accuracy": k / n, "n": n, "ci_low": low, "ci_high": high}


def beats_chance(summary: dict, chance: float = 0.5) -> bool:
    """Whether the whole confidence interval lies above ``chance`` (``ci_low > chance``)."""
    return bool(summary["ci_low"] > chance)
