"""The study report from run records alone: figures, ``report.md``, a self-contained ``report.html`` and
``study.json``, with the paper's published values beside ours.

``study.json``::

    {"study": {...}, "options": {...},
     "fits": {"eq4": {family: fit}, "eq78": {family: fit}, "loss_power_law": {family: fit},
              "metrics": {family: {metric: fit}}},          # each fit in `hf-slm fit --json`'s format
     "efficiency": {metric: {gamma_text, gamma_speech, ratio, ci_low, ci_high, paper_ratio}},
     "checks": {family: {...}}, "runs": [{run, family, N, D, U, epochs, C, loss, <metric>: {...}}],
     "paper": {"table3": ..., "table3_ratios": ..., "table4": ...}, "figures": {...}, "warnings": [...]}
"""

from __future__ import annotations

import base64
import json
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from hf_slm.scaling import paper
from hf_slm.scaling.study import AnalysisOptions, analyze, interval, value

CONSTANTS = ("E", "A", "B", "alpha", "beta", "R_N", "R_D")


@dataclass
class ReportOptions:
    """What goes into the report; the fit settings are :class:`AnalysisOptions`'."""

    title: str = "Scaling study"
    delta: float = 0.03
    n_bootstrap: int = 200
    seed: int = 0
    fit_runs: str = "all"
    min_updates: int = 5000
    starts: str = "besiroglu"
    figures: list[str] = field(default_factory=lambda: ["fig1", "fig2", "fig3", "fig4", "fig5", "isoloss"])
    html: bool = True
    text_source: str = "train"  # train | table | published | none
    text_table: str | None = None
    unigram_table: str | None = None
    departures: list[str] = field(default_factory=list)
    scoring: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)

    def analysis(self) -> AnalysisOptions:
        return AnalysisOptions(delta=self.delta, n_bootstrap=self.n_bootstrap, seed=self.seed,
                               fit_runs=self.fit_runs, min_updates=self.min_updates, starts=self.starts)


# -- inputs --------------------------------------------------------------------------------------------------------
def table_records(path: str | Path, family: str) -> list[dict]:
    """A run table (CSV / JSONL / Parquet: N, D or C, loss, metric columns) as records of ``family``."""
    from hf_slm.scaling.runs import load_run_table, metric_columns

    df = load_run_table(path)
    metrics = metric_columns(df)
    records = []
    for i, row in df.iterrows():
        metrics_of = {}
        for m in metrics:
            if pd.notna(row[m]):
                metrics_of[m] = {"accuracy": float(row[m]), **{k: float(row[f"{m}_{k}"]) for k in
                                                               ("n", "ci_low", "ci_high") if f"{m}_{k}" in row
                                                               and pd.notna(row[f"{m}_{k}"])}}
        records.append({"run": str(row.get("run", f"{family}-{i}")), "family": family, "N": float(row["N"]),
                        "D": float(row["D"]), "U": float(row["U"]) if "U" in row and pd.notna(row["U"]) else
                        float(row["D"]), "flops": float(row["C"]), "loss": float(row["loss"]),
                        "metrics": metrics_of, "curve": []})
    return records


def _records(source) -> list[dict]:
    if isinstance(source, list):
        return [dict(r) for r in source]
    if isinstance(source, str | Path) and Path(source).is_dir():
        files = sorted(Path(source).rglob("run.json"))
        if not files:
            raise FileNotFoundError(f"no run.json records under {source}")
        return [json.loads(f.read_text()) for f in files]
    return table_records(source, "speech")


# -- the report --------------------------------------------------------------------------------------------------
def write_report(source, output_dir, options: ReportOptions | None = None) -> dict[str, Any]:
    """Analyse the runs of ``source`` (records, a folder of ``run.json``, or a run table) and write the
    figures, ``report.md``, ``report.html`` and ``study.json`` into ``output_dir``; return their paths and
    the study dict (``"study"``)."""
    options = options or ReportOptions()
    out = Path(output_dir)
    out.mkdir(parents=True, exist_ok=True)
    records = _records(source)
    if options.text_source == "table" and options.text_table:
        records += table_records(options.text_table, "text")
    if options.unigram_table:
        records += table_records(options.unigram_table, "speech-unigram")
    result = analyze(records, options.analysis(), published_ratios=paper.TABLE3_RATIOS)
    figures = draw_figures(result, out, options)
    study = study_json(result, options, figures)
    paths = {"study.json": out / "study.json", "report.md": out / "report.md"}
    paths["study.json"].write_text(json.dumps(_jsonable(study), indent=2, allow_nan=False) + "\n")
    markdown_text = render_markdown(study, result, options)
    paths["report.md"].write_text(markdown_text)
    if options.html:
        paths["report.html"] = out / "report.html"
        paths["report.html"].write_text(render_html(markdown_text, out, options.title))
    return {**{k: str(v) for k, v in paths.items()}, "figures": figures, "study": study}


