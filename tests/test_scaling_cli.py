"""``hf-slm fit`` / ``hf-slm plan`` through ``register`` on a bare parser, and their errors through ``main``."""

from __future__ import annotations

import argparse
import json

import numpy as np
import pandas as pd
import pytest

from hf_slm.cli import main
from hf_slm.scaling.allocation import compute_for_loss
from hf_slm.scaling.cli import register
from hf_slm.scaling.laws import SPEECH_2024, chinchilla_loss


@pytest.fixture()
def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="hf-slm")
    register(p.add_subparsers())
    return p


@pytest.fixture(scope="module")
def table(tmp_path_factory):
    tmp_path = tmp_path_factory.mktemp("cli")
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


@pytest.fixture(scope="module")
def fitted(table):
    """One eq.4 fit with 20 bootstrap resamples, its JSON and iso-loss plot (shared by the fit and plan tests)."""
    p = argparse.ArgumentParser(prog="hf-slm")
    register(p.add_subparsers())
    out, png = table.parent / "fit.json", table.parent / "iso.png"
    assert _run(p, ["fit", str(table), *MAP, "--bootstrap", "20", "--json", str(out), "--plot", str(png)]) == 0
    return out, png


def test_fit_chinchilla_json_with_bootstrap(fitted):
    out, png = fitted
    payload = json.loads(out.read_text())
    for name in ("E", "A", "B", "alpha", "beta"):
        entry = payload[name]
        assert entry["ci_low"] <= entry["value"] <= entry["ci_high"]
    assert payload["alpha"]["value"] == pytest.approx(SPEECH_2024["alpha"], abs=0.06)  # 0.299 reached
    assert payload["allocation"]["a"] + payload["allocation"]["b"] == pytest.approx(1.0)
    assert len(payload["bootstrap"]["samples"]["E"]) == payload["bootstrap"]["n_valid"] > 10
    assert png.stat().st_size > 10_000


def test_fit_fix_holds_constants(parser, table, tmp_path):
    out = tmp_path / "fit.json"
    assert _run(parser, ["fit", str(table), *MAP, "--fix", "E=1.73", "alpha=0.25", "--json", str(out)]) == 0
    payload = json.loads(out.read_text())
    assert payload["E"] == 1.73 and payload["alpha"] == 0.25
    assert payload["fixed"] == {"E": 1.73, "alpha": 0.25}
    assert payload["beta"] == pytest.approx(0.24, abs=0.005)  # 0.2408 reached


def test_fit_power_on_metric(parser, table, tmp_path):
    out = tmp_path / "power.json"
    assert _run(parser, ["fit", str(table), *MAP, "--law", "power", "--y", "sblimp", "--json", str(out)]) == 0
    payload = json.loads(out.read_text())
    assert payload["gamma"] > 0 and payload["k"] > 0 and payload["envelope"] == "max"
    out_loss = tmp_path / "power_loss.json"
    assert _run(parser, ["fit", str(table), *MAP, "--law", "power", "--bootstrap", "10",
                         "--json", str(out_loss)]) == 0
    assert json.loads(out_loss.read_text())["gamma"]["value"] < 0


def test_plan_from_fit_json_and_runs(parser, table, fitted, tmp_path, capsys):
    fit = fitted[0]
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
    with pytest.raises(ValueError, match="--target"):
        _run(parser, ["plan", str(table), *MAP, "--metric", "sblimp"])


def test_help_mentions_options(parser, capsys):
    with pytest.raises(SystemExit):
        parser.parse_args(["fit", "--help"])
    text = capsys.readouterr().out
    for option in ("--law", "--delta", "--bootstrap", "--fix", "--json", "--plot"):
        assert option in text


# ------------------------------------------------------------------------------ errors a user can act on
def _main(argv, capsys) -> tuple[int, str, str]:
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def _speech_table(n: int, **extra) -> pd.DataFrame:
    """``n`` noise-free runs of the paper's speech law on a grid of sizes and budgets."""
    N = np.array([20e6, 85e6, 155e6, 309e6, 823e6, 40e6, 120e6, 600e6])[:n]
    D = N * np.array([8, 32, 16, 64, 4, 128, 24, 12])[:n]
    return pd.DataFrame({"run": [f"r{i}" for i in range(n)], "N": N, "D": D,
                         "loss": chinchilla_loss(N, D, **SPEECH_2024), **extra})


