"""Sharing a trained model: a model card rendered from the run record, and the upload to the Hub."""

from __future__ import annotations

from pathlib import Path
from string import Template

from huggingface_hub import EvalResult, ModelCardData

from hf_slm.training.record import RECORD_FILE, RunRecord
from hf_slm.training.sizes import get_size

TEMPLATE = Path(__file__).resolve().parent / "templates" / "slm_model_card.md"  # package data: ships in the wheel


def render_model_card(record: RunRecord, repo_id: str, template: str | Path | None = None) -> str:
    """The model card (README.md) of a run: the template's ``$fields`` filled from ``record``."""
    path = Path(template) if template else TEMPLATE
    if not path.is_file():
        raise FileNotFoundError(f"model card template {path} not found (the default ships in hf_slm/training/templates/)")
    cfg, size = record.config, get_size(record.size)
    ids = [d["id"] if isinstance(d, dict) else str(d) for d in record.datasets]
    hub_ids = [i for i in ids if "/" in i and not Path(i).exists()]
    metrics = "\n".join(
        f"- {name}: {m['accuracy']:.3f} (95% CI {m['ci_low']:.3f}-{m['ci_high']:.3f}, n={m['n']})"
        for name, m in record.metrics.items()
    ) or "Not evaluated yet."
    tok = record.tokenizer if isinstance(record.tokenizer, dict) else {}
    unigram = tok.get("unigram")
    if unigram:
        pieces = unigram["pieces"]
        token_ids = (f"The speech units are compressed by a unigram tokenizer of {pieces} pieces (ids 0..{pieces - 1}), "
                     f"saved in this repository (`AutoTokenizer.from_pretrained`); EOS = {pieces} ends every "
                     f"utterance; pad = {pieces + 1}; vocabulary {pieces + 2}.")
    else:
        k = cfg.get("n_units")
        token_ids = (f"Units 0..K-1 keep their ids (K = {k}); EOS = K ends every utterance; pad = K+1; vocabulary "
                     "K+2.")
    values = {
        "run": record.run, "size": record.size, "n_layers": size.n_layers, "d_model": size.d_model,
        "n_heads": size.n_heads, "N": f"{record.N:,}", "N_total": f"{record.N_total:,}", "D": f"{record.D:,}",
        "U": f"{record.U:,}", "epochs": f"{record.epochs:.2f}", "flops": f"{record.flops:.3g}",
        "loss": "n/a" if record.loss is None else f"{record.loss:.4f}", "block_size": cfg.get("block_size"),
        "tokenizer": (f"{tok.get('id')} ({tok.get('revision')})" if tok else record.tokenizer) or "n/a",
        "token_ids": token_ids, "betas": cfg.get("betas"), "grad_clip": cfg.get("grad_clip"),
        "warmup": record.stats.get("warmup", "n/a"), "sampling": cfg.get("sampling", "sequential"),
        "n_units": cfg.get("n_units"), "repo_id": repo_id, "weight_decay": cfg.get("weight_decay"),
        "lr": cfg.get("lr"), "min_lr": cfg.get("min_lr"),
        "batch_size": cfg.get("batch_size") or size.release_batch_size,
        "mixed_precision": cfg.get("mixed_precision"), "datasets_text": ", ".join(ids) or "n/a",
        "card_data": card_data(record, hub_ids).to_yaml(), "metrics": metrics, "code_version": record.code_version,
    }
    return Template(path.read_text()).safe_substitute(values)


def card_data(record: RunRecord, datasets: list[str]) -> ModelCardData:
    """The card's YAML metadata; benchmark accuracies become its ``model-index`` (the Hub's results widget)."""
    results = [
        EvalResult(task_type="text-generation", task_name="Spoken language modeling", dataset_type=name,
                   dataset_name=name, metric_type="accuracy", metric_value=round(m["accuracy"], 4),
                   metric_name=f"accuracy ({m['rule']} log-likelihood, n={m['n']}, "
                               f"95% CI {m['ci_low']:.3f}-{m['ci_high']:.3f})")
        for name, m in record.metrics.items()
    ]
    return ModelCardData(
        library_name="transformers", pipeline_tag="text-generation", license="apache-2.0",
        tags=["speech", "speech-language-model", "spoken-language-modeling", "hf-slm"],
        datasets=datasets or None, model_name=record.run if results else None, eval_results=results or None,
    )


def push_to_hub(run_dir: str | Path, repo_id: str, private: bool = False, token: str | None = None) -> str:
    """Upload ``run_dir/model`` (safetensors + config, and the unigram tokenizer of a unigram run), ``run.json``
    and a model card to ``repo_id``."""
    from huggingface_hub import HfApi

    run_dir = Path(run_dir)
    record = RunRecord.load(run_dir / RECORD_FILE)
    model_dir = run_dir / "model"
    (model_dir / "README.md").write_text(render_model_card(record, repo_id))
    (model_dir / RECORD_FILE).write_text((run_dir / RECORD_FILE).read_text())
    api = HfApi(token=token)
    api.create_repo(repo_id, private=private, exist_ok=True)
    info = api.upload_folder(folder_path=str(model_dir), repo_id=repo_id, commit_message=f"hf_slm run {record.run}")
    return str(info)
