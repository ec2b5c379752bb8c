"""The unit dataset schema (contract 1): one definition, validated on read and, in full, on write."""

from __future__ import annotations

from typing import Any

import datasets
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

UNIT_FEATURES = datasets.Features(
    {
        "id": datasets.Value("string"),
        "units": datasets.List(datasets.Value("uint16")),
        # uint32: a run of one unit can last longer than 65,535 frames (11 min at 100 Hz; long silences)
        "durations": datasets.List(datasets.Value("uint32")),
        "n_frames": datasets.Value("int32"),
        "seconds": datasets.Value("float32"),
    }
)
REQUIRED_COLUMNS = ("id", "units", "n_frames", "seconds")
OPTIONAL_STRING_COLUMNS = ("speaker", "text", "source")
_INTEGERS = ("uint16", "int32", "int64", "uint32")


class SchemaError(ValueError):
    """A unit dataset does not follow contract 1."""


def unit_features(extra: dict[str, Any] | None = None, durations: bool = True) -> datasets.Features:
    """Features of a unit dataset, with ``durations`` when dedup is on and any extra columns."""
    feats = {k: v for k, v in UNIT_FEATURES.items() if durations or k != "durations"}
    feats.update(extra or {})
    return datasets.Features(feats)


def validate_unit_dataset(
    ds: datasets.Dataset, where: str, n_units: int | None = None, check_rows: int | None = 64
) -> None:
    """Raise ``SchemaError`` naming ``where``, the row and the field when ``ds`` breaks the contract.

    Checks columns and types on the whole schema, and unit ranges, duration lengths and duration sums
    (``sum(durations) == n_frames``) on the first ``check_rows`` rows: a cheap spot check on read, and every
    row (``check_rows=None``, vectorised with Arrow) before a dataset is written.
    """
    missing = [c for c in REQUIRED_COLUMNS if c not in ds.column_names]
    if missing:
        raise SchemaError(f"{where}: missing column(s) {missing}; have {ds.column_names}")
    for column in ("units", "durations"):
        if column not in ds.column_names:
            continue
        inner = getattr(ds.features[column], "feature", None)
        if inner is None or getattr(inner, "dtype", None) not in _INTEGERS:
            raise SchemaError(f"{where}: column {column!r} must be a list of integers, got {ds.features[column]}")
    n = len(ds) if check_rows is None else min(check_rows, len(ds))
    if n:
        check_rows_of(ds.with_format("arrow")[:n], where, n_units)


def check_rows_of(table: pa.Table, where: str, n_units: int | None = None) -> None:
    """The per-row checks of :func:`validate_unit_dataset` on an Arrow table, all rows at once."""
    units = table.column("units").combine_chunks()
    ids = table.column("id")

    def fail(row: int, message: str) -> None:
        raise SchemaError(f"{where}: row {row} (id={ids[row].as_py()!r}) {message}")

    if n_units is not None:
        flat = pc.list_flatten(units).to_numpy(zero_copy_only=False)
        bad = np.flatnonzero(flat >= n_units)
        if len(bad):
            row = pc.list_parent_indices(units).to_numpy()[bad[0]]
            fail(int(row), f"field 'units' has id {int(flat[bad[0]])} >= K={n_units}")
    if "durations" not in table.column_names:
        return
    durations = table.column("durations").combine_chunks()
    lengths = pc.list_value_length(units).to_numpy(zero_copy_only=False)
    bad = np.flatnonzero(pc.list_value_length(durations).to_numpy(zero_copy_only=False) != lengths)
    if len(bad):
        fail(int(bad[0]), "'durations' and 'units' differ in length")
    parents = pc.list_parent_indices(durations).to_numpy()
    values = pc.list_flatten(durations).to_numpy(zero_copy_only=False).astype(np.int64)
    sums = np.bincount(parents, weights=values, minlength=len(durations)).astype(np.int64)
    n_frames = table.column("n_frames").to_numpy().astype(np.int64)
    bad = np.flatnonzero(sums != n_frames)
    if len(bad):
        fail(int(bad[0]), f"'durations' sum to {sums[bad[0]]}, not to 'n_frames' = {n_frames[bad[0]]}")
