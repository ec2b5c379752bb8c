"""The study's analysis and report from run records: fits recover known laws exactly, Table 3's efficiency is
gamma_text / gamma_speech (the paper's 3.14, 1.56, 2.7 from its gammas), the checks decide as specified, the
fit payloads have ``hf-slm fit --json``'s format, and the report files are complete and self-contained."""

from __future__ import annotations

import importlib.util
import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from hf_slm.scaling import paper
from hf_slm.scaling.laws import SPEECH_2024, chinchilla_loss
from hf_slm.scaling.report import ReportOptions, checks_section, write_report
from hf_slm.scaling.study import AnalysisOptions, analyze, monotonicity, regime, repetition, value

_spec = importlib.util.spec_from_file_location("_scaling_runs_helpers", Path(__file__).with_name("test_scaling_runs.py"))
_helpers = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_helpers)
make_record = _helpers.make_record

GRID = [(N, r) for N in (1e6, 3e6, 1e7, 3e7) for r in (5, 10, 20, 40, 80)]


def _family_records(family: str, gammas: dict[str, float], shift: float = 0.0) -> list[dict]:
    """Records on the paper's speech law whose metrics are exactly k C^gamma (so each is its own envelope)."""
    records = []
    for i, (N, r) in enumerate(GRID):
        rec = make_record(f"{family}-{i}", N, N * r, n_points=4, seed=i)
        rec["loss"] += shift
        C = rec["flops"]
        rec["metrics"] = {m: {"accuracy": 0.01 * C**g, "n": 1000, "ci_low": 0.0, "ci_high": 1.0, "rule": "mean"}
                          for m, g in gammas.items()}
        rec["stats"] = {"family": family}
        records.append(rec)
    return records


@pytest.fixture(scope="module")
def two_families():
    text = _family_records("text", paper.TABLE3["text"])
    speech = _family_records("speech", paper.TABLE3["speech"])
    return analyze(text + speech, AnalysisOptions(n_bootstrap=8, starts="coarse"), published_ratios=paper.TABLE3_RATIOS)


def test_relative_efficiency_is_gamma_text_over_gamma_speech(two_families):
    eff = two_families["efficiency"]
    assert set(eff) == {"sblimp", "topic_storycloze", "spoken_storycloze"}
    for metric, ratio in paper.TABLE3_RATIOS.items():
        g_text, g_speech = paper.TABLE3["text"][metric], paper.TABLE3["speech"][metric]
        assert eff[metric]["gamma_text"] == pytest.approx(g_text, rel=1e-9)
        assert eff[metric]["gamma_speech"] == pytest.approx(g_speech, rel=1e-9)
        assert eff[metric]["ratio"] == pytest.approx(g_text / g_speech, rel=1e-9)
        assert eff[metric]["ratio"] == pytest.approx(ratio, abs=0.006)  # the paper prints 3.14, 1.56, 2.7
        assert eff[metric]["paper_ratio"] == ratio


def test_noise_free_eq4_is_recovered_exactly(two_families):
    speech = two_families["families"]["speech"]
    eq4 = speech["eq4"]
    for name in ("E", "A", "B", "alpha", "beta"):
        assert value(eq4[name]) == pytest.approx(SPEECH_2024[name], rel=1e-6)
        low, high = eq4[name]["ci_low"], eq4[name]["ci_high"]
        assert low == pytest.approx(SPEECH_2024[name], rel=1e-5) and high == pytest.approx(SPEECH_2024[name], rel=1e-5)
    assert eq4["rel_rmse"] < 1e-8 and eq4["n_points"] == len(GRID)
    checks = speech["checks"]
    assert checks["eq4"]["pass"] and checks["monotonic"]["inversions"] == 0 and checks["monotonic"]["pass"]
    assert checks["metric_vs_loss"]["sblimp"]["spearman"] < -0.95  # metric ~ C^gamma, loss not a function of C alone


