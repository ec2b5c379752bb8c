"""Planning: the compute and allocation (N, D, C) needed to reach a loss or a metric value, with intervals.

Intervals come from bootstrap samples of the fitted constants: the plan is recomputed for every sample and
the percentile band reported (samples for which the target is unreachable give ``inf`` and widen the band).
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd

from hf_slm.scaling.allocation import compute_for_loss, compute_optimal, tokens_for_loss
from hf_slm.scaling.downstream import compute_for_value


def _band(values: np.ndarray, level: float) -> tuple[float, float]:
    q = (1.0 - level) / 2.0
    values = np.where(np.isnan(values), np.inf, values)
    low, high = np.quantile(values, [q, 1.0 - q])
    return float(low), float(high)


def _entry(value: float, samples: np.ndarray | None, level: float) -> dict[str, float]:
    out = {"value": float(value)}
    if samples is not None and len(samples):
        out["ci_low"], out["ci_high"] = _band(np.asarray(samples, dtype=float), level)
        out["level"] = level
    return out


def _rows(samples: pd.DataFrame | None) -> list[dict]:
    return [] if samples is None else samples.to_dict("records")


def plan_for_loss(target: float, params: Mapping[str, float], samples: pd.DataFrame | None = None,
                  N: float | None = None, level: float = 0.95) -> dict[str, dict[str, float]]:
    """Compute-optimal ``C``, ``N``, ``D`` reaching loss ``target`` under eq.4/eq.6.

    With ``N`` given, the tokens ``D`` that model size needs instead (and ``C = 6 N D``). A target the point
    estimate can never reach (at or below ``E``, or below ``E + A / N^alpha`` for a fixed ``N``) raises
    ``ValueError``; bootstrap samples that cannot reach it give ``inf`` and widen the band.
    """
    floor = float(params["E"])
    if target <= floor:
        raise ValueError(f"target loss {target:g} is at or below the irreducible loss E = {floor:.6g} of the fit: "
                         "no amount of compute reaches it; choose a target above E")
    if N is not None:
        floor_n = floor + float(params["A"]) / float(N) ** float(params["alpha"])
        if target <= floor_n:
            raise ValueError(f"target loss {target:g} is at or below what a model of N = {N:.4g} parameters "
                             f"reaches with unlimited data (E + A / N^alpha = {floor_n:.6g}); "
                             "choose a larger N or a higher target")

    def one(p: Mapping[str, float]) -> tuple[float, float, float]:
        if N is None:
            plan = compute_for_loss(target, p)
            return float(plan["C"]), float(plan["N"]), float(plan["D"])
        d = float(tokens_for_loss(target, N, p))
        return 6.0 * N * d, float(N), d

    point = one(params)
    draws = np.array([one(p) for p in _rows(samples)]) if samples is not None else None
    out = {"target_loss": {"value": float(target)}}
    for i, name in enumerate(("C", "N", "D")):
        out[name] = _entry(point[i], None if draws is None else draws[:, i], level)
    return out


def plan_for_metric(target: float, power_params: Mapping[str, float], power_samples: pd.DataFrame | None = None,
                    law_params: Mapping[str, float] | None = None, level: float = 0.95) -> dict[str, dict[str, float]]:
    """Compute at which the envelope power law ``Q = k C^gamma`` reaches ``target``, and (when eq.4
    constants are given) the compute-optimal ``N`` and ``D`` for that compute."""
    c_point = float(compute_for_value(target, **power_params))
    c_draws = None
    if power_samples is not None:
        c_draws = np.array([float(compute_for_value(target, **p)) for p in _rows(power_samples)])
    out = {"target_metric": {"value": float(target)}, "C": _entry(c_point, c_draws, level)}
    if law_params is not None:
        n_opt, d_opt = compute_optimal(c_point, law_params)
        n_draws = d_draws = None
        if c_draws is not None:
            n_draws, d_draws = compute_optimal(np.where(np.isfinite(c_draws), c_draws, np.nan), law_params)
        out["N"] = _entry(float(n_opt), n_draws, level)
        out["D"] = _entry(float(d_opt), d_draws, level)
    return out
