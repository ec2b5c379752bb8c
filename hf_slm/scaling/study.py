"""The analysis of a study from its run records: every fit, the efficiency ratios and the sanity checks.

:func:`analyze` returns numbers only (``scaling.report`` draws and writes them):

- per family (``text``, ``speech``, ``speech-unigram``; the run table's ``family`` column, ``speech`` when
  absent): eq.4 on the single-epoch final points (bootstrap over runs), eq.7/8 with those constants held
  fixed when multi-epoch runs exist, the power law of the loss envelope, and per metric the power law of the
  envelope of best metric per FLOP (Table 3's gamma) and its correlation with the test loss (Fig. 4);
- Table 3's relative efficiency ``gamma_text / gamma_speech`` per metric, with a bootstrap interval;
- checks of what a study should show: eq.4 identifiable, loss monotone in N and D, repetition worth less
  than fresh data, the largest runs above chance, metrics falling with the loss.

Each fit is in ``hf-slm fit --json``'s format (constants as ``{value, ci_low, ci_high, se, level}``,
``allocation``, ``objective``, ``bootstrap`` with the samples), plus ``family``, ``runs`` and ``rel_rmse``.
A fit that cannot be made is recorded with the reason in ``warnings``, never skipped silently.
:func:`analyze_runs` is the older entry point: analysis plus the report files in one call.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from hf_slm.scaling import payload as payloads
from hf_slm.scaling.bootstrap import BootstrapResult, bootstrap_law
from hf_slm.scaling.downstream import PowerLaw, envelope, loss_metric_fit
from hf_slm.scaling.laws import CHINCHILLA_PARAMS, ChinchillaLaw, DataConstrainedLaw
from hf_slm.scaling.payload import interval, value
from hf_slm.scaling.runs import finite, load_run_table, metric_columns, single_epoch
from hf_slm.scaling.selection import FitRunRule, select_fit_runs

CHANCE = 0.5
DEFAULT_FAMILY = "speech"


@dataclass
class AnalysisOptions:
    """How the fits are made: Huber ``delta``, ``n_bootstrap`` resamples of runs (0: no intervals),
    ``fit_runs`` (``all``, or ``paper``: more than ``min_updates`` planned updates and at most one epoch,
    duplicate (N, D) runs removed, the release's rule) and the ``chance`` level of the benchmarks."""

    delta: float = 0.03
    n_bootstrap: int = 200
    seed: int = 0
    level: float = 0.95
    fit_runs: str = "all"
    min_updates: int = 5000
    chance: float = CHANCE
    starts: str = "besiroglu"  # eq.4 starting grid: "besiroglu" (4,500 starts) or "coarse" (243, ~20x faster)

    def eq4_grid(self) -> dict | None:
        if self.starts == "besiroglu":
            return None
        if self.starts == "coarse":
            return {"alpha": np.array([0.0, 0.5, 1.0]), "beta": np.array([0.0, 0.5, 1.0]),
                    "e": np.array([-1.0, 0.0, 1.0]), "a": np.array([0.0, 10.0, 20.0]), "b": np.array([0.0, 10.0, 20.0])}
        raise ValueError(f"starts must be 'besiroglu' or 'coarse', got {self.starts!r}")


# -- the run table ----------------------------------------------------------------------------------------------
def _with_family(records: list[Mapping]) -> list[dict]:
    out = []
    for rec in records:
        rec = dict(rec)
        stats = rec.get("stats") or {}
        rec["family"] = rec.get("family") or stats.get("family") or DEFAULT_FAMILY
        out.append(rec)
    return out


def load_tables(source) -> tuple[pd.DataFrame, pd.DataFrame, list[str]]:
    """``(runs, curves, warnings)``: one row per run (with ``family`` and ``planned_steps`` where the records
    carry them) and one row per learning-curve point (the final points where records have no curves)."""
    warnings: list[str] = []
    if isinstance(source, str | Path) and Path(source).is_dir():
        import json

        files = sorted(Path(source).rglob("run.json"))
        if not files:
            raise FileNotFoundError(f"no run.json records under {source}")
        source = [json.loads(f.read_text()) for f in files]
    if isinstance(source, list):
        records = _with_family(source)
        runs = load_run_table(records)
        runs["planned_steps"] = [((r.get("stats") or {}).get("planned_steps") or (r.get("stats") or {}).get("n_steps"))
                                 for r in records]
        has_curves = any(r.get("curve") for r in records)
        curves = load_run_table(records, curves=True) if has_curves else pd.DataFrame()
    else:
        runs = load_run_table(source)
        curves = pd.DataFrame()
    if "family" not in runs:
        runs["family"] = DEFAULT_FAMILY
    runs["family"] = runs["family"].fillna(DEFAULT_FAMILY)
    if "run" not in runs:
        runs["run"] = [f"run{i}" for i in range(len(runs))]
    if curves.empty or curves["loss"].isna().all():
        if isinstance(source, list):
            warnings.append("the records hold no learning curves: Fig. 1 and the loss envelope use final points")
        curves = runs[["run", "family", "N", "D", "C", "loss"]].copy()
    curves["family"] = curves["family"].fillna(DEFAULT_FAMILY) if "family" in curves else DEFAULT_FAMILY
    return runs, curves, warnings


def fit_mask(runs: pd.DataFrame, options: AnalysisOptions) -> tuple[pd.Series, str]:
    """Which runs enter the eq.4 fits, and the rule in words."""
    single = single_epoch(runs)
    if options.fit_runs == "all":
        return single, "all single-epoch runs (the paper's >5,000-update rule would drop every miniature run)"
    rule = FitRunRule(min_updates=options.min_updates)
    selection = select_fit_runs(runs, rule)
    return runs["run"].astype(str).isin(selection.kept), f"the release's rule: {rule.describe()}"


# -- fit payloads (hf-slm fit --json's format) -----------------------------------------------------------------
def fit_payload(law_name: str, law, boot: BootstrapResult | None, options: AnalysisOptions, n_points: int,
                fixed: Mapping[str, float] | None = None, n_resamples: int = 0) -> dict[str, Any]:
    """A fitted law as ``hf-slm fit --json`` writes it (:func:`hf_slm.scaling.payload.fit_payload`)."""
    return payloads.fit_payload(law_name, law, boot, delta=options.delta, n_points=n_points, seed=options.seed,
                               n_resamples=n_resamples, fixed=fixed)


def _params(payload: Mapping, names: Iterable[str]) -> dict[str, float]:
    return {n: value(payload[n]) for n in names}


# -- the fits -----------------------------------------------------------------------------------------------------
def fit_eq4(data: pd.DataFrame, options: AnalysisOptions) -> tuple[dict | None, ChinchillaLaw | None, list[str]]:
    """eq.4 on single-epoch final points, with a bootstrap over runs; ``(payload, law, warnings)``."""
    n_sizes, n_budgets = data["N"].nunique(), data["D"].nunique()
    if len(data) < 6 or n_sizes < 2 or n_budgets < 2:
        return None, None, [f"eq.4 not fitted: {len(data)} runs, {n_sizes} sizes, {n_budgets} token budgets (the "
                            "5-constant law needs at least 6 runs over 2+ sizes and 2+ budgets)"]
    law = ChinchillaLaw(delta=options.delta, grid=options.eq4_grid()).fit(data["N"], data["D"], data["loss"])
    boot = None
    if options.n_bootstrap:
        boot = bootstrap_law(law, data["N"], data["D"], data["loss"], groups=data["run"],
                             n_resamples=options.n_bootstrap, level=options.level, seed=options.seed)
    payload = fit_payload("chinchilla", law, boot, options, len(data), n_resamples=options.n_bootstrap)
    pred = law.predict(data["N"], data["D"])
    payload["rel_rmse"] = float(np.sqrt(np.mean(((pred - data["loss"]) / data["loss"]) ** 2)))
    payload["runs"] = data["run"].astype(str).tolist()
    return payload, law, identifiability(payload, data)


def identifiability(payload: Mapping, data: pd.DataFrame) -> list[str]:
    """Plain-language warnings when eq.4 is not pinned down by the runs: ill-posed (exponents at an extreme, E
    above a measured loss, or a bootstrap interval of alpha or beta leaving (0, 2), the bound of
    :func:`eq4_check`), or only loosely pinned (an interval wider than its value)."""
    warnings, ill = [], False
    p = _params(payload, CHINCHILLA_PARAMS)
    if not (0 < p["alpha"] < 3 and 0 < p["beta"] < 3):
        warnings.append(f"eq.4 exponents at an extreme (alpha={p['alpha']:.3g}, beta={p['beta']:.3g})")
        ill = True
    if p["E"] > data["loss"].min():
        warnings.append(f"fitted E={p['E']:.3g} exceeds the lowest observed loss")
        ill = True
    for name in ("alpha", "beta", "E"):
        low, high = interval(payload[name])
        if name != "E" and np.isfinite(low) and not (0 < low and high < 2):
            ill = True
        if np.isfinite(low) and high - low > max(abs(p[name]), 1e-9):
            warnings.append(f"{name} is only loosely pinned down by these runs (bootstrap interval [{low:.3g}, "
                            f"{high:.3g}] wider than the value {p[name]:.3g})")
    if ill:
        warnings.insert(0, f"eq.4 fit on {len(data)} runs is ill-posed; treat its constants as descriptive only")
    return warnings


def fit_eq78(runs: pd.DataFrame, law: ChinchillaLaw, options: AnalysisOptions) -> tuple[dict | None, list[str]]:
    """eq.7/8 (R*_N, R*_D) on single- and multi-epoch runs with the eq.4 constants held fixed."""
    multi = runs[~single_epoch(runs)]
    if len(multi) < 1 or "U" not in runs:
        return None, []
    p = law.params_
    if not (p["alpha"] > 0 and p["beta"] > 0):
        return None, ["eq.7/8 not fitted: it needs positive eq.4 exponents"]
    if not (p["A"] > 0 and p["B"] > 0 and p["E"] >= 0):
        return None, [f"eq.7/8 not fitted: it needs positive eq.4 constants (E={p['E']:.3g}, A={p['A']:.3g}, "
                      f"B={p['B']:.3g})"]
    # E = 0 is log E -> -inf underflowed: the law is the same with the smallest positive E.
    base = {**p, "E": max(p["E"], np.finfo(float).tiny)}
    data = finite(runs, ["N", "D", "U", "loss"])
    dc = DataConstrainedLaw(delta=options.delta, base=base).fit(data["N"], data["D"], data["U"], data["loss"])
    boot = None
    if options.n_bootstrap:
        boot = bootstrap_law(dc, data["N"], data["D"], data["U"], data["loss"], groups=data["run"],
                             n_resamples=options.n_bootstrap, level=options.level, seed=options.seed)
    fixed = {k: float(p[k]) for k in CHINCHILLA_PARAMS}
    payload = fit_payload("data-constrained", dc, boot, options, len(data), fixed=fixed,
                          n_resamples=options.n_bootstrap)
    payload.update(fixed)  # the eq.4 constants as fitted (E = 0, not the stand-in above)
    pred = dc.predict(data["N"], data["D"], data["U"])
    payload["rel_rmse"] = float(np.sqrt(np.mean(((pred - data["loss"]) / data["loss"]) ** 2)))
    payload["runs"] = data["run"].astype(str).tolist()
    warnings = []
    if not (multi["D"] / multi["U"] > 1 + 1e-6).any():
        warnings.append("eq.7/8: no run repeats data")
    return payload, warnings


def fit_power(C, Q, mode: str, options: AnalysisOptions, y: str) -> dict | None:
    """``Q = k C^gamma`` on the envelope (``min`` for losses, ``max`` for metrics), bootstrap over its points."""
    env = envelope(C, Q, mode=mode)
    if len(env) < 2 or env["C"].nunique() < 2 or (env["Q"] <= 0).any():
        return None
    law = PowerLaw().fit(env["C"], env["Q"])
    boot = None
    if options.n_bootstrap and len(env) >= 3:
        boot = bootstrap_law(law, env["C"].to_numpy(), env["Q"].to_numpy(), n_resamples=options.n_bootstrap,
                             level=options.level, seed=options.seed)
    payload = fit_payload("power", law, boot, options, len(env), n_resamples=options.n_bootstrap)
    payload.update(x="C", y=y, envelope=mode, points={"C": env["C"].tolist(), "Q": env["Q"].tolist()})
    return payload


def metric_fits(runs: pd.DataFrame, metrics: list[str], options: AnalysisOptions) -> dict[str, dict]:
    """Per metric: the envelope power law and the correlations with the test loss (Pearson and Spearman)."""
    from scipy.stats import spearmanr

    out = {}
    for metric in metrics:
        part = runs[np.isfinite(runs[metric].astype(float))]
        if part.empty:
            continue
        entry = fit_power(part["C"], part[metric], "max", options, metric) or {"law": "power", "gamma": None,
                                                                            "warning": "fewer than 2 envelope points"}
        entry["correlation"] = loss_metric_fit(part["loss"], part[metric])
        varied = len(part) >= 3 and np.ptp(part["loss"]) > 0 and np.ptp(part[metric]) > 0
        rho = float(spearmanr(part["loss"], part[metric]).statistic) if varied else float("nan")
        entry["correlation"]["spearman"] = float(rho)
        out[metric] = entry
    return out


def efficiency(fits: Mapping[str, Mapping], options: AnalysisOptions, published: Mapping[str, float] | None = None
               ) -> dict[str, dict]:
    """Table 3's relative efficiency per metric: ``gamma_text / gamma_speech``, with a bootstrap interval
    (ratio of the two families' resampled gammas) and the paper's value."""
    text, speech = fits.get("text", {}).get("metrics", {}), fits.get("speech", {}).get("metrics", {})
    out = {}
    for metric in sorted(set(text) & set(speech)):
        g_text, g_speech = text[metric].get("gamma"), speech[metric].get("gamma")
        if g_text is None or g_speech is None:
            continue
        entry = {"gamma_text": value(g_text), "gamma_speech": value(g_speech),
                 "ratio": value(g_text) / value(g_speech) if value(g_speech) != 0 else float("nan")}
        a = (text[metric].get("bootstrap") or {}).get("samples", {}).get("gamma")
        b = (speech[metric].get("bootstrap") or {}).get("samples", {}).get("gamma")
        if a and b:
            n = min(len(a), len(b))
            with np.errstate(divide="ignore", invalid="ignore"):
                ratios = np.asarray(a[:n]) / np.asarray(b[:n])
            ratios = ratios[np.isfinite(ratios)]
            if len(ratios):
                q = (1 - options.level) / 2
                entry["ci_low"], entry["ci_high"] = (float(x) for x in np.quantile(ratios, [q, 1 - q]))
        if published and metric in published:
            entry["paper_ratio"] = published[metric]
        out[metric] = entry
    return out


# -- checks -------------------------------------------------------------------------------------------------------
def monotonicity(single: pd.DataFrame) -> dict[str, Any]:
    """Inversions of "loss falls with N at fixed D and with D at fixed N" over neighbouring grid points."""
    inversions, pairs = [], 0
    for fixed, moving in (("D", "N"), ("N", "D")):
        for key, group in single.groupby(fixed):
            g = group.sort_values(moving)
            for (_, a), (_, b) in zip(g.iloc[:-1].iterrows(), g.iloc[1:].iterrows(), strict=True):
                pairs += 1
                if b["loss"] >= a["loss"]:
                    inversions.append(f"{fixed}={key:.4g}: {a['run']} ({a['loss']:.4f}) -> {b['run']} "
                                      f"({b['loss']:.4f})")
    return {"pairs": pairs, "inversions": len(inversions), "details": inversions, "pass": pairs > 0 and
            len(inversions) <= 1}


def regime(single: pd.DataFrame, max_widening: float = 2.0) -> dict[str, Any]:
    """Whether single-epoch runs are in the regime eq.4 describes, and why not.

    Its additive form puts the same loss gap between two sizes at every D, and makes every size lose less per
    doubling of D as D grows (convex in log D). Runs before that regime, where larger models only begin to pull
    away, show the gap between sizes widening with D and drops per doubling that hold or grow; no choice of
    E, A, B, alpha, beta fits them. ``in_regime`` is False when the gap between the most distant sizes that
    share two budgets widens more than ``max_widening`` times, or when most sizes with three or more budgets
    do not slow down; None when the grid shows neither."""
    runs = single.assign(D=[float(f"{d:.3g}") for d in single["D"]])  # budgets equal up to whole batches
    table = runs.pivot_table(index="N", columns="D", values="loss", aggfunc="mean").sort_index().sort_index(axis=1)
    slowing = {}
    for N, row in table.iterrows():
        row = row.dropna()
        if len(row) >= 3:
            drops = -np.diff(row.to_numpy()) / np.diff(np.log2(row.index.to_numpy(dtype=float)))
            slowing[float(N)] = {"drops_per_doubling": [float(x) for x in drops], "slows": bool(drops[-1] < drops[0])}
    gap = _widest_gap(table)
    widens = gap is not None and not gap["widening"] <= max_widening  # NaN/inf (no gap at the low end) counts
    if gap is not None:
        gap["widens"] = bool(widens)
    stalled = [N for N, s in slowing.items() if not s["slows"]]
    mostly_stalled = bool(slowing) and len(stalled) > len(slowing) / 2
    if gap is None and not slowing:
        return {"in_regime": None, "gap": None, "slowing": slowing, "diagnosis": None}
    in_regime = not widens and not mostly_stalled
    reasons = []
    if widens:
        reasons.append(f"the loss gap between N={gap['N_small']:.3g} and N={gap['N_large']:.3g} widens from "
                       f"{gap['gap_low']:.3g} nats at D={gap['D_low']:.3g} to {gap['gap_high']:.3g} at "
                       f"D={gap['D_high']:.3g}")
    if mostly_stalled:
        reasons.append(f"{len(stalled)} of {len(slowing)} sizes lose as much or more per doubling of D at their "
                       "largest budgets as at their smallest")
    diagnosis = None if in_regime else (
        "the runs look pre-asymptotic: " + "; ".join(reasons) + ". eq.4's additive form (a gap constant in D, "
        "drops per doubling that shrink) cannot fit them; more tokens per run reach its regime")
    return {"in_regime": bool(in_regime), "gap": gap, "slowing": slowing, "diagnosis": diagnosis}


def _widest_gap(table: pd.DataFrame) -> dict[str, Any] | None:
    """The loss gap at the smallest and largest shared budget of the two most distant sizes sharing two."""
    sizes = table.index.to_numpy(dtype=float)
    best = None
    for i in range(len(sizes)):
        for j in range(i + 1, len(sizes)):
            shared = table.iloc[[i, j]].dropna(axis=1)
            if shared.shape[1] >= 2 and (best is None or sizes[j] / sizes[i] > best[0]):
                best = (sizes[j] / sizes[i], i, j, shared)
    if best is None:
        return None
    _, i, j, shared = best
    low, high = (shared.iloc[0] - shared.iloc[1]).iloc[[0, -1]]
    widening = high / low if low > 0 else (float("inf") if high > 0 else float("nan"))
    return {"N_small": float(sizes[i]), "N_large": float(sizes[j]), "D_low": float(shared.columns[0]),
            "D_high": float(shared.columns[-1]), "gap_low": float(low), "gap_high": float(high),
            "widening": float(widening)}


def repetition(runs: pd.DataFrame, law: ChinchillaLaw | None) -> dict[str, Any]:
    """Each multi-epoch run against fresh data: the single-epoch run of the same N and D (fresh) and of the
    same N on only its U unique tokens (eq.4's prediction where that run does not exist)."""
    single, multi = runs[single_epoch(runs)], runs[~single_epoch(runs)]
    rows = []
    for _, r in multi.iterrows():
        def loss_at(D: float, r=r) -> tuple[float, str]:
            hit = single[(single["N"] == r["N"]) & (np.isclose(single["D"], D, rtol=0.02))]
            if len(hit):
                return float(hit["loss"].iloc[0]), str(hit["run"].iloc[0])
            if law is not None:
                return float(law.predict(r["N"], D)), "eq.4"
            return float("nan"), "-"
        fresh, fresh_src = loss_at(r["D"])
        unique, unique_src = loss_at(r["U"])
        rows.append({"run": r["run"], "epochs": float(r["D"] / r["U"]), "loss": float(r["loss"]),
                     "fresh_loss": fresh, "fresh_from": fresh_src, "unique_only_loss": unique,
                     "unique_from": unique_src, "worse_than_fresh": bool(r["loss"] > fresh),
                     "better_than_unique_only": bool(r["loss"] < unique)})
    excess = [x["loss"] - x["fresh_loss"] for x in rows if np.isfinite(x["fresh_loss"])]
    most = max(rows, key=lambda x: x["epochs"]) if rows else None
    ok = None if not rows else (bool(excess) and float(np.mean(excess)) > 0 and most["worse_than_fresh"]
                                and all(x["better_than_unique_only"] for x in rows))  # None: no run repeats data
    return {"runs": rows, "mean_excess_over_fresh": float(np.mean(excess)) if excess else None, "pass": ok,
            "criterion": "every multi-epoch run beats one epoch of its unique data; on average, and at the most "
                         "epochs, it is worse than fresh data of the same size (up to ~4 epochs repetition is "
                         "nearly as good as fresh data, so a single 2-epoch run may tie)"}


def chance_check(runs: pd.DataFrame, metrics: list[str], chance: float) -> dict[str, Any]:
    """The largest-compute single-epoch run: which metrics have their whole interval above chance."""
    single = runs[single_epoch(runs)]
    if single.empty or not metrics:
        return {"run": None, "metrics": {}, "n_above": 0, "pass": False}
    top = single.loc[single["C"].idxmax()]
    verdicts = {}
    for m in metrics:
        low = top.get(f"{m}_ci_low", np.nan)
        verdicts[m] = {"accuracy": float(top[m]), "ci_low": float(low), "ci_high": float(top.get(f"{m}_ci_high", np.nan)),
                       "above_chance": bool(np.isfinite(low) and low > chance)}
    n_above = sum(v["above_chance"] for v in verdicts.values())
    return {"run": str(top["run"]), "C": float(top["C"]), "metrics": verdicts, "n_above": n_above,
            "pass": n_above >= min(2, len(metrics))}


def metric_vs_loss(runs: pd.DataFrame, fitted: Mapping[str, Mapping], chance: float) -> dict[str, dict]:
    """Per metric, the rank correlation of metric and test loss across runs; it must be negative for every
    metric that some run scores above chance (interval above ``chance``). A metric at chance in every run has
    nothing to correlate: it is reported with ``checked: false`` and does not decide the verdict."""
    out = {}
    for metric, entry in fitted.items():
        column = f"{metric}_ci_low"
        checked = bool((pd.to_numeric(runs[column], errors="coerce") > chance).any()) if column in runs else True
        rho = entry["correlation"]["spearman"]
        out[metric] = {"spearman": rho, "pearson": entry["correlation"]["r"], "checked": checked,
                       "pass": bool(rho < 0) if checked else None}
    return out


def eq4_check(payload: Mapping | None) -> dict[str, Any]:
    """eq.4 identifiable: 0.05 < alpha, beta < 1.5, E > 0, their 95 % intervals inside (0, 2), rel. RMSE < 3 %."""
    if payload is None:
        return {"pass": False, "reason": "not fitted"}
    p = _params(payload, CHINCHILLA_PARAMS)
    ci = {n: interval(payload[n]) for n in ("alpha", "beta")}
    ok = (0.05 < p["alpha"] < 1.5 and 0.05 < p["beta"] < 1.5 and p["E"] > 0 and payload["rel_rmse"] < 0.03
          and all(np.isfinite(lo) and lo > 0 and hi < 2 for lo, hi in ci.values()))
    return {"alpha": p["alpha"], "beta": p["beta"], "E": p["E"], "alpha_ci": list(ci["alpha"]),
            "beta_ci": list(ci["beta"]), "rel_rmse": payload["rel_rmse"], "pass": bool(ok)}


# -- the whole analysis -------------------------------------------------------------------------------------------
def analyze_family(family: str, runs: pd.DataFrame, curves: pd.DataFrame, metrics: list[str],
                   options: AnalysisOptions) -> dict[str, Any]:
    """Every fit and check of one family."""
    runs = finite(runs, ["N", "D", "loss"]).reset_index(drop=True)
    mask, rule = fit_mask(runs, options)
    fit_data = runs[mask]
    eq4, law, warnings = fit_eq4(fit_data, options)
    eq78, more = fit_eq78(runs, law, options) if law is not None else (None, [])
    warnings += more
    eq4_regime = regime(fit_data)
    if eq4_regime["diagnosis"]:
        warnings.append(eq4_regime["diagnosis"])
    single_curves = finite(curves[curves["run"].isin(runs[single_epoch(runs)]["run"])], ["C", "loss"])
    family_metrics = [m for m in metrics if m in runs and runs[m].notna().any()]
    fitted_metrics = metric_fits(runs, family_metrics, options)
    result = {
        "family": family, "n_runs": len(runs), "n_fit": int(mask.sum()), "fit_rule": rule,
        "eq4": eq4, "eq78": eq78,
        "loss_power_law": fit_power(single_curves["C"], single_curves["loss"], "min", options, "loss"),
        "metrics": fitted_metrics,
        "checks": {
            "eq4": {**eq4_check(eq4), "regime": eq4_regime},
            "monotonic": monotonicity(runs[single_epoch(runs)]),
            "repetition": repetition(runs, law),
            "chance": chance_check(runs, family_metrics, options.chance),
            "metric_vs_loss": metric_vs_loss(runs, fitted_metrics, options.chance),
        },
        "warnings": warnings,
    }
    if eq78 is not None:
        result["checks"]["repetition"]["R_D"] = value(eq78["R_D"])
    return result


def analyze(source, options: AnalysisOptions | None = None, published_ratios: Mapping[str, float] | None = None
            ) -> dict[str, Any]:
    """All fits, efficiencies and checks of a study's runs (records, a folder of them, or a run table)."""
    options = options or AnalysisOptions()
    runs, curves, warnings = load_tables(source)
    metrics = metric_columns(runs.drop(columns=["planned_steps"], errors="ignore"))
    fams = {}
    for family in sorted(runs["family"].unique(), key=lambda f: (f != DEFAULT_FAMILY, f)):
        fams[family] = analyze_family(family, runs[runs["family"] == family], curves[curves["family"] == family],
                                      metrics, options)
    return {"options": dict(vars(options)), "metrics": metrics, "families": fams,
            "efficiency": efficiency(fams, options, published_ratios), "warnings": warnings,
            "runs": runs, "curves": curves}


def analyze_runs(source, output_dir, delta: float = 0.03, n_bootstrap: int = 50, seed: int = 0) -> dict:
    """Analyse ``source`` and write the report (figures, ``report.md``, ``report.html``, ``study.json``) into
    ``output_dir``; returns the study dict (see :func:`hf_slm.scaling.report.write_report`)."""
    from hf_slm.scaling.report import ReportOptions, write_report

    return write_report(source, output_dir, ReportOptions(delta=delta, n_bootstrap=n_bootstrap, seed=seed))["study"]
