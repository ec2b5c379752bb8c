"""The ``evaluate`` adapter: one ``Metric`` implementation shared by the three benchmark modules.

Only the metric module files (``metrics/<name>/<name>.py``) import this module, so ``evaluate`` is loaded
only when a metric is.
"""

from __future__ import annotations

import datasets
import evaluate

from hf_slm.evaluation.registry import benchmark_info
from hf_slm.evaluation.rules import RULES, compare
from hf_slm.evaluation.stats import accuracy_summary

FEATURES = datasets.Features(
    {"positive_scores": datasets.Value("float64"), "negative_scores": datasets.Value("float64")}
)


class PairedChoiceMetric(evaluate.Metric):
    """Accuracy (ties 0.5) with a binomial CI of paired candidate scores; subclasses set ``benchmark``."""

    benchmark: str = ""

    def _info(self) -> evaluate.MetricInfo:
        info = benchmark_info(self.benchmark)
        return evaluate.MetricInfo(
            module_type="metric",
            description=info.description,
            citation=info.citation,
            inputs_description=info.inputs_description,
            features=FEATURES,
            homepage=info.homepage,
        )

    def _compute(
        self,
        positive_scores: list[float],
        negative_scores: list[float],
        rule: str | None = None,
        confidence: float = 0.95,
        ci_method: str = "wilson",
    ) -> dict:
        if rule is not None and rule not in RULES:
            raise ValueError(f"unknown scoring rule {rule!r}; expected one of {RULES}")
        summary = accuracy_summary(compare(positive_scores, negative_scores), confidence, ci_method)
        return summary if rule is None else {**summary, "rule": rule}
