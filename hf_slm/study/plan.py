"""The plan of a study: every run it trains (family, size, D, U, steps), its FLOPs, GPU-hours and disk.

A run is named ``<family>-<size>-<D>`` (``speech-demo-s-250k``, ``text-85M-dn20``) with ``-x<E>ep`` for a
multi-epoch run, and trains in ``<output>/runs/<name>``. ``--dry-run`` prints :func:`format_plan`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hf_slm.study.config import GridConfig, StudyConfig, StudyConfigError

SPEECH, TEXT, UNIGRAM = "speech", "text", "speech-unigram"
SECONDS_PER_STORY = 15.0  # measured: a five-sentence story in eSpeak NG at rate 175 (~44 words)
WORDS_PER_SECOND = 2.9
SAMPLE_RATE = 16000


@dataclass
class PlannedRun:
    """One training run of the study and what it costs."""

    name: str
    family: str
    size: str
    N: int
    N_total: int
    n_layers: int
    d_model: int
    tokens: int
    unique_tokens: int | None
    batch_size: int
    block_size: int
    n_units: int
    output_dir: str
    available_tokens: float | None = None  # unique training tokens the data hold (None: unknown)

    @property
    def epochs(self) -> float:
        """D / U, with U capped at what the data hold (the trainer repeats data beyond that)."""
        unique = self.tokens if self.unique_tokens is None else self.unique_tokens
        if self.available_tokens:
            unique = min(unique, self.available_tokens)
        return self.tokens / unique

    @property
    def steps(self) -> int:
        """Planned optimizer updates: D rounded up to whole batches of ``batch_size x block_size`` tokens."""
        return max(1, math.ceil(self.tokens / (self.batch_size * self.block_size)))

    @property
    def flops(self) -> float:
        """C = 6 N D (the paper's compute)."""
        return 6.0 * self.N * self.tokens

    @property
    def flops_attn(self) -> float:
        """6 N D + 12 L d T D: with the attention over the context (what MFU figures count)."""
        return self.flops + 12.0 * self.n_layers * self.d_model * self.block_size * self.tokens

    @property
    def checkpoint_bytes(self) -> int:
        """A resume checkpoint: fp32 weights plus AdamW's two fp32 moments."""
        return 12 * self.N_total

    @property
    def model_bytes(self) -> int:
        """The final model (fp32 safetensors)."""
        return 4 * self.N_total

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "family": self.family, "size": self.size, "N": self.N, "N_total": self.N_total,
                "D": self.tokens, "U": round(self.tokens / self.epochs), "epochs": self.epochs,
                "batch_size": self.batch_size, "block_size": self.block_size, "steps": self.steps,
                "flops": self.flops, "flops_attn": self.flops_attn, "output_dir": self.output_dir}


def families(config: StudyConfig) -> list[str]:
    """The families this study trains: speech, plus text and speech-unigram where configured."""
    out = [SPEECH]
    if config.text.source == "train":
        out.append(TEXT)
    if config.unigram.enabled:
        out.append(UNIGRAM)
    return out


def family_vocabulary(config: StudyConfig, family: str) -> int:
    """The K of a family's token ids (EOS = K, pad = K + 1, contract 2)."""
    if family == TEXT:
        return config.text.vocab_size or config.tokenizer.n_units
    if family == UNIGRAM:
        return config.unigram.vocab_size - 2
    return config.tokenizer.n_units


def _label(tokens: float) -> str:
    for unit, scale in (("B", 1e9), ("M", 1e6), ("k", 1e3)):
        if tokens >= scale:
            return f"{tokens / scale:g}{unit}"
    return f"{tokens:g}"


def _size_info(size: str, n_units: int) -> tuple[int, int, int, int, int]:
    from hf_slm.data.tokens import vocab_size
    from hf_slm.training.sizes import get_size

    try:
        s = get_size(size)
    except ValueError as err:
        raise StudyConfigError(f"grid.sizes: {err}") from None
    n_total = s.n_non_embedding + 2 * vocab_size(n_units) * s.d_model  # untied embedding + LM head
    return s.n_non_embedding, n_total, s.n_layers, s.d_model, s.batch_size


