"""``hf-slm fit`` / ``hf-slm plan`` through ``register`` on a bare parser."""

from __future__ import annotations

import argparse
import json

import numpy as np
import pandas as pd
import pytest

from hf_slm.scaling.allocation import compute_for_loss
from hf_slm.scaling.cli import register
from hf_slm.scaling.laws import SPEECH_2024, chinchilla_loss


@pytest.fixture()
def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="hf-slm")
    register(p.add_subparsers())
    return p


@pytest.fixture()
def table(tmp_path):
    rng = np.random.default_rng(0)
    N = np.repeat([20e6, 85e6, 155e6, 309e6, 823e6], 5)
    D = N * np.tile([4, 8, 16, 32, 64], 5)
    loss = chinchilla_loss(N, D, **SPEECH_2024) * np.exp(rng.normal(0, 0.003, N.size))
    sblimp = np.clip(0.5 + 0.25 * (3.0 - loss), 0, 1)
    path = tmp_path / "runs.csv"
    pd.DataFrame({"params": N, "tokens": D, "test_loss": loss, "sblimp": sblimp,
                  "run": [f"r{i}" for i in range(N.size)]}).to_csv(path, index=False)
    return path


MAP = ["--map", "params=N", "tokens=D", "test_loss=loss"]


def _run(parser, argv) -> int:
    args = parser.parse_args(argv)
    return args.func(args)


def test_fit_chinchilla_json_with_bootstrap(parser, table, tmp_path):
    out, png = tmp_path / "fit.json", tmp_path / "iso.png"
    assert _run(parser, ["fit", str(table), *MAP, "--bootstrap", "20", "--json", str(out), "--plot", str(png)]) == 0
    payload = json.loads(out.read_text())
    for name in ("E", "A", "B", "alpha", "beta"):
        entry = payload[name]
        assert entry["ci_low"] <= entry["value"] <= entry["ci_high"]
    assert payload["alpha"]["value"] == pytest.approx(SPEECH_2024["alpha"], abs=0.1)
    assert payload["allocation"]["a"] + payload["allocation"]["b"] == pytest.approx(1.0)
    assert len(payload["bootstrap"]["samples"]["E"]) == payload["bootstrap"]["n_valid"] > 10
    assert png.stat().st_size > 10_000


def test_fit_fix_holds_constants(parser, table, tmp_path):
    out = tmp_path / "fit.json"
    assert _run(parser, ["fit", str(table), *MAP, "--fix", "E=1.73", "alpha=0.25", "--json", str(out)]) == 0
    payload = json.loads(out.read_text())
    assert payload["E"] == 1.73 and payload["alpha"] == 0.25
    assert payload["fixed"] == {"E": 1.73, "alpha": 0.25}
    assert payload["beta"] == pytest.approx(0.24, abs=0.05)


def test_fit_power_on_metric(parser, table, tmp_path):
    out = tmp_path / "power.json"
    assert _run(parser, ["fit", str(table), *MAP, "--law", "power", "--y", "sblimp", "--json", str(out)]) == 0
    payload = json.loads(out.read_text())
    assert payload["gamma"] > 0 and payload["k"] > 0 and payload["envelope"] == "max"
    out_loss = tmp_path / "power_loss.json"
    assert _run(parser, ["fit", str(table), *MAP, "--law", "power", "--bootstrap", "10",
                         "--json", str(out_loss)]) == 0
    assert json.loads(out_loss.read_text())["gamma"]["value"] < 0


def test_plan_from_fit_json_and_runs(parser, table, tmp_path, capsys):
    fit = tmp_path / "fit.json"
    _run(parser, ["fit", str(table), *MAP, "--bootstrap", "15", "--json", str(fit)])
    plan_path = tmp_path / "plan.json"
    assert _run(parser, ["plan", str(fit), "--loss", "2.2", "--json", str(plan_path)]) == 0
    plan = json.loads(plan_path.read_text())
    payload = json.loads(fit.read_text())
    params = {k: payload[k]["value"] for k in ("E", "A", "B", "alpha", "beta")}
    assert plan["C"]["value"] == pytest.approx(float(compute_for_loss(2.2, params)["C"]), rel=1e-9)
    assert plan["C"]["ci_low"] <= plan["C"]["value"] <= plan["C"]["ci_high"]
    assert 6 * plan["N"]["value"] * plan["D"]["value"] == pytest.approx(plan["C"]["value"], rel=1e-9)
    assert _run(parser, ["plan", str(table), *MAP, "--metric", "sblimp", "--target", "0.7",
                         "--json", str(plan_path)]) == 0
    plan = json.loads(plan_path.read_text())
    assert plan["C"]["value"] > 0 and "N" in plan
    with pytest.raises(SystemExit):
        _run(parser, ["plan", str(table), *MAP, "--metric", "sblimp"])


def test_help_mentions_options(parser, capsys):
    with pytest.raises(SystemExit):
        parser.parse_args(["fit", "--help"])
    text = capsys.readouterr().out
    for option in ("--law", "--delta", "--bootstrap", "--fix", "--json", "--plot"):
        assert option in text
