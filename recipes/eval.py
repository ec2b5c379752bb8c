"""Score a model on benchmarks with several processes: ``accelerate launch recipes/eval.py MODEL --benchmark ...``.

The same options as ``hf-slm eval`` (see ``hf-slm eval --help`` and docs/evaluating.md). Each process scores
every n-th candidate of the length order on its own GPU (bf16 autocast), the scores are gathered, and the main
process writes the results JSON and, for a run folder, merges them into run.json and the model card.

    accelerate launch --num_processes 8 recipes/eval.py models/823m-82b \\
        --benchmark sblimp=benchmarks/sblimp-dev --benchmark sSC=benchmarks/ssc --benchmark tSC=benchmarks/tsc \\
        --output results/823m-82b.json
"""

from __future__ import annotations

import argparse
import sys

from hf_slm.data.processes import process_state
from hf_slm.evaluation.cli import add_eval_arguments, run_eval


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_eval_arguments(parser)
    args = parser.parse_args(argv)
    state = process_state()  # a CPU (gloo) state without a GPU, checked against the launch
    try:
        return run_eval(args, state=state)
    except (FileNotFoundError, ValueError) as err:
        print(f"recipes/eval.py: error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