def draw_figures(result: dict, out: Path, options: ReportOptions) -> dict[str, str]:
    """The paper's figures from the analysis (each only where its runs exist)."""
    from hf_slm.scaling import figures as F

    runs, curves, metrics = result["runs"], result["curves"], result["metrics"]
    fams = result["families"]
    speech = "speech" if "speech" in fams else next(iter(fams), None)
    drawn: dict[str, str] = {}
    want = set(options.figures)
    if speech is None:
        return drawn
    eq4 = fams[speech]["eq4"]
    law = {k: value(eq4[k]) for k in ("E", "A", "B", "alpha", "beta")} if eq4 else None
    s_runs, s_curves = runs[runs["family"] == speech], curves[curves["family"] == speech]
    single = s_curves[s_curves["run"].isin(s_runs[s_runs["D"] <= s_runs["U"] * (1 + 1e-6)]["run"])] \
        if "U" in s_runs else s_curves
    if single.empty:  # every run repeats data: draw them all rather than nothing
        single = s_curves
    if "fig1" in want and not single.empty:
        drawn["fig1"] = str(F.plot_loss_vs_compute(single, out / "fig1_loss_vs_compute.png", law=law,
                                                   title=f"Fig. 1: {speech} LMs, test loss vs compute"))
    if metrics and "fig2" in want:
        drawn["fig2"] = str(F.plot_metrics_vs_compute(s_runs, metrics, out / "fig2_metrics_vs_compute.png"))
    if metrics and "fig3" in want and "text" in fams:
        both = runs[runs["family"].isin([speech, "text"])]
        drawn["fig3"] = str(F.plot_metrics_vs_compute(both, metrics, out / "fig3_text_vs_speech.png"))
    if metrics and "fig4" in want:
        drawn["fig4"] = str(F.plot_metrics_vs_loss(runs, metrics, out / "fig4_metrics_vs_loss.png"))
    if "fig5" in want and "speech-unigram" in fams:
        drawn["fig5"] = str(F.plot_family_comparison(curves, runs, metrics, out / "fig5_unit_vs_unigram.png",
                                                     families=[speech, "speech-unigram"],
                                                     title="Fig. 5: raw units vs unigram-compressed units"))
    if "isoloss" in want and law is not None and law["alpha"] > 0 and law["beta"] > 0:
        drawn["isoloss"] = str(F.plot_isoloss(law, out / "isoloss.png", runs=s_runs))
    return drawn


def study_json(result: dict, options: ReportOptions, figures: dict[str, str]) -> dict[str, Any]:
    """The machine-readable study (see the module docstring)."""
    fams = result["families"]
    fits = {"eq4": {f: r["eq4"] for f, r in fams.items() if r["eq4"]},
            "eq78": {f: r["eq78"] for f, r in fams.items() if r["eq78"]},
            "loss_power_law": {f: r["loss_power_law"] for f, r in fams.items() if r["loss_power_law"]},
            "metrics": {f: r["metrics"] for f, r in fams.items()}}
    warnings = list(result["warnings"]) + [f"{f}: {w}" for f, r in fams.items() for w in r["warnings"]]
    return {
        "study": {"title": options.title, "scoring": options.scoring, "text_source": options.text_source,
                  "fit_runs": {f: r["fit_rule"] for f, r in fams.items()}, "departures": options.departures,
                  **options.metadata},
        "options": result["options"],
        "fits": fits,
        "efficiency": result["efficiency"],
        "checks": {f: r["checks"] for f, r in fams.items()},
        "runs": run_rows(result["runs"], result["metrics"]),
        "paper": {"source": paper.PAPER, "table3": paper.TABLE3, "table3_ratios": paper.TABLE3_RATIOS,
                  "table4": paper.TABLE4},
        "figures": {k: Path(v).name for k, v in figures.items()},
        "warnings": warnings,
    }


