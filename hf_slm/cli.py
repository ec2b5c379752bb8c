"""The ``hf-slm`` command line: one subcommand per job, each stage registering its own.

Stages are imported lazily: ``hf-slm --help`` lists the commands from :data:`COMMANDS` without importing
any stage, and ``hf-slm CMD ...`` imports only the module that registers ``CMD``. A new command is one more
``COMMANDS`` entry (tests/test_cli.py checks the table against what the modules register).

Errors, one mechanism for every command: a command raises ``ValueError`` (or a subclass: ``ConfigError``,
``RecordError``, ``json.JSONDecodeError``...), ``FileNotFoundError`` / ``NotADirectoryError`` /
``IsADirectoryError`` / ``FileExistsError``, or ``SystemExit("message")`` for bad input; :func:`main`
prints one line ``hf-slm CMD: error: ...`` and exits with code 2, as argparse does for bad options. Other
``OSError`` (network, disk) print one line and exit 1. Anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from hf_slm import __version__

# command -> (module whose ``register(subparsers)`` adds it, the one-line help of ``hf-slm --help``)
COMMANDS: dict[str, tuple[str, str]] = {
    "demo": ("hf_slm.demo", "run the offline end-to-end study in miniature (hf-slm study on the embedded demo.yaml)"),
    "study": ("hf_slm.study.cli", "run a scaling study from one YAML: data, runs, evaluation, fits, figures, report"),
    "units": ("hf_slm.units.cli", "speech tokenizer: audio -> discrete units"),
    "sizes": ("hf_slm.training.cli", "list the model sizes (Table 1 and the demo sizes) with N"),
    "train": ("hf_slm.training.cli", "train one speech LM on unit datasets (one process)"),
    "convert": ("hf_slm.training.cli",
                "convert a checkpoint of the paper's code (tiagoCuervo/slm_scaling) to LlamaForCausalLM"),
    "pack": ("hf_slm.data.cli",
             "pack a training mix into a memory-mapped token store (training does it on first use)"),
    "fit": ("hf_slm.scaling.cli", "fit a scaling law (eq.4, eq.7/8 or a power law) to a run table"),
    "plan": ("hf_slm.scaling.cli", "compute, N and D needed to reach a target loss or metric value"),
    "eval": ("hf_slm.evaluation.cli",
             "score a model on sBLIMP / sWUGGY / spoken and topic StoryCloze / SALMon / text benchmarks"),
    "build-benchmark": ("hf_slm.evaluation.cli",
                        "import a released benchmark (sLM21, sSC/tSC, SALMon, BLiMP...) as a dataset"),
    "generate": ("hf_slm.evaluation.generate", "continue a spoken prompt with a unit LM and write the audio"),
}

USAGE_ERRORS: tuple[type[BaseException], ...] = (
    ValueError, FileNotFoundError, NotADirectoryError, IsADirectoryError, FileExistsError,
)
USAGE_EXIT = 2  # bad input, as argparse exits on a bad option
FAILURE_EXIT = 1  # the environment failed (network, disk)


def _modules() -> list[str]:
    return list(dict.fromkeys(module for module, _ in COMMANDS.values()))


def build_parser(command: str | None = None, full: bool = False) -> argparse.ArgumentParser:
    """The ``hf-slm`` parser.

    Only the module registering ``command`` is imported; every other command gets a placeholder with its
    one-line help (enough for ``hf-slm --help`` and for argparse's choice check). ``full=True``, or a
    command the table does not know, registers every module.
    """
    parser = argparse.ArgumentParser(
        prog="hf-slm",
        description="Train speech language models and study their scaling laws (Cuervo & Marxer 2024).",
        epilog="Run 'hf-slm COMMAND --help' for a command's options. "
        "Start with 'hf-slm demo' for the offline end-to-end study in miniature.",
    )
    parser.add_argument("--version", action="version", version=f"hf-slm {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    if full or (command is not None and command not in COMMANDS):
        modules = _modules()
    else:
        modules = [COMMANDS[command][0]] if command else []
    for module in modules:
        importlib.import_module(module).register(sub)
    for name, (_, help_text) in COMMANDS.items():
        if name not in sub.choices:
            sub.add_parser(name, help=help_text)
    return parser


def _command_of(argv: Sequence[str]) -> str | None:
    """The subcommand named in ``argv`` (the first word that is not an option), if any."""
    for word in argv:
        if word in ("-h", "--help", "--version"):
            return None
        if not word.startswith("-"):
            return word
    return None


def _error(command: str, message: object, code: int) -> int:
    text = str(message)
    text = text[len("error: "):] if text.startswith("error: ") else text
    print(f"hf-slm {command}: error: {text}", file=sys.stderr)
    return code


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the console script; returns the process exit code (2 for bad input)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    args = build_parser(_command_of(argv)).parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except SystemExit as err:
        if isinstance(err.code, str):
            return _error(args.command, err.code, USAGE_EXIT)
        raise
    except USAGE_ERRORS as err:
        return _error(args.command, err, USAGE_EXIT)
    except OSError as err:
        return _error(args.command, err, FAILURE_EXIT)
    except KeyboardInterrupt:
        print(f"hf-slm {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
