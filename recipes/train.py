"""Train one speech LM from a YAML config: ``accelerate launch recipes/train.py --config recipes/configs/85M.yaml``.

Extra ``key=value`` arguments override the config (``tokens_per_param=20 output_dir=runs/85M-d20``);
``--push-to-hub ID`` uploads the model, its run record and a model card when the run finishes. The mix is packed
into a token store on first use (``hf-slm pack --config ...`` does it ahead of time, once for every run).
Errors in the config or the data are one line on stderr with exit code 2 (as ``hf-slm train``); a run that
diverges (a loss or gradient norm that is not finite) exits with 1.
"""

from __future__ import annotations

import argparse
import sys

from hf_slm.training.cli import add_train_arguments


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_train_arguments(parser)
    args = parser.parse_args(argv)

    from accelerate import PartialState

    from hf_slm.training.config import TrainConfig
    from hf_slm.training.run import run_training
    from hf_slm.training.trainer import TrainingDiverged

    try:
        config = TrainConfig.from_yaml(args.config, args.overrides)
        record = run_training(config, push_to_hub=args.push_to_hub, progress=not args.no_progress)
    except TrainingDiverged as err:
        print(f"train.py: error: {err}", file=sys.stderr)
        return 1
    except (FileNotFoundError, ValueError) as err:
        print(f"train.py: error: {err}", file=sys.stderr)
        return 2
    if PartialState().is_main_process:
        print(f"{record.run}: N={record.N:,} D={record.D:,} loss={record.loss} finished={record.finished}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
