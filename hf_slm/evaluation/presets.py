"""Scoring presets: how a candidate is scored and how item decisions become a benchmark's accuracy.

``paper`` (the default) follows the authors' release (``tiagoCuervo/slm_scaling``, ``src/slm/evaluate.py`` and
``RESULTS.md``), which is more exact than the paper's text:

- each candidate is one whole utterance (for the StoryClozes the whole spoken story, prompt and ending in one
  file); a dataset that splits a prompt from its continuation has the two joined and scored as one;
- the utterance is scored after a leading EOS; the terminal EOS is not scored;
- its score is the **mean** unit NLL (we keep the mean log-probability, its negative: higher wins);
- a tie counts 0.5 in sBLIMP (and sWUGGY, SALMon, BLiMP: the ZeroSpeech / SALMon rule) and 0 in the
  StoryClozes;
- the headline ``accuracy`` is the **macro** mean over phenomena of the per-pair decision averaged over the
  pair's voices (for a benchmark without phenomena or voices this is the plain mean over items).

``sum`` and ``mean`` keep the rules this toolkit used before: the prompt (if any) is context only, the
continuation scores its summed (``sum``) or per-token (``mean``) log-probability, a tie counts 0.5 everywhere
and the accuracy is the mean over items.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from hf_slm.evaluation.registry import benchmark_info
from hf_slm.evaluation.rules import Score, apply_rule

AGGREGATES = ("macro", "micro")


@dataclass(frozen=True)
class ScoringPreset:
    """How candidates are scored and decisions aggregated (see the module docstring)."""

    name: str
    rule: str
    """``"mean"`` or ``"sum"``: a candidate's score from its token log-probabilities (higher wins)."""
    whole_utterance: bool
    """Score prompt + continuation as one utterance (True) or the continuation after the prompt (False)."""
    release_ties: bool
    """Ties count the benchmark's ``tie_credit`` (the release's rule) instead of 0.5 everywhere."""
    aggregate: str
    """``"macro"`` over phenomena of voice-averaged pair decisions, or ``"micro"`` over items."""
    description: str

    def tie_credit(self, benchmark: str) -> float:
        """Credit of a tied item in ``benchmark``."""
        return benchmark_info(benchmark).tie_credit if self.release_ties else 0.5

    def candidate_values(self, scores: Sequence[Score]) -> np.ndarray:
        """Each candidate's score under this preset (higher is better)."""
        return apply_rule(scores, self.rule)

    def to_dict(self) -> dict:
        return {
            "name": self.name, "rule": self.rule, "whole_utterance": self.whole_utterance,
            "release_ties": self.release_ties, "aggregate": self.aggregate,
        }


PRESETS: dict[str, ScoringPreset] = {
    p.name: p
    for p in (
        ScoringPreset(
            "paper", rule="mean", whole_utterance=True, release_ties=True, aggregate="macro",
            description="the authors' release: whole utterance after EOS, mean NLL, ties 0.5 sBLIMP / 0 StoryCloze, "
            "macro over phenomena of voice-averaged pair decisions",
        ),
        ScoringPreset(
            "sum", rule="sum", whole_utterance=False, release_ties=False, aggregate="micro",
            description="summed log-probability of the continuation after its prompt, ties 0.5, mean over items",
        ),
        ScoringPreset(
            "mean", rule="mean", whole_utterance=False, release_ties=False, aggregate="micro",
            description="per-token log-probability of the continuation after its prompt, ties 0.5, mean over items",
        ),
    )
}


def get_preset(scoring: str | ScoringPreset) -> ScoringPreset:
    """The preset named ``scoring`` (``paper``, ``sum`` or ``mean``); ``ValueError`` for another name."""
    if isinstance(scoring, ScoringPreset):
        return scoring
    if scoring not in PRESETS:
        raise ValueError(f"unknown scoring preset {scoring!r}; expected one of {sorted(PRESETS)}")
    return PRESETS[scoring]
