"""A fitted law as JSON: the format ``hf-slm fit --json`` writes and a study's ``study.json`` holds.

Each constant is a number, or with a bootstrap ``{value, ci_low, ci_high, se, level}``; eq.4-type laws add
``allocation`` (eq.6's a, b, G), ``objective`` and ``n_starts``, power laws ``rmse_log``; ``fixed`` names the
constants held fixed and ``bootstrap`` keeps the resampled constants.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from hf_slm.scaling.allocation import allocation_constant, allocation_exponents
from hf_slm.scaling.bootstrap import BootstrapResult


def constant(name: str, value: float, boot: BootstrapResult | None, fixed: Mapping) -> float | dict:
    """One constant: a plain number when fixed or without a bootstrap, else its value with the interval."""
    if boot is None or name in fixed or name not in boot.samples or boot.samples[name].dropna().empty:
        return float(value)
    low, high = boot.interval(name)
    return {"value": float(value), "ci_low": low, "ci_high": high,
            "se": float(boot.samples[name].std(ddof=1)), "level": boot.level}


def fit_payload(law_name: str, law, boot: BootstrapResult | None, *, delta: float, n_points: int, seed: int,
                n_resamples: int = 0, fixed: Mapping[str, float] | None = None) -> dict[str, Any]:
    """``law`` (fitted; ``law_name`` is ``chinchilla``, ``data-constrained`` or ``power``) as a JSON-ready dict."""
    fixed = dict(fixed or {})
    out: dict[str, Any] = {"law": law_name, "delta": delta, "n_points": n_points}
    for name, value in law.params_.items():
        out[name] = constant(name, value, boot, fixed)
    if law_name == "power":
        out["rmse_log"] = law.rmse_log_
    else:
        p = law.params_
        a, b = allocation_exponents(p["alpha"], p["beta"])
        try:
            g = allocation_constant(p)
        except ValueError:
            g = None
        out["allocation"] = {"a": a, "b": b, "G": g}
        out["objective"] = law.objective_
        out["n_starts"] = law.n_starts_
    out["fixed"] = fixed
    if boot is not None:
        out["bootstrap"] = {"n_resamples": n_resamples, "n_valid": len(boot.samples), "level": boot.level,
                            "seed": seed, "samples": boot.samples.to_dict("list")}
    return out


def value(entry: Any) -> float:
    """A constant of a payload (plain number or ``{value, ...}``)."""
    return float(entry["value"] if isinstance(entry, Mapping) else entry)


def interval(entry: Any) -> tuple[float, float]:
    """The bootstrap interval of a payload constant (NaNs without one)."""
    if isinstance(entry, Mapping) and "ci_low" in entry:
        return float(entry["ci_low"]), float(entry["ci_high"])
    return float("nan"), float("nan")
