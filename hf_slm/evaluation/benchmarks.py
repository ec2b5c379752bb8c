"""Evaluate a causal LM on paired-choice benchmark datasets (sBLIMP, sWUGGY, spoken / topic StoryCloze, SALMon,
and the text forms BLiMP / StoryCloze / topic StoryCloze).

A benchmark dataset has one row per candidate: ``id``, ``item_id`` (shared by the candidates of an item),
``label`` (1 = the correct candidate, 0 = a negative; exactly one positive and at least one negative per item)
and either ``units`` (list of unit ids: a speech benchmark) or ``text`` (a text benchmark). Optional columns:
``prompt_units`` / ``prompt`` (context split off the candidate; the ``paper`` preset joins it back),
``phenomenon`` and ``voice`` (strings) and ``pair_id`` (the items that differ only by voice share it).
An item with several negatives is decided against its best-scoring negative, as in the authors' release.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import datasets
import numpy as np
import torch
from tqdm.auto import tqdm

from hf_slm.evaluation.decisions import decide, summarize_decisions
from hf_slm.evaluation.presets import ScoringPreset, get_preset
from hf_slm.evaluation.registry import benchmark_info, load_metric
from hf_slm.evaluation.rules import Score
from hf_slm.evaluation.scoring import encode_text, sequence_logprobs, start_ids
from hf_slm.evaluation.token_ids import UnitVocabulary, VocabularyError, plain_vocabulary

REQUIRED_COLUMNS = ("id", "item_id", "label")
META_COLUMNS = ("phenomenon", "voice", "pair_id")


class BenchmarkError(ValueError):
    """A benchmark dataset is malformed (missing columns, items without exactly one positive, units that do not fit
    the model); the message names the benchmark and the item."""


@dataclass(frozen=True)
class Pairs:
    """Rows of each item, in first-appearance order: its positive and its negatives."""

    item_ids: list[str]
    positive: np.ndarray
    negatives: list[np.ndarray] = field(default_factory=list)

    @property
    def negative(self) -> np.ndarray:
        """The first negative of each item (the only one in two-choice benchmarks)."""
        return np.array([n[0] for n in self.negatives], dtype=np.int64)


def pair_rows(item_ids: list[str], labels: list[int], name: str) -> Pairs:
    """Group the rows of benchmark ``name`` by item; ``BenchmarkError`` naming any malformed item."""
    rows: dict[str, dict[int, list[int]]] = {}
    for i, (item, label) in enumerate(zip(item_ids, labels, strict=True)):
        if label not in (0, 1):
            raise BenchmarkError(f"benchmark {name!r}: row {i} (item {item!r}) has label {label!r}; expected 0 or 1")
        rows.setdefault(item, {0: [], 1: []})[label].append(i)
    for item, by_label in rows.items():
        if len(by_label[1]) != 1 or not by_label[0]:
            raise BenchmarkError(
                f"benchmark {name!r}: item {item!r} has {len(by_label[1])} positive and {len(by_label[0])} negative "
                "candidates; expected exactly one positive and at least one negative"
            )
    return Pairs(
        item_ids=list(rows),
        positive=np.array([r[1][0] for r in rows.values()], dtype=np.int64),
        negatives=[np.array(r[0], dtype=np.int64) for r in rows.values()],
    )


def modality(ds: datasets.Dataset, name: str = "benchmark") -> str:
    """``"units"`` for a speech benchmark (a ``units`` column), ``"text"`` for a text one (a ``text`` column and
    no ``units``)."""
    if "units" in ds.column_names:
        return "units"
    if "text" in ds.column_names:
        return "text"
    raise BenchmarkError(f"benchmark {name!r}: neither a 'units' nor a 'text' column; have {ds.column_names}")


def check_columns(ds: datasets.Dataset, name: str) -> None:
    missing = [c for c in REQUIRED_COLUMNS if c not in ds.column_names]
    if missing:
        raise BenchmarkError(f"benchmark {name!r}: missing column(s) {missing}; have {ds.column_names}")
    if len(ds) == 0:
        raise BenchmarkError(f"benchmark {name!r}: the dataset is empty")


def _join_text(prompt: str, text: str) -> str:
    """``prompt`` and its continuation as one text, with a space between them unless one is already there."""
    if prompt and text and not prompt[-1].isspace() and not text[0].isspace():
        return f"{prompt} {text}"
    return prompt + text


def _continuation(prompt: str, text: str) -> str:
    """A continuation as scored after its prompt: the separating space belongs to it."""
    if prompt and text and not prompt[-1].isspace() and not text[0].isspace():
        return " " + text
    return text


def candidate_scores(
    model: torch.nn.Module,
    ds: datasets.Dataset,
    name: str,
    preset: ScoringPreset,
    vocab: UnitVocabulary | None = None,
    tokenizer: Any = None,
    batch_size: int = 16,
    device: str | torch.device | None = None,
    max_tokens: int | None = None,
    state: Any = None,
    progress: bool = False,
) -> tuple[list[Score], dict[str, list]]:
    """Summed log-probability and scored-token count of every candidate of ``ds`` under ``preset``, and the
    dataset's columns (``id``, ``item_id``, ``label`` and whichever of the optional ones it has)."""
    check_columns(ds, name)
    kind = modality(ds, name)
    content = ["units", "prompt_units"] if kind == "units" else ["text", "prompt"]
    wanted = [*REQUIRED_COLUMNS, *content, *META_COLUMNS]
    cols = ds.select_columns([c for c in wanted if c in ds.column_names]).to_dict()
    names = [f"benchmark {name!r}: candidate {cid!r} (item {item!r})" for cid, item in zip(cols["id"], cols["item_id"],
                                                                                           strict=True)]
    if kind == "units":
        if vocab is None:
            raise BenchmarkError(f"benchmark {name!r} holds units: pass the model's unit vocabulary (n_units)")
        prompts = cols.get("prompt_units") or [[] for _ in names]
        try:
            units = [vocab.ids(u, n) for u, n in zip(cols["units"], names, strict=True)]
            prompt_ids = [vocab.ids(p, n) if p else [] for p, n in zip(prompts, names, strict=True)]
        except VocabularyError as err:
            raise BenchmarkError(str(err)) from err
        if preset.whole_utterance:
            sequences = [p + u for p, u in zip(prompt_ids, units, strict=True)]
            contexts = [[vocab.eos] for _ in sequences]
        else:
            sequences, contexts = units, [[vocab.eos, *p] for p in prompt_ids]
    else:
        if tokenizer is None:
            raise BenchmarkError(f"benchmark {name!r} holds text: pass the model's tokenizer")
        start = start_ids(tokenizer)
        prompts = cols.get("prompt") or ["" for _ in names]
        texts = [t or "" for t in cols["text"]]
        if preset.whole_utterance:
            sequences = [encode_text(tokenizer, _join_text(p or "", t)) for p, t in zip(prompts, texts, strict=True)]
            contexts = [list(start) for _ in sequences]
        else:
            sequences = [encode_text(tokenizer, _continuation(p or "", t)) for p, t in zip(prompts, texts, strict=True)]
            contexts = [start + (encode_text(tokenizer, p) if p else []) for p in prompts]
    empty = [n for n, s in zip(names, sequences, strict=True) if not s]
    if empty:
        raise BenchmarkError(f"{empty[0]} has nothing to score (no units / tokens)")
    try:
        scores = sequence_logprobs(model, sequences, contexts, batch_size=batch_size, device=device,
                                   max_tokens=max_tokens, names=names, state=state, progress=progress)
    except ValueError as err:
        raise BenchmarkError(str(err)) from err
    return scores, cols


