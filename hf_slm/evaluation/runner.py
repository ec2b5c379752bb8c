"""``hf-slm eval``: score a model (a run folder, a model folder or a Hub id) on benchmark datasets, write one
results JSON and, for a run folder, merge the results into its ``run.json`` and model card.

The model is any ``AutoModelForCausalLM``: a unit LM (ours, or converted with ``hf-slm convert``; a model
trained on unigram-compressed units keeps its tokenizer in its folder) for speech benchmarks, a text LM with its
``AutoTokenizer`` for text benchmarks. Several processes (``accelerate launch recipes/eval.py``) split the
candidates between them; the main process writes the results.
"""

from __future__ import annotations

import contextlib
import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import datasets
import torch

from hf_slm.evaluation.benchmarks import BenchmarkError, evaluate_benchmark, modality
from hf_slm.evaluation.loading import LoadedBenchmark, load_benchmark, sha256_file
from hf_slm.evaluation.loss import NAME as LOSS_NAME
from hf_slm.evaluation.loss import evaluate_test_loss
from hf_slm.evaluation.presets import get_preset
from hf_slm.evaluation.registry import canonical_name
from hf_slm.evaluation.token_ids import UnitVocabulary, VocabularyError, model_vocabulary

FORMAT_VERSION = 1
RUN_RECORD = "run.json"


@dataclass
class ModelSource:
    """Where the weights are and what they are: a local folder, the run around it, hashes."""

    source: str
    folder: Path
    run_dir: Path | None = None
    revision: str | None = None
    files_sha256: dict[str, str] = field(default_factory=dict)


def model_hashes(folder: Path) -> dict[str, str]:
    """SHA-256 of the files that define the weights: ``config.json``, safetensors shards and their index."""
    files = [folder / "config.json", *sorted(folder.glob("*.safetensors")), folder / "model.safetensors.index.json",
             *sorted(folder.glob("pytorch_model*.bin"))]
    return {f.name: sha256_file(f) for f in files if f.is_file()}


def resolve_model(model: str | Path, revision: str | None = None) -> ModelSource:
    """A run folder (``run.json`` + ``model/``), a model folder, or a Hub id (downloaded with
    ``snapshot_download``; its commit is the revision)."""
    path = Path(model)
    if path.is_dir():
        if (path / RUN_RECORD).is_file():
            folder = path / "model"
            if not (folder / "config.json").is_file():
                raise FileNotFoundError(f"{path}: a run folder without model/config.json (did training finish?)")
            return ModelSource(str(model), folder, run_dir=path, files_sha256=model_hashes(folder))
        if not (path / "config.json").is_file():
            raise FileNotFoundError(f"{path}: no config.json; expected a model folder or a run folder (run.json + "
                                    "model/)")
        return ModelSource(str(model), path, files_sha256=model_hashes(path))
    from hf_slm.data.unit_dataset import looks_like_hub_id

    if not looks_like_hub_id(model):
        raise FileNotFoundError(f"model {str(model)!r}: no such folder, and not a Hub id (owner/name)")
    from huggingface_hub import snapshot_download

    folder = Path(snapshot_download(str(model), revision=revision))
    return ModelSource(str(model), folder, revision=folder.name, files_sha256=model_hashes(folder))


def _device(device: str | torch.device | None, state: Any) -> torch.device:
    if device is not None:
        return torch.device(device)
    if state is not None:
        return state.device
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def _check_units(name: str, bench: LoadedBenchmark, vocab: UnitVocabulary) -> None:
    if bench.n_units is not None and bench.n_units != vocab.n_units:
        raise VocabularyError(
            f"benchmark {name!r} ({bench.source}): its units come from a tokenizer with K={bench.n_units} "
            f"({bench.tokenizer}), the model reads K={vocab.n_units}; encode the benchmark with the model's speech "
            "tokenizer"
        )


def evaluate_model(
    model: str | Path,
    benchmarks: Mapping[str, str | Path | datasets.Dataset],
    scoring: str = "paper",
    output: str | Path | None = None,
    n_units: int | None = None,
    tokenizer: str | None = None,
    split: str | None = None,
    revision: str | None = None,
    batch_size: int = 256,
    max_tokens: int | None = 32768,
    device: str | torch.device | None = None,
    update_run: bool = True,
    repo_id: str | None = None,
    use_evaluate: bool = False,
    state: Any = None,
    progress: bool = True,
) -> dict[str, Any]:
    """Score ``model`` on ``{name: dataset or path}`` and return the results document (also written to ``output``).

    ``name`` is a benchmark of ``hf_slm.evaluation.BENCHMARKS`` (or an alias: ``sSC``, ``tSC``...) or
    ``test_loss``. For a run folder the paired-benchmark results are merged into ``run.json``'s ``metrics`` (the
    test loss into ``stats["evaluation"]``) and its model card ``model/README.md`` is rendered again with the
    results in its ``model-index``, unless ``update_run`` is false. ``state`` (an ``accelerate.PartialState``)
    splits the scoring over processes; only the main process writes files.
    """
    with _library_progress_bars(progress):
        return _evaluate_model(model, benchmarks, scoring, output, n_units, tokenizer, split, revision, batch_size,
                               max_tokens, device, update_run, repo_id, use_evaluate, state, progress)


