"""The paper's training grid as a list of runs: list it, train it here, or write it as a Slurm array.

The grid (3.3.2): every size x D/N in {2, 4, 8, 16, 32, 64, 128} (single epoch), plus multi-epoch runs with
{2, 4, 8, 10} epochs per size. The paper does not give the budgets of its multi-epoch runs; ours keep the total
budget fixed at ``multi_epoch_ratio`` tokens per parameter (default 20, Chinchilla's compute-optimal ratio),
D = 20 N, and repeat a seeded subset of U = D / epochs unique tokens (config ``epochs=E``: the trainer draws
ceil(D / E) unique tokens). So each multi-epoch run costs the compute of a D/N = 20 run and differs from it
only in repetition, which is what the data-constrained law (eq. 7/8) needs to identify R*_D and R*_N.

Each run's config is its size's YAML (``<config_dir>/<size>.yaml``, or one ``base_config`` for every size)
plus the user's ``key=value`` overrides, then the grid's keys: ``size``, ``tokens_per_param`` (D/N),
``epochs`` (multi-epoch runs; no repetition key otherwise), ``output_dir = <root>/<name>`` and
``run_name = <name>`` with names ``<size>-dn<ratio>`` and ``<size>-dn<ratio>-x<epochs>ep``.

A run is *done* when ``output_dir/run.json`` holds a finished record of the same config
(``trainer.finished_record``); ``run_local`` skips it and ``write_slurm`` leaves it out of the array (the
array index maps over the runs still to do when the script is written; write it again to resubmit what is
left). A run whose folder holds a record of a different config is a *conflict*: the trainer would refuse
it, so both refuse to start and name it.
"""

from __future__ import annotations

import json
import math
import shlex
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hf_slm.training.config import ConfigError, TrainConfig
from hf_slm.training.record import RECORD_FILE, RecordError, RunRecord
from hf_slm.training.sizes import PAPER_SIZES, get_size

PAPER_RATIOS: tuple[float, ...] = (2, 4, 8, 16, 32, 64, 128)
PAPER_EPOCHS: tuple[float, ...] = (2, 4, 8, 10)
MULTI_EPOCH_RATIO: float = 20.0
DEFAULT_ROOT = "runs/sweep"

# Keys the grid sets itself; a user override of one of them would silently change or collapse the grid.
GRID_KEYS = ("size", "tokens", "tokens_per_param", "unique_tokens", "epochs", "output_dir", "run_name")

DONE, STARTED, TODO, CONFLICT = "done", "started", "todo", "conflict"


