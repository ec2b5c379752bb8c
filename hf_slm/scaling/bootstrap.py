"""Bootstrap confidence intervals for fitted laws and their predictions, resampling runs.

A resample draws runs with replacement; each run's multiplicity becomes a sample weight on all its rows
(exactly equivalent to duplicating them). Laws with a batched ``refit_weighted`` (the Huber laws) refit all
resamples in one batched L-BFGS from the point estimate (as Besiroglu et al. restart from one point);
other estimators are cloned and refitted with ``sample_weight`` one resample at a time.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd
from sklearn.base import clone


@dataclass
class BootstrapResult:
    """Point estimate plus ``K`` bootstrap parameter samples (one row each, failed resamples dropped)."""

    point: dict[str, float]
    samples: pd.DataFrame
    level: float = 0.95

    def interval(self, name: str, level: float | None = None) -> tuple[float, float]:
        """Percentile interval of one parameter."""
        q = (1.0 - (self.level if level is None else level)) / 2.0
        col = self.samples[name].dropna()
        return float(col.quantile(q)), float(col.quantile(1.0 - q))

    def summary(self) -> dict[str, dict[str, float]]:
        """``{name: {value, ci_low, ci_high, se, level}}`` for every parameter."""
        out = {}
        for name, value in self.point.items():
            if name not in self.samples:
                continue
            low, high = self.interval(name)
            out[name] = {"value": float(value), "ci_low": low, "ci_high": high,
                         "se": float(self.samples[name].std(ddof=1)), "level": self.level}
        return out

    def predict_interval(self, fn: Callable[[Mapping[str, float]], np.ndarray],
                         level: float | None = None) -> dict[str, np.ndarray]:
        """Apply ``fn(params) -> array`` to the point estimate and every sample: value and percentile band."""
        q = (1.0 - (self.level if level is None else level)) / 2.0
        values = np.array([np.asarray(fn(row), dtype=float) for row in self.samples.to_dict("records")])
        with np.errstate(invalid="ignore"):
            low, high = np.nanquantile(values, [q, 1.0 - q], axis=0)
        return {"value": np.asarray(fn(self.point), dtype=float), "ci_low": low, "ci_high": high}


def resample_weights(groups, n_resamples: int, seed: int | np.random.Generator = 0) -> np.ndarray:
    """``(K, n)`` weights: each resample draws the distinct ``groups`` (run ids) with replacement and every
    row gets the multiplicity of its group. With ``groups=None`` pass an int (the number of rows)."""
    rng = np.random.default_rng(seed)
    if isinstance(groups, int | np.integer):
        codes, n_groups = np.arange(groups), int(groups)
    else:
        codes, uniques = pd.factorize(pd.Series(groups).astype(str))
        n_groups = len(uniques)
    counts = rng.multinomial(n_groups, np.full(n_groups, 1.0 / n_groups), size=n_resamples)
    return counts[:, codes].astype(float)


def bootstrap_law(law, *arrays, groups=None, n_resamples: int = 200, level: float = 0.95,
                  seed: int = 0, polish: bool = False) -> BootstrapResult:
    """Bootstrap a fitted ``law`` (fitted on ``arrays``) by resampling runs (``groups``; rows by default)."""
    if not hasattr(law, "params_"):
        raise RuntimeError("fit the law before bootstrapping it")
    n = len(np.asarray(arrays[0]))
    weights = resample_weights(n if groups is None else groups, n_resamples, seed)
    names = list(law.params_)
    if hasattr(law, "refit_weighted"):
        samples = law.refit_weighted(weights, polish=polish)
        frame = pd.DataFrame(samples, columns=list(law.param_names))[names]
    else:
        rows = []
        for w in weights:
            try:
                fitted = clone(law).fit(*arrays, sample_weight=w)
                rows.append([fitted.params_[k] for k in names])
            except (ValueError, RuntimeError):
                rows.append([np.nan] * len(names))
        frame = pd.DataFrame(rows, columns=names)
    frame = frame[np.isfinite(frame.to_numpy()).all(axis=1)].reset_index(drop=True)
    return BootstrapResult(point=dict(law.params_), samples=frame, level=level)
