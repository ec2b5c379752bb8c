"""``hf-slm demo``: the offline end-to-end study in miniature, i.e. ``hf-slm study`` on the embedded demo config.

The study itself (text -> speech -> units -> speech and text LMs -> benchmarks -> scaling laws -> report)
lives in :mod:`hf_slm.study`; its settings, and every departure from the paper with its reason, in
``recipes/configs/demo.yaml`` (shipped as ``hf_slm/study/configs/demo.yaml``).
"""

from __future__ import annotations

import argparse


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``hf-slm demo``."""
    p = subparsers.add_parser(
        "demo",
        help="run the offline end-to-end study in miniature (hf-slm study on the embedded demo.yaml)",
        description="Synthesize a spoken story corpus offline, tokenize it, train a grid of tiny Llama speech "
        "and text LMs, score them on sBLIMP / spoken and topic StoryCloze analogues, fit the paper's scaling "
        "laws and write the report (report.md, report.html, study.json). The same as 'hf-slm study "
        "recipes/configs/demo.yaml'; finished stages are reused.",
    )
    p.add_argument("--output", default=None, help="folder for every output (default: the config's, runs/demo)")
    p.add_argument("--dry-run", action="store_true", help="print the plan (runs, FLOPs, disk) and exit")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.set_defaults(func=_run_cli)


def _run_cli(args: argparse.Namespace) -> int:
    from hf_slm.study.cli import default_config, run_study
    from hf_slm.study.config import StudyConfig

    overrides = {"output": args.output} if args.output else None
    config = StudyConfig.from_yaml(default_config("demo"), overrides)
    return run_study(config, dry_run=args.dry_run, progress=not args.no_progress)


__all__ = ["register"]