def test_fit_reports_dropped_rows_and_refuses_too_few_points(tmp_path, capsys):
    df = _speech_table(5)
    df.loc[[1, 2, 4], "loss"] = np.nan  # 3 of 5 rows unusable: 2 points left for 5 constants
    df.to_csv(tmp_path / "nan.csv", index=False)
    code, out, err = _main(["fit", tmp_path / "nan.csv"], capsys)
    assert code == 2
    assert "dropped 3 of 5 rows" in out and "r1 (loss=nan)" in out and "r4 (loss=nan)" in out
    assert "5 free constants" in err and "at least 6 points, got 2" in err
    # 4 points for a power law (2 constants) fit, and the drop is still reported
    df = _speech_table(8)
    df.loc[[0], "loss"] = -1.0
    df.to_csv(tmp_path / "neg.csv", index=False)
    code, out, _ = _main(["fit", tmp_path / "neg.csv", "--law", "power", "--envelope", "none"], capsys)
    assert code == 0 and "dropped 1 of 8 rows" in out and "r0 (loss=-1.0)" in out
    # text in a metric column is a dropped row too, named with its value
    df = _speech_table(8, sblimp=[0.5, 0.52, "abc", 0.55, 0.56, 0.57, 0.58, 0.6])
    df.to_csv(tmp_path / "text.csv", index=False)
    code, out, _ = _main(["fit", tmp_path / "text.csv", "--law", "power", "--y", "sblimp", "--envelope", "none"],
                         capsys)
    assert code == 0 and "dropped 1 of 8 rows" in out and "r2 (sblimp=abc)" in out
    # two points on the envelope are not a fit of 2 constants
    df = _speech_table(2)
    df.to_csv(tmp_path / "two.csv", index=False)
    code, _, err = _main(["fit", tmp_path / "two.csv", "--law", "power"], capsys)
    assert code == 2 and "at least 3 points, got 2" in err


def test_plan_below_irreducible_loss(tmp_path, capsys):
    fit = tmp_path / "fit.json"
    fit.write_text(json.dumps({"law": "chinchilla", **SPEECH_2024}))
    code, out, err = _main(["plan", fit, "--loss", "1.5"], capsys)
    assert code == 2 and "inf" not in out
    assert "below the irreducible loss E = 1.73" in err
    code, _, err = _main(["plan", fit, "--loss", "2.0", "--N", "1e6"], capsys)
    assert code == 2 and "N = 1e+06" in err and "unlimited data" in err
    assert _main(["plan", fit, "--loss", "2.5"], capsys)[0] == 0


@pytest.mark.parametrize(("name", "content", "argv", "message"), [
    ("list.json", "[1, 2, 3]", [], "list.json[0]: a run record is a JSON object, got int"),
    ("empty.csv", "", [], "empty.csv: empty run table"),
    ("header.csv", "N,D,loss\n", [], "no rows left to fit"),
    ("bad.json", '{"law": ', [], "bad.json: not valid JSON"),
    ("cols.csv", "a,b\n1,2\n", [], "lacks column(s) ['N', 'D', 'loss']"),
    ("t.csv", "N,D,loss\n1e6,1e7,3\n2e6,2e7,2.9\n", ["--drop-highest", "100"], "--drop-highest 100 would drop every"),
    ("t.csv", "N,D,loss\n1e6,1e7,3\n", ["--fix", "E=abc"], "--fix E=abc: 'abc' is not a number"),
    ("t.csv", "N,D,loss\n1e6,1e7,3\n", ["--law", "power", "--y", "sblimp"], "no column 'sblimp'"),
])
def test_fit_input_errors_name_the_file_or_option(tmp_path, capsys, name, content, argv, message):
    (tmp_path / name).write_text(content)
    code, _, err = _main(["fit", tmp_path / name, *argv], capsys)
    assert code == 2
    assert err.startswith("hf-slm fit: error: ") and message in err and "Traceback" not in err


def test_plan_errors(tmp_path, capsys):
    incomplete = tmp_path / "fit.json"
    incomplete.write_text(json.dumps({"law": "chinchilla", "E": 1.7, "A": {"value": 10}}))
    code, _, err = _main(["plan", incomplete, "--loss", "3"], capsys)
    assert code == 2 and f"{incomplete}: the fit has no key 'B'" in err
    power = tmp_path / "power.json"
    power.write_text(json.dumps({"law": "power", "k": 0.3, "gamma": 0.02}))
    assert "cannot plan for a loss" in _main(["plan", power, "--loss", "3"], capsys)[2]
    assert _main(["plan", power, "--metric", "sblimp", "--target", "0.6"], capsys)[0] == 0
    assert _main(["plan", tmp_path / "missing.csv", "--loss", "3"], capsys)[0] == 2
    # argparse-level mistakes exit 2 as well
    with pytest.raises(SystemExit) as exc:
        main(["plan", str(power), "--loss", "-3"])
    assert exc.value.code == 2
    assert "expected a number > 0" in capsys.readouterr().err