def _budgets(grid: GridConfig, N: int) -> list[tuple[int, str]]:
    if grid.tokens is not None:
        return [(int(round(t)), _label(t)) for t in grid.tokens]
    return [(int(round(r * N)), f"dn{r:g}") for r in grid.tokens_per_param or []]


def plan_runs(config: StudyConfig) -> list[PlannedRun]:
    """Every run of the study in training order: per family, sizes x budgets, then the multi-epoch runs."""
    runs: list[PlannedRun] = []
    root = Path(config.output) / "runs"
    for family in families(config):
        k = family_vocabulary(config, family)
        grid = config.family_grid(family)
        sizes = grid.sizes
        if family == UNIGRAM and config.unigram.sizes:
            sizes = config.unigram.sizes
        for size in sizes:
            runs += [_run(config, family, size, k, tokens, None, label, root) for tokens, label in
                     _budgets(grid, _size_info(size, k)[0])]
        me = grid.multi_epoch
        if family == UNIGRAM:
            continue  # the paper trains no multi-epoch unigram runs (4.3)
        for size in me.sizes:
            N = _size_info(size, k)[0]
            tokens = int(round(me.tokens if me.tokens is not None else me.tokens_per_param * N))
            label = _label(me.tokens) if me.tokens is not None else f"dn{me.tokens_per_param:g}"
            for epochs in me.epochs:
                unique = int(math.ceil(tokens / epochs))
                runs.append(_run(config, family, size, k, tokens, unique, f"{label}-x{epochs:g}ep", root))
    names = [r.name for r in runs]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise StudyConfigError(f"grid: run names repeat ({duplicates}); repeated sizes or budgets?")
    return runs


def run_settings(config: StudyConfig, family: str, size: str) -> dict:
    """The ``TrainConfig`` keys of a run: the study's ``training``, then the text family's ``text.training``,
    then the size's ``size_overrides``."""
    family_keys = config.text.training if family == TEXT else {}
    return {**config.training, **family_keys, **config.size_overrides.get(size, {})}


def _run(config: StudyConfig, family: str, size: str, k: int, tokens: int, unique: int | None, label: str,
         root: Path) -> PlannedRun:
    N, n_total, n_layers, d_model, size_batch = _size_info(size, k)
    settings = run_settings(config, family, size)
    batch = int(settings.get("batch_size") or size_batch)
    block = int(settings.get("block_size") or 2050)
    name = f"{family}-{size}-{label}"
    available = unique_unit_tokens(config) if family == SPEECH else None
    return PlannedRun(name=name, family=family, size=size, N=N, N_total=n_total, n_layers=n_layers,
                      d_model=d_model, tokens=tokens, unique_tokens=unique, batch_size=batch, block_size=block,
                      n_units=k, output_dir=str(root / name), available_tokens=available)


# -- estimates -------------------------------------------------------------------------------------------------
def audio_seconds(config: StudyConfig) -> float:
    """Seconds of speech a ``tts`` study synthesises (stories and benchmark candidates)."""
    if config.speech.source != "tts":
        return 0.0
    stories = config.speech.stories + config.speech.test_stories
    cloze = sum(2 for name in config.benchmarks.names if name != "sblimp") * config.benchmarks.items
    sentences = 2 * config.benchmarks.items if "sblimp" in config.benchmarks.names else 0
    story = SECONDS_PER_STORY * 175 / config.speech.rate
    return (stories + cloze) * story + sentences * story / 5


def unique_unit_tokens(config: StudyConfig) -> float:
    """Training units the data hold: given (``speech.tokens``) or estimated from the stories' duration."""
    if config.speech.tokens:
        return float(config.speech.tokens)
    rate = float(config.tokenizer.encoder.get("frame_rate", 25))
    kept = 0.77 if config.tokenizer.dedup else 1.0  # measured share of frames kept by dedup at 12.5 Hz
    return config.speech.stories * SECONDS_PER_STORY * 175 / config.speech.rate * rate * kept


