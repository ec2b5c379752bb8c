"""``hf-slm study CONFIG``: a whole scaling study from one YAML (and ``hf-slm demo``, the embedded miniature)."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

EPILOG = """examples:
  hf-slm study recipes/configs/demo.yaml                 # the miniature, end to end (what 'make demo' runs)
  hf-slm study recipes/configs/paper.yaml --dry-run      # the paper's plan: runs, FLOPs, GPU-hours, disk
  hf-slm study my.yaml --stage data --stage runs         # some stages only (data, runs, report)
  hf-slm study my.yaml --slurm runs/my/slurm/train.sh    # write a Slurm array for the unfinished runs
  hf-slm study my.yaml --set output=runs/other --set fits.bootstrap=500

Idempotent: a rerun does only what is missing (finished runs are kept, the report is rebuilt).
On a shared CPU machine set OMP_WAIT_POLICY=PASSIVE before starting (see the README)."""


def default_config(name: str = "demo") -> Path:
    """The config shipped with the package (``demo`` or ``paper``; also under ``recipes/configs/``)."""
    path = Path(__file__).with_name("configs") / f"{name}.yaml"
    if not path.is_file():
        raise FileNotFoundError(f"no embedded study config {name!r} ({path})")
    return path


def add_arguments(p: argparse.ArgumentParser) -> None:
    """The options shared by ``hf-slm study`` and ``recipes/study.py``."""
    p.add_argument("config", help="study YAML (e.g. recipes/configs/demo.yaml or paper.yaml)")
    p.add_argument("--dry-run", action="store_true", help="print the plan (runs, FLOPs, GPU-hours, disk) and exit")
    p.add_argument("--stage", action="append", choices=("data", "runs", "report"),
                   help="run only these stages (repeat the option; default: all, in order)")
    p.add_argument("--slurm", metavar="SCRIPT", help="make the data, then write a Slurm array for the unfinished "
                   "runs instead of training here; rerun without --slurm afterwards to evaluate and report")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="override a config key, dotted for sections (output=runs/x, fits.bootstrap=500)")
    p.add_argument("--json", action="store_true", help="with --dry-run: print the plan as JSON")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``hf-slm study``."""
    p = subparsers.add_parser(
        "study", help="run a scaling study from one YAML: data, runs, evaluation, fits, figures, report",
        description="Run a whole scaling study from one YAML: speech (text + TTS, or unit datasets) -> units -> "
        "a grid of Llama LMs (here one after another, or a Slurm array) -> benchmarks -> run table -> eq.4, "
        "eq.7/8 and downstream power laws -> the paper's figures and tables next to its published values "
        "(report.md, report.html, study.json).",
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_arguments(p)
    p.set_defaults(func=run_command)



def _overrides(items: list[str]) -> dict:
    import yaml

    out = {}
    for item in items:
        key, sep, text = item.partition("=")
        if not sep or not key.strip():
            raise ValueError(f"--set {item!r}: expected KEY=VALUE")
        out[key.strip()] = yaml.safe_load(text) if text.strip() else None
    return out


def run_command(args: argparse.Namespace) -> int:
    from hf_slm.study.config import StudyConfig

    config = StudyConfig.from_yaml(args.config, _overrides(args.set))
    return run_study(config, dry_run=args.dry_run, stages=args.stage, slurm=args.slurm,
                     as_json=getattr(args, "json", False), progress=not args.no_progress)


def run_study(config, dry_run: bool = False, stages: list[str] | None = None, slurm: str | None = None,
              as_json: bool = False, progress: bool = True) -> int:
    """What ``hf-slm study`` does with a loaded config; returns the exit code."""
    import json

    from hf_slm.study.plan import estimate, format_plan
    from hf_slm.study.runner import Study

    if not progress:
        import datasets

        datasets.disable_progress_bars()
    study = Study(config, progress=progress)
    runs = study.plan()
    if dry_run:
        states = study.states(runs) if Path(config.output).exists() else {}
        if as_json:
            print(json.dumps({"runs": [{**r.to_dict(), "state": states.get(r.name, "todo")} for r in runs],
                              "estimate": estimate(config, runs)}, indent=2))
        else:
            print(format_plan(config, runs, states))
        return 0
    _warn_spin_wait()
    if slurm or config.execution.backend == "slurm":
        if not slurm:
            raise ValueError("execution.backend is slurm: give the script to write with --slurm PATH")
        study.run(stages=("data",))
        todo = study.write_slurm(slurm)
        print(f"[hf-slm study] wrote {slurm}: {len(todo)} runs; submit with 'sbatch {slurm}', then rerun "
              f"'hf-slm study {config.source_path or 'CONFIG'}' to evaluate them and write the report")
        return 0
    report = study.run(stages=tuple(stages) if stages else ("data", "runs", "report"))
    if (report / "report.md").exists():
        print(f"[hf-slm study] report: {report / 'report.md'} (and report.html, study.json)")
    return 0


def _warn_spin_wait() -> None:
    """OpenMP threads spin while waiting by default: on a busy machine that makes CPU training many times
    slower. The policy is read when torch loads, so it can only be set before the process starts."""
    if os.environ.get("OMP_WAIT_POLICY") or not hasattr(os, "getloadavg"):
        return
    load, cpus = os.getloadavg()[0], os.cpu_count() or 1
    if load > 0.5 * cpus:
        print(f"[hf-slm study] note: the machine is busy (load {load:.1f} on {cpus} CPUs); CPU runs go much "
              "faster with OMP_WAIT_POLICY=PASSIVE set before starting", file=sys.stderr)
