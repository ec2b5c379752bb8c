"""Published fits reproduced on public reference data vendored in tests/data (see tests/data/README.md)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy.stats import chi2

from hf_slm.scaling.bootstrap import bootstrap_law
from hf_slm.scaling.cli import register
from hf_slm.scaling.laws import HOFFMANN_2022, ChinchillaLaw, DataConstrainedLaw, data_constrained_loss
from hf_slm.scaling.objectives import huber
from hf_slm.scaling.runs import load_run_table

DATA = Path(__file__).resolve().parent / "data"


@pytest.fixture(scope="module")
def chinchilla_points() -> pd.DataFrame:
    df = load_run_table(DATA / "chinchilla_svg_extracted_data.csv",
                        column_map={"Model Size": "N", "Training FLOP": "C"})
    threshold = np.sort(df["loss"].to_numpy())[-5]  # Besiroglu et al.: strictly below the 5th-largest loss
    return df[df["loss"] < threshold].reset_index(drop=True)


@pytest.fixture(scope="module")
def chinchilla_fit(chinchilla_points) -> ChinchillaLaw:
    df = chinchilla_points
    return ChinchillaLaw(delta=1e-3).fit(df["N"], df["D"], df["loss"])


@pytest.fixture(scope="module")
def c4_runs() -> pd.DataFrame:
    return load_run_table(DATA / "datablations_c4_runs.csv",
                          column_map={"N_params": "N", "D_tokens": "D", "U_unique_tokens": "U", "val_loss": "loss"})


# Muennighoff et al.'s stage-1 constants, unrounded (a, b, e from the notebook) and as printed (rounded)
UNROUNDED_BASE = {"E": float(np.exp(0.6254804)), "A": float(np.exp(6.255414)), "B": float(np.exp(7.3049974)),
                  "alpha": 0.3526596, "beta": 0.3526596}
ROUNDED_BASE = {"E": 1.8691, "A": 520.82, "B": 1487.72, "alpha": 0.3526596, "beta": 0.3526596}
PUBLISHED_R = {"R_N": 5.309743, "R_D": 15.387756}


def _c4_objective(df: pd.DataFrame, params: dict) -> float:
    pred = data_constrained_loss(df["N"], df["D"], df["U"], **params)
    return float(huber(np.log(df["loss"].to_numpy()) - np.log(pred), 1e-3)[0].sum())


def test_chinchilla_240_points(chinchilla_points):
    assert len(chinchilla_points) == 240


def test_chinchilla_replicates_besiroglu(chinchilla_fit):
    """Their "replicate exactly" run: A = 477.84, B = 2143.86, E = 1.8172, alpha = 0.34731, beta = 0.36718,
    objective 1.01827e-3 (scipy L-BFGS-B with numerical gradients; ours reaches 1.018274e-3)."""
    p = chinchilla_fit.params_
    assert p["E"] == pytest.approx(1.8172, abs=2e-4)
    assert p["alpha"] == pytest.approx(0.34731, abs=1e-4)
    assert p["beta"] == pytest.approx(0.36718, abs=1e-4)
    assert p["A"] == pytest.approx(477.84, abs=0.5)
    assert p["B"] == pytest.approx(2143.86, abs=3)
    assert chinchilla_fit.objective_ <= 1.01828e-3
    assert chinchilla_fit.n_starts_ == 4500


def test_hoffmann_constants_rejected(chinchilla_points, chinchilla_fit):
    df = chinchilla_points
    hoffmann = ChinchillaLaw(delta=1e-3, fixed=HOFFMANN_2022).fit(df["N"], df["D"], df["loss"])
    assert hoffmann.objective_ > 3 * chinchilla_fit.objective_
    # chi-squared test against the bootstrap covariance of (log A, log B, log E, alpha, beta), as Besiroglu et al.
    boot = bootstrap_law(chinchilla_fit, df["N"], df["D"], df["loss"], n_resamples=200, seed=1)
    names = ["A", "B", "E", "alpha", "beta"]
    to_internal = lambda p: np.array([np.log(p["A"]), np.log(p["B"]), np.log(p["E"]), p["alpha"], p["beta"]])  # noqa: E731
    draws = np.array([to_internal(row) for row in boot.samples[names].to_dict("records")])
    diff = to_internal(HOFFMANN_2022) - to_internal(chinchilla_fit.params_)
    stat = float(diff @ np.linalg.solve(np.cov(draws.T), diff))
    assert chi2.sf(stat, df=5) < 1e-10
    for name in ("E", "beta"):
        low, high = boot.interval(name)
        assert not low <= HOFFMANN_2022[name] <= high


def test_datablations_published_point_is_a_local_optimum(c4_runs):
    """From a start of Muennighoff et al.'s grid the fitter lands on the published R*_N, R*_D."""
    assert len(c4_runs) == 182
    published = _c4_objective(c4_runs, {**UNROUNDED_BASE, **PUBLISHED_R})
    assert published == pytest.approx(0.0158259353, rel=1e-6)  # the README's check of the extraction
    law = DataConstrainedLaw(delta=1e-3, fixed=UNROUNDED_BASE, init={"R_N": 6.67, "R_D": 13.33})
    law.fit(c4_runs)
    # the optimum near the published point (README: Nelder-Mead from 4 starts: 15.3718, 5.3151, 0.01582593207)
    assert law.params_["R_D"] == pytest.approx(15.3718, abs=0.005)
    assert law.params_["R_N"] == pytest.approx(5.3151, abs=0.002)
    assert law.objective_ <= 0.0158259321
    assert law.objective_ <= published


def test_datablations_global_search_finds_lower_objective(c4_runs):
    """The full grid finds a deeper optimum along the same valley (the published point is local)."""
    law = DataConstrainedLaw(delta=1e-3, fixed=UNROUNDED_BASE).fit(c4_runs)
    published = _c4_objective(c4_runs, {**UNROUNDED_BASE, **PUBLISHED_R})
    assert law.objective_ <= 0.015826
    assert law.objective_ < published - 1e-5
    assert law.objective_ == pytest.approx(_c4_objective(c4_runs, law.params_), rel=1e-9)
    assert law.params_["R_D"] > 30 and law.params_["R_N"] < 3


def test_cli_fix_data_constrained(c4_runs, tmp_path):
    parser = argparse.ArgumentParser()
    register(parser.add_subparsers())
    out = tmp_path / "dc.json"
    fix = [f"{k}={v}" for k, v in ROUNDED_BASE.items()]
    args = parser.parse_args([
        "fit", str(DATA / "datablations_c4_runs.csv"), "--law", "data-constrained", "--delta", "1e-3", "--all-runs",
        "--map", "N_params=N", "D_tokens=D", "U_unique_tokens=U", "val_loss=loss",
        "--fix", *fix, "--init", "R_N=6.67", "R_D=13.33", "--json", str(out)])
    assert args.func(args) == 0
    payload = json.loads(out.read_text())
    assert payload["E"] == ROUNDED_BASE["E"] and payload["alpha"] == ROUNDED_BASE["alpha"]
    assert payload["R_D"] == pytest.approx(15.38, abs=0.1)
    assert payload["R_N"] == pytest.approx(5.31, abs=0.02)
    # with the rounded E the published point itself scores 0.0158275; the fit must do at least as well
    assert payload["objective"] <= _c4_objective(c4_runs, {**ROUNDED_BASE, **PUBLISHED_R})