def test_fit_payload_has_the_fit_cli_format(two_families, tmp_path, capsys):
    from hf_slm.cli import main

    rows = [{"run": f"r{i}", "N": N, "D": N * r, "loss": float(SPEECH_2024["E"] + SPEECH_2024["A"] / N**0.25
                                                            + SPEECH_2024["B"] / (N * r) ** 0.24)}
            for i, (N, r) in enumerate(GRID)]
    pd.DataFrame(rows).to_csv(tmp_path / "runs.csv", index=False)
    init = [f"{k}={v}" for k, v in SPEECH_2024.items() if k in ("E", "A", "B", "alpha", "beta")]
    assert main(["fit", str(tmp_path / "runs.csv"), "--bootstrap", "4", "--init", *init, "--json",
                 str(tmp_path / "fit.json")]) == 0
    cli = json.loads((tmp_path / "fit.json").read_text())
    ours = two_families["families"]["speech"]["eq4"]
    assert set(cli) - {"selection", "dropped_rows"} <= set(ours)  # the study names its runs in "runs"
    assert set(ours["runs"]) == {r["run"] for r in two_families["runs"].to_dict("records")
                                 if r["family"] == "speech"} and ours["n_points"] == len(ours["runs"])
    for key in ("E", "A", "B", "alpha", "beta"):
        assert set(cli[key]) == set(ours[key])
    assert set(cli["bootstrap"]) == set(ours["bootstrap"]) and set(cli["allocation"]) == set(ours["allocation"])


def test_monotonicity_counts_inversions():
    grid = pd.DataFrame([{"run": f"n{n}-d{d}", "N": n, "D": d, "loss": 5 - np.log(n) / 10 - np.log(d) / 10}
                         for n in (1, 2, 4) for d in (10, 20, 40)])
    assert monotonicity(grid)["inversions"] == 0 and monotonicity(grid)["pairs"] == 12
    one = grid.copy()
    one.loc[one["run"] == "n4-d10", "loss"] += 0.2  # worse than n2-d10: one inversion along N
    assert monotonicity(one)["inversions"] == 1 and monotonicity(one)["pass"]
    one.loc[one["run"] == "n1-d40", "loss"] += 0.5  # worse than n1-d20 (and n1-d40 < n2-d40 no longer holds)
    result = monotonicity(one)
    assert result["inversions"] == 2 and not result["pass"] and len(result["details"]) == 2


def test_repetition_compares_with_fresh_and_unique_only_runs():
    runs = pd.DataFrame([
        {"run": "fresh-1", "N": 10, "D": 100, "U": 100, "loss": 3.0},
        {"run": "fresh-4", "N": 10, "D": 400, "U": 400, "loss": 2.0},
        {"run": "x4", "N": 10, "D": 400, "U": 100, "loss": 2.4},
    ])
    rep = repetition(runs, law=None)
    (row,) = rep["runs"]
    assert row["fresh_from"] == "fresh-4" and row["unique_from"] == "fresh-1"
    assert row["worse_than_fresh"] and row["better_than_unique_only"] and rep["pass"]
    runs.loc[2, "loss"] = 1.9  # repetition better than fresh data: the check fails
    assert not repetition(runs, law=None)["pass"]
    runs.loc[2, "loss"] = 3.1  # repetition worse than one epoch of the unique data: fails too
    assert repetition(runs, law=None)["pass"] is False
    assert repetition(runs.iloc[:2], law=None)["pass"] is None  # no run repeats data: nothing to check


def test_eq78_is_fitted_on_an_eq4_law_whose_E_underflowed_to_zero():
    from types import SimpleNamespace

    from hf_slm.scaling.laws import data_constrained_loss
    from hf_slm.scaling.study import fit_eq78

    base = {k: SPEECH_2024[k] for k in ("A", "B", "alpha", "beta")} | {"E": 0.0}  # log E -> -inf reports E = 0.0
    rows = [(N, D, U) for N in (1e7, 3e7) for D, U in ((2e9, 2e9), (4e9, 4e9), (4e9, 1e9), (8e9, 1e9), (8e9, 5e8))]
    runs = pd.DataFrame([{"run": f"r{i}", "N": N, "D": D, "U": U,
                          "loss": float(data_constrained_loss(N, D, U, **{**base, "E": 1e-300}, R_N=5.0, R_D=10.0))}
                         for i, (N, D, U) in enumerate(rows)])
    payload, warnings = fit_eq78(runs, SimpleNamespace(params_=base), AnalysisOptions(n_bootstrap=0))
    assert warnings == [] and value(payload["R_D"]) == pytest.approx(10.0, rel=1e-3) and payload["E"] == 0.0
    negative = SimpleNamespace(params_={**base, "A": 0.0})
    assert fit_eq78(runs, negative, AnalysisOptions(n_bootstrap=0))[0] is None


