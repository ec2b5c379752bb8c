"""The ``hf-slm`` command line: one subcommand per job, each stage registering its own."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from hf_slm import __version__


def build_parser() -> argparse.ArgumentParser:
    """The full ``hf-slm`` parser with every stage's subcommands."""
    from hf_slm import demo
    from hf_slm.evaluation import generate as generate_cli
    from hf_slm.scaling import cli as scaling_cli
    from hf_slm.training import cli as training_cli
    from hf_slm.units import cli as units_cli

    parser = argparse.ArgumentParser(
        prog="hf-slm",
        description="Train speech language models and study their scaling laws (Cuervo & Marxer 2024).",
        epilog="Run 'hf-slm COMMAND --help' for a command's options. "
        "Start with 'hf-slm demo' for the offline end-to-end study in miniature.",
    )
    parser.add_argument("--version", action="version", version=f"hf-slm {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    demo.register(sub)
    units_cli.register(sub)
    training_cli.register(sub)
    scaling_cli.register(sub)
    generate_cli.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the console script; returns the process exit code."""
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except (FileNotFoundError, ValueError) as err:
        print(f"hf-slm {args.command}: error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
