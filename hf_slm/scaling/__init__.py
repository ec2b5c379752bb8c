"""Scaling laws for speech language models: fits, uncertainty, compute-optimal allocation and planning.

Estimators (scikit-learn style: constructor parameters, ``fit`` returns self, ``params_``, ``predict``):
:class:`ChinchillaLaw` (eq.4), :class:`DataConstrainedLaw` (eq.7/8), :class:`PowerLaw`,
:class:`SaturatingPowerLaw`, :class:`LogisticLaw`. Allocation: :func:`compute_optimal` (eq.6),
:func:`compute_for_loss`. Uncertainty: :func:`bootstrap_law`. Run tables: :func:`load_run_table`; which runs
enter the fits: :func:`select_fit_runs` (the release's rule, :data:`PAPER_RULE`).
Stage entry point: :func:`hf_slm.scaling.study.analyze_runs`; CLI: :mod:`hf_slm.scaling.cli`.

Names are imported on first use (PEP 562), so ``hf-slm fit --help`` does not pay for scikit-learn and pandas.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "allocation": ["allocation_exponents", "compute_for_loss", "compute_optimal", "optimal_loss", "tokens_for_loss"],
    "bootstrap": ["BootstrapResult", "bootstrap_law"],
    "downstream": ["LogisticLaw", "PowerLaw", "SaturatingPowerLaw", "compare_forms", "envelope", "loss_metric_fit",
                   "relative_efficiency"],
    "laws": ["ChinchillaLaw", "DataConstrainedLaw", "chinchilla_loss", "data_constrained_loss"],
    "planning": ["plan_for_loss", "plan_for_metric"],
    "runs": ["load_run_table"],
    "selection": ["FitRunRule", "PAPER_RULE", "RunSelection", "select_fit_runs"],
}
_MODULE_OF = {name: module for module, names in _EXPORTS.items() for name in names}

__all__ = sorted(_MODULE_OF)


def __getattr__(name: str) -> Any:
    if name not in _MODULE_OF:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f".{_MODULE_OF[name]}", __name__), name)


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
