"""Stage 5: downstream evaluation (sBLIMP, spoken / topic StoryCloze) by log-likelihood scoring.

Names are imported lazily, so ``import hf_slm.evaluation`` loads neither torch nor ``evaluate``; the
``evaluate`` library is imported only by ``load_metric`` and the metric modules under ``metrics/``.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

_EXPORTS = {
    "RULES": "rules", "Score": "rules", "apply_rule": "rules", "compare": "rules",
    "score_texts": "scoring", "score_units": "scoring", "sequence_logprobs": "scoring", "unit_sequence": "scoring",
    "accuracy_summary": "stats", "beats_chance": "stats", "binomial_ci": "stats",
    "BENCHMARKS": "registry", "BenchmarkInfo": "registry", "benchmark_info": "registry", "load_metric": "registry",
    "metrics_path": "registry",
    "BenchmarkError": "benchmarks", "Pairs": "benchmarks", "benchmark_scores": "benchmarks",
    "evaluate_all": "benchmarks", "evaluate_benchmark": "benchmarks", "pair_rows": "benchmarks",
}

__all__ = [
    "BENCHMARKS", "BenchmarkError", "BenchmarkInfo", "Pairs", "RULES", "Score", "accuracy_summary",
    "apply_rule", "beats_chance", "benchmark_info", "benchmark_scores", "binomial_ci", "compare",
    "evaluate_all", "evaluate_benchmark", "load_metric", "metrics_path", "pair_rows", "score_texts",
    "score_units", "sequence_logprobs", "unit_sequence",
]

if TYPE_CHECKING:
    from hf_slm.evaluation.benchmarks import (
        BenchmarkError,
        Pairs,
        benchmark_scores,
        evaluate_all,
        evaluate_benchmark,
        pair_rows,
    )
    from hf_slm.evaluation.registry import (
        BENCHMARKS,
        BenchmarkInfo,
        benchmark_info,
        load_metric,
        metrics_path,
    )
    from hf_slm.evaluation.rules import RULES, Score, apply_rule, compare
    from hf_slm.evaluation.scoring import score_texts, score_units, sequence_logprobs, unit_sequence
    from hf_slm.evaluation.stats import accuracy_summary, beats_chance, binomial_ci


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{_EXPORTS[name]}"), name)


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
