"""A whole scaling study from one YAML: the same as ``hf-slm study CONFIG``.

    python recipes/study.py recipes/configs/demo.yaml                  # the miniature, end to end
    python recipes/study.py recipes/configs/paper.yaml --dry-run       # the paper's plan
    python recipes/study.py recipes/configs/paper.yaml --slurm runs/paper/slurm/train.sh
    sbatch runs/paper/slurm/train.sh                                   # trains every unfinished run
    python recipes/study.py recipes/configs/paper.yaml                 # then: evaluate, fit, report

Stages: data (text + TTS -> units, or given unit datasets) -> runs (trained here one after another, or by
the Slurm array with 'accelerate launch recipes/train.py') -> evaluation of every finished run -> run table
-> fits (eq.4, eq.7/8, downstream power laws, efficiency ratios) -> figures and report (report.md,
report.html, study.json). A rerun does only what is missing.

On a CPU machine shared with other jobs, start it with OMP_WAIT_POLICY=PASSIVE (the OpenMP threads then
sleep instead of spinning while they wait; it must be set before torch loads).
"""

from __future__ import annotations

import argparse
import sys

from hf_slm.study.cli import add_arguments, run_command


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_arguments(parser)
    args = parser.parse_args(argv)
    try:
        return run_command(args)
    except (FileNotFoundError, ValueError) as err:
        print(f"study: error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
