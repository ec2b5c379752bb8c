"""The ``evaluate`` adapter: one ``Metric`` implementation shared by the three benchmark modules.

Only the metric module files (``metrics/<name>/<name>.py``) import this module, so ``evaluate`` is loaded
only when a metric is.
"""

from __future__ import annotations

import datasets
import evaluate

from hf_slm.evaluation.decisions import decide, summarize_decisions
from hf_slm.evaluation.presets import PRESETS
from hf_slm.evaluation.registry import benchmark_info
from hf_slm.evaluation.rules import RULES

FEATURES = datasets.Features(
    {"positive_scores": datasets.Value("float64"), "negative_scores": datasets.Value("float64")}
)


class PairedChoiceMetric(evaluate.Metric):
    """Accuracy with a binomial CI of paired candidate scores; subclasses set ``benchmark``.

    By default ties count 0.5 and the accuracy is the mean over items; ``tie_credit``, ``aggregate``,
    ``phenomena`` and ``pair_ids`` give the paper preset's rules (see ``hf_slm.evaluation.decisions``).
    """

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
        tie_credit: float = 0.5,
        aggregate: str = "micro",
        phenomena: list[str] | None = None,
        pair_ids: list[str] | None = None,
    ) -> dict:
        if rule is not None and rule not in RULES and rule not in PRESETS:
            raise ValueError(f"unknown scoring rule {rule!r}; expected one of {sorted({*RULES, *PRESETS})}")
        decisions = decide(positive_scores, negative_scores, tie_credit)
        summary = summarize_decisions(decisions, phenomena, pair_ids, aggregate, confidence, ci_method)
        return summary if rule is None else {**summary, "rule": rule}