def run_rows(runs: pd.DataFrame, metrics: list[str]) -> list[dict]:
    rows = []
    for _, r in runs.iterrows():
        row = {k: r.get(k) for k in ("run", "family", "size", "N", "D", "U", "epochs", "C", "loss") if k in r}
        for m in metrics:
            if pd.notna(r.get(m)):
                row[m] = {"accuracy": r[m], **{k: r[f"{m}_{k}"] for k in ("n", "ci_low", "ci_high")
                                              if f"{m}_{k}" in r and pd.notna(r[f"{m}_{k}"])}}
        rows.append(row)
    return rows


def _jsonable(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, np.generic):
        obj = obj.item()
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if isinstance(obj, Path):
        return str(obj)
    return obj


# -- Markdown ------------------------------------------------------------------------------------------------------
def _f(x: Any, digits: int = 3) -> str:
    if x is None or (isinstance(x, float) and not math.isfinite(x)):
        return "-"
    if isinstance(x, bool):
        return "yes" if x else "no"
    if isinstance(x, int | np.integer):
        return f"{int(x):,}"
    return f"{float(x):.{digits}g}"


def _ci(entry: Any, digits: int = 3) -> str:
    if entry is None:
        return "-"
    low, high = interval(entry)
    text = _f(value(entry), digits)
    return f"{text} [{_f(low, digits)}, {_f(high, digits)}]" if math.isfinite(low) else text


def _table(head: list[str], rows: list[list[str]]) -> list[str]:
    return ["| " + " | ".join(head) + " |", "|" + "---|" * len(head), *["| " + " | ".join(r) + " |" for r in rows], ""]


def _verdict(ok: bool) -> str:
    return "**pass**" if ok else "**FAIL**"


def _regime_note(regime: dict | None) -> str:
    """Why eq.4 cannot fit pre-asymptotic runs, in a few words (the full sentence is under Warnings)."""
    if not regime or regime.get("in_regime") is not False:
        return ""
    parts = []
    gap = regime.get("gap")
    if gap and gap.get("widens"):
        parts.append(f"the gap between sizes widens from {_f(gap['gap_low'])} to {_f(gap['gap_high'])} nats "
                     f"over D = {gap['D_low']:.3g}-{gap['D_high']:.3g}")
    stalled = [s for s in regime.get("slowing", {}).values() if not s["slows"]]
    if stalled:
        parts.append(f"{len(stalled)} of {len(regime['slowing'])} sizes do not slow down with D")
    return "; pre-asymptotic runs: " + ", ".join(parts)


def checks_section(study: dict) -> list[str]:
    lines = ["## What the runs show", ""]
    rows = []
    for fam, c in study["checks"].items():
        e = c["eq4"]
        if "alpha" in e:
            rows.append([fam, "eq.4 identifiable (0.05 < alpha, beta < 1.5; E > 0; 95 % CIs of alpha, beta in (0, 2); "
                         "relative RMS error < 3 %)",
                         f"alpha {_f(e['alpha'])} [{_f(e['alpha_ci'][0])}, {_f(e['alpha_ci'][1])}], beta {_f(e['beta'])} "
                         f"[{_f(e['beta_ci'][0])}, {_f(e['beta_ci'][1])}], E {_f(e['E'])}, rel. RMSE "
                         f"{100 * e['rel_rmse']:.2f} %" + _regime_note(e.get("regime")), _verdict(e["pass"])])
        m = c["monotonic"]
        rows.append([fam, "loss falls with N at fixed D and with D at fixed N (at most one inversion)",
                     f"{m['inversions']} inversion(s) in {m['pairs']} neighbouring pairs", _verdict(m["pass"])])
        r = c["repetition"]
        if r["runs"]:
            detail = "; ".join(f"{x['run']}: {_f(x['loss'], 4)} vs fresh {_f(x['fresh_loss'], 4)} ({x['fresh_from']}), "
                               f"unique only {_f(x['unique_only_loss'], 4)} ({x['unique_from']})" for x in r["runs"])
            if "R_D" in r:
                detail += f"; R*_D = {_f(r['R_D'])}"
            rows.append([fam, "repeated data helps less than fresh data (eq.7/8)", detail, _verdict(r["pass"])])
        ch = c["chance"]
        if ch["run"]:
            detail = ", ".join(f"{k} {_f(v['accuracy'])} (CI low {_f(v['ci_low'])})" for k, v in ch["metrics"].items())
            rows.append([fam, f"largest-compute run ({ch['run']}) beats chance on >= 2 benchmarks (95 % CI above 0.5)",
                         f"{ch['n_above']} above: {detail}", _verdict(ch["pass"])])
        mv = c["metric_vs_loss"]
        if mv:
            detail = ", ".join(f"{k}: Spearman {_f(v['spearman'])} (Pearson {_f(v['pearson'])})"
                               + ("" if v.get("checked", True) else ", at chance in every run: not checked")
                               for k, v in mv.items())
            checked = [v["pass"] for v in mv.values() if v.get("checked", True)]
            rows.append([fam, "metrics above chance somewhere fall with test loss across runs (negative rank "
                         "correlation)", detail, _verdict(bool(checked) and all(checked))])
    return lines + _table(["family", "check", "measured", "verdict"], rows)


