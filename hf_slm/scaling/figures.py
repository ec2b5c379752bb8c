"""Figures of the paper (matplotlib, Agg canvas, no pyplot global state).

- :func:`plot_loss_vs_compute`: learning curves coloured by model size, envelope and power law (Figure 1).
- :func:`plot_metrics_vs_compute`: one panel per metric, several families, envelopes and power laws (Figure 2).
- :func:`plot_metrics_vs_loss`: metric against test loss with the linear fit and Pearson r (Figure 4).
- :func:`plot_isoloss`: iso-loss contours of eq.4 in (N, D) with the compute-optimal frontier (eq.6).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import matplotlib
import numpy as np
import pandas as pd
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.colors import LogNorm
from matplotlib.figure import Figure

from hf_slm.scaling.allocation import compute_optimal, optimal_loss
from hf_slm.scaling.downstream import PowerLaw, envelope, loss_metric_fit, power_law
from hf_slm.scaling.laws import chinchilla_loss


def _figure(n_panels: int = 1, width: float = 5.0, height: float = 4.0) -> tuple[Figure, list]:
    fig = Figure(figsize=(width * n_panels, height), layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(1, n_panels, squeeze=False)[0]
    return fig, list(axes)


def _save(fig: Figure, path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    return path


def _fit_envelope(C, Q, mode: str) -> tuple[pd.DataFrame, dict | None]:
    env = envelope(C, Q, mode=mode)
    params = None
    if len(env) >= 2 and (env["Q"] > 0).all() and env["C"].nunique() >= 2:
        params = PowerLaw().fit(env["C"], env["Q"]).params_
    return env, params


def _draw_envelope(ax, env: pd.DataFrame, params: Mapping | None, color: str, label: str) -> None:
    ax.scatter(env["C"], env["Q"], s=18, color=color, zorder=3, edgecolor="white", linewidth=0.5)
    if params is not None:
        grid = np.geomspace(env["C"].min(), env["C"].max() * 3, 100)
        ax.plot(grid, power_law(grid, **params), color=color, lw=1.5, ls="--",
                label=f"{label}: {params['k']:.3g} C^{params['gamma']:.3f}")


def plot_loss_vs_compute(curves: pd.DataFrame, path, size_col: str = "N", law: Mapping[str, float] | None = None,
                         title: str = "Loss vs compute (envelope + power law)") -> Path:
    """Figure 1: test loss against compute, one learning curve per run coloured by size (log-log), with the
    envelope of minimal loss per FLOP (black) and its power-law fit; with eq.4 constants ``law``, also the
    loss of the compute-optimal model (eq.4 on the eq.6 frontier, red)."""
    fig, (ax,) = _figure(width=6.5, height=4.5)
    sizes = sorted(curves[size_col].dropna().unique())
    norm = LogNorm(vmin=min(sizes), vmax=max(sizes) * 1.0001) if sizes else None
    cmap = matplotlib.colormaps["viridis"]
    for _, run in curves.sort_values(["run", "C"]).groupby("run", sort=False):
        ax.plot(run["C"], run["loss"], color=cmap(norm(run[size_col].iloc[0])), lw=1.0, alpha=0.8)
    env, params = _fit_envelope(curves["C"], curves["loss"], "min")
    _draw_envelope(ax, env, params, "black", "envelope")
    if law is not None and law.get("alpha", 0) > 0 and law.get("beta", 0) > 0 and len(curves):
        grid = np.geomspace(curves["C"].min(), curves["C"].max() * 3, 100)
        ax.plot(grid, optimal_loss(grid, law), color="crimson", lw=1.2,
                label=f"eq.4 at the eq.6 optimum (E={law['E']:.3g}, alpha={law['alpha']:.2f}, beta={law['beta']:.2f})")
    if norm is not None:
        from matplotlib.cm import ScalarMappable

        fig.colorbar(ScalarMappable(norm=norm, cmap=cmap), ax=ax, label=f"{size_col} (parameters)")
    ax.set(xscale="log", yscale="log", xlabel="compute C (FLOPs)", ylabel="test loss (nats/token)",
           title=title)
    ax.legend(loc="upper right", fontsize=8)
    return _save(fig, path)


COLORS = ("tab:blue", "tab:orange", "tab:green", "tab:red", "tab:purple", "tab:brown")


def _families(runs: pd.DataFrame, family_col: str) -> list:
    """The model families to draw one colour each (``[None]``: all runs are one family)."""
    return sorted(runs[family_col].dropna().unique()) if family_col in runs else [None]


def plot_metrics_vs_compute(runs: pd.DataFrame, metrics: Sequence[str], path, family_col: str = "family",
                            chance: float | None = 0.5) -> Path:
    """Figure 2: one panel per metric; per family the runs, the envelope of best metric per FLOP and its
    power law (log-log)."""
    fig, axes = _figure(max(1, len(metrics)), width=4.5, height=4.0)
    families = _families(runs, family_col)
    for ax, metric in zip(axes, metrics, strict=False):
        for i, fam in enumerate(families):
            part = runs if fam is None else runs[runs[family_col] == fam]
            part = part[np.isfinite(part[metric].astype(float))]
            if part.empty:
                continue
            color = COLORS[i % len(COLORS)]
            ax.scatter(part["C"], part[metric], s=12, alpha=0.35, color=color)
            env, params = _fit_envelope(part["C"], part[metric], "max")
            _draw_envelope(ax, env, params, color, str(fam or "runs"))
        if chance is not None:
            ax.axhline(chance, color="grey", lw=0.8, ls=":", label="chance")
        ax.set(xscale="log", yscale="log", xlabel="compute C (FLOPs)", ylabel=f"{metric} accuracy", title=metric)
        ax.legend(fontsize=7, loc="lower right")
    return _save(fig, path)


def plot_metrics_vs_loss(runs: pd.DataFrame, metrics: Sequence[str], path, family_col: str = "family") -> Path:
    """Figure 4: each metric against test loss, with the least-squares line and Pearson r."""
    fig, axes = _figure(max(1, len(metrics)), width=4.5, height=4.0)
    families = _families(runs, family_col)
    for ax, metric in zip(axes, metrics, strict=False):
        for i, fam in enumerate(families):
            part = runs if fam is None else runs[runs[family_col] == fam]
            color = COLORS[i % len(COLORS)]
            ax.scatter(part["loss"], part[metric], s=16, color=color, alpha=0.7)
            fit = loss_metric_fit(part["loss"], part[metric])
            if np.isfinite(fit["slope"]):
                x = np.linspace(part["loss"].min(), part["loss"].max(), 50)
                ax.plot(x, fit["slope"] * x + fit["intercept"], color=color,
                        label=f"{fam or 'runs'}: r = {fit['r']:.2f}")
        ax.set(xlabel="test loss (nats/token)", ylabel=f"{metric} accuracy", title=f"{metric} vs loss")
        ax.invert_xaxis()
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=8)
    return _save(fig, path)


def plot_isoloss(params: Mapping[str, float], path, runs: pd.DataFrame | None = None,
                 n_range: tuple[float, float] | None = None, d_range: tuple[float, float] | None = None) -> Path:
    """Iso-loss contours of eq.4 in (N, D), iso-FLOP lines and the compute-optimal frontier of eq.6."""
    if runs is not None and len(runs):
        n_range = n_range or (runs["N"].min() / 3, runs["N"].max() * 10)
        d_range = d_range or (runs["D"].min() / 3, runs["D"].max() * 10)
    n_range, d_range = n_range or (1e6, 1e11), d_range or (1e8, 1e13)
    n = np.geomspace(*n_range, 200)
    d = np.geomspace(*d_range, 200)
    nn, dd = np.meshgrid(n, d)
    loss = chinchilla_loss(nn, dd, **params)
    fig, (ax,) = _figure(width=6.0, height=4.8)
    levels = np.unique(np.quantile(loss, np.linspace(0.02, 0.98, 12)).round(3))
    cs = ax.contour(nn, dd, loss, levels=levels, cmap="viridis_r", linewidths=1.0)
    ax.clabel(cs, fontsize=7, fmt="%.2f")
    c_lo, c_hi = 6 * n_range[0] * d_range[0], 6 * n_range[1] * d_range[1]
    c_grid = np.geomspace(c_lo, c_hi, 200)
    n_opt, d_opt = compute_optimal(c_grid, params)
    ax.plot(n_opt, d_opt, color="crimson", lw=2, label="compute-optimal frontier (eq.6)")
    for c in np.geomspace(c_lo, c_hi, 8)[1:-1]:
        ax.plot(n, c / (6 * n), color="grey", lw=0.5, ls=":")
    if runs is not None and len(runs):
        ax.scatter(runs["N"], runs["D"], s=14, color="black", zorder=3, label="runs")
    ax.set(xscale="log", yscale="log", xlim=n_range, ylim=d_range, xlabel="parameters N", ylabel="tokens D",
           title="Iso-loss contours of eq.4 (dotted: iso-FLOP)")
    ax.legend(fontsize=8, loc="upper left")
    return _save(fig, path)


def plot_power_fit(C, Q, params: Mapping[str, float], path, mode: str = "min", ylabel: str = "loss") -> Path:
    """Scatter of ``Q`` against compute with its envelope and a given power law (``hf-slm fit --law power``)."""
    fig, (ax,) = _figure(width=6.0, height=4.5)
    ax.scatter(C, Q, s=10, alpha=0.4, color="tab:blue", label="points")
    env = envelope(C, Q, mode=mode)
    _draw_envelope(ax, env, params, "black", "fit")
    ax.set(xscale="log", yscale="log", xlabel="compute C (FLOPs)", ylabel=ylabel)
    ax.legend(fontsize=8)
    return _save(fig, path)


def plot_family_comparison(curves: pd.DataFrame, runs: pd.DataFrame, metrics: Sequence[str], path,
                           families: Sequence[str], family_col: str = "family",
                           title: str = "Families compared") -> Path:
    """Figure 5 (and any family comparison): a loss panel (each family's envelope of minimal loss per FLOP
    and its power law) and one panel per metric (envelopes of best metric per FLOP), families in colour."""
    fig, axes = _figure(1 + len(metrics), width=4.3, height=3.8)
    for i, fam in enumerate(families):
        color = COLORS[i % len(COLORS)]
        part = curves[curves[family_col] == fam]
        if not part.empty:
            axes[0].scatter(part["C"], part["loss"], s=6, alpha=0.25, color=color)
            env, params = _fit_envelope(part["C"], part["loss"], "min")
            _draw_envelope(axes[0], env, params, color, fam)
        runs_f = runs[runs[family_col] == fam]
        for ax, metric in zip(axes[1:], metrics, strict=False):
            sub = runs_f[np.isfinite(runs_f[metric].astype(float))] if metric in runs_f else runs_f.iloc[:0]
            if sub.empty:
                continue
            ax.scatter(sub["C"], sub[metric], s=12, alpha=0.35, color=color)
            env, params = _fit_envelope(sub["C"], sub[metric], "max")
            _draw_envelope(ax, env, params, color, fam)
    axes[0].set(xscale="log", yscale="log", xlabel="compute C (FLOPs)", ylabel="test loss (nats/token)",
                title="loss envelope")
    for ax, metric in zip(axes[1:], metrics, strict=False):
        ax.axhline(0.5, color="grey", lw=0.8, ls=":")
        ax.set(xscale="log", yscale="log", xlabel="compute C (FLOPs)", ylabel=f"{metric} accuracy", title=metric)
    for ax in axes:
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=7)
    fig.suptitle(title)
    return _save(fig, path)