def test_identifiability_calls_a_fit_ill_posed_only_past_eq4_checks_bounds():
    from hf_slm.scaling.study import identifiability

    data = pd.DataFrame({"loss": [1.0, 2.0]})

    def payload(alpha_ci, E=0.24):
        return {"alpha": {"value": 0.87, "ci_low": alpha_ci[0], "ci_high": alpha_ci[1]},
                "beta": {"value": 0.63, "ci_low": 0.44, "ci_high": 1.21}, "E": {"value": E, "ci_low": 0.0, "ci_high": 0.8},
                "A": 1.0, "B": 1.0}

    loose = identifiability(payload((0.45, 1.87)), data)  # the demo's fit: inside (0, 2), but wide
    assert not any("ill-posed" in w for w in loose) and any(w.startswith("alpha is only loosely") for w in loose)
    assert identifiability(payload((0.18, 10.5)), data)[0].startswith("eq.4 fit on 2 runs is ill-posed")
    assert any("exceeds the lowest" in w for w in identifiability(payload((0.45, 1.87), E=1.5), data))


# An earlier demo grid as measured on 2 CPU cores (one-layer demo-xs, demo-s, demo-m x 0.1-0.8M tokens): still
# pre-asymptotic. And today's (2x32x2, demo-s, demo-m x 0.4-1.6M tokens): in eq.4's regime.
DEMO_LOSSES = {13408: (3.175, 3.016, 2.789, 2.481), 106816: (3.044, 2.648, 2.128, 1.653),
               332448: (3.026, 2.568, 1.945, 1.386)}
DEMO_LOSSES_NOW = {57504: (2.4785, 1.9639, 1.6554), 106816: (2.2723, 1.6974, 1.3219),
                   332448: (2.0726, 1.4525, 1.0496)}


def _grid(losses: dict[int, tuple[float, ...]], budgets=(100352, 200704, 400384, 800768)) -> pd.DataFrame:
    return pd.DataFrame([{"run": f"{N}-{D}", "N": N, "D": D, "loss": loss}
                         for N, row in losses.items() for D, loss in zip(budgets, row, strict=True)])


def test_regime_accepts_an_additive_law_and_diagnoses_pre_asymptotic_runs():
    on_law = _grid({N: tuple(float(chinchilla_loss(N, D, **SPEECH_2024)) for D in (1e9, 2e9, 4e9, 8e9)) for N in (2e7, 8e7, 3e8)},
                   budgets=(1e9, 2e9, 4e9, 8e9))
    fine = regime(on_law)
    assert fine["in_regime"] is True and fine["diagnosis"] is None
    assert fine["gap"]["widening"] == pytest.approx(1.0, abs=1e-9)  # eq.4's gap is the same at every D
    assert all(s["slows"] for s in fine["slowing"].values())

    demo = regime(_grid(DEMO_LOSSES))
    assert demo["in_regime"] is False
    gap = demo["gap"]
    assert (gap["N_small"], gap["N_large"]) == (13408, 332448)
    assert gap["gap_low"] == pytest.approx(0.149) and gap["gap_high"] == pytest.approx(1.095)
    assert not any(s["slows"] for s in demo["slowing"].values())
    assert "widens from 0.149 nats" in demo["diagnosis"] and "3 of 3 sizes" in demo["diagnosis"]

    inverted = _grid({1: (3.0, 2.5, 2.0), 2: (3.1, 2.4, 1.7)}, budgets=(1, 2, 4))  # the larger model starts worse
    assert regime(inverted)["gap"]["widening"] == float("inf") and regime(inverted)["in_regime"] is False
    assert regime(_grid({1: (3.0, 2.5)}, budgets=(1, 2)))["in_regime"] is None  # one size, two budgets: no view


def test_analysis_warns_when_eq4_meets_pre_asymptotic_runs():
    runs = _grid(DEMO_LOSSES).assign(U=lambda d: d["D"], family="speech")
    result = analyze(runs, AnalysisOptions(n_bootstrap=0, starts="coarse"))["families"]["speech"]
    eq4 = result["checks"]["eq4"]
    assert eq4["pass"] is False and eq4["regime"]["in_regime"] is False
    assert any(w.startswith("the runs look pre-asymptotic") for w in result["warnings"])
    row = "\n".join(checks_section({"checks": {"speech": result["checks"]}}))
    assert "pre-asymptotic runs: the gap between sizes widens from 0.149 to 1.09 nats" in row