def table4_section(study: dict) -> list[str]:
    lines = ["## Table 4: fitted constants (95 % bootstrap intervals) next to the paper", ""]
    rows = []
    fits = study["fits"]
    for fam in sorted(set(fits["eq4"]) | set(paper.TABLE4), key=lambda f: (f not in fits["eq4"], f)):
        eq4, eq78 = fits["eq4"].get(fam), fits["eq78"].get(fam)
        if eq4:
            ours = [_ci(eq4[k]) for k in CONSTANTS[:5]]
            ours += [_ci(eq78[k]) if eq78 else "-" for k in ("R_N", "R_D")]
            rows.append([f"{fam} (this study, {eq4['n_points']} runs)", *ours])
        pub = paper.TABLE4.get(fam)
        if pub:
            who = "Muennighoff et al. 2023" if fam == "text" else "paper"
            rows.append([f"{fam} ({who})", *[_f(pub.get(k)) for k in CONSTANTS]])
    lines += _table(["family", *CONSTANTS[:5], "R*_N", "R*_D"], rows)
    for fam, eq4 in fits["eq4"].items():
        alloc = eq4.get("allocation") or {}
        if alloc:
            lines.append(f"- {fam}: eq.6 exponents N_opt ~ C^{_f(alloc['a'])}, D_opt ~ C^{_f(alloc['b'])} "
                         f"(paper, speech: a = {_f(0.24 / 0.49)}, b = {_f(0.25 / 0.49)}); relative RMS error of eq.4 on "
                         f"its runs {100 * eq4['rel_rmse']:.2f} %.")
    return lines + [""]


def table3_section(study: dict) -> list[str]:
    lines = ["## Table 3: downstream exponents gamma_q (Q ~ C^gamma on the envelope) and relative efficiency", ""]
    metrics = study["fits"]["metrics"]
    names = list(paper.METRIC_LABELS)  # the paper's three columns, "-" where this study has no such metric
    rows = []
    for fam in metrics:
        rows.append([f"{fam} (this study)", *[_ci(metrics[fam][m]["gamma"]) if m in metrics[fam] and
                                              metrics[fam][m].get("gamma") is not None else "-" for m in names]])
    for fam, gammas in paper.TABLE3.items():
        rows.append([f"{fam} (paper)", *[_f(gammas.get(m)) for m in names]])
    eff = study["efficiency"]
    rows.append(["gamma_text / gamma_speech (this study)",
                 *[(_f(eff[m]["ratio"]) + (f" [{_f(eff[m]['ci_low'])}, {_f(eff[m]['ci_high'])}]"
                                           if "ci_low" in eff[m] else "")) if m in eff else "-" for m in names]])
    rows.append(["gamma_text / gamma_speech (paper)", *[_f(paper.TABLE3_RATIOS.get(m)) for m in names]])
    lines += _table(["", *[paper.METRIC_LABELS[m] for m in names]], rows)
    lines.append("A ratio r means: the metric gain a text LM gets from 10x more compute costs a speech LM 10^r x "
                 "more compute (paper 4.2.1).")
    return lines + [""]


def runs_section(study: dict, metrics: list[str]) -> list[str]:
    lines = ["## Runs", "", "Accuracies with 95 % intervals; * marks an interval entirely above chance (0.5).", ""]
    head = ["run", "family", "N", "D", "U", "epochs", "FLOPs", "loss", *metrics]
    rows = []
    for r in study["runs"]:
        cells = [str(r.get("run")), str(r.get("family")), _f(r.get("N")), _f(r.get("D")), _f(r.get("U")),
                 _f(r.get("epochs")), _f(r.get("C")), _f(r.get("loss"), 4)]
        for m in metrics:
            e = r.get(m)
            if not e:
                cells.append("-")
                continue
            star = "*" if e.get("ci_low", 0) > 0.5 else ""
            ci = f" [{e['ci_low']:.3f}, {e['ci_high']:.3f}]" if "ci_low" in e else ""
            cells.append(f"{e['accuracy']:.3f}{star}{ci}")
        rows.append(cells)
    return lines + _table(head, rows)


