"""A whole scaling study from one YAML: ``hf-slm study CONFIG`` (top level: it may import every stage).

- :mod:`~hf_slm.study.config`: the study config (``StudyConfig``, sections as dataclasses);
- :mod:`~hf_slm.study.plan`: the runs it trains, their FLOPs, GPU-hours and disk (``--dry-run``);
- :mod:`~hf_slm.study.corpus`: stories and benchmarks -> speech -> tokenizer -> unit datasets, text tokens;
- :mod:`~hf_slm.study.adapters`: the only calls into training and evaluation;
- :mod:`~hf_slm.study.runner`: ``Study``: data -> runs -> report, idempotent, local or Slurm;
- :mod:`~hf_slm.study.cli`: ``hf-slm study`` and ``hf-slm demo``.

The report itself comes from the run records alone (:mod:`hf_slm.scaling.report`).
"""

from hf_slm.study.config import StudyConfig, StudyConfigError

__all__ = ["Study", "StudyConfig", "StudyConfigError", "plan_runs"]


def __getattr__(name: str):
    if name == "Study":
        from hf_slm.study.runner import Study

        return Study
    if name == "plan_runs":
        from hf_slm.study.plan import plan_runs

        return plan_runs
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