def test_eq4_is_identifiable_on_the_demo_grid_past_the_early_regime():
    runs = _grid(DEMO_LOSSES_NOW, budgets=(400384, 800768, 1600512)).assign(U=lambda d: d["D"], family="speech")
    result = analyze(runs, AnalysisOptions(n_bootstrap=200))["families"]["speech"]
    eq4 = result["checks"]["eq4"]
    assert eq4["pass"] is True and eq4["regime"]["in_regime"] is True
    assert (eq4["alpha"], eq4["beta"], eq4["E"]) == pytest.approx((0.873, 0.631, 0.237), abs=2e-3)
    assert eq4["rel_rmse"] == pytest.approx(0.0183, abs=1e-4)
    assert 0 < eq4["alpha_ci"][0] and eq4["alpha_ci"][1] < 2 and 0 < eq4["beta_ci"][0] and eq4["beta_ci"][1] < 2
    assert not any("ill-posed" in w for w in result["warnings"])


def test_report_files_are_complete_and_self_contained(tmp_path):
    records = _family_records("speech", {"sblimp": 0.02, "topic_storycloze": 0.025})
    for rec in records:
        for e in rec["metrics"].values():
            e["ci_low"], e["ci_high"] = e["accuracy"] - 0.03, e["accuracy"] + 0.03
    multi = make_record("speech-x4", 3e6, 3e6 * 40, U=3e6 * 10, seed=7)
    multi["loss"] += 0.02
    multi["stats"] = {"family": "speech"}
    no_curve = make_record("speech-nocurve", 1e7, 1e7 * 20, seed=8)
    no_curve["curve"], no_curve["stats"] = [], {"family": "speech"}
    out = write_report(records + [multi], tmp_path, ReportOptions(n_bootstrap=6, starts="coarse", departures=["tiny"]))
    study = json.loads(Path(out["study.json"]).read_text())  # strict JSON: no NaN
    assert set(study) >= {"fits", "runs", "efficiency", "checks", "paper"}
    assert {"eq4", "eq78", "metrics", "loss_power_law"} <= set(study["fits"])
    eq78 = study["fits"]["eq78"]["speech"]
    assert eq78["law"] == "data-constrained" and eq78["R_D"]["value"] > 0
    assert study["checks"]["speech"]["repetition"]["runs"][0]["worse_than_fresh"]
    assert study["checks"]["speech"]["eq4"]["regime"]["in_regime"] is True  # runs on eq.4 itself
    assert len(study["runs"]) == len(records) + 1
    html = Path(out["report.html"]).read_text()
    sources = re.findall(r'src="([^"]+)"', html)
    assert len(sources) == len(study["figures"]) >= 4 and all(s.startswith("data:image/png;base64,") for s in sources)
    assert "href=" not in html
    md = Path(out["report.md"]).read_text()
    assert "| speech (paper) | 1.73 | 13.9 | 39.8 | 0.25 | 0.24 | 31 | 25 |" in md
    assert "| text (paper) | 0.066 | 0.039 | 0.046 |" in md  # Table 3 beside ours
    assert "fig3 not drawn: no text family" in md and "- tiny" in md
    assert (tmp_path / "fig1_loss_vs_compute.png").stat().st_size > 10_000


def test_metric_vs_loss_checks_only_metrics_above_chance():
    from hf_slm.scaling.study import metric_vs_loss

    runs = pd.DataFrame({"loss": [3.0, 2.5, 2.0], "tsc_ci_low": [0.40, 0.45, 0.56], "ssc_ci_low": [0.41, 0.44, 0.43]})
    fitted = {"tsc": {"correlation": {"spearman": 0.5, "r": 0.4}},  # above chance once, rises with the loss
              "ssc": {"correlation": {"spearman": 0.9, "r": 0.8}}}  # at chance everywhere: noise, not checked
    out = metric_vs_loss(runs, fitted, chance=0.5)
    assert out["tsc"]["checked"] and out["tsc"]["pass"] is False
    assert not out["ssc"]["checked"] and out["ssc"]["pass"] is None
    fitted["tsc"]["correlation"]["spearman"] = -0.5
    assert metric_vs_loss(runs, fitted, chance=0.5)["tsc"]["pass"] is True
