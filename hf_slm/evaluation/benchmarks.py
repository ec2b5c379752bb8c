"""Evaluate a unit LM on paired-choice benchmark datasets (sBLIMP, spoken / topic StoryCloze).

A benchmark dataset has one row per candidate utterance: ``id``, ``item_id`` (shared by the two candidates
of an item), ``label`` (1 = correct candidate, 0 = negative), ``units`` (list<uint16>) and, optionally,
``prompt_units`` (context units scored as prefix; empty when the candidate is one whole utterance).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import datasets
import numpy as np
import torch
from tqdm.auto import tqdm

from hf_slm.evaluation.registry import benchmark_info, load_metric
from hf_slm.evaluation.rules import apply_rule, compare
from hf_slm.evaluation.scoring import score_units
from hf_slm.evaluation.stats import accuracy_summary

REQUIRED_COLUMNS = ("id", "item_id", "label", "units")


class BenchmarkError(ValueError):
    """A benchmark dataset is malformed (missing columns, items without exactly one positive and negative)."""


@dataclass(frozen=True)
class Pairs:
    """Row indices of the positive and negative candidate of each item, in first-appearance order."""

    item_ids: list[str]
    positive: np.ndarray
    negative: np.ndarray


def pair_rows(item_ids: list[str], labels: list[int], name: str) -> Pairs:
    """Pair the rows of benchmark ``name`` by item; ``BenchmarkError`` naming any malformed item."""
    rows: dict[str, dict[int, list[int]]] = {}
    for i, (item, label) in enumerate(zip(item_ids, labels, strict=True)):
        if label not in (0, 1):
            raise BenchmarkError(f"benchmark {name!r}: row {i} (item {item!r}) has label {label!r}; expected 0 or 1")
        rows.setdefault(item, {0: [], 1: []})[label].append(i)
    for item, by_label in rows.items():
        if len(by_label[1]) != 1 or len(by_label[0]) != 1:
            raise BenchmarkError(
                f"benchmark {name!r}: item {item!r} has {len(by_label[1])} positive and {len(by_label[0])} negative "
                "candidates; expected exactly one of each"
            )
    return Pairs(
        item_ids=list(rows),
        positive=np.array([r[1][0] for r in rows.values()], dtype=np.int64),
        negative=np.array([r[0][0] for r in rows.values()], dtype=np.int64),
    )


def benchmark_scores(
    model: torch.nn.Module,
    ds: datasets.Dataset,
    n_units: int,
    name: str,
    rule: str = "sum",
    batch_size: int = 16,
    device: str | torch.device | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Scores (under ``rule``) of the positive and negative candidate of each item of benchmark ``ds``."""
    missing = [c for c in REQUIRED_COLUMNS if c not in ds.column_names]
    if missing:
        raise BenchmarkError(f"benchmark {name!r}: missing column(s) {missing}; have {ds.column_names}")
    if len(ds) == 0:
        raise BenchmarkError(f"benchmark {name!r}: the dataset is empty")
    has_prompt = "prompt_units" in ds.column_names
    cols = ds.select_columns([*REQUIRED_COLUMNS, *(["prompt_units"] if has_prompt else [])]).to_dict()
    pairs = pair_rows([str(i) for i in cols["item_id"]], [int(v) for v in cols["label"]], name)
    try:
        scores = score_units(
            model, cols["units"], n_units, cols["prompt_units"] if has_prompt else None,
            batch_size=batch_size, device=device,
        )
    except ValueError as err:
        raise BenchmarkError(f"benchmark {name!r}: {err}") from err
    values = apply_rule(scores, rule)
    return values[pairs.positive], values[pairs.negative]


def evaluate_benchmark(
    model: torch.nn.Module,
    ds: datasets.Dataset,
    n_units: int,
    name: str,
    rule: str = "sum",
    batch_size: int = 16,
    device: str | torch.device | None = None,
    use_evaluate: bool = True,
    metric=None,
) -> dict:
    """``{"accuracy", "n", "ci_low", "ci_high", "rule"}`` of a unit LM on benchmark ``name`` (contract 3).

    The metric is computed by the ``evaluate`` module of ``name`` (``metric`` if given, else loaded from
    ``metrics_path(name)``), or directly by ``hf_slm.evaluation.stats`` when ``use_evaluate`` is false;
    both give the same numbers.
    """
    benchmark_info(name)
    pos, neg = benchmark_scores(model, ds, n_units, name, rule=rule, batch_size=batch_size, device=device)
    if not use_evaluate:
        return {**accuracy_summary(compare(pos, neg)), "rule": rule}
    metric = metric if metric is not None else load_metric(name)
    result = metric.compute(positive_scores=pos.tolist(), negative_scores=neg.tolist(), rule=rule)
    return {key: result[key] for key in ("accuracy", "n", "ci_low", "ci_high", "rule")}


def evaluate_all(
    model: torch.nn.Module,
    benchmarks: Mapping[str, datasets.Dataset],
    n_units: int,
    rule: str = "sum",
    batch_size: int = 16,
    device: str | torch.device | None = None,
    use_evaluate: bool = True,
    progress: bool = True,
) -> dict[str, dict]:
    """Evaluate on every ``{name: dataset}`` benchmark: the run record's ``metrics`` field (contract 3)."""
    results = {}
    bar = tqdm(benchmarks.items(), total=len(benchmarks), desc="benchmarks", unit="benchmark", disable=not progress)
    for name, ds in bar:
        bar.set_postfix_str(name)
        results[name] = evaluate_benchmark(
            model, ds, n_units, name, rule=rule, batch_size=batch_size, device=device, use_evaluate=use_evaluate
        )
    return results