@contextlib.contextmanager
def _library_progress_bars(enabled: bool):
    """Silence the loading bars of datasets and transformers when progress is off (restored afterwards)."""
    from datasets.utils import logging as ds_logging
    from transformers.utils import logging as tf_logging

    was_ds, was_tf = ds_logging.is_progress_bar_enabled(), tf_logging.is_progress_bar_enabled()
    if not enabled:
        ds_logging.disable_progress_bar()
        tf_logging.disable_progress_bar()
    try:
        yield
    finally:
        if was_ds:
            ds_logging.enable_progress_bar()
        if was_tf:
            tf_logging.enable_progress_bar()


def _evaluate_model(model, benchmarks, scoring, output, n_units, tokenizer, split, revision, batch_size, max_tokens,
                    device, update_run, repo_id, use_evaluate, state, progress) -> dict[str, Any]:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from hf_slm.training.record import code_version

    preset = get_preset(scoring)
    if not benchmarks:
        raise ValueError("no benchmark to score; pass at least one NAME=PATH")
    names: dict[str, str] = {}
    for name in benchmarks:
        try:
            names[name] = LOSS_NAME if name == LOSS_NAME else canonical_name(name)
        except KeyError as err:
            raise ValueError(f"{err.args[0]}, or {LOSS_NAME!r}") from None
    src = resolve_model(model, revision=revision)
    loaded = {names[k]: load_benchmark(v, split=split) for k, v in benchmarks.items()}
    kinds = {name: ("units" if name == LOSS_NAME else modality(b.dataset, name)) for name, b in loaded.items()}

    lm = AutoModelForCausalLM.from_pretrained(str(src.folder), dtype=torch.float32)
    dev = _device(device, state)
    lm.to(dev).eval()
    vocab = text_tokenizer = None
    if "units" in kinds.values():
        vocab = model_vocabulary(lm, src.folder, n_units=n_units)
        for name, bench in loaded.items():
            if kinds[name] == "units":
                _check_units(name, bench, vocab)
    if "text" in kinds.values():
        text_tokenizer = AutoTokenizer.from_pretrained(tokenizer or str(src.folder))

    is_main = state is None or state.is_main_process
    show = progress and is_main
    results: dict[str, dict] = {}
    for name, bench in loaded.items():
        options = dict(batch_size=batch_size, device=dev, max_tokens=max_tokens, state=state, progress=show)
        if name == LOSS_NAME:
            results[name] = evaluate_test_loss(lm, bench.dataset, vocab, preset, **options)
        else:
            results[name] = evaluate_benchmark(lm, bench.dataset, None, name, scoring=preset, vocab=vocab,
                                               tokenizer=text_tokenizer, use_evaluate=use_evaluate, **options)
        if show:
            print(_summary_line(name, results[name]))

    document = {
        "format_version": FORMAT_VERSION,
        "model": {"source": src.source, "folder": str(src.folder), "revision": src.revision,
                  "files_sha256": src.files_sha256, "class": type(lm).__name__,
                  "run": str(src.run_dir) if src.run_dir else None},
        "tokenizer": {"units": vocab.describe() if vocab else None,
                      "text": getattr(text_tokenizer, "name_or_path", None) if text_tokenizer else None},
        "scoring": {**preset.to_dict(), "description": preset.description},
        "benchmarks": {name: b.provenance() for name, b in loaded.items()},
        "results": results,
        "device": str(dev),
        "precision": "bf16 autocast" if dev.type == "cuda" else "fp32",
        "batch_size": batch_size,
        "max_tokens": max_tokens,
        "processes": 1 if state is None else state.num_processes,
        "code_version": code_version(),
    }
    if is_main:
        if output is not None:
            out = Path(output)
            out.parent.mkdir(parents=True, exist_ok=True)
            tmp = out.with_name(out.name + ".tmp")
            tmp.write_text(json.dumps(document, indent=2, allow_nan=False) + "\n")
            tmp.replace(out)
        if src.run_dir is not None and update_run:
            merge_into_run(src.run_dir, document, repo_id=repo_id)
    return document


def _summary_line(name: str, result: dict) -> str:
    if "accuracy" in result:
        return (f"{name}: accuracy {result['accuracy']:.4f} (95% CI {result['ci_low']:.4f}-{result['ci_high']:.4f}, "
                f"n={result['n']}, {result['scoring']} scoring)")
    return f"{name}: loss {result['loss']:.4f} nats/token (n={result['n']}, {result['scoring']} scoring)"


def merge_into_run(run_dir: str | Path, document: dict[str, Any], repo_id: str | None = None) -> Path:
    """Merge a results document into ``run_dir/run.json`` (``metrics``; the test loss and provenance under
    ``stats["evaluation"]``) and render ``run_dir/model/README.md`` with the results in its ``model-index``."""
    from hf_slm.training.hub import render_model_card
    from hf_slm.training.record import RunRecord

    run_dir = Path(run_dir)
    record = RunRecord.load(run_dir / RUN_RECORD)
    evaluation = record.stats.setdefault("evaluation", {})
    for name, result in document["results"].items():
        provenance = {"benchmark": document["benchmarks"][name], "model_files_sha256": document["model"]["files_sha256"],
                      "code_version": document["code_version"]}
        if "accuracy" in result:
            if not all(math.isfinite(result[k]) for k in ("accuracy", "ci_low", "ci_high")):
                raise BenchmarkError(f"benchmark {name!r}: non-finite accuracy {result['accuracy']}")
            record.metrics[name] = {**result, "provenance": provenance}
        else:
            evaluation[name] = {**result, "provenance": provenance}
    if not evaluation:
        record.stats.pop("evaluation")
    record.save(run_dir)
    card = render_model_card(record, repo_id or record.run)
    (run_dir / "model" / "README.md").write_text(card)
    return run_dir / RUN_RECORD
