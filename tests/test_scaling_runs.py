"""Run tables: files, run records (CONTRACTS.md section 3), column mapping, curves."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from hf_slm.scaling.runs import load_run_table, metric_columns, parse_assignments, single_epoch


def make_record(name: str, N: float, D: float, U: float | None = None, n_points: int = 5, seed: int = 0) -> dict:
    """A run record as the trainer writes it (losses from the paper's speech law)."""
    rng = np.random.default_rng(seed)
    tokens = np.linspace(D / n_points, D, n_points)
    losses = 1.73 + 13.9 / N**0.25 + 39.8 / tokens**0.24
    acc = float(np.clip(0.5 + 0.3 * (3.3 - losses[-1]), 0.45, 0.95))
    n = 1000
    half = 1.96 * np.sqrt(acc * (1 - acc) / n)
    U = D if U is None else U
    return {
        "run": name, "size": f"{N / 1e6:.0f}M", "N": N, "N_total": N * 1.1, "D": D, "U": U, "epochs": D / U,
        "flops": 6 * N * D, "flops_attn": 6.5 * N * D, "loss": float(losses[-1]),
        "curve": [{"step": 10 * (i + 1), "tokens": float(t), "flops": 6 * N * float(t), "loss": float(lv)}
                  for i, (t, lv) in enumerate(zip(tokens, losses, strict=True))],
        "metrics": {"sblimp": {"accuracy": acc + rng.normal(0, 0.002), "n": n, "ci_low": acc - half,
                               "ci_high": acc + half, "rule": "wilson"}},
        "config": {"size": "x"},
    }


def test_records_folder_runs_and_curves(tmp_path):
    for i, (N, D) in enumerate([(1e6, 2e7), (4e6, 8e7)]):
        folder = tmp_path / f"run{i}"
        folder.mkdir()
        (folder / "run.json").write_text(json.dumps(make_record(f"r{i}", N, D)))
    runs = load_run_table(tmp_path)
    assert sorted(runs["run"]) == ["r0", "r1"]
    assert {"N", "D", "U", "C", "loss", "sblimp", "sblimp_n", "sblimp_ci_low", "sblimp_ci_high"} <= set(runs)
    assert metric_columns(runs) == ["sblimp"]
    curves = load_run_table(tmp_path, curves=True)
    assert len(curves) == 10 and {"step", "run", "C"} <= set(curves)
    r1 = curves[curves["run"] == "r1"]
    np.testing.assert_allclose(r1["C"], 6 * r1["N"] * r1["D"])


def test_list_of_records_and_default_compute():
    rec = make_record("a", 1e6, 1e7)
    del rec["flops"]
    runs = load_run_table([rec])
    assert runs.loc[0, "C"] == pytest.approx(6e13)


@pytest.mark.parametrize("fmt", ["csv", "jsonl", "parquet"])
def test_table_formats_with_column_map(tmp_path, fmt):
    df = pd.DataFrame({"params": [1e6, 2e6], "tokens": [1e7, 3e7], "val": [3.1, 2.9], "sblimp": [0.55, 0.6]})
    path = tmp_path / f"runs.{fmt}"
    {"csv": lambda: df.to_csv(path, index=False), "jsonl": lambda: df.to_json(path, orient="records", lines=True),
     "parquet": lambda: df.to_parquet(path)}[fmt]()
    runs = load_run_table(path, column_map={"params": "N", "tokens": "D", "val": "loss"})
    np.testing.assert_allclose(runs["C"], 6 * df["params"] * df["tokens"])
    np.testing.assert_allclose(runs["sblimp"], [0.55, 0.6])
    with pytest.raises(ValueError, match="lacks column"):
        load_run_table(path)


def test_last_step_per_run_and_d_from_c(tmp_path):
    df = pd.DataFrame({"run": ["a", "a", "b"], "step": [1, 2, 1], "N": [1e6, 1e6, 2e6], "C": [6e12, 1.2e13, 1.2e13],
                       "loss": [4.0, 3.5, 3.6]})
    runs = load_run_table(df)
    assert len(runs) == 2 and runs.set_index("run").loc["a", "loss"] == 3.5
    assert runs.set_index("run").loc["a", "D"] == pytest.approx(2e6)


def test_single_epoch_and_assignments():
    df = pd.DataFrame({"D": [10.0, 20.0, 5.0], "U": [10.0, 5.0, np.nan]})
    assert single_epoch(df).tolist() == [True, False, True]
    assert parse_assignments(["E=1.8", "Model Size=N"]) == {"E": "1.8", "Model Size": "N"}
    with pytest.raises(ValueError):
        parse_assignments(["oops"])


# ------------------------------------------------------------------------------ planned updates and the fit rule
def test_planned_updates_from_stats_or_config(tmp_path):
    from hf_slm.scaling.runs import planned_updates

    rec = make_record("a", 1e6, 8e9)
    rec["stats"] = {"n_steps": 7000, "steps": 7000}
    assert planned_updates(rec) == 7000
    rec["stats"] = {}
    rec["config"] = {"tokens": 8_000_000_000, "batch_size": 64, "block_size": 2048}
    assert planned_updates(rec) == 61036  # ceil(8e9 / (64 * 2048)), as the trainer plans its steps
    rec["config"] = {"tokens_per_param": 1.0, "batch_size": 8, "block_size": 512}
    assert planned_updates(rec) == 245  # ceil(1e6 * 1.0 / 4096)
    rec["config"] = {}
    assert planned_updates(rec) is None
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "run.json").write_text(json.dumps({**rec, "stats": {"n_steps": 5001}}))
    assert load_run_table(tmp_path)["updates"].tolist() == [5001]
    assert load_run_table(tmp_path, curves=True)["updates"].tolist() == [5001] * 5


def test_select_fit_runs_on_curves_and_records():
    from hf_slm.scaling.selection import PAPER_RULE, FitRunRule, select_fit_runs

    records = [make_record("long", 1e6, 2e7), make_record("short", 2e6, 4e7), make_record("again", 1e6, 2e7),
               make_record("multi", 4e6, 8e7, U=2e7)]
    for rec, steps in zip(records, [9000, 300, 9000, 9000], strict=True):
        rec["stats"] = {"n_steps": steps}
    curves = load_run_table(records, curves=True)
    picked = select_fit_runs(curves, PAPER_RULE)
    assert picked.kept == ["long"] and set(picked.rows["run"]) == {"long"} and len(picked.rows) == 5
    assert picked.dropped == {"short": "300 planned updates (needs more than 5,000)",
                              "again": "duplicate of long (same N, D, U)", "multi": "4 epochs (at most 1)"}
    text = "\n".join(picked.describe())
    assert "kept 1 of 4 runs" in text and "dropped multi: 4 epochs" in text
    # eq.7/8 keeps the multi-epoch run; no rule keeps everything
    assert select_fit_runs(load_run_table(records), FitRunRule(max_epochs=None)).kept == ["long", "multi"]
    assert len(select_fit_runs(curves, None).rows) == len(curves)


def test_duplicates_without_u_and_unknown_updates():
    from hf_slm.scaling.selection import select_fit_runs

    df = pd.DataFrame({"N": [1e6, 1e6, 2e6], "D": [1e7, 1e7, 1e7], "loss": [3.0, 3.1, 2.9]})
    picked = select_fit_runs(load_run_table(df))
    assert picked.kept == ["row 0", "row 2"] and picked.dropped == {"row 1": "duplicate of row 0 (same N, D)"}
    assert picked.unknown_updates == ["row 0", "row 2"]
    assert "the update threshold was not applied" in "\n".join(picked.describe())