@dataclass
class SweepRun:
    """One run of a sweep: its name, size, the config keys the grid sets, and where it writes.

    ``overrides`` holds the grid's keys (``size``, ``tokens_per_param`` and, for multi-epoch runs,
    ``epochs``); ``extra_overrides`` the user's ``key=value`` strings shared by every run; ``base_config`` the
    YAML they apply to (None: ``TrainConfig`` defaults).
    """

    name: str
    size: str
    output_dir: str
    overrides: dict[str, Any] = field(default_factory=dict)
    base_config: str | None = None
    extra_overrides: tuple[str, ...] = ()

    @property
    def tokens_per_param(self) -> float:
        """D/N."""
        return float(self.overrides["tokens_per_param"])

    @property
    def epochs(self) -> float | None:
        """D/U for a multi-epoch run, None for a single-epoch one."""
        epochs = self.overrides.get("epochs")
        return None if epochs is None else float(epochs)

    @property
    def n_params(self) -> int:
        """N: the size's non-embedding parameters."""
        return get_size(self.size).n_non_embedding

    @property
    def tokens(self) -> int:
        """D requested, ``round(D/N x N)`` as the trainer computes it (it then rounds up to whole steps)."""
        return round(self.tokens_per_param * self.n_params)

    @property
    def unique_tokens(self) -> int:
        """U requested: ceil(D / epochs); D for a single-epoch run (the trainer caps it at what the data hold)."""
        return self.tokens if self.epochs is None else math.ceil(self.tokens / self.epochs)

    @property
    def record_path(self) -> Path:
        return Path(self.output_dir) / RECORD_FILE

    def config(self) -> TrainConfig:
        """The resolved config: base YAML, then the user's overrides, then the grid's keys (validated)."""
        base = TrainConfig.from_yaml(self.base_config, list(self.extra_overrides)).to_dict()
        for key in ("tokens", "tokens_per_param", "unique_tokens", "epochs"):
            base[key] = None  # the grid sets the budget; nothing of the base file's budget survives
        base.update(self.overrides, output_dir=self.output_dir, run_name=self.name)
        return TrainConfig.from_dict(base, where=f"sweep run {self.name}")

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready summary (what ``--list --json`` prints, state excluded)."""
        return {
            "name": self.name, "size": self.size, "N": self.n_params, "tokens_per_param": self.tokens_per_param,
            "epochs": self.epochs, "D": self.tokens, "U": self.unique_tokens, "output_dir": self.output_dir,
            "base_config": self.base_config, "overrides": dict(self.overrides),
            "extra_overrides": list(self.extra_overrides),
        }


# -- the grid --------------------------------------------------------------------------------------------------
def run_name(size: str, ratio: float, epochs: float | None = None) -> str:
    """``20M-dn2``, ``20M-dn0.5``, ``85M-dn20-x4ep``."""
    name = f"{size}-dn{float(ratio):g}"
    return name if epochs is None else f"{name}-x{float(epochs):g}ep"


def paper_grid(
    sizes: Iterable[str] | None = None,
    ratios: Iterable[float] | None = None,
    epochs: Iterable[float] | None = None,
    multi_epoch_ratio: float = MULTI_EPOCH_RATIO,
    root: str | Path = DEFAULT_ROOT,
    config_dir: str | Path | None = None,
    base_config: str | Path | None = None,
    overrides: Sequence[str] = (),
) -> list[SweepRun]:
    """The paper's grid: ``sizes`` x ``ratios`` single-epoch runs, then ``sizes`` x ``epochs`` multi-epoch runs.

    Defaults are the paper's: the five Table 1 sizes, D/N in ``PAPER_RATIOS``, epochs in ``PAPER_EPOCHS`` at
    ``multi_epoch_ratio`` tokens per parameter (D = ratio x N, U = D / epochs). Any size ``get_size`` knows and
    any positive ratios work (the tests use demo sizes); pass an empty ``ratios`` or ``epochs`` to leave that
    part out. The base config of a size is ``base_config`` if given, else ``<config_dir>/<size>.yaml`` (which
    must exist), else ``TrainConfig``'s defaults. ``overrides`` (``key=value``) go to every run; the grid's
    own keys (``GRID_KEYS``) are refused. Every run's config is resolved once here, so a bad override or a
    missing file fails now, naming the run.
    """
    sizes = list(PAPER_SIZES) if sizes is None else [str(s) for s in sizes]
    ratios = _unique_positive(PAPER_RATIOS if ratios is None else ratios, "ratio")
    epochs = _unique_positive(PAPER_EPOCHS if epochs is None else epochs, "epochs")
    if not multi_epoch_ratio > 0:
        raise ValueError(f"multi_epoch_ratio must be > 0, got {multi_epoch_ratio!r}")
    _check_overrides(overrides)
    for size in sizes:
        get_size(size)  # unknown size: ValueError naming the choices

    def make(size: str, ratio: float, n_epochs: float | None) -> SweepRun:
        name = run_name(size, ratio, n_epochs)
        grid: dict[str, Any] = {"size": size, "tokens_per_param": float(ratio)}
        if n_epochs is not None:
            grid["epochs"] = float(n_epochs)
        return SweepRun(name=name, size=size, output_dir=str(Path(root) / name), overrides=grid,
                        base_config=_base_config(size, config_dir, base_config), extra_overrides=tuple(overrides))

    runs = [make(size, ratio, None) for size in sizes for ratio in ratios]
    runs += [make(size, multi_epoch_ratio, e) for size in sizes for e in epochs]
    names = [run.name for run in runs]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise ValueError(f"run names are not unique: {duplicates} (repeated sizes?)")
    for run in runs:
        run.config()
    return runs


def _unique_positive(values: Iterable[float], what: str) -> list[float]:
    out: list[float] = []
    for value in values:
        value = float(value)
        if not value > 0 or not math.isfinite(value):
            raise ValueError(f"{what} must be a positive number, got {value!r}")
        if value not in out:
            out.append(value)
    return out


def _check_overrides(overrides: Sequence[str]) -> None:
    for item in overrides:
        key = item.partition("=")[0].strip().replace("-", "_")
        if key in GRID_KEYS:
            raise ConfigError(f"override {item!r}: the sweep sets {key!r} for each run itself "
                              f"(grid keys: {', '.join(GRID_KEYS)}); use the sweep's options instead")


def _base_config(size: str, config_dir: str | Path | None, base_config: str | Path | None) -> str | None:
    if base_config is not None:
        path = Path(base_config)
    elif config_dir is not None:
        path = Path(config_dir) / f"{size}.yaml"
    else:
        return None
    if not path.is_file():
        hint = "" if base_config is not None else " (give one config for every size with --config FILE)"
        raise FileNotFoundError(f"size {size}: no config file {path}{hint}")
    return str(path)


# -- state of a run --------------------------------------------------------------------------------------------
def run_state(run: SweepRun) -> str:
    """``done`` (finished record of this config), ``started`` (a checkpoint to resume), ``todo``, or
    ``conflict`` (``run.json`` of a different config, or an unreadable one)."""
    return _state_and_detail(run)[0]


def _state_and_detail(run: SweepRun) -> tuple[str, str]:
    from hf_slm.training.trainer import finished_record, latest_checkpoint

    try:
        record = finished_record(run.config())
    except (ConfigError, RecordError) as err:
        return CONFLICT, str(err)
    if record is not None:
        return DONE, ""
    if latest_checkpoint(run.output_dir) is not None:
        return STARTED, ""
    return TODO, ""


def pending(runs: Sequence[SweepRun]) -> list[SweepRun]:
    """The runs not finished yet, in order; raises ``ConfigError`` listing every conflicting run."""
    states = [(run, *_state_and_detail(run)) for run in runs]
    conflicts = [f"  {run.name}: {detail}" for run, state, detail in states if state == CONFLICT]
    if conflicts:
        raise ConfigError("runs whose output_dir holds another run:\n" + "\n".join(conflicts))
    return [run for run, state, _ in states if state != DONE]


# -- listing ---------------------------------------------------------------------------------------------------
def format_table(runs: Sequence[SweepRun], states: Sequence[str] | None = None) -> str:
    """A plain-text table: name, size, N, D/N, epochs, D, U, state, output_dir."""
    states = [run_state(run) for run in runs] if states is None else list(states)
    rows = [("name", "size", "N", "D/N", "epochs", "D", "U", "state", "output_dir")]
    for run, state in zip(runs, states, strict=True):
        rows.append((run.name, run.size, f"{run.n_params:,}", f"{run.tokens_per_param:g}",
                     f"{run.epochs or 1:g}", f"{run.tokens:,}", f"{run.unique_tokens:,}", state, run.output_dir))
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    right = {2, 3, 4, 5, 6}
    lines = [" ".join(cell.rjust(w) if i in right else cell.ljust(w) for i, (cell, w) in enumerate(zip(row, widths, strict=True)))
             for row in rows]
    done = sum(state == DONE for state in states)
    lines.append(f"{len(runs)} runs, {done} done, {len(runs) - done} to do")
    return "\n".join(line.rstrip() for line in lines)


def list_json(runs: Sequence[SweepRun]) -> str:
    """The runs as a JSON list (``SweepRun.to_dict`` plus ``state``)."""
    return json.dumps([{**run.to_dict(), "state": run_state(run)} for run in runs], indent=2)


# -- running here ----------------------------------------------------------------------------------------------
def run_local(
    runs: Sequence[SweepRun],
    progress: bool = True,
    runner: Callable[..., RunRecord] | None = None,
    log: Callable[[str], None] | None = print,
) -> list[RunRecord]:
    """Train the unfinished ``runs`` one after another in this process; return their records.

    ``runner(config, progress=...)`` defaults to ``hf_slm.training.run.run_training`` (so under
    ``accelerate launch`` every process walks the same list). Finished runs are skipped; conflicts raise
    before anything trains; an interrupted run resumes from its checkpoint.
    """
    if runner is None:
        from hf_slm.training.run import run_training as runner
    todo = pending(runs)
    if log:
        log(f"[sweep] {len(runs) - len(todo)} of {len(runs)} runs already done; training {len(todo)}")
    records = []
    for i, run in enumerate(todo, 1):
        if log:
            log(f"[sweep] {i}/{len(todo)} {run.name}: D/N={run.tokens_per_param:g} epochs={run.epochs or 1:g} "
                f"-> {run.output_dir}")
        record = runner(run.config(), progress=progress)
        if log:
            log(f"[sweep] {run.name}: finished={record.finished} D={record.D:,} loss={record.loss}")
        records.append(record)
    return records


# -- Slurm -----------------------------------------------------------------------------------------------------
def write_slurm(
    runs: Sequence[SweepRun],
    path: str | Path,
    configs_dir: str | Path | None = None,
    accelerate_args: str = "",
    sbatch: Sequence[str] = (),
    setup: Sequence[str] = (),
    job_name: str = "hf-slm-sweep",
    train_script: str | Path = "recipes/train.py",
    workdir: str | Path | None = None,
    array_limit: int | None = None,
    skip_finished: bool = True,
) -> list[SweepRun]:
    """Write a Slurm array script with one task per unfinished run; return the runs in array order.

    Each run's resolved config goes to ``<configs_dir>/<name>.yaml`` (default: ``configs/`` next to the
    script); task ``i`` runs ``accelerate launch <accelerate_args> <train_script> --config <config i>`` from
    ``workdir`` (default: the current folder, where relative dataset and output paths resolve).
    ``accelerate_args`` is inserted verbatim (shell variables such as ``$SLURM_NNODES`` expand in the job);
    ``sbatch`` items ``KEY=VALUE`` (or ``KEY``) become ``#SBATCH --KEY=VALUE`` lines; ``setup`` lines run
    before the launch (``module load ...``, ``source .venv/bin/activate``). ``array_limit`` caps concurrent
    tasks (``--array=0-n%limit``). Raises ``ValueError`` when no run is left to do.
    """
    todo = pending(runs) if skip_finished else list(runs)
    if not todo:
        raise ValueError("every run of the sweep is finished: no Slurm array to write")
    path = Path(path)
    configs_dir = Path(configs_dir) if configs_dir is not None else path.parent / "configs"
    configs_dir.mkdir(parents=True, exist_ok=True)
    config_paths = []
    for run in todo:
        config_path = configs_dir / f"{run.name}.yaml"
        run.config().to_yaml(config_path)
        config_paths.append(config_path.resolve())
    workdir = Path(workdir) if workdir is not None else Path.cwd()
    log_dir = path.parent.resolve() / "logs"
    log_dir.mkdir(parents=True, exist_ok=True)

    array = f"0-{len(todo) - 1}" + (f"%{array_limit}" if array_limit else "")
    lines = ["#!/bin/bash", f"#SBATCH --job-name={job_name}", f"#SBATCH --array={array}",
             f"#SBATCH --output={log_dir}/%x-%A_%a.out"]
    lines += [f"#SBATCH {_sbatch_option(item)}" for item in sbatch]
    lines += [
        "",
        f"# {len(todo)} runs of an hf-slm sweep (runs already finished when this was written are left out);",
        "# task i trains CONFIGS[i]. A rerun of a finished task returns at once; an interrupted one resumes.",
        "set -eo pipefail  # no -u: 'module load' and some activate scripts read unset variables",
        f"cd {shlex.quote(str(workdir.resolve()))}",
        *setup,
        "CONFIGS=(",
        *[f"  {shlex.quote(str(p))}  # {run.name}" for p, run in zip(config_paths, todo, strict=True)],
        ")",
        'CONFIG="${CONFIGS[${SLURM_ARRAY_TASK_ID:?submit with sbatch (an array task)}]}"',
        'echo "[sweep] task $SLURM_ARRAY_TASK_ID: $CONFIG on $(hostname)"',
        " ".join(part for part in ("accelerate launch", accelerate_args.strip(), shlex.quote(str(train_script)),
                                   '--config "$CONFIG" --no-progress') if part),
        "",
    ]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines))
    path.chmod(0o755)
    return todo


def _sbatch_option(item: str) -> str:
    key, sep, value = item.partition("=")
    key = key.strip().lstrip("-")
    if not key or " " in key:
        raise ValueError(f"--sbatch {item!r}: expected KEY=VALUE, e.g. partition=gpu, gpus-per-node=8, time=24:00:00")
    return f"--{key}={value.strip()}" if sep else f"--{key}"
