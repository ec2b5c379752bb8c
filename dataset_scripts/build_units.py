"""Turn an audio dataset into a unit dataset (Parquet shards + dataset card) on disk or on the Hub.

    python dataset_scripts/build_units.py SOURCE --tokenizer TOKENIZER --output DIR [--push-to-hub ID]
    python dataset_scripts/build_units.py --corpus NAME --tokenizer TOKENIZER --output DIR

SOURCE is a ``save_to_disk`` folder, a data folder or a Hub dataset id; TOKENIZER a SpeechTokenizer folder or
Hub id. ``--corpus`` takes one of the paper's corpora (``hf_slm.data.corpora``) instead of SOURCE and fills
the Hub id, config, splits, columns and test split from the registry; explicit options still override.
Corrupt, empty or unusable audio is skipped and counted in the card; other sample rates and stereo are
resampled / downmixed. ``datasets.load_dataset(DIR)`` then loads the result. The work goes shard by shard
(``--shard-rows``): a killed run started again skips the finished shards, and ``accelerate launch
dataset_scripts/build_units.py ...`` spreads the shards over processes (GPUs, nodes) with the same result.
"""

from __future__ import annotations

import argparse
import sys

from hf_slm.data.build import build_unit_dataset, push_unit_dataset
from hf_slm.data.corpora import CORPORA, corpus_build_kwargs, get_corpus
from hf_slm.data.processes import process_state
from hf_slm.units import SpeechTokenizer


def _fail(message: str) -> int:
    print(f"build_units: error: {message}", file=sys.stderr)
    return 2


def _hub_unusable() -> str | None:
    """Why an upload cannot work from here, checked before hours of encoding (None when it may)."""
    from huggingface_hub import get_token, is_offline_mode

    if is_offline_mode():
        return "--push-to-hub needs the Hub, but offline mode is on (HF_HUB_OFFLINE); unset it or drop the option"
    if get_token() is None:
        return "--push-to-hub needs a Hub token: run `hf auth login` or set HF_TOKEN"
    return None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    what = parser.add_mutually_exclusive_group(required=True)
    what.add_argument("source", nargs="?", help="audio dataset: save_to_disk folder, data folder or Hub id")
    what.add_argument("--corpus", choices=sorted(CORPORA), help="a corpus of the paper's Table 2, from the registry")
    parser.add_argument("--tokenizer", required=True, help="SpeechTokenizer folder or Hub id")
    parser.add_argument("--tokenizer-revision", default=None, help="Hub revision of the tokenizer (pin a commit)")
    parser.add_argument("--output", required=True, help="folder to write the unit dataset to (new or empty, or the "
                        "folder of an unfinished build of the same command, which is resumed)")
    parser.add_argument("--push-to-hub", metavar="REPO_ID", help="also upload the folder as a Hub dataset")
    parser.add_argument("--config", default=None, help="dataset config name (Hub datasets)")
    parser.add_argument("--splits", nargs="*", default=None, help="splits to encode (default: all)")
    parser.add_argument("--audio-column", default=None, help="default: audio")
    ids = parser.add_mutually_exclusive_group()
    ids.add_argument("--id-column", default=None, help="column of unique utterance ids (default: id)")
    ids.add_argument("--no-id-column", action="store_true",
                     help="the source has no id column: number the rows (<source split>-<position>)")
    parser.add_argument("--keep-columns", nargs="*", default=None,
                        help="source columns copied into the unit dataset when present (default: speaker text source)")
    parser.add_argument("--test-fraction", type=float, default=None,
                        help="hold out this seeded share of 'train' as 'test' (corpora without a test split)")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--precision", choices=["fp32", "bf16"], default=None,
                        help="HuBERT forward precision (default: the tokenizer's, fp32 as the paper's release; "
                        "bf16 is faster on GPUs and changes a few units, see bench/bench_encode.py --hubert)")
    parser.add_argument("--streaming", action="store_true", help="stream the source instead of downloading it")
    parser.add_argument("--shard-rows", type=int, default=10_000,
                        help="utterances per output shard: the unit of work, of resuming and of splitting over "
                        "processes (default %(default)s)")
    args = parser.parse_args(argv)

    explicit = {k: v for k, v in (("config", args.config), ("splits", args.splits), ("audio_column", args.audio_column),
                                  ("id_column", args.id_column), ("keep_columns", args.keep_columns),
                                  ("test_fraction", args.test_fraction)) if v is not None}
    if args.no_id_column:
        explicit["id_column"] = None
    try:
        kwargs = corpus_build_kwargs(args.corpus, **explicit) if args.corpus else {"source": args.source, **explicit}
    except ValueError as err:
        return _fail(str(err))
    if args.corpus and get_corpus(args.corpus).notes:
        print(f"build_units: note on {args.corpus}: {get_corpus(args.corpus).notes}", file=sys.stderr)
    if args.push_to_hub and (why := _hub_unusable()):
        return _fail(why)

    state = process_state()  # under `accelerate launch` / torchrun, each process encodes its own shards
    try:
        precision = {"dtype": args.precision} if args.precision else {}
        tokenizer = SpeechTokenizer.from_pretrained(
            args.tokenizer, revision=args.tokenizer_revision,
            device=str(state.device) if state.device.type == "cuda" else None, **precision)
    except (OSError, ValueError) as err:
        return _fail(f"cannot load tokenizer {args.tokenizer!r}: {err}")
    source = kwargs.pop("source")
    try:
        out = build_unit_dataset(source, tokenizer, args.output, tokenizer_id=args.tokenizer,
                                 tokenizer_revision=args.tokenizer_revision, batch_size=args.batch_size,
                                 streaming=args.streaming, shard_rows=args.shard_rows,
                                 process_index=state.process_index, num_processes=state.num_processes, **kwargs)
    except (OSError, ValueError) as err:
        return _fail(str(err))
    state.wait_for_everyone()
    if state.is_main_process:
        print(f"wrote {out}")
        if args.push_to_hub:
            try:
                print(f"pushed: {push_unit_dataset(out, args.push_to_hub)}")
            except Exception as err:  # any Hub/network failure: the build itself is complete and kept
                return _fail(f"could not push {out} to {args.push_to_hub} ({type(err).__name__}: {err}); the unit "
                             "dataset is complete on disk: rerun the same command to push it")
    return 0


if __name__ == "__main__":
    sys.exit(main())