def item_values(values: np.ndarray, pairs: Pairs) -> tuple[np.ndarray, np.ndarray]:
    """Score of each item's positive and of its best (highest-scoring) negative."""
    return values[pairs.positive], np.array([values[n].max() for n in pairs.negatives], dtype=np.float64)


def benchmark_scores(
    model: torch.nn.Module,
    ds: datasets.Dataset,
    n_units: int | None,
    name: str,
    rule: str = "sum",
    batch_size: int = 16,
    device: str | torch.device | None = None,
    **kwargs,
) -> tuple[np.ndarray, np.ndarray]:
    """Scores of the positive and the best negative candidate of each item of benchmark ``ds`` under preset (or
    rule) ``rule``; ``kwargs`` as for :func:`candidate_scores`."""
    preset = get_preset(rule)
    vocab = kwargs.pop("vocab", None) or (plain_vocabulary(n_units) if n_units is not None else None)
    scores, cols = candidate_scores(model, ds, name, preset, vocab=vocab, batch_size=batch_size, device=device,
                                    **kwargs)
    pairs = pair_rows([str(i) for i in cols["item_id"]], [int(v) for v in cols["label"]], name)
    return item_values(preset.candidate_values(scores), pairs)


def _item_metadata(cols: dict[str, list], pairs: Pairs) -> tuple[list | None, list | None]:
    """Phenomenon and pair of each item (from its positive row), or None where the dataset has no such column."""
    pos = pairs.positive.tolist()
    phenomena = [cols["phenomenon"][i] for i in pos] if "phenomenon" in cols else None
    pair_ids = [cols["pair_id"][i] or item for i, item in zip(pos, pairs.item_ids, strict=True)] \
        if "pair_id" in cols else None
    return phenomena, pair_ids