def test_metric_plan_reports_a_failed_eq4_fit(tmp_path, capsys):
    """N and D of a metric plan need eq.4; when that fit is impossible the plan says so (not silently)."""
    df = _speech_table(4)
    df["sblimp"] = [0.52, 0.55, 0.57, 0.6]
    df.to_csv(tmp_path / "runs.csv", index=False)
    out_json = tmp_path / "plan.json"
    code, out, _ = _main(["plan", tmp_path / "runs.csv", "--metric", "sblimp", "--target", "0.7",
                          "--json", out_json], capsys)
    assert code == 0 and "N and D not planned" in out and "at least 6 points, got 4" in out
    plan = json.loads(out_json.read_text())
    assert "N" not in plan and any("N and D not planned" in note for note in plan["notes"])


# ------------------------------------------------------------------------------ which runs enter the fits
def _rule_table() -> pd.DataFrame:
    """Eight runs on the speech law with updates > 5,000, plus three the release's rule leaves out: a short
    run lying far above the law, a 4-epoch run, and a repeat of r0 with a different loss."""
    df = _speech_table(8, updates=[6000, 8000, 20000, 12000, 5001, 30000, 9000, 7000], U=np.nan)
    df["U"] = df["D"]
    extra = pd.DataFrame({"run": ["short", "4ep", "r0-again"], "N": [85e6, 155e6, 20e6],
                          "D": [85e6 * 16, 155e6 * 32, 20e6 * 8], "loss": [3.9, 3.8, 3.2],
                          "updates": [5000, 40000, 6000], "U": [85e6 * 16, 155e6 * 8, 20e6 * 8]})
    return pd.concat([df, extra], ignore_index=True)


def test_fit_rule_is_the_default_and_all_runs_differs(tmp_path, capsys):
    _rule_table().to_csv(tmp_path / "runs.csv", index=False)
    ruled, everything = tmp_path / "rule.json", tmp_path / "all.json"
    fix = ["--fix", *(f"{k}={SPEECH_2024[k]}" for k in ("E", "A", "B"))]  # fit the exponents only: fast
    code, out, _ = _main(["fit", tmp_path / "runs.csv", *fix, "--json", ruled], capsys)
    assert code == 0
    assert "more than 5,000 planned updates, at most 1 epoch, duplicates removed; kept 8 of 11 runs" in out
    assert "dropped short: 5,000 planned updates (needs more than 5,000)" in out
    assert "dropped 4ep: 4 epochs (at most 1)" in out
    assert "dropped r0-again: duplicate of r0 (same N, D, U)" in out
    fit = json.loads(ruled.read_text())
    assert fit["n_points"] == 8 and sorted(fit["selection"]["dropped"]) == ["4ep", "r0-again", "short"]
    for name in ("alpha", "beta"):  # noise-free runs of the law: recovered exactly
        assert fit[name] == pytest.approx(SPEECH_2024[name], rel=1e-6)

    code, out, _ = _main(["fit", tmp_path / "runs.csv", *fix, "--all-runs", "--json", everything], capsys)
    assert code == 0 and "runs: all 11 (no selection rule" in out and "left out 1 multi-epoch rows" in out
    fit_all = json.loads(everything.read_text())
    assert fit_all["n_points"] == 10  # the short run and the repeat enter, the 4-epoch run never enters eq.4
    assert abs(fit_all["alpha"] - SPEECH_2024["alpha"]) > 0.01  # the short, off-law runs pull the fit away


def test_rule_threshold_is_an_option(tmp_path, capsys):
    _rule_table().to_csv(tmp_path / "runs.csv", index=False)
    code, out, _ = _main(["fit", tmp_path / "runs.csv", "--law", "power", "--min-updates", "8500"], capsys)
    assert code == 0 and "more than 8,500 planned updates" in out and "kept 4 of 11 runs" in out
    code, _, err = _main(["fit", tmp_path / "runs.csv", "--min-updates", "100000"], capsys)
    assert code == 2 and "no rows left" in err
