"""Scaling laws for speech language models: fits, uncertainty, compute-optimal allocation and planning.

Estimators (scikit-learn style: constructor parameters, ``fit`` returns self, ``params_``, ``predict``):
:class:`ChinchillaLaw` (eq.4), :class:`DataConstrainedLaw` (eq.7/8), :class:`PowerLaw`,
:class:`SaturatingPowerLaw`, :class:`LogisticLaw`. Allocation: :func:`compute_optimal` (eq.6),
:func:`compute_for_loss`. Uncertainty: :func:`bootstrap_law`. Run tables: :func:`load_run_table`.
Stage entry point: :func:`hf_slm.scaling.study.analyze_runs`; CLI: :mod:`hf_slm.scaling.cli`.
"""

from hf_slm.scaling.allocation import (
    allocation_exponents,
    compute_for_loss,
    compute_optimal,
    optimal_loss,
    tokens_for_loss,
)
from hf_slm.scaling.bootstrap import BootstrapResult, bootstrap_law
from hf_slm.scaling.downstream import (
    LogisticLaw,
    PowerLaw,
    SaturatingPowerLaw,
    compare_forms,
    envelope,
    loss_metric_fit,
    relative_efficiency,
)
from hf_slm.scaling.laws import ChinchillaLaw, DataConstrainedLaw, chinchilla_loss, data_constrained_loss
from hf_slm.scaling.planning import plan_for_loss, plan_for_metric
from hf_slm.scaling.runs import load_run_table

__all__ = [
    "BootstrapResult",
    "ChinchillaLaw",
    "DataConstrainedLaw",
    "LogisticLaw",
    "PowerLaw",
    "SaturatingPowerLaw",
    "allocation_exponents",
    "bootstrap_law",
    "chinchilla_loss",
    "compare_forms",
    "compute_for_loss",
    "compute_optimal",
    "data_constrained_loss",
    "envelope",
    "load_run_table",
    "loss_metric_fit",
    "optimal_loss",
    "plan_for_loss",
    "plan_for_metric",
    "relative_efficiency",
    "tokens_for_loss",
]