def render_markdown(study: dict, result: dict, options: ReportOptions) -> str:
    s = study["study"]
    fams = result["families"]
    lines = [f"# {options.title}", ""]
    counts = ", ".join(f"{f}: {r['n_runs']} runs ({r['n_fit']} in the eq.4 fit)" for f, r in fams.items())
    lines += [f"Runs: {counts}. Scoring preset: {s.get('scoring') or 'as recorded'}. Text family: "
              f"{s.get('text_source')}. Huber delta {options.delta}, {options.n_bootstrap} bootstrap resamples of runs.",
              ""]
    rules = sorted(set(s["fit_runs"].values()))
    lines += [f"Runs in the fits: {'; '.join(rules)}.", ""]
    lines += checks_section(study)
    lines += table4_section(study)
    lines += table3_section(study)
    captions = {**paper.FIGURES, "isoloss": "Iso-loss contours of eq.4 with the compute-optimal frontier (eq.6)"}
    if study["figures"]:
        lines += ["## Figures", ""]
        for key, name in study["figures"].items():
            lines += [f"**{captions.get(key, key)}**", "", f"![{key}]({name})", ""]
    missing = [k for k in options.figures if k not in study["figures"]]
    if missing:
        why = {"fig3": "no text family in these runs",
               "fig5": "no speech-unigram runs (Fig. 5 needs them; a study trains them with unigram.enabled)",
               "isoloss": "eq.4 not fitted with positive exponents"}
        lines += [f"- {k} not drawn: {why.get(k, 'no runs for it')}." for k in missing] + [""]
    lines += correlation_section(study)
    lines += runs_section(study, result["metrics"])
    if s.get("departures"):
        lines += ["## Where this study departs from the paper", "", *[f"- {d}" for d in s["departures"]], ""]
    if study["warnings"]:
        lines += ["## Warnings", "", *[f"- {w}" for w in study["warnings"]], ""]
    if s.get("timings"):
        t = ", ".join(f"{k} {v:.1f} s" for k, v in s["timings"].items())
        lines += ["## Timings", "", f"{t}.", ""]
        if s.get("machine"):
            lines += [f"Machine: {json.dumps(s['machine'])}.", ""]
    lines += [f"Published values: {paper.PAPER} (SPEC.md).", ""]
    return "\n".join(lines)


def correlation_section(study: dict) -> list[str]:
    rows = []
    for fam, metrics in study["fits"]["metrics"].items():
        for m, e in metrics.items():
            c = e.get("correlation", {})
            rows.append([fam, m, _f(c.get("r")), _f(c.get("spearman")), _f(c.get("slope")), str(c.get("n", "-"))])
    if not rows:
        return []
    return ["## Fig. 4: metrics against test loss", ""] + _table(
        ["family", "metric", "Pearson r", "Spearman rho", "slope (acc. per nat)", "runs"], rows)


# -- HTML ----------------------------------------------------------------------------------------------------------
CSS = """body{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;color:#222}
table{border-collapse:collapse;margin:1em 0;font-size:0.9em}th,td{border:1px solid #ccc;padding:4px 8px;text-align:left}
th{background:#f3f3f3}img{max-width:100%;border:1px solid #eee}code{background:#f6f6f6}"""


def render_html(markdown_text: str, folder: Path, title: str) -> str:
    """``report.md`` as one self-contained HTML page: the PNG figures embedded as base64 data URIs."""
    import markdown

    body = markdown.markdown(markdown_text, extensions=["tables"])

    def embed(match: re.Match) -> str:
        path = folder / match.group(1)
        if not path.is_file():
            raise FileNotFoundError(f"report figure {path} is missing")
        data = base64.b64encode(path.read_bytes()).decode("ascii")
        return f'src="data:image/png;base64,{data}"'

    body = re.sub(r'src="([^":]+\.png)"', embed, body)
    return (f"<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>{title}</title><style>{CSS}</style>"
            f"</head><body>\n{body}\n</body></html>\n")
