"""Downstream scaling: envelopes, power laws on them, saturating forms, loss-metric correlation.

- :func:`envelope`: the best loss (min) or best metric (max) per FLOP over all runs' learning curves.
- :class:`PowerLaw`: ``Q = k C^gamma`` (least squares in log-log space), the paper's downstream law.
- :class:`SaturatingPowerLaw` (``Q = Q_sat -+ k C^-gamma``) and :class:`LogisticLaw` (logistic in
  ``log10 C`` between a floor such as chance and a fitted ceiling): forms that saturate, addressing the
  paper's limitation 3; :func:`compare_forms` compares them with the power law on held-out largest-C points.
- :func:`loss_metric_fit`: Pearson r and a linear fit between test loss and a metric (paper Figure 4).
- :func:`relative_efficiency`: ``gamma_a / gamma_b`` and what it means in compute (paper 4.2.1).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator

#: Cuervo & Marxer (2024) Table 3 exponents gamma_q
TABLE3_GAMMAS = {
    "text": {"sblimp": 0.066, "tsc": 0.039, "ssc": 0.046},
    "speech": {"sblimp": 0.021, "tsc": 0.025, "ssc": 0.017},
}


def envelope(C, Q, mode: str = "min", n_bins: int | None = None) -> pd.DataFrame:
    """Pareto envelope of ``Q`` against compute ``C``: the points that beat every point with less compute.

    ``mode="min"`` for losses, ``"max"`` for metrics. With ``n_bins``, points are first reduced to the best one
    per log-spaced compute bin. Returns a DataFrame with columns ``C``, ``Q`` and ``index`` (input position).
    """
    if mode not in ("min", "max"):
        raise ValueError(f"mode must be 'min' or 'max', got {mode!r}")
    C, Q = np.asarray(C, dtype=float), np.asarray(Q, dtype=float)
    ok = np.flatnonzero(np.isfinite(C) & np.isfinite(Q) & (C > 0))
    sign = 1.0 if mode == "min" else -1.0
    order = ok[np.lexsort((sign * Q[ok], C[ok]))]
    if n_bins:
        edges = np.linspace(np.log(C[order].min()), np.log(C[order].max()) + 1e-12, n_bins + 1)
        bins = np.digitize(np.log(C[order]), edges)
        frame = pd.DataFrame({"i": order, "bin": bins, "v": sign * Q[order]})
        order = frame.loc[frame.groupby("bin")["v"].idxmin(), "i"].to_numpy()
        order = order[np.argsort(C[order], kind="stable")]
    keep, best = [], np.inf
    for i in order:
        if sign * Q[i] < best:
            keep.append(i)
            best = sign * Q[i]
    keep = np.array(keep, dtype=int)
    return pd.DataFrame({"C": C[keep], "Q": Q[keep], "index": keep})


def _weights(sample_weight, n: int) -> np.ndarray:
    return np.ones(n) if sample_weight is None else np.asarray(sample_weight, dtype=float)


class PowerLaw(BaseEstimator):
    """``Q = k C^gamma``, fitted by (weighted) least squares of ``log Q`` on ``log C``.

    ``gamma`` is negative for losses and positive for metrics. ``params_ = {"k": ..., "gamma": ...}``.
    """

    param_names = ("k", "gamma")

    def fit(self, C, Q, sample_weight=None) -> PowerLaw:
        """Fit on compute ``C`` and positive values ``Q``."""
        C, Q = np.asarray(C, dtype=float), np.asarray(Q, dtype=float)
        if len(C) < 2 or not (np.isfinite(C) & np.isfinite(Q)).all() or np.any(C <= 0) or np.any(Q <= 0):
            raise ValueError(f"PowerLaw needs at least 2 points with finite, positive C and Q (got {len(C)} points)")
        w = _weights(sample_weight, len(C))
        x, y = np.log(C), np.log(Q)
        xm, ym = np.average(x, weights=w), np.average(y, weights=w)
        sxx = np.sum(w * (x - xm) ** 2)
        if sxx <= 0:
            raise ValueError("PowerLaw needs at least 2 distinct compute values")
        gamma = np.sum(w * (x - xm) * (y - ym)) / sxx
        self.params_ = {"k": float(np.exp(ym - gamma * xm)), "gamma": float(gamma)}
        resid = y - (ym + gamma * (x - xm))
        self.rmse_log_ = float(np.sqrt(np.average(resid**2, weights=w)))
        return self

    def predict(self, C) -> np.ndarray:
        """``k C^gamma``."""
        return power_law(C, **self.params_)

    def inverse(self, Q) -> np.ndarray:
        """Compute at which the law reaches ``Q``."""
        return compute_for_value(Q, **self.params_)


def power_law(C, k: float, gamma: float, **_) -> np.ndarray:
    """``k C^gamma``."""
    return k * np.asarray(C, dtype=float) ** gamma


def compute_for_value(Q, k: float, gamma: float, **_) -> np.ndarray:
    """Inverse power law: ``C = (Q / k)^(1 / gamma)``."""
    return (np.asarray(Q, dtype=float) / k) ** (1.0 / gamma)


def _least_squares_multistart(residual, starts: Sequence[np.ndarray], bounds) -> np.ndarray:
    from scipy.optimize import least_squares

    best, best_cost = None, np.inf
    for x0 in starts:
        try:
            res = least_squares(residual, x0, bounds=bounds, method="trf", max_nfev=300)
        except ValueError:
            continue
        if res.cost < best_cost:
            best, best_cost = res.x, res.cost
    if best is None:
        raise RuntimeError("no start of the nonlinear fit succeeded")
    return best


class SaturatingPowerLaw(BaseEstimator):
    """``Q = Q_sat - k C^-gamma`` (``increasing=True``, metrics) or ``Q_sat + k C^-gamma`` (losses).

    Fitted by nonlinear least squares on ``Q`` from a few starts, with ``k, gamma > 0``. ``C`` is scaled by
    its geometric mean internally for conditioning; ``params_`` are in the original units.
    """

    param_names = ("Q_sat", "k", "gamma")

    def __init__(self, increasing: bool = True) -> None:
        self.increasing = increasing

    def fit(self, C, Q, sample_weight=None) -> SaturatingPowerLaw:
        """Fit on compute ``C`` and values ``Q`` (at least 3 points)."""
        C, Q = np.asarray(C, dtype=float), np.asarray(Q, dtype=float)
        if len(C) < 3:
            raise ValueError("SaturatingPowerLaw needs at least 3 points")
        sw = np.sqrt(_weights(sample_weight, len(C)))
        c_ref = float(np.exp(np.mean(np.log(C))))
        x = C / c_ref
        s = 1.0 if self.increasing else -1.0

        def residual(p):
            q_sat, log_k, gamma = p
            return sw * (q_sat - s * np.exp(log_k) * x**-gamma - Q)

        span = max(np.ptp(Q), 1e-6)
        edge = Q.max() if self.increasing else Q.min()
        starts = [np.array([edge + s * f * span, np.log(span), g]) for f in (0.1, 1.0) for g in (0.05, 0.2, 0.8)]
        q_sat, log_k, gamma = _least_squares_multistart(
            residual, starts, ([-np.inf, -50.0, 1e-6], [np.inf, 50.0, 10.0]))
        self.params_ = {"Q_sat": float(q_sat), "k": float(np.exp(log_k) * c_ref**gamma), "gamma": float(gamma)}
        return self

    def predict(self, C) -> np.ndarray:
        """Predicted values at compute ``C``."""
        s = 1.0 if self.increasing else -1.0
        p = self.params_
        return p["Q_sat"] - s * p["k"] * np.asarray(C, dtype=float) ** -p["gamma"]


class LogisticLaw(BaseEstimator):
    """``Q = floor + (ceiling - floor) / (1 + exp(-slope (log10 C - midpoint)))``.

    ``floor`` is fixed (chance level, 0.5 for two-way forced choice) unless ``None``; ``ceiling`` is fitted
    in ``(floor, max_value]``.
    """

    param_names = ("floor", "ceiling", "slope", "midpoint")

    def __init__(self, floor: float | None = 0.5, max_value: float = 1.0) -> None:
        self.floor = floor
        self.max_value = max_value

    def fit(self, C, Q, sample_weight=None) -> LogisticLaw:
        """Fit on compute ``C`` and values ``Q`` (at least 3 points)."""
        C, Q = np.asarray(C, dtype=float), np.asarray(Q, dtype=float)
        if len(C) < 3:
            raise ValueError("LogisticLaw needs at least 3 points")
        sw = np.sqrt(_weights(sample_weight, len(C)))
        lc = np.log10(C)
        fixed_floor = self.floor is not None

        def unpack(p):
            floor = self.floor if fixed_floor else p[3]
            return floor, p[0], p[1], p[2]

        def residual(p):
            floor, ceil, slope, mid = unpack(p)
            return sw * (floor + (ceil - floor) / (1.0 + np.exp(-slope * (lc - mid))) - Q)

        lo_floor = self.floor if fixed_floor else min(Q.min(), 0.0)
        starts = []
        for mid in np.quantile(lc, [0.25, 0.5, 0.75, 1.0]) + np.array([0, 0, 0, 1.0]):
            for slope in (0.3, 1.0, 3.0):
                p = [min(Q.max() + 0.05, self.max_value), slope, mid]
                starts.append(np.array(p if fixed_floor else [*p, Q.min()]))
        lower = [lo_floor + 1e-6, 1e-4, lc.min() - 20]
        upper = [self.max_value, 50.0, lc.max() + 20]
        if not fixed_floor:
            lower, upper = [*lower, -np.inf], [*upper, np.inf]
        p = _least_squares_multistart(residual, starts, (lower, upper))
        floor, ceil, slope, mid = unpack(p)
        self.params_ = {"floor": float(floor), "ceiling": float(ceil), "slope": float(slope),
                        "midpoint": float(mid)}
        return self

    def predict(self, C) -> np.ndarray:
        """Predicted values at compute ``C``."""
        p = self.params_
        z = -p["slope"] * (np.log10(np.asarray(C, dtype=float)) - p["midpoint"])
        return p["floor"] + (p["ceiling"] - p["floor"]) / (1.0 + np.exp(z))


def default_forms(increasing: bool = True, floor: float | None = 0.5) -> dict[str, BaseEstimator]:
    """The forms :func:`compare_forms` compares by default."""
    forms = {"power": PowerLaw(), "saturating_power": SaturatingPowerLaw(increasing=increasing)}
    if increasing:
        forms["logistic"] = LogisticLaw(floor=floor)
    return forms


def compare_forms(C, Q, holdout: float = 0.25, forms: dict[str, BaseEstimator] | None = None) -> pd.DataFrame:
    """Fit each form on the points with the smallest compute and score it on the held-out largest
    ``holdout`` fraction (extrapolation, which is what a scaling law is used for).

    Returns one row per form: ``form``, ``rmse_train``, ``rmse_holdout``, ``n_train``, ``n_holdout``, ``params``.
    """
    C, Q = np.asarray(C, dtype=float), np.asarray(Q, dtype=float)
    order = np.argsort(C)
    n_hold = max(1, int(round(holdout * len(C))))
    train, test = order[:-n_hold], order[-n_hold:]
    forms = default_forms() if forms is None else forms
    rows = []
    for name, form in forms.items():
        try:
            form.fit(C[train], Q[train])
        except (ValueError, RuntimeError) as err:
            rows.append({"form": name, "rmse_train": np.nan, "rmse_holdout": np.nan, "n_train": len(train),
                         "n_holdout": len(test), "params": {"error": str(err)}})
            continue
        rows.append({
            "form": name,
            "rmse_train": float(np.sqrt(np.mean((form.predict(C[train]) - Q[train]) ** 2))),
            "rmse_holdout": float(np.sqrt(np.mean((form.predict(C[test]) - Q[test]) ** 2))),
            "n_train": len(train), "n_holdout": len(test), "params": dict(form.params_),
        })
    return pd.DataFrame(rows)


def loss_metric_fit(loss, metric) -> dict[str, float]:
    """Pearson r (and its p-value) and the least-squares line ``metric = slope * loss + intercept``."""
    from scipy.stats import pearsonr

    loss, metric = np.asarray(loss, dtype=float), np.asarray(metric, dtype=float)
    ok = np.isfinite(loss) & np.isfinite(metric)
    loss, metric = loss[ok], metric[ok]
    if len(loss) < 3 or np.ptp(loss) == 0 or np.ptp(metric) == 0:
        return {"r": np.nan, "p_value": np.nan, "slope": np.nan, "intercept": np.nan, "n": int(len(loss))}
    r, p = pearsonr(loss, metric)
    slope, intercept = np.polyfit(loss, metric, 1)
    return {"r": float(r), "p_value": float(p), "slope": float(slope), "intercept": float(intercept),
            "n": int(len(loss))}


def relative_efficiency(gamma_a: float, gamma_b: float, compute_factor: float = 10.0) -> dict[str, float | str]:
    """Relative efficiency with scale of family a over family b: ``ratio = gamma_a / gamma_b``.

    With ``Q = k C^gamma``, a multiplicative gain in ``Q`` that family a gets from ``compute_factor`` times
    more compute needs ``compute_factor ** ratio`` times more compute in family b (log C scales as
    ``1 / gamma``). For a factor of 10 this is the paper's "10^ratio" (4.2.1).
    """
    ratio = gamma_a / gamma_b
    multiplier = compute_factor**ratio
    exponent = ratio * np.log10(compute_factor)
    statement = (f"ratio {ratio:.3g}: the gain family a gets from {compute_factor:g}x more compute needs "
                 f"10^{exponent:.3g} = {multiplier:.3g}x more compute in family b")
    return {"ratio": float(ratio), "compute_multiplier": float(multiplier), "log10_multiplier": float(exponent),
            "statement": statement}
