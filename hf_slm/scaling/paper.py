"""The paper's published numbers (Cuervo & Marxer 2024, SPEC.md), for the report's side-by-side tables.

Metric names are the toolkit's benchmark names (``sblimp``, ``topic_storycloze``, ``spoken_storycloze``);
families are ``text``, ``speech`` and ``speech-unigram`` (the run table's ``family`` column).
"""

from __future__ import annotations

from hf_slm.scaling.downstream import TABLE3_GAMMAS
from hf_slm.scaling.laws import MUENNIGHOFF_2023, SPEECH_2024, SPEECH_UNIGRAM_2024

PAPER = "Cuervo & Marxer (2024), arXiv:2404.00685"

FAMILIES = ("speech", "text", "speech-unigram")

#: The paper's metric names (Table 3 columns) -> the toolkit's benchmark names.
METRIC_NAMES = {"sblimp": "sblimp", "tsc": "topic_storycloze", "ssc": "spoken_storycloze"}
#: Display names of the benchmarks, in the paper's order (Table 3: BLIMP, TCLOZE, SCLOZE).
METRIC_LABELS = {"sblimp": "sBLIMP", "topic_storycloze": "tSC (Topic Cloze)",
                 "spoken_storycloze": "sSC (Story Cloze)"}

#: Table 3: gamma_q of Q proportional to C^gamma_q on the envelope, per family and benchmark.
TABLE3: dict[str, dict[str, float]] = {
    family: {METRIC_NAMES[name]: value for name, value in gammas.items()}
    for family, gammas in TABLE3_GAMMAS.items()
}

#: Table 3's relative efficiency gamma_text / gamma_speech, as the paper prints it (4.2.1).
TABLE3_RATIOS: dict[str, float] = {"sblimp": 3.14, "topic_storycloze": 1.56, "spoken_storycloze": 2.7}

#: Table 4: eq.4 (and eq.7/8) constants per family; text is Muennighoff et al. (2023).
TABLE4: dict[str, dict[str, float]] = {
    "text": {k: MUENNIGHOFF_2023[k] for k in ("E", "A", "B", "alpha", "beta", "R_N", "R_D")},
    "speech": dict(SPEECH_2024),
    "speech-unigram": dict(SPEECH_UNIGRAM_2024),
}

#: What the paper's figures show, for the report's captions (the study's Fig. 3 is the text family next to
#: speech, as the issue defines it; the paper's Fig. 3 is the sTinyStories-vs-audiobooks ablation).
FIGURES = {
    "fig1": "Fig. 1: test loss vs compute, learning curves coloured by N, envelope power law and the eq.4 fit",
    "fig2": "Fig. 2: downstream metrics vs compute, envelope of best metric per FLOP and its power law",
    "fig3": "Fig. 3: the text family's metrics vs compute next to speech (paper Fig. 2, LLMs vs SLMs)",
    "fig4": "Fig. 4: each metric against test loss, with the linear fit and the correlations",
    "fig5": "Fig. 5: raw-unit vs unigram-compressed speech LMs: loss and metrics vs compute",
}


def paper_gamma(family: str, metric: str) -> float | None:
    """Table 3's gamma for ``family`` and ``metric`` (None where the paper has none)."""
    return TABLE3.get(family, {}).get(metric)


def paper_constants(family: str) -> dict[str, float]:
    """Table 4's constants of ``family`` (empty where the paper has none)."""
    return dict(TABLE4.get(family, {}))
