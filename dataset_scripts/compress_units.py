"""Unigram compression of a unit dataset (the paper's 4.3): train a ``tokenizers`` Unigram model on unit strings,
add a ``tokens`` column to every split with ``datasets.map``, and report the compression ratio.

    python dataset_scripts/compress_units.py UNIT_DATASET --output DIR [--vocab-size 5000]

DIR gets the unit dataset with the extra ``tokens`` column (Parquet + card) and the tokenizer in
``DIR/unigram_tokenizer`` (``PreTrainedTokenizerFast.from_pretrained`` loads it: pieces 0..P-1, then <eos> = P
and <pad> = P + 1). Table 2 of the paper gives ~0.58 unigram tokens per unit at vocabulary 5,000. Train on it
with ``token_type: unigram`` in the training config (the model's vocabulary is then P + 2, and the run's
``model/`` folder gets this tokenizer).

UNIT_DATASET is decided first: an existing folder must be a unit dataset (a README.md card with an ``hf_slm``
block); anything else must look like a Hub id (``owner/name``); a missing path is an error, never a Hub lookup.
"""

from __future__ import annotations

import argparse
import sys

from hf_slm.data.store import MixEntry, locate
from hf_slm.data.unit_dataset import load_unit_dataset, load_unit_info, save_unigram_dataset
from hf_slm.units import compression_ratio, train_unigram


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("source", help="unit dataset folder or Hub id")
    parser.add_argument("--output", required=True, help="folder for the compressed dataset and its tokenizer")
    parser.add_argument("--vocab-size", type=int, default=5000, help="pieces + <eos> + <pad> (default 5000)")
    parser.add_argument("--train-split", default="train", help="split the tokenizer is trained on")
    parser.add_argument("--max-train-utterances", type=int, default=None, help="train on the first N utterances")
    args = parser.parse_args(argv)
    try:
        source = locate(MixEntry(args.source))  # local folder or Hub id, decided before any download
        revision = source.revision
        ds, info = load_unit_dataset(args.source, revision=revision), load_unit_info(args.source, revision=revision)
        if args.train_split not in ds:
            raise ValueError(f"{args.source}: no split {args.train_split!r}; have {sorted(ds)}")
        train = ds[args.train_split]
        if args.max_train_utterances:
            train = train.select(range(min(args.max_train_utterances, len(train))))
        tokenizer = train_unigram(train["units"], info.n_units, vocab_size=args.vocab_size)
    except (FileNotFoundError, ValueError) as err:
        print(f"compress_units: error: {err}", file=sys.stderr)
        return 2
    out, compressed = save_unigram_dataset(ds, args.output, info, tokenizer)
    for name, part in compressed.items():
        print(f"{name}: {compression_ratio(part):.3f} unigram tokens per unit")
    print(f"wrote {out} (all splits: {compression_ratio(compressed):.3f} tokens per unit, vocabulary {len(tokenizer)})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
