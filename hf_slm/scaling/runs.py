"""Run tables for the scaling fits: from CSV / JSONL / Parquet files or from run records (``run.json``).

Canonical columns: ``N`` (non-embedding parameters), ``D`` (tokens seen), ``loss``, ``U`` (unique tokens),
``C`` (FLOPs; ``6 N D`` when absent), ``run``, ``step``, ``epochs``, ``updates`` (planned optimizer updates,
for the fit-run rule of :mod:`hf_slm.scaling.selection`) and one column per metric (accuracy), with
``<metric>_n``, ``<metric>_ci_low``, ``<metric>_ci_high`` when the records carry them.

Bad input raises ``ValueError`` / ``FileNotFoundError`` naming the file (and the record or key).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from pathlib import Path

import numpy as np
import pandas as pd

CORE_COLUMNS = ("N", "D", "U", "C", "loss", "run", "step", "epochs", "updates")
_RECORD_SCALARS = ("run", "size", "family", "N", "N_total", "D", "U", "epochs", "flops", "flops_attn", "loss")


def _read_json(path: Path):
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as err:
        raise ValueError(f"{path}: not valid JSON ({err})") from None
    except UnicodeDecodeError as err:
        raise ValueError(f"{path}: not a text file ({err})") from None


def _read_table(path: Path, curves: bool) -> pd.DataFrame:
    suffix = path.suffix.lower()
    try:
        if suffix in (".csv", ".tsv"):
            return pd.read_csv(path, sep="\t" if suffix == ".tsv" else ",")
        if suffix in (".jsonl", ".ndjson"):
            return pd.read_json(path, lines=True)
        if suffix == ".parquet" or suffix == ".pq":
            return pd.read_parquet(path)
    except pd.errors.EmptyDataError:
        raise ValueError(f"{path}: empty run table (no header, no rows)") from None
    except (ValueError, pd.errors.ParserError, OSError) as err:
        raise ValueError(f"{path}: cannot read as a {suffix[1:].upper()} run table ({err})") from None
    if suffix == ".json":
        data = _read_json(path)
        records = [data] if isinstance(data, Mapping) else data
        if not isinstance(records, list):
            raise ValueError(f"{path}: a JSON run table is a run record (object) or a list of them, "
                             f"got {type(data).__name__}")
        return _from_records(records, curves, where=str(path))
    raise ValueError(f"unsupported run table format {path.suffix!r} ({path}); use CSV, TSV, JSONL, Parquet, "
                     "a run.json or a folder of run records")


def planned_updates(rec: Mapping) -> float | None:
    """Optimizer updates the run was planned for: ``stats.n_steps``, else the config's token budget
    (``tokens``, or ``tokens_per_param * N``, else ``D``) over ``batch_size * block_size``; None if unknown."""
    stats = rec.get("stats") or {}
    if isinstance(stats, Mapping) and stats.get("n_steps") is not None:
        return float(stats["n_steps"])
    cfg = rec.get("config") or {}
    if not isinstance(cfg, Mapping):
        return None
    block, tokens = cfg.get("block_size"), cfg.get("tokens")
    if tokens is None and cfg.get("tokens_per_param") is not None and rec.get("N") is not None:
        tokens = float(cfg["tokens_per_param"]) * float(rec["N"])
    tokens = rec.get("D") if tokens is None else tokens
    if not (block and tokens):
        return None
    batch = cfg.get("batch_size")
    if batch is None and cfg.get("size") is not None:
        batch = _table1_batch(str(cfg["size"]))
    if not batch:
        return None
    return float(np.ceil(float(tokens) / (float(batch) * float(block))))


def _table1_batch(size: str) -> int | None:
    """The default batch of a named size (imported only when a record lacks both n_steps and batch_size)."""
    try:
        from hf_slm.training.sizes import get_size

        return get_size(size).batch_size
    except (ImportError, KeyError, ValueError):
        return None


def _record_row(rec: Mapping) -> dict:
    row = {k: rec.get(k) for k in _RECORD_SCALARS if k in rec}
    row["updates"] = planned_updates(rec)
    if "flops" in row:
        row["C"] = row.pop("flops")
    family = rec.get("family") or (rec.get("config") or {}).get("family")
    if family is not None:
        row["family"] = family
    for name, m in (rec.get("metrics") or {}).items():
        m = m if isinstance(m, Mapping) else {"accuracy": m}
        row[name] = m.get("accuracy")
        for key in ("n", "ci_low", "ci_high"):
            if key in m:
                row[f"{name}_{key}"] = m[key]
    return row


def _curve_rows(rec: Mapping) -> list[dict]:
    shared = {k: rec.get(k) for k in ("run", "size", "family", "N", "U") if k in rec}
    shared["updates"] = planned_updates(rec)
    family = (rec.get("config") or {}).get("family")
    if family is not None and "family" not in shared:
        shared["family"] = family
    rows = []
    for point in rec.get("curve") or []:
        row = dict(shared, step=point.get("step"), D=point.get("tokens"), loss=point.get("loss"))
        if point.get("flops") is not None:
            row["C"] = point["flops"]
        rows.append(row)
    return rows


def _from_records(records: Iterable, curves: bool, where: str = "run records") -> pd.DataFrame:
    rows: list[dict] = []
    for i, rec in enumerate(records):
        if isinstance(rec, tuple):  # (file, record) from a folder of run.json files
            where_i, rec = rec
        else:
            where_i = f"{where}[{i}]"
        if not isinstance(rec, Mapping):
            raise ValueError(f"{where_i}: a run record is a JSON object, got {type(rec).__name__}: {str(rec)[:60]}")
        rows.extend(_curve_rows(rec) if curves else [_record_row(rec)])
    if not rows:
        raise ValueError(f"{where}: no runs" + (" with learning-curve points" if curves else ""))
    return pd.DataFrame(rows)


def _finish(df: pd.DataFrame, curves: bool, where: str = "run table") -> pd.DataFrame:
    df = df.copy()
    if "updates" not in df and "n_steps" in df:
        df = df.rename(columns={"n_steps": "updates"})
    for col in ("N", "D", "U", "C", "loss", "epochs", "step", "updates"):
        if col in df:
            df[col] = pd.to_numeric(df[col], errors="coerce")
    if "D" not in df and {"C", "N"} <= set(df.columns):
        df["D"] = df["C"] / (6.0 * df["N"])
    if {"N", "D"} <= set(df.columns):
        six_nd = 6.0 * df["N"] * df["D"]
        df["C"] = df["C"].fillna(six_nd) if "C" in df else six_nd
    if "U" in df and "epochs" not in df:
        df["epochs"] = df["D"] / df["U"]
    if not curves and {"run", "step"} <= set(df.columns) and df["run"].duplicated().any():
        df = df.sort_values("step").groupby("run", sort=False).tail(1)
    missing = [c for c in ("N", "D", "loss") if c not in df]
    if missing:
        raise ValueError(f"{where} lacks column(s) {missing}; map them with column_map / --map SRC=DST "
                         f"(columns present: {list(df.columns)})")
    return df.reset_index(drop=True)


def load_run_table(source, curves: bool = False, column_map: Mapping[str, str] | None = None) -> pd.DataFrame:
    """Load a run table.

    ``source`` is a CSV / JSONL / Parquet path, a folder of run records (``**/run.json``, CONTRACTS.md 3), a
    list of record dicts, or a DataFrame. With ``curves=True`` there is one row per learning-curve point
    (``N``, ``D`` = tokens, ``C`` = FLOPs, ``loss``, ``run``, ``step``); otherwise one row per run with the
    metric columns. ``column_map`` renames source columns to canonical ones (``{"val_loss": "loss"}``).
    ``C`` defaults to ``6 N D``; ``D`` defaults to ``C / (6 N)``.
    """
    where = "run table"
    if isinstance(source, pd.DataFrame):
        df = source.copy()
    elif isinstance(source, str | Path):
        path = Path(source)
        where = f"run table {path}"
        if path.is_dir():
            files = sorted(path.rglob("run.json"))
            if not files:
                raise FileNotFoundError(f"no run.json records under {path}")
            df = _from_records(((str(f), _read_json(f)) for f in files), curves, where=str(path))
        elif path.exists():
            df = _read_table(path, curves)
        else:
            raise FileNotFoundError(f"run table {path} does not exist")
    else:
        df = _from_records(list(source), curves)
    if column_map:
        df = df.rename(columns=dict(column_map))
    return _finish(df, curves, where)


def metric_columns(df: pd.DataFrame) -> list[str]:
    """Names of the metric columns: numeric, not canonical, not a ``_n`` / ``_ci_*`` companion, and either
    with such companions (run records) or with all values in [0, 1] (accuracies)."""
    skip = set(CORE_COLUMNS) | {"N_total", "flops_attn", "size", "family", "run_name"}
    out = []
    for col in df.columns:
        if col in skip or col.endswith(("_n", "_ci_low", "_ci_high")):
            continue
        if not pd.api.types.is_numeric_dtype(df[col]) or df[col].isna().all():
            continue
        has_companion = any(f"{col}_{s}" in df for s in ("n", "ci_low", "ci_high"))
        if has_companion or df[col].dropna().between(0, 1).all():
            out.append(col)
    return out


def single_epoch(df: pd.DataFrame, tol: float = 1e-6) -> pd.Series:
    """Mask of rows trained for at most one epoch (``D <= U``; rows without ``U`` count as single-epoch)."""
    if "U" not in df:
        return pd.Series(True, index=df.index)
    return ~(df["D"] > df["U"] * (1 + tol)) | df["U"].isna()


def parse_assignments(items: Iterable[str] | None) -> dict[str, str]:
    """``["a=b", "c=d"]`` -> ``{"a": "b", "c": "d"}`` (for ``--map`` and ``--fix``)."""
    out = {}
    for item in items or []:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise ValueError(f"expected NAME=VALUE, got {item!r}")
        out[key.strip()] = value.strip()
    return out


def finite(df: pd.DataFrame, columns: Iterable[str]) -> pd.DataFrame:
    """Rows where all ``columns`` are finite and positive."""
    cols = list(columns)
    values = df[cols].to_numpy(dtype=float)
    return df[np.isfinite(values).all(axis=1) & (values > 0).all(axis=1)]
