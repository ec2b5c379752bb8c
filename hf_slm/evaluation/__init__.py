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
    "ALIASES": "registry", "BENCHMARKS": "registry", "BenchmarkInfo": "registry", "benchmark_info": "registry",
    "canonical_name": "registry", "load_metric": "registry", "metrics_path": "registry",
    "PRESETS": "presets", "ScoringPreset": "presets", "get_preset": "presets",
    "decide": "decisions", "summarize_decisions": "decisions",
    "UnitVocabulary": "token_ids", "VocabularyError": "token_ids", "model_vocabulary": "token_ids",
    "plain_vocabulary": "token_ids", "unigram_vocabulary": "token_ids",
    "BenchmarkError": "benchmarks", "Pairs": "benchmarks", "benchmark_scores": "benchmarks",
    "candidate_scores": "benchmarks", "evaluate_all": "benchmarks", "evaluate_benchmark": "benchmarks",
    "pair_rows": "benchmarks",
    "evaluate_test_loss": "loss",
    "load_benchmark": "loading",
    "evaluate_model": "runner",
    "import_benchmark": "importers", "LAYOUTS": "importers",
}

__all__ = [
    "ALIASES", "BENCHMARKS", "BenchmarkError", "BenchmarkInfo", "LAYOUTS", "PRESETS", "Pairs", "RULES",
    "Score", "ScoringPreset", "UnitVocabulary", "VocabularyError", "accuracy_summary", "apply_rule",
    "beats_chance", "benchmark_info", "benchmark_scores", "binomial_ci", "candidate_scores", "canonical_name",
    "compare", "decide", "evaluate_all", "evaluate_benchmark", "evaluate_model", "evaluate_test_loss",
    "get_preset", "import_benchmark", "load_benchmark", "load_metric", "metrics_path", "model_vocabulary",
    "pair_rows", "plain_vocabulary", "score_texts", "score_units", "sequence_logprobs", "summarize_decisions",
    "unigram_vocabulary", "unit_sequence",
]

if TYPE_CHECKING:
    from hf_slm.evaluation.benchmarks import (
        BenchmarkError,
        Pairs,
        benchmark_scores,
        candidate_scores,
        evaluate_all,
        evaluate_benchmark,
        pair_rows,
    )
    from hf_slm.evaluation.decisions import decide, summarize_decisions
    from hf_slm.evaluation.importers import LAYOUTS, import_benchmark
    from hf_slm.evaluation.loading import load_benchmark
    from hf_slm.evaluation.loss import evaluate_test_loss
    from hf_slm.evaluation.presets import PRESETS, ScoringPreset, get_preset
    from hf_slm.evaluation.registry import (
        ALIASES,
        BENCHMARKS,
        BenchmarkInfo,
        benchmark_info,
        canonical_name,
        load_metric,
        metrics_path,
    )
    from hf_slm.evaluation.rules import RULES, Score, apply_rule, compare
    from hf_slm.evaluation.runner import evaluate_model
    from hf_slm.evaluation.scoring import score_texts, score_units, sequence_logprobs, unit_sequence
    from hf_slm.evaluation.stats import accuracy_summary, beats_chance, binomial_ci
    from hf_slm.evaluation.token_ids import (
        UnitVocabulary,
        VocabularyError,
        model_vocabulary,
        plain_vocabulary,
        unigram_vocabulary,
    )


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{_EXPORTS[name]}"), name)


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
