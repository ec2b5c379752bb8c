"""The scaling stage of a study: fits, figures and a Markdown report from a set of runs.

:func:`analyze_runs` fits eq.4 on the final points of single-epoch runs (with bootstrap intervals and an
identifiability check, so a handful of small runs gives a warning instead of a crash), eq.7/8 when
multi-epoch runs exist, the power law of the loss envelope, one power law per metric (and family), the
loss-metric correlations, and writes the paper's figures plus ``report.md``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from hf_slm.scaling.allocation import allocation_exponents
from hf_slm.scaling.bootstrap import bootstrap_law
from hf_slm.scaling.downstream import PowerLaw, compare_forms, envelope, loss_metric_fit, relative_efficiency
from hf_slm.scaling.figures import (
    plot_isoloss,
    plot_loss_vs_compute,
    plot_metrics_vs_compute,
    plot_metrics_vs_loss,
)
from hf_slm.scaling.laws import ChinchillaLaw, DataConstrainedLaw
from hf_slm.scaling.runs import finite, load_run_table, metric_columns, single_epoch

CHANCE = 0.5


def _load(source) -> tuple[pd.DataFrame, pd.DataFrame]:
    runs = load_run_table(source)
    try:
        curves = load_run_table(source, curves=True)
    except (ValueError, KeyError):
        curves = pd.DataFrame()
    if curves.empty or "loss" not in curves or curves["loss"].isna().all():
        curves = runs.copy()
    if "run" not in curves:
        curves["run"] = np.arange(len(curves)).astype(str)
    if "run" not in runs:
        runs["run"] = np.arange(len(runs)).astype(str)
    return runs, curves


def _identifiability(law: ChinchillaLaw, boot, data: pd.DataFrame) -> list[str]:
    """Plain-language warnings when the 5-parameter fit is not pinned down by the data."""
    warnings = []
    p = law.params_
    if p["alpha"] > 3 or p["beta"] > 3 or p["alpha"] < 1e-3 or p["beta"] < 1e-3:
        warnings.append(f"eq.4 exponents at an extreme (alpha={p['alpha']:.3g}, beta={p['beta']:.3g})")
    if p["E"] > data["loss"].min():
        warnings.append(f"fitted E={p['E']:.3g} exceeds the lowest observed loss")
    if boot is not None and len(boot.samples) >= 5:
        for name in ("alpha", "beta", "E"):
            low, high = boot.interval(name)
            if not np.isfinite(high - low) or high - low > max(abs(p[name]), 1e-9):
                warnings.append(f"{name} is not identified by these runs (bootstrap 95% interval "
                                f"[{low:.3g}, {high:.3g}] wider than the value {p[name]:.3g})")
    return warnings


def _fit_eq4(single: pd.DataFrame, delta: float, n_boot: int, seed: int) -> dict:
    out: dict = {"law": None, "bootstrap": None, "warnings": []}
    n_sizes, n_budgets = single["N"].nunique(), single["D"].nunique()
    n_ratios = (single["D"] / single["N"]).round(6).nunique()
    if len(single) < 6 or n_sizes < 2 or n_budgets < 2 or n_ratios < 2:
        out["warnings"].append(
            f"eq.4 not fitted: {len(single)} single-epoch runs, {n_sizes} sizes, {n_budgets} token budgets, "
            f"{n_ratios} tokens-per-parameter ratios (the 5-parameter law needs at least 6 runs over 2+ sizes "
            "and 2+ budgets that do not all lie on one D/N line)")
        return out
    law = ChinchillaLaw(delta=delta).fit(single["N"], single["D"], single["loss"])
    boot = None
    if n_boot:
        boot = bootstrap_law(law, single["N"], single["D"], single["loss"], groups=single["run"],
                             n_resamples=n_boot, seed=seed)
    out.update(law=law, bootstrap=boot, warnings=_identifiability(law, boot, single))
    if out["warnings"]:
        out["warnings"].insert(0, f"eq.4 fit on {len(single)} runs is ill-posed; treat its constants as "
                                  "descriptive only")
    return out


def _metric_fits(runs: pd.DataFrame, metrics: list[str]) -> dict:
    families = sorted(runs["family"].dropna().unique()) if "family" in runs else [None]
    out = {}
    for metric in metrics:
        for fam in families:
            part = runs if fam is None else runs[runs["family"] == fam]
            part = part[np.isfinite(part[metric].astype(float)) & (part[metric] > 0)]
            key = metric if fam is None else f"{metric}/{fam}"
            entry: dict = {"metric": metric, "family": fam, **loss_metric_fit(part["loss"], part[metric])}
            env = envelope(part["C"], part[metric], mode="max")
            entry["n_envelope"] = len(env)
            if len(env) >= 2:
                entry.update(PowerLaw().fit(env["C"], env["Q"]).params_)
            if len(env) >= 5:
                cmp = compare_forms(env["C"], env["Q"], holdout=0.3)
                entry["forms"] = cmp.set_index("form")["rmse_holdout"].to_dict()
            out[key] = entry
    return out


def _efficiencies(fits: dict) -> dict:
    by_metric: dict = {}
    for entry in fits.values():
        if entry["family"] is not None and "gamma" in entry:
            by_metric.setdefault(entry["metric"], {})[entry["family"]] = entry["gamma"]
    out = {}
    for metric, fams in by_metric.items():
        names = sorted(fams)
        if len(names) >= 2 and fams[names[1]] != 0:
            out[metric] = {"a": names[0], "b": names[1], **relative_efficiency(fams[names[0]], fams[names[1]])}
    return out


def _fmt(x, digits: int = 4) -> str:
    if x is None or (isinstance(x, float) and not np.isfinite(x)):
        return "-"
    return f"{x:.{digits}g}" if isinstance(x, float | np.floating) else str(x)


def _metric_cell(row: pd.Series, metric: str) -> str:
    acc = row.get(metric)
    if acc is None or not np.isfinite(acc):
        return "-"
    cell = f"{acc:.3f}"
    if np.isfinite(row.get(f"{metric}_ci_low", np.nan)):
        cell += f" [{row[f'{metric}_ci_low']:.3f}, {row[f'{metric}_ci_high']:.3f}]"
    if np.isfinite(row.get(f"{metric}_n", np.nan)):
        cell += f" (n={int(row[f'{metric}_n'])})"
    return cell


def _chance_sentence(row: pd.Series, metric: str) -> str | None:
    acc = row.get(metric)
    if acc is None or not np.isfinite(acc):
        return None
    low = row.get(f"{metric}_ci_low", np.nan)
    name = row.get("run", "?")
    if not np.isfinite(low):
        return f"- {name}, {metric}: accuracy {acc:.3f}, no interval recorded, so no claim about chance."
    verdict = "beats chance" if low > CHANCE else "does not beat chance"
    return f"- {name}, {metric}: {verdict} (accuracy {acc:.3f}, 95% interval lower bound {low:.3f} vs {CHANCE})."


def _report(result: dict, runs: pd.DataFrame, metrics: list[str], eq4: dict) -> str:
    lines = ["# Scaling report", ""]
    lines += [f"- Huber delta: {result['delta']}", f"- runs: {len(runs)}, single-epoch: {result['n_single_epoch']}", ""]
    lines += ["## eq.4 constants (single-epoch runs, final points)", ""]
    if result["chinchilla"]:
        summary = eq4["bootstrap"].summary() if eq4["bootstrap"] is not None else {}
        lines += ["| constant | value | 95% bootstrap interval |", "|---|---|---|"]
        for name, value in result["chinchilla"]["params"].items():
            ci = summary.get(name)
            interval = f"[{_fmt(ci['ci_low'])}, {_fmt(ci['ci_high'])}]" if ci else "-"
            lines.append(f"| {name} | {_fmt(value)} | {interval} |")
        alloc = result["allocation"]
        if alloc:
            lines += ["", f"eq.6 exponents: N_opt ~ C^a with a = {alloc['a']:.3f}, D_opt ~ C^b with b = {alloc['b']:.3f}."]
        if result.get("data_constrained"):
            dc = result["data_constrained"]
            lines.append(f"eq.7/8 (multi-epoch runs): R*_N = {_fmt(dc['R_N'])}, R*_D = {_fmt(dc['R_D'])}.")
    for w in result["warnings"]:
        lines.append(f"\n> **Warning:** {w}")
    lines += ["", "## Power laws on the envelopes (Q = k C^gamma)", "", "| quantity | k | gamma | Pearson r with loss |",
              "|---|---|---|---|"]
    lp = result.get("loss_power_law")
    if lp:
        lines.append(f"| loss | {_fmt(lp['k'])} | {_fmt(lp['gamma'])} | - |")
    for key, entry in result["metrics"].items():
        lines.append(f"| {key} | {_fmt(entry.get('k'))} | {_fmt(entry.get('gamma'))} | {_fmt(entry.get('r'), 3)} |")
    for metric, eff in result["efficiency"].items():
        lines.append(f"\nRelative efficiency on {metric} ({eff['a']} / {eff['b']}): {eff['statement']}.")
    cols = ["run", "N", "D", "U", "epochs", "C", "loss", *metrics]
    lines += ["", "## Runs", "", "| " + " | ".join(c if c != "C" else "FLOPs" for c in cols) + " |",
              "|" + "---|" * len(cols)]
    for _, row in runs.iterrows():
        cells = [_metric_cell(row, c) if c in metrics else _fmt(row.get(c), 4) for c in cols]
        lines.append("| " + " | ".join(cells) + " |")
    sentences = [s for _, row in runs.iterrows() for m in metrics if (s := _chance_sentence(row, m))]
    if sentences:
        lines += ["", "## Against chance (0.5): beats chance when the interval's lower bound exceeds 0.5", "", *sentences]
    return "\n".join(lines) + "\n"


def analyze_runs(source, output_dir, delta: float = 0.03, n_bootstrap: int = 50, seed: int = 0) -> dict:
    """Fit the laws on ``source`` (anything :func:`load_run_table` reads), write figures and ``report.md``
    into ``output_dir``; return the fitted numbers (constants, exponents, gammas, warnings, file paths)."""
    out_dir = Path(output_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    runs, curves = _load(source)
    runs = finite(runs, ["N", "D", "loss"]).reset_index(drop=True)
    single = runs[single_epoch(runs)]
    metrics = metric_columns(runs)
    eq4 = _fit_eq4(single, delta, n_bootstrap, seed)
    result: dict = {"delta": delta, "n_runs": len(runs), "n_single_epoch": len(single), "chinchilla": None,
                    "allocation": None, "data_constrained": None, "warnings": list(eq4["warnings"]), "figures": {}}
    law = eq4["law"]
    if law is not None:
        result["chinchilla"] = {"params": dict(law.params_), "objective": law.objective_, "n_points": law.n_points_}
        if eq4["bootstrap"] is not None:
            result["chinchilla"]["intervals"] = eq4["bootstrap"].summary()
    if law is not None and not (law.params_["alpha"] > 0 and law.params_["beta"] > 0):
        result["warnings"].append("eq.6 and eq.7/8 skipped: they need positive eq.4 exponents")
    elif law is not None:
        a, b = allocation_exponents(law.params_["alpha"], law.params_["beta"])
        result["allocation"] = {"a": a, "b": b}
        multi = runs[~single_epoch(runs)]
        if len(multi) >= 2 and "U" in runs:
            dc = DataConstrainedLaw(delta=delta, base=law).fit(runs["N"], runs["D"], runs["U"], runs["loss"])
            result["data_constrained"] = {"R_N": dc.params_["R_N"], "R_D": dc.params_["R_D"],
                                          "objective": dc.objective_}
    single_curves = curves[curves["run"].isin(single["run"])] if "run" in single else curves
    single_curves = finite(single_curves, ["C", "loss"])
    env = envelope(single_curves["C"], single_curves["loss"], mode="min")
    result["loss_power_law"] = PowerLaw().fit(env["C"], env["Q"]).params_ if len(env) >= 2 else None
    result["metrics"] = _metric_fits(runs, metrics)
    result["efficiency"] = _efficiencies(result["metrics"])
    figs = result["figures"]
    figs["fig1"] = str(plot_loss_vs_compute(single_curves, out_dir / "fig1_loss_vs_compute.png"))
    if metrics:
        figs["fig2"] = str(plot_metrics_vs_compute(runs, metrics, out_dir / "fig2_metrics_vs_compute.png"))
        figs["fig4"] = str(plot_metrics_vs_loss(runs, metrics, out_dir / "fig4_metrics_vs_loss.png"))
    if result["allocation"] is not None:
        figs["isoloss"] = str(plot_isoloss(law.params_, out_dir / "isoloss.png", runs=single))
    report = out_dir / "report.md"
    report.write_text(_report(result, runs, metrics, eq4))
    result["report"] = str(report)
    return result
