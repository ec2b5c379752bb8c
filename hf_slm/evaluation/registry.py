"""The downstream benchmarks (paper section 3.2): their cards, metric module folders, and loader."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

_PAPER_CITATION = """@article{cuervo2024scaling,
  title={Scaling Properties of Speech Language Models},
  author={Cuervo, Santiago and Marxer, Ricard},
  journal={arXiv preprint arXiv:2404.00685},
  year={2024}
}"""

_HASSID_CITATION = """@inproceedings{hassid2023textually,
  title={Textually Pretrained Speech Language Models},
  author={Hassid, Michael and Remez, Tal and Nguyen, Tu Anh and Gat, Itai and Conneau, Alexis and Kreuk, Felix
    and Copet, Jade and Defossez, Alexandre and Synnaeve, Gabriel and Dupoux, Emmanuel and Schwartz, Roy
    and Adi, Yossi},
  booktitle={Advances in Neural Information Processing Systems},
  year={2023}
}"""

_STORYCLOZE_CITATION = """@inproceedings{mostafazadeh2016corpus,
  title={A Corpus and Cloze Evaluation for Deeper Understanding of Commonsense Stories},
  author={Mostafazadeh, Nasrin and Chambers, Nathanael and He, Xiaodong and Parikh, Devi and Batra, Dhruv
    and Vanderwende, Lucy and Kohli, Pushmeet and Allen, James},
  booktitle={Proceedings of NAACL-HLT},
  year={2016}
}"""

_ZEROSPEECH_CITATION = """@article{nguyen2020zero,
  title={The Zero Resource Speech Benchmark 2021: Metrics and Baselines for Unsupervised Spoken Language
    Modeling},
  author={Nguyen, Tu Anh and de Seyssel, Maureen and Roz{\\'e}, Patricia and Rivi{\\`e}re, Morgane
    and Kharitonov, Evgeny and Baevski, Alexei and Dunbar, Ewan and Dupoux, Emmanuel},
  journal={arXiv preprint arXiv:2011.11588},
  year={2020}
}"""

_INPUTS = """Args:
    positive_scores (list of float): score of the correct candidate of each pair (e.g. the summed
        log-probability of the grammatical sentence / true ending under the LM).
    negative_scores (list of float): score of the other candidate of the same pair, in the same order.
    rule (str, optional): how the scores were computed ("sum" or "mean"); echoed in the result.
    confidence (float, default 0.95): confidence level of the interval.
    ci_method (str, default "wilson"): "wilson" or "exact" (Clopper-Pearson).
Returns:
    accuracy (float): fraction of pairs whose positive scores higher (ties count 0.5).
    n (int): number of pairs.
    ci_low, ci_high (float): binomial confidence interval of the accuracy.
Examples:
    >>> metric = evaluate.load(hf_slm.evaluation.metrics_path("{name}"))
    >>> metric.compute(positive_scores=[-3.0, -2.0], negative_scores=[-4.0, -1.0])["accuracy"]
    0.5
"""


@dataclass(frozen=True)
class BenchmarkInfo:
    """Card text of one paired-choice benchmark."""

    name: str
    title: str
    description: str
    citation: str
    homepage: str

    @property
    def inputs_description(self) -> str:
        """The metric's input / output documentation."""
        return _INPUTS.replace("{name}", self.name)


BENCHMARKS: dict[str, BenchmarkInfo] = {
    info.name: info
    for info in (
        BenchmarkInfo(
            name="sblimp",
            title="sBLIMP",
            description=(
                "sBLIMP (ZeroSpeech 2021) measures the syntactic knowledge of a spoken language model: each item "
                "is a matched pair of spoken sentences, one grammatical and one ungrammatical, and the model is "
                "correct when it assigns the grammatical one the higher probability. Reported as accuracy over "
                "pairs (chance 0.5), as in Cuervo & Marxer (2024), section 3.2."
            ),
            citation="\n".join([_ZEROSPEECH_CITATION, _PAPER_CITATION]),
            homepage="https://zerospeech.com/",
        ),
        BenchmarkInfo(
            name="spoken_storycloze",
            title="Spoken StoryCloze (sSC)",
            description=(
                "Spoken StoryCloze (Hassid et al. 2023) is a spoken version of the StoryCloze benchmark "
                "(Mostafazadeh et al. 2016): given the first four sentences of a five-sentence story, the model "
                "is correct when it assigns the true ending a higher probability than an adversarial ending that "
                "requires commonsense reasoning to reject. Accuracy over stories (chance 0.5)."
            ),
            citation="\n".join([_HASSID_CITATION, _STORYCLOZE_CITATION, _PAPER_CITATION]),
            homepage="https://github.com/slp-rl/SpokenStoryCloze",
        ),
        BenchmarkInfo(
            name="topic_storycloze",
            title="Topic StoryCloze (tSC)",
            description=(
                "Topic StoryCloze (Hassid et al. 2023) is the StoryCloze variant whose negative ending is sampled "
                "at random from the whole set, so it measures whether the model stays on topic: the model is "
                "correct when the true ending of the story scores higher than the random one. Accuracy over "
                "stories (chance 0.5)."
            ),
            citation="\n".join([_HASSID_CITATION, _STORYCLOZE_CITATION, _PAPER_CITATION]),
            homepage="https://github.com/slp-rl/SpokenStoryCloze",
        ),
    )
}


def benchmark_info(name: str) -> BenchmarkInfo:
    """The card of benchmark ``name``; ``KeyError`` listing the known names otherwise."""
    if name not in BENCHMARKS:
        raise KeyError(f"unknown benchmark {name!r}; known: {sorted(BENCHMARKS)}")
    return BENCHMARKS[name]


def metrics_path(name: str) -> str:
    """Folder of the ``evaluate`` metric module of benchmark ``name``, to pass to ``evaluate.load``."""
    benchmark_info(name)
    folder = Path(__file__).resolve().parent / "metrics" / name
    if not (folder / f"{name}.py").is_file():
        raise FileNotFoundError(f"metric module {folder / (name + '.py')} is missing from the installed package")
    return str(folder)


def load_metric(name: str, **kwargs):
    """``evaluate.load`` the metric module of benchmark ``name`` (imports ``evaluate`` only now)."""
    import evaluate

    return evaluate.load(metrics_path(name), keep_in_memory=True, **kwargs)
