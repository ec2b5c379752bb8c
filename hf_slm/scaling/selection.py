"""Which runs enter the scaling fits.

The authors' release (``tiagoCuervo/slm_scaling``, RESULTS.md) fits on final checkpoints of distinct completed
budgets: runs with more than 5,000 planned updates and at most one corpus epoch, duplicates removed.
:data:`PAPER_RULE` is that rule, :func:`select_fit_runs` applies a rule to a run table and says which runs it
dropped and why. ``hf-slm fit`` / ``hf-slm plan`` apply it by default (``--all-runs`` turns it off).

Planned updates come from the ``updates`` column: run records give ``stats.n_steps`` (the trainer's plan), or
the config's budget over ``batch_size * block_size`` (:func:`hf_slm.scaling.runs.planned_updates`). Runs whose
planned updates are unknown (a table without such a column) are kept, and the selection says so.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

EPOCH_TOL = 1e-6  # relative slack on D <= U (token counts are rounded to whole blocks)


@dataclass(frozen=True)
class FitRunRule:
    """A run enters the fits when it has more than ``min_updates`` planned optimizer updates, at most
    ``max_epochs`` epochs (``None``: any), and is not a repeat of an earlier run with the same ``N``, ``D``
    and ``U`` (and family)."""

    min_updates: int = 5000
    max_epochs: float | None = 1.0
    drop_duplicates: bool = True

    def describe(self) -> str:
        parts = [f"more than {self.min_updates:,} planned updates"]
        if self.max_epochs is not None:
            parts.append(f"at most {self.max_epochs:g} epoch{'s' if self.max_epochs != 1 else ''}")
        if self.drop_duplicates:
            parts.append("duplicates removed")
        return ", ".join(parts)


#: The rule of the authors' release (RESULTS.md): > 5,000 planned updates, <= 1 epoch, no duplicates.
PAPER_RULE = FitRunRule()


@dataclass
class RunSelection:
    """Outcome of :func:`select_fit_runs`: the rows kept and, per dropped run, the reason."""

    rows: pd.DataFrame
    dropped: dict[str, str]
    kept: list[str]
    unknown_updates: list[str]
    rule: FitRunRule | None
    no_updates: bool = False  # no run of the table says how many updates it planned

    def describe(self, limit: int = 25) -> list[str]:
        """Human-readable lines: the rule, how many runs it kept, and (up to ``limit``) each dropped run with
        its reason."""
        n_runs = len(self.kept) + len(self.dropped)
        if self.rule is None:
            return [f"runs: all {n_runs} (no selection rule: --all-runs)"]
        lines = [f"fit rule (the authors' release): {self.rule.describe()}; kept {len(self.kept)} of {n_runs} runs"]
        dropped = list(self.dropped.items())
        lines += [f"  dropped {run}: {reason}" for run, reason in dropped[:limit]]
        if len(dropped) > limit:
            lines.append(f"  ... and {len(dropped) - limit} more dropped runs")
        if self.no_updates:
            lines.append("  planned updates unknown for every run (no 'updates' column, no stats.n_steps): "
                         "the update threshold was not applied")
        elif self.unknown_updates:
            lines.append(f"  planned updates unknown for {len(self.unknown_updates)} run(s), kept: "
                         f"{_short_list(self.unknown_updates)}")
        return lines

    def to_dict(self) -> dict:
        return {"rule": None if self.rule is None else self.rule.describe(), "kept": self.kept,
                "dropped": self.dropped, "unknown_updates": self.unknown_updates}


def _short_list(names: list[str], limit: int = 8) -> str:
    head = ", ".join(names[:limit])
    return head if len(names) <= limit else f"{head}, ... ({len(names) - limit} more)"


def _run_ids(df: pd.DataFrame) -> pd.Series:
    if "run" in df:
        return df["run"].astype(str)
    return pd.Series([f"row {i}" for i in range(len(df))], index=df.index)


def _per_run(df: pd.DataFrame, ids: pd.Series) -> pd.DataFrame:
    """One row per run (curve tables have several): N, U and updates of the run, its largest D and epochs."""
    cols = {c: ("max" if c in ("D", "epochs") else "first") for c in ("N", "D", "U", "epochs", "updates", "family")
            if c in df}
    frame = df[list(cols)].assign(_run=ids.to_numpy())
    return frame.groupby("_run", sort=False).agg(cols)


def _key_value(value):
    return None if isinstance(value, float) and np.isnan(value) else value


def _epochs(runs: pd.DataFrame) -> pd.Series:
    if "epochs" in runs and runs["epochs"].notna().any():
        return runs["epochs"].astype(float)
    if "U" in runs:
        return runs["D"].astype(float) / runs["U"].astype(float)
    return pd.Series(np.nan, index=runs.index)


def select_fit_runs(df: pd.DataFrame, rule: FitRunRule | None = PAPER_RULE) -> RunSelection:
    """Apply ``rule`` to a run table (one row per run, or learning-curve rows with a ``run`` column).

    ``rule=None`` keeps every run. Returns the kept rows (index reset) and the reason each dropped run was
    dropped: ``"2,400 planned updates (needs more than 5,000)"``, ``"4 epochs (at most 1)"``,
    ``"duplicate of r0 (same N, D, U)"``.
    """
    ids = _run_ids(df)
    runs = _per_run(df, ids)
    order = list(runs.index)
    if rule is None:
        return RunSelection(df.reset_index(drop=True), {}, order, [], None)
    dropped: dict[str, str] = {}
    updates = runs["updates"].astype(float) if "updates" in runs else pd.Series(np.nan, index=runs.index)
    unknown = [r for r in order if not np.isfinite(updates[r])]
    for run in order:
        if np.isfinite(updates[run]) and updates[run] <= rule.min_updates:
            dropped[run] = f"{updates[run]:,.0f} planned updates (needs more than {rule.min_updates:,})"
    if rule.max_epochs is not None:
        epochs = _epochs(runs)
        for run in order:
            if run not in dropped and epochs[run] > rule.max_epochs * (1 + EPOCH_TOL):
                dropped[run] = f"{epochs[run]:.3g} epochs (at most {rule.max_epochs:g})"
    if rule.drop_duplicates:
        key_cols = [c for c in ("family", "N", "D", "U") if c in runs]
        first: dict[tuple, str] = {}
        for run in order:
            if run in dropped:
                continue
            key = tuple(_key_value(runs.at[run, c]) for c in key_cols)
            if key in first:
                dropped[run] = f"duplicate of {first[key]} (same {', '.join(key_cols)})"
            else:
                first[key] = run
    kept = [r for r in order if r not in dropped]
    rows = df[ids.isin(kept).to_numpy()].reset_index(drop=True)
    return RunSelection(rows, dropped, kept, [r for r in unknown if r in kept], rule,
                        no_updates=len(unknown) == len(order))
