"""``hf-slm sizes``, ``hf-slm train`` (single process; ``accelerate launch recipes/train.py`` for more) and
``hf-slm convert`` (the paper authors' checkpoints -> ``LlamaForCausalLM``).

Only light modules are imported at parse time (``hf-slm --help`` stays fast); each command imports its stage.
"""

from __future__ import annotations

import argparse
import json
import sys


def positive_int(text: str) -> int:
    """argparse type: an integer >= 1."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {value}")
    return value


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the training stage's subcommands to the ``hf-slm`` parser."""
    p = subparsers.add_parser(
        "sizes", help="list the model sizes (Table 1 and the demo sizes) with N",
        description="The Llama sizes: layers, width, heads, MLP width, the batch of the paper's Table 1 and the "
        "batch(es) of the authors' release (configs/scaling: the paper preset trains with the first), N "
        "(non-embedding parameters) and N_total (tied embedding + LM head counted once).")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.add_argument("--n-units", type=positive_int, default=500, metavar="K",
                   help="vocabulary ids before EOS and pad (units K, or unigram pieces), for N_total (default 500)")
    p.set_defaults(func=sizes_command)

    p = subparsers.add_parser("train", help="train one speech LM on unit datasets (one process)",
                              description="Train a Llama SLM from a YAML config plus key=value overrides, e.g. "
                              "'hf-slm train --config recipes/configs/demo_train.yaml tokens=2e6 output_dir=runs/x'.")
    add_train_arguments(p)
    p.set_defaults(func=train_command)

    p = subparsers.add_parser(
        "convert", help="convert a checkpoint of the paper's code (tiagoCuervo/slm_scaling) to LlamaForCausalLM",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Convert a checkpoint of the authors' code (tiagoCuervo/slm_scaling, a nanoGPT-style Llama)\n"
        "into a transformers LlamaForCausalLM folder with this project's token ids (units 0..K-1, EOS K,\n"
        "pad K+1, vocabulary K+2 = 502, context >= 2050). SRC is one of:\n"
        "  - their training checkpoint, out/<run>/checkpoint-XXXXXXXX.pt (read with weights_only=True)\n"
        "  - a folder written by their save_pretrained / slm-convert (config.json + *.safetensors)\n"
        "  - a Hub id of their collection, e.g. tiagoCuervo/gslm-scaling-823m-82b (downloaded first)\n"
        "  - a transformers Llama folder (validated and saved again with the token ids above)\n"
        "q/k projections are permuted from their interleaved rotary pairs to transformers' half-split\n"
        "ones; the embedding and LM head stay tied, as they were trained.",
        epilog="example: hf-slm convert tiagoCuervo/gslm-scaling-823m-82b models/823m-82b --size 823M\n"
        "then: LlamaForCausalLM.from_pretrained('models/823m-82b')")
    p.add_argument("src", metavar="SRC", help="checkpoint .pt file, native folder, Hub id or Llama folder")
    p.add_argument("out", metavar="OUT", help="output folder for the LlamaForCausalLM")
    p.add_argument("--size", metavar="NAME", help="refuse a checkpoint whose shape is not this size "
                   "(20M, 85M, 155M, 309M, 823M, a demo size, or LAYERSxDMODELxHEADS)")
    p.add_argument("--n-units", type=positive_int, default=500, metavar="K",
                   help="units K; the vocabulary must be K + 2 (default 500)")
    p.add_argument("--overwrite", action="store_true", help="write into OUT even if it is not empty")
    p.set_defaults(func=convert_command)


def add_train_arguments(p: argparse.ArgumentParser) -> None:
    """The options shared by ``hf-slm train`` and ``recipes/train.py``."""
    p.add_argument("--config", help="YAML file of TrainConfig keys (see recipes/configs/)")
    p.add_argument("overrides", nargs="*", metavar="KEY=VALUE", help="config overrides, e.g. lr=3e-4 size=85M")
    p.add_argument("--push-to-hub", metavar="REPO_ID", help="upload the trained model with a model card")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")


def sizes_command(args: argparse.Namespace) -> int:
    from hf_slm.training.sizes import SIZES, get_size, n_total

    rows = []
    for name in SIZES:
        size = get_size(name)
        rows.append({**size.to_dict(), "N_total": n_total(size, args.n_units, tie_embeddings=True)})
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    print(f"{'size':<8} {'layers':>6} {'d_model':>7} {'heads':>5} {'ffn':>5} {'batch (paper)':>13} "
          f"{'batch (release)':>15} {'N':>14} {'N_total':>14}")
    for r in rows:
        release = "/".join(map(str, r["release_batches"])) or "-"
        print(f"{r['name']:<8} {r['n_layers']:>6} {r['d_model']:>7} {r['n_heads']:>5} {r['intermediate_size']:>5} "
              f"{r['batch_size']:>13} {release:>15} {r['N']:>14,} {r['N_total']:>14,}")
    print("batch: sequences per optimizer step. Paper: our reading of Table 1; release: configs/scaling of "
          "tiagoCuervo/slm_scaling (823M: 494 at the 26B endpoint, 608 at 82B). N_total: tied embeddings.")
    return 0


def train_command(args: argparse.Namespace) -> int:
    """``hf-slm train``: config errors are one line (exit 2, from ``hf_slm.cli``), a diverged run exits 1."""
    from accelerate import PartialState

    from hf_slm.training.config import TrainConfig
    from hf_slm.training.run import run_training
    from hf_slm.training.trainer import TrainingDiverged

    config = TrainConfig.from_yaml(args.config, args.overrides)
    try:
        record = run_training(config, push_to_hub=args.push_to_hub, progress=not args.no_progress)
    except TrainingDiverged as err:
        print(f"hf-slm train: error: {err}", file=sys.stderr)
        return 1
    status = "finished" if record.finished else f"stopped at step {record.stats.get('steps')}"
    if PartialState().is_main_process:
        print(f"{record.run}: {status}, N={record.N:,} D={record.D:,} loss={record.loss} -> {config.output_dir}")
    return 0


def convert_command(args: argparse.Namespace) -> int:
    from hf_slm.training.convert import convert_checkpoint

    out = convert_checkpoint(args.src, args.out, size=args.size, n_units=args.n_units, overwrite=args.overwrite)
    config = json.loads((out / "config.json").read_text())
    print(f"{args.src} -> {out}: LlamaForCausalLM, {config['num_hidden_layers']} layers, d={config['hidden_size']}, "
          f"{config['num_attention_heads']} heads, vocab {config['vocab_size']} (EOS {config['eos_token_id']}, "
          f"pad {config['pad_token_id']}), context {config['max_position_embeddings']}")
    return 0