def evaluate_benchmark(
    model: torch.nn.Module,
    ds: datasets.Dataset,
    n_units: int | None,
    name: str,
    scoring: str | ScoringPreset = "paper",
    batch_size: int = 16,
    device: str | torch.device | None = None,
    use_evaluate: bool = True,
    metric=None,
    rule: str | None = None,
    vocab: UnitVocabulary | None = None,
    tokenizer: Any = None,
    max_tokens: int | None = None,
    state: Any = None,
    progress: bool = False,
) -> dict:
    """Accuracy of an LM on benchmark ``name`` under a scoring preset (contract 3's metric, with breakdowns).

    Returns ``{"accuracy", "n", "ci_low", "ci_high", "rule", "scoring", "tie_credit", "pair_accuracy",
    "voice_pair_accuracy", "by_phenomenon", "n_pairs", "n_items"}``; ``rule`` and ``scoring`` both name the
    preset. Speech benchmarks need the model's unit vocabulary (``vocab``, or ``n_units`` for contract 2), text
    ones its ``tokenizer``. ``rule`` is the old name of ``scoring``. The numbers come from the ``evaluate``
    module of ``name`` (``metric`` if given, else loaded from ``metrics_path(name)``), or directly from
    ``hf_slm.evaluation.decisions`` when ``use_evaluate`` is false; both give the same numbers.
    """
    name = benchmark_info(name).name
    preset = get_preset(rule if rule is not None else scoring)
    if vocab is None and n_units is not None:
        vocab = plain_vocabulary(n_units)
    scores, cols = candidate_scores(model, ds, name, preset, vocab=vocab, tokenizer=tokenizer, batch_size=batch_size,
                                    device=device, max_tokens=max_tokens, state=state, progress=progress)
    if use_evaluate and metric is None:
        metric = load_metric(name)
    return summarize_scores(scores, cols, name, preset, metric=metric if use_evaluate else None)


def summarize_scores(scores: Sequence[Score], cols: dict[str, list], name: str, preset: ScoringPreset,
                     metric=None) -> dict:
    """:func:`evaluate_benchmark`'s result from the candidates' scores and columns (:func:`candidate_scores`):
    through the ``evaluate`` module ``metric`` when given, else ``hf_slm.evaluation.decisions`` (same numbers)."""
    pairs = pair_rows([str(i) for i in cols["item_id"]], [int(v) for v in cols["label"]], name)
    try:
        values = preset.candidate_values(scores)
    except ValueError as err:
        raise BenchmarkError(f"benchmark {name!r}: {err}") from err
    pos, neg = item_values(values, pairs)
    phenomena, pair_ids = _item_metadata(cols, pairs)
    tie_credit = preset.tie_credit(name)
    options = dict(tie_credit=tie_credit, aggregate=preset.aggregate, phenomena=phenomena, pair_ids=pair_ids)
    try:
        if metric is not None:
            result = dict(metric.compute(positive_scores=pos.tolist(), negative_scores=neg.tolist(), rule=preset.name,
                                         **options))
        else:
            result = summarize_decisions(decide(pos, neg, tie_credit), phenomena, pair_ids, preset.aggregate)
    except ValueError as err:
        raise BenchmarkError(f"benchmark {name!r}: {err}") from err
    return {**result, "rule": preset.name, "scoring": preset.name, "tie_credit": tie_credit,
            "mean_margin": float(np.mean(pos - neg))}


def evaluate_presets(
    model: torch.nn.Module,
    ds: datasets.Dataset,
    n_units: int | None,
    name: str,
    presets: Sequence[str],
    batch_size: int = 16,
    **kwargs,
) -> dict[str, dict]:
    """``{preset: evaluate_benchmark's result}`` for several presets, with one forward pass per candidate layout
    (presets that score whole utterances share theirs; without prompt columns every preset shares one);
    decisions come from ``hf_slm.evaluation.decisions``.
    ``kwargs`` as for :func:`candidate_scores` (``vocab``, ``tokenizer``, ``device``, ``max_tokens``...)."""
    name = benchmark_info(name).name
    if kwargs.get("vocab") is None and n_units is not None:
        kwargs["vocab"] = plain_vocabulary(n_units)
    has_prompt = any(c in ds.column_names for c in ("prompt_units", "prompt"))
    scored: dict[bool, tuple[list[Score], dict[str, list]]] = {}
    out = {}
    for preset in map(get_preset, presets):
        layout = preset.whole_utterance or not has_prompt  # without prompts both layouts score the same tokens
        if layout not in scored:
            scored[layout] = candidate_scores(model, ds, name, preset, batch_size=batch_size, **kwargs)
        out[preset.name] = summarize_scores(*scored[layout], name, preset)
    return out


def evaluate_all(
    model: torch.nn.Module,
    benchmarks: Mapping[str, datasets.Dataset],
    n_units: int | None,
    scoring: str | ScoringPreset = "paper",
    batch_size: int = 16,
    device: str | torch.device | None = None,
    use_evaluate: bool = True,
    progress: bool = True,
    rule: str | None = None,
    **kwargs,
) -> dict[str, dict]:
    """Evaluate on every ``{name: dataset}`` benchmark: the run record's ``metrics`` field (contract 3).

    ``rule`` is the old name of ``scoring``; ``kwargs`` as for :func:`evaluate_benchmark` (``vocab``,
    ``tokenizer``, ``max_tokens``, ``state``).
    """
    results = {}
    bar = tqdm(benchmarks.items(), total=len(benchmarks), desc="benchmarks", unit="benchmark", disable=not progress)
    for name, ds in bar:
        bar.set_postfix_str(name)
        results[benchmark_info(name).name] = evaluate_benchmark(
            model, ds, n_units, name, scoring=rule if rule is not None else scoring, batch_size=batch_size,
            device=device, use_evaluate=use_evaluate, **kwargs,
        )
    return results
