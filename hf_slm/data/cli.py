"""``hf-slm pack``: a training mix's unit datasets -> the memory-mapped token store the trainer reads.

Heavy modules (``datasets``, ``transformers``) are imported inside the command, not at parse time.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``hf-slm pack`` to the ``hf-slm`` parser."""
    p = subparsers.add_parser(
        "pack", help="pack a training mix into a memory-mapped token store (training does it on first use)",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Stream the unit datasets of a training config (local folders or Hub ids) into a token store:\n"
        "uint16 token ids with EOS after every utterance, an utterance index, separate train and held-out\n"
        "sides, and a manifest (datasets, resolved Hub commits, weights, token counts). The store goes to\n"
        "STORE_DIR/<fingerprint of the mix>, where 'hf-slm train' / recipes/train.py find it. Packing is\n"
        "resumable: rerun the same command after a crash and it continues where it stopped.",
        epilog="examples:\n"
        "  hf-slm pack --config recipes/configs/85M.yaml\n"
        "  hf-slm pack units/librispeech units/stinystories:test=false --store-dir /scratch/stores\n"
        "  hf-slm pack --config recipes/configs/85M.yaml token_type=unigram   # unigram-compressed datasets")
    p.add_argument("datasets", nargs="*", metavar="DATASET",
                   help="unit dataset folders or Hub ids, optionally ID:test=false or ID:revision=SHA (instead of "
                   "or in addition to --config); KEY=VALUE items override the config's mix keys")
    p.add_argument("--config", help="training config YAML: its datasets, n_units, token_type, test_fraction, "
                   "store_dir and store_shard_tokens are used, the rest is ignored")
    p.add_argument("--store-dir", help="root folder of the stores (default: the config's store_dir, else "
                   "$HF_SLM_STORE_DIR, else ~/.cache/hf_slm/stores)")
    p.add_argument("--shard-tokens", type=int, default=None, help="training tokens per shard (default 2**27)")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.add_argument("--json", action="store_true", help="print the manifest summary as JSON")
    p.set_defaults(func=pack_command)


MIX_KEYS = ("datasets", "n_units", "token_type", "test_fraction", "store_dir", "store_shard_tokens")


def read_mix(config: str | None, items: list[str]) -> dict:
    """The mix keys of ``config`` (YAML) plus ``KEY=VALUE`` overrides and extra dataset ids from ``items``."""
    import yaml

    data: dict = {}
    if config is not None:
        path = Path(config)
        if not path.is_file():
            raise FileNotFoundError(f"{config}: no such config file" if not path.is_dir() else
                                    f"{config}: is a folder; --config takes a YAML file")
        try:
            data = yaml.safe_load(path.read_text()) or {}
        except yaml.YAMLError as err:
            raise ValueError(f"{config}: not valid YAML: {err}") from None
        if not isinstance(data, dict):
            raise ValueError(f"{config}: expected a mapping of keys to values")
    mix = {k: data[k] for k in MIX_KEYS if k in data}
    extra = []
    for item in items:
        key, sep, value = item.partition("=")
        if sep and ":" not in key and "/" not in key:
            if key not in MIX_KEYS:
                raise ValueError(f"{item}: pack only takes the mix keys {list(MIX_KEYS)}")
            mix[key] = yaml.safe_load(value)
            continue
        ident, *options = item.split(":")
        entry: dict = {"id": ident}
        for option in options:
            k, sep, v = option.partition("=")
            if not sep:
                raise ValueError(f"{item}: expected ID:key=value options, got {option!r}")
            entry[k] = yaml.safe_load(v)
        extra.append(entry)
    mix["datasets"] = list(mix.get("datasets") or []) + extra
    return mix


def pack_command(args: argparse.Namespace) -> int:
    from hf_slm.data.store import SHARD_TOKENS, MixConfig, pack_mix, store_summary

    mix = read_mix(args.config, args.datasets)
    store_dir = args.store_dir or mix.pop("store_dir", None)
    shard_tokens = args.shard_tokens or mix.pop("store_shard_tokens", None) or SHARD_TOKENS
    mix.pop("store_dir", None)
    mix.pop("store_shard_tokens", None)
    root = pack_mix(MixConfig(**mix), store_dir, shard_tokens=int(shard_tokens), progress=not args.no_progress)
    summary = store_summary(root)
    if args.json:
        print(json.dumps({"store": str(root), **summary}, indent=2))
        return 0
    print(f"token store: {root}")
    print(f"  {summary['token_type']}: vocabulary {summary['vocabulary']['size']} (EOS {summary['vocabulary']['eos']}, "
          f"pad {summary['vocabulary']['pad']}); train {summary['train']['tokens']:,} tokens / "
          f"{summary['train']['utterances']:,} utterances; held-out {summary['test']['tokens']:,} tokens")
    for d in summary["datasets"]:
        rev = f"@{d['revision'][:12]}" if d["revision"] else ""
        print(f"  - {d['id']}{rev}: train {d['train_tokens']:,}, held-out {d['test_tokens']:,} "
              f"({d['held_out']}), weight {d['weight']:g}")
    return 0
