"""The demo's scaling stage: analyze_runs on run records."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from hf_slm.scaling.study import analyze_runs

_spec = importlib.util.spec_from_file_location("_scaling_runs_helpers", Path(__file__).with_name("test_scaling_runs.py"))
_helpers = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_helpers)
make_record = _helpers.make_record


def test_analyze_runs_full_grid(tmp_path):
    records = [make_record(f"s{i}", N, N * r, n_points=6, seed=i)
               for i, (N, r) in enumerate((N, r) for N in (1e6, 3e6, 1e7, 3e7) for r in (5, 10, 20, 40, 80))]
    records[0]["metrics"]["sblimp"].update(accuracy=0.51, ci_low=0.48, ci_high=0.54)
    result = analyze_runs(records, tmp_path, n_bootstrap=20)
    p = result["chinchilla"]["params"]
    assert p["alpha"] == pytest.approx(0.25, abs=0.02) and p["beta"] == pytest.approx(0.24, abs=0.02)
    assert result["allocation"]["a"] == pytest.approx(0.49, abs=0.03)
    assert result["loss_power_law"]["gamma"] < 0
    assert result["metrics"]["sblimp"]["gamma"] > 0 and result["metrics"]["sblimp"]["r"] < -0.9
    assert not result["warnings"]
    for name in ("fig1_loss_vs_compute.png", "fig2_metrics_vs_compute.png", "fig4_metrics_vs_loss.png",
                 "isoloss.png", "report.md"):
        assert (tmp_path / name).stat().st_size > 1000
    report = (tmp_path / "report.md").read_text()
    assert "s0, sblimp: does not beat chance" in report
    assert "s1, sblimp: beats chance" in report
    assert "(n=1000)" in report and "eq.6 exponents" in report


def test_analyze_runs_few_small_runs_warns(tmp_path):
    rng = np.random.default_rng(0)
    records = [make_record(f"t{j}", N, N * r, n_points=4, seed=j)
               for j, (N, r) in enumerate([(1e6, 10), (1e6, 40), (2e6, 10), (2e6, 40), (4e6, 10), (4e6, 40),
                                           (8e6, 10), (8e6, 20), (1e6, 20), (4e6, 20)])]
    for rec in records:
        rec["loss"] *= float(np.exp(rng.normal(0, 0.01)))
    result = analyze_runs(records, tmp_path, n_bootstrap=20)
    assert result["warnings"] and "ill-posed" in result["warnings"][0]
    assert "Warning" in (tmp_path / "report.md").read_text()
    three = analyze_runs(records[:3], tmp_path / "three", n_bootstrap=5)
    assert three["chinchilla"] is None and "not fitted" in three["warnings"][0]
    assert (tmp_path / "three" / "fig1_loss_vs_compute.png").exists()


def test_analyze_runs_two_families_table(tmp_path):
    import pandas as pd

    rows = []
    for family, gamma in (("text", 0.066), ("speech", 0.021)):
        for i, C in enumerate(np.geomspace(1e15, 1e19, 8)):
            N = (C / 120) ** 0.5
            rows.append({"run": f"{family}{i}", "family": family, "N": N, "D": 20 * N, "C": C,
                         "loss": 1.8 + 50 * C**-0.05, "sblimp": 0.05 * C**gamma if family == "text" else 0.3 * C**gamma})
    result = analyze_runs(pd.DataFrame(rows), tmp_path, n_bootstrap=0)
    eff = result["efficiency"]["sblimp"]
    assert {eff["a"], eff["b"]} == {"speech", "text"}
    gammas = {f: result["metrics"][f"sblimp/{f}"]["gamma"] for f in ("text", "speech")}
    assert gammas["text"] == pytest.approx(0.066, abs=1e-6) and gammas["speech"] == pytest.approx(0.021, abs=1e-6)
    assert (tmp_path / "fig2_metrics_vs_compute.png").exists()
    assert result["chinchilla"] is None and "D/N line" in result["warnings"][0]


def test_negative_exponent_fit_warns_instead_of_crashing(tmp_path):
    """Runs where the loss grows with N give alpha < 0: eq.6 and eq.7/8 are skipped with a warning."""
    from hf_slm.scaling.allocation import allocation_constant

    rows = []
    for n in (1e5, 3e5, 1e6):
        for d in (1e5, 2e5, 4e5):
            rows.append({"run": f"n{n:g}-d{d:g}", "N": n, "D": d, "U": d, "loss": 2 + 20 * d**-0.2 + 1e-7 * n})
    rows.append({"run": "multi", "N": 3e5, "D": 8e5, "U": 2e5, "loss": 2.6})
    rows.append({"run": "multi2", "N": 1e6, "D": 8e5, "U": 2e5, "loss": 2.7})
    table = tmp_path / "runs.csv"
    pd.DataFrame(rows).to_csv(table, index=False)
    result = analyze_runs(table, tmp_path / "out", n_bootstrap=0)
    assert result["chinchilla"]["params"]["alpha"] <= 0
    assert result["allocation"] is None and result["data_constrained"] is None
    assert any("positive eq.4 exponents" in w for w in result["warnings"])
    assert (tmp_path / "out" / "report.md").exists() and not (tmp_path / "out" / "isoloss.png").exists()
    with pytest.raises(ValueError, match="alpha > 0"):
        allocation_constant(result["chinchilla"]["params"])
