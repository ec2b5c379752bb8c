"""The paper's training grid: list it, train it here one run after another, or write it as a Slurm array.

Grid (3.3.2): every size (Table 1: 20M 85M 155M 309M 823M) x D/N in {2,4,8,16,32,64,128}, one epoch each,
plus multi-epoch runs with {2,4,8,10} epochs per size. The paper does not give the multi-epoch budgets; here
they keep D = MULTI_EPOCH_RATIO x N (default 20 N, compute-optimal) and repeat U = D / epochs unique tokens.
Runs are named <size>-dn<ratio> and <size>-dn<ratio>-x<epochs>ep and write to <root>/<name>.

Each run's config = recipes/configs/<size>.yaml (or --config FILE for every size) + the KEY=VALUE overrides
given here + the grid's size, tokens_per_param, epochs, output_dir and run_name.
A run whose output_dir/run.json is a finished record of the same config is done: marked in --list, skipped by
--run, left out of a new --slurm array (the array index maps over the runs still to do at writing time;
write the script again to resubmit what is left).

examples:
  python recipes/sweep.py --list
  python recipes/sweep.py --list --json --sizes 20M,85M --ratios 2,4 --epochs ''
  python recipes/sweep.py --run --config recipes/configs/demo_train.yaml --sizes demo-s,demo-m --ratios 0.5,1 \\
      --epochs '' --root runs/demo-sweep
  python recipes/sweep.py --slurm runs/sweep/sweep.sh --sbatch partition=gpu --sbatch gpus-per-node=8 \\
      --sbatch time=48:00:00 --accelerate-args '--multi_gpu --num_processes 8' micro_batch_size=4
  sbatch runs/sweep/sweep.sh

Multi-node runs are Accelerate's business: put its options in --accelerate-args (passed verbatim to
'accelerate launch'; use --accelerate-args=--multi_gpu for a single option that starts with '-').
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from hf_slm.training.config import ConfigError
from hf_slm.training.sizes import PAPER_SIZES
from hf_slm.training.sweep import (
    DEFAULT_ROOT,
    MULTI_EPOCH_RATIO,
    PAPER_EPOCHS,
    PAPER_RATIOS,
    format_table,
    list_json,
    paper_grid,
    pending,
    run_local,
    write_slurm,
)

HERE = Path(__file__).resolve().parent


def _names(text: str) -> list[str]:
    return [item.strip() for item in text.split(",") if item.strip()]


def _numbers(text: str) -> list[float]:
    try:
        return [float(item) for item in _names(text)]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated numbers, got {text!r}") from None


def _join(values) -> str:
    return ",".join(f"{v:g}" if isinstance(v, float) else str(v) for v in values)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--list", action="store_true", help="print the runs and their state (the default)")
    mode.add_argument("--run", action="store_true", help="train the unfinished runs here, one after another")
    mode.add_argument("--slurm", metavar="OUT.sh", help="write a Slurm array script, one task per unfinished run, "
                      "and each run's config as <dir of OUT.sh>/configs/<run>.yaml")
    grid = parser.add_argument_group("grid")
    grid.add_argument("--sizes", type=_names, default=list(PAPER_SIZES),
                      help=f"comma-separated sizes (default {_join(PAPER_SIZES)}; any size 'hf-slm sizes' lists)")
    grid.add_argument("--ratios", type=_numbers, default=list(PAPER_RATIOS),
                      help=f"single-epoch D/N values (default {_join(PAPER_RATIOS)}; '' for none)")
    grid.add_argument("--epochs", type=_numbers, default=list(PAPER_EPOCHS),
                      help=f"multi-epoch runs' epochs (default {_join(PAPER_EPOCHS)}; '' for none)")
    grid.add_argument("--multi-epoch-ratio", type=float, default=MULTI_EPOCH_RATIO,
                      help=f"D/N of the multi-epoch runs: D = ratio x N, U = D / epochs (default {MULTI_EPOCH_RATIO:g})")
    grid.add_argument("--root", default=DEFAULT_ROOT, help=f"runs go to ROOT/<name> (default {DEFAULT_ROOT})")
    grid.add_argument("--config-dir", default=str(HERE / "configs"),
                      help="folder of <size>.yaml base configs (default: recipes/configs)")
    grid.add_argument("--config", metavar="FILE", help="one base config for every size (instead of --config-dir)")
    grid.add_argument("overrides", nargs="*", metavar="KEY=VALUE",
                      help="config overrides for every run, e.g. micro_batch_size=4 eval_every=500")
    out = parser.add_argument_group("output")
    out.add_argument("--json", action="store_true", help="with --list: print JSON instead of a table")
    out.add_argument("--no-progress", action="store_true", help="with --run: no progress bars")
    slurm = parser.add_argument_group("slurm")
    slurm.add_argument("--accelerate-args", default="", metavar="ARGS",
                       help="passed verbatim to 'accelerate launch', e.g. '--multi_gpu --num_processes 8'")
    slurm.add_argument("--sbatch", action="append", default=[], metavar="KEY=VALUE",
                       help="an '#SBATCH --KEY=VALUE' line (repeatable): partition=gpu, gpus-per-node=8, time=24:00:00")
    slurm.add_argument("--setup", action="append", default=[], metavar="CMD",
                       help="a shell line run before the launch (repeatable), e.g. 'source .venv/bin/activate'")
    slurm.add_argument("--job-name", default="hf-slm-sweep", help="Slurm job name (default hf-slm-sweep)")
    slurm.add_argument("--array-limit", type=int, metavar="K", help="at most K array tasks at once (--array=0-n%%K)")
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        runs = paper_grid(sizes=args.sizes, ratios=args.ratios, epochs=args.epochs,
                          multi_epoch_ratio=args.multi_epoch_ratio, root=args.root,
                          config_dir=None if args.config else args.config_dir, base_config=args.config,
                          overrides=args.overrides)
    except (ValueError, FileNotFoundError) as err:  # ConfigError is a ValueError
        parser.error(str(err))
    try:
        if args.run:
            run_local(runs, progress=not args.no_progress)
        elif args.slurm:
            if not pending(runs):
                print(f"all {len(runs)} runs are finished; no script written")
                return 0
            todo = write_slurm(runs, args.slurm, accelerate_args=args.accelerate_args, sbatch=args.sbatch,
                               setup=args.setup, job_name=args.job_name, train_script=HERE / "train.py",
                               array_limit=args.array_limit)
            print(f"wrote {args.slurm}: array of {len(todo)} tasks ({len(runs) - len(todo)} runs already done); "
                  f"submit with: sbatch {args.slurm}")
        else:
            print(list_json(runs) if args.json else format_table(runs))
    except ConfigError as err:  # a run folder holding another run
        print(f"error: {err}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