def estimate(config: StudyConfig, runs: list[PlannedRun]) -> dict[str, Any]:
    """Totals of the plan: runs, FLOPs, GPU-hours at the stated MFU, disk for audio, units and checkpoints."""
    sustained = config.execution.mfu * config.execution.peak_flops
    by_family: dict[str, dict[str, float]] = {}
    for run in runs:
        fam = by_family.setdefault(run.family, {"runs": 0, "flops": 0.0, "flops_attn": 0.0, "gpu_hours": 0.0,
                                                "steps": 0})
        fam["runs"] += 1
        fam["flops"] += run.flops
        fam["flops_attn"] += run.flops_attn
        fam["gpu_hours"] += run.flops_attn / sustained / 3600
        fam["steps"] += run.steps
    audio = audio_seconds(config) * SAMPLE_RATE * 2
    units = unique_unit_tokens(config) * 2 * (2 if UNIGRAM in by_family else 1)  # uint16 per unit
    return {
        "runs": len(runs),
        "flops": sum(r.flops for r in runs),
        "flops_attn": sum(r.flops_attn for r in runs),
        "gpu_hours": sum(f["gpu_hours"] for f in by_family.values()),
        "mfu": config.execution.mfu, "peak_flops": config.execution.peak_flops, "gpu": config.execution.gpu,
        "families": by_family,
        "disk": {"audio": audio, "units": units, "models": sum(r.model_bytes for r in runs),
                 "checkpoint_peak": max((r.checkpoint_bytes for r in runs), default=0)},
        "unique_tokens": unique_unit_tokens(config),
    }


def _bytes(n: float) -> str:
    for unit in ("TB", "GB", "MB", "kB"):
        scale = {"TB": 1e12, "GB": 1e9, "MB": 1e6, "kB": 1e3}[unit]
        if n >= scale:
            return f"{n / scale:.3g} {unit}"
    return f"{n:.0f} B"


def format_plan(config: StudyConfig, runs: list[PlannedRun], states: dict[str, str] | None = None) -> str:
    """The dry run: one line per run, then totals per family and the disk the study needs."""
    states = states or {}
    head = ("run", "family", "size", "N", "D", "U", "epochs", "batch", "steps", "FLOPs (6ND)", "GPU-h", "state")
    sustained = config.execution.mfu * config.execution.peak_flops
    rows = [head]
    for r in runs:
        rows.append((r.name, r.family, r.size, f"{r.N:,}", f"{r.tokens:,}", f"{round(r.tokens / r.epochs):,}",
                     f"{r.epochs:.3g}", str(r.batch_size), f"{r.steps:,}", f"{r.flops:.3g}",
                     f"{r.flops_attn / sustained / 3600:.3g}", states.get(r.name, "todo")))
    widths = [max(len(row[i]) for row in rows) for i in range(len(head))]
    lines = [f"Study {config.name!r}: {len(runs)} runs -> {config.output}", ""]
    lines += ["  ".join(c.ljust(w) if i in (0, 1, 2, 11) else c.rjust(w) for i, (c, w) in
                        enumerate(zip(row, widths, strict=True))).rstrip() for row in rows]
    est = estimate(config, runs)
    lines += ["", f"GPU-hours at {config.execution.mfu:.0%} MFU of {config.execution.peak_flops / 1e12:g} TFLOP/s "
                  f"({config.execution.gpu}, FLOPs with attention):"]
    for family, fam in est["families"].items():
        lines.append(f"  {family:<15} {int(fam['runs']):>4} runs  {fam['steps']:>12,.0f} steps  "
                     f"{fam['flops']:.3g} FLOPs (6ND)  {fam['gpu_hours']:,.1f} GPU-h")
    lines.append(f"  {'total':<15} {est['runs']:>4} runs  {'':>12}        {est['flops']:.3g} FLOPs (6ND)  "
                 f"{est['gpu_hours']:,.1f} GPU-h")
    disk = est["disk"]
    lines += ["", "Disk:"]
    if disk["audio"]:
        lines.append(f"  synthesized audio (16 kHz WAV)     {_bytes(disk['audio'])}")
    lines.append(f"  unit datasets (~{est['unique_tokens']:.3g} training units, uint16)  {_bytes(disk['units'])}")
    lines.append(f"  final models (fp32, all runs)      {_bytes(disk['models'])}")
    lines.append(f"  largest resume checkpoint          {_bytes(disk['checkpoint_peak'])} (one per running run; "
                 "removed when the run finishes)")
    return "\n".join(lines)
