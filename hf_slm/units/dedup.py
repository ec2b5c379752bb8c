"""Run-length deduplication of unit sequences (the paper removes consecutive repeated units)."""

from __future__ import annotations

import numpy as np


def dedup(units: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Collapse runs of equal consecutive units.

    Returns:
        ``(units, durations)``: one unit per run and the run lengths (``durations.sum() == len(units_in)``).
        Both keep the input's dtype for units and use int64 for durations.
    """
    units = np.asarray(units)
    if units.ndim != 1:
        raise ValueError(f"dedup expects a 1-D unit sequence, got shape {units.shape}")
    if units.size == 0:
        return units.copy(), np.zeros(0, dtype=np.int64)
    starts = np.flatnonzero(np.r_[True, units[1:] != units[:-1]])
    durations = np.diff(np.r_[starts, units.size])
    return units[starts], durations
