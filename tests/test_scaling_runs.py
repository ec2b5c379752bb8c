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
