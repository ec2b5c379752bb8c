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

_SALMON_CITATION = """@article{maimon2024salmon,
  title={A Suite for Acoustic Language Model Evaluation},
  author={Maimon, Gallil and Roth, Amit and Adi, Yossi},
  journal={arXiv preprint arXiv:2409.07437},
  year={2024}
}"""

_BLIMP_CITATION = """@article{warstadt2020blimp,
  title={BLiMP: The Benchmark of Linguistic Minimal Pairs for English},
  author={Warstadt, Alex and Parrish, Alicia and Liu, Haokun and Mohananey, Anhad and Peng, Wei and Wang, Sheng-Fu
    and Bowman, Samuel R.},
  journal={Transactions of the Association for Computational Linguistics},
  volume={8},
  pages={377--392},
  year={2020}
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
    positive_scores (list of float): score of the correct candidate of each item (higher is better: the
        summed or mean log-probability of the grammatical sentence / true ending under the LM).
    negative_scores (list of float): score of the (best) other candidate of the same item, in the same order.
    rule (str, optional): how the scores were computed ("paper", "sum" or "mean"); echoed in the result.
    tie_credit (float, default 0.5): credit of an item whose two scores are equal (the paper's release: 0.5
        for sBLIMP, 0 for the StoryClozes).
    aggregate (str, default "micro"): "micro" (mean over items) or "macro" (mean over phenomena of the item
        decisions averaged per pair, the paper's sBLIMP accuracy).
    phenomena, pair_ids (list of str, optional): phenomenon and pair of each item; items of one pair (its
        voices) are averaged first.
    confidence (float, default 0.95): confidence level of the interval.
    ci_method (str, default "wilson"): "wilson" or "exact" (Clopper-Pearson).
Returns:
    accuracy (float): fraction of items whose positive scores higher (macro or micro, see above).
    n (int): number of items (micro) or pairs (macro).
    ci_low, ci_high (float): binomial confidence interval of the accuracy.
    pair_accuracy, voice_pair_accuracy (float), by_phenomenon (dict), n_pairs, n_items (int): breakdowns.
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
    tie_credit: float = 0.5
    aliases: tuple[str, ...] = ()

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
            tie_credit=0.5,
            aliases=("sBLIMP",),
        ),
        BenchmarkInfo(
            name="swuggy",
            title="sWUGGY",
            description=(
                "sWUGGY (ZeroSpeech 2021, lexical task) measures the lexical knowledge of a spoken language model: "
                "each item pairs a spoken word with a phonotactically matched non-word said by the same voice, "
                "and the model is correct when the word scores higher. The ZeroSpeech score averages the "
                "decisions of a pair over its voices, then over pairs (chance 0.5)."
            ),
            citation="\n".join([_ZEROSPEECH_CITATION, _PAPER_CITATION]),
            homepage="https://zerospeech.com/",
            tie_credit=0.5,
            aliases=("sWUGGY",),
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
            tie_credit=0.0,
            aliases=("sSC", "sStoryCloze"),
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
            tie_credit=0.0,
            aliases=("tSC", "tStoryCloze"),
        ),
        BenchmarkInfo(
            name="salmon",
            title="SALMon",
            description=(
                "SALMon (Maimon et al. 2024) measures acoustic consistency and alignment: in each item a recording "
                "whose acoustics stay consistent (speaker, gender, sentiment, background, room) or match the "
                "content competes with one where they change; the model is correct when the consistent one "
                "scores higher. Reported per part and as the mean over parts (chance 0.5)."
            ),
            citation="\n".join([_SALMON_CITATION, _PAPER_CITATION]),
            homepage="https://github.com/slp-rl/salmon",
            tie_credit=0.5,
            aliases=("SALMon",),
        ),
        BenchmarkInfo(
            name="blimp",
            title="BLiMP (text)",
            description=(
                "BLiMP (Warstadt et al. 2020) is the text benchmark sBLIMP was made from: 67 paradigms of minimal "
                "pairs grouped in 12 phenomena; a text LM is correct when the grammatical sentence scores higher. "
                "Scored like sBLIMP (macro mean over phenomena under the paper preset), for the paper's "
                "comparison of speech and text LMs (chance 0.5)."
            ),
            citation="\n".join([_BLIMP_CITATION, _PAPER_CITATION]),
            homepage="https://github.com/alexwarstadt/blimp",
            tie_credit=0.5,
            aliases=("BLiMP",),
        ),
        BenchmarkInfo(
            name="storycloze",
            title="StoryCloze (text)",
            description=(
                "StoryCloze (Mostafazadeh et al. 2016) in its text form: the 1,871 stories of the spring 2016 test "
                "set that spoken StoryCloze synthesizes; a text LM is correct when the whole story with its true "
                "ending scores higher than with the adversarial one (chance 0.5)."
            ),
            citation="\n".join([_STORYCLOZE_CITATION, _PAPER_CITATION]),
            homepage="https://cs.rochester.edu/nlp/rocstories/",
            tie_credit=0.0,
            aliases=("StoryCloze",),
        ),
    )
}

ALIASES: dict[str, str] = {alias: info.name for info in BENCHMARKS.values() for alias in info.aliases}


def canonical_name(name: str) -> str:
    """The registry name of benchmark ``name`` or one of its aliases (``sSC`` -> ``spoken_storycloze``)."""
    if name in BENCHMARKS:
        return name
    if name in ALIASES:
        return ALIASES[name]
    raise KeyError(f"unknown benchmark {name!r}; known: {sorted(BENCHMARKS)} (aliases {sorted(ALIASES)})")


def benchmark_info(name: str) -> BenchmarkInfo:
    """The card of benchmark ``name`` (or an alias); ``KeyError`` listing the known names otherwise."""
    return BENCHMARKS[canonical_name(name)]


def metrics_path(name: str) -> str:
    """Folder of the ``evaluate`` metric module of benchmark ``name``, to pass to ``evaluate.load``."""
    name = benchmark_info(name).name
    folder = Path(__file__).resolve().parent / "metrics" / name
    if not (folder / f"{name}.py").is_file():
        raise FileNotFoundError(f"metric module {folder / (name + '.py')} is missing from the installed package")
    return str(folder)


def load_metric(name: str, **kwargs):
    """``evaluate.load`` the metric module of benchmark ``name`` (imports ``evaluate`` only now)."""
    import evaluate

    return evaluate.load(metrics_path(name), keep_in_memory=True, **kwargs)
