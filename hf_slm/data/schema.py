"""The unit dataset schema (contract 1): one definition, validated on read."""

from __future__ import annotations

from typing import Any

import datasets

UNIT_FEATURES = datasets.Features(
    {
        "id": datasets.Value("string"),
        "units": datasets.List(datasets.Value("uint16")),
        "durations": datasets.List(datasets.Value("uint16")),
        "n_frames": datasets.Value("int32"),
        "seconds": datasets.Value("float32"),
    }
)
REQUIRED_COLUMNS = ("id", "units", "n_frames", "seconds")
OPTIONAL_STRING_COLUMNS = ("speaker", "text", "source")


class SchemaError(ValueError):
    """A unit dataset does not follow contract 1."""


def unit_features(extra: dict[str, Any] | None = None, durations: bool = True) -> datasets.Features:
    """Features of a unit dataset, with ``durations`` when dedup is on and any extra columns."""
    feats = {k: v for k, v in UNIT_FEATURES.items() if durations or k != "durations"}
    feats.update(extra or {})
    return datasets.Features(feats)


def validate_unit_dataset(ds: datasets.Dataset, where: str, n_units: int | None = None, check_rows: int = 64) -> None:
    """Raise ``SchemaError`` naming ``where`` and the field when ``ds`` breaks the contract.

    Checks columns and types on the whole schema, and unit ranges / duration sums on the first
    ``check_rows`` rows (a cheap spot check, so validating a large dataset stays fast).
    """
    missing = [c for c in REQUIRED_COLUMNS if c not in ds.column_names]
    if missing:
        raise SchemaError(f"{where}: missing column(s) {missing}; have {ds.column_names}")
    units_feature = ds.features["units"]
    inner = getattr(units_feature, "feature", None)
    if inner is None or getattr(inner, "dtype", None) not in ("uint16", "int32", "int64", "uint32"):
        raise SchemaError(f"{where}: column 'units' must be a list of integers, got {units_feature}")
    has_durations = "durations" in ds.column_names
    for i, row in enumerate(ds.select(range(min(check_rows, len(ds))))):
        units = row["units"]
        if n_units is not None and units and max(units) >= n_units:
            raise SchemaError(f"{where}: row {i} (id={row['id']!r}) field 'units' has id {max(units)} >= K={n_units}")
        if has_durations:
            if len(row["durations"]) != len(units):
                raise SchemaError(f"{where}: row {i} (id={row['id']!r}) 'durations' and 'units' differ in length")
            if sum(row["durations"]) != row["n_frames"]:
                raise SchemaError(f"{where}: row {i} (id={row['id']!r}) 'durations' do not sum to 'n_frames'")
