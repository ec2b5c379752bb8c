"""Import released benchmarks, in their released layouts, as benchmark datasets (Parquet + card).

    python dataset_scripts/build_benchmarks.py LAYOUT SOURCE OUTPUT [--tokenizer TOK]

The same as ``hf-slm build-benchmark`` (layouts: zerospeech-syntactic, zerospeech-lexical, sSC, tSC, salmon,
blimp-text, storycloze-text, topic-storycloze-text; see ``--help`` and docs/evaluating.md). Speech layouts are
encoded with a ``SpeechTokenizer`` shard by shard, so a killed import resumes; skipped files are counted by
reason in the card. The commands for the real releases:

    python dataset_scripts/build_benchmarks.py zerospeech-syntactic zr2021/ benchmarks/sblimp-dev --tokenizer TOK
    python dataset_scripts/build_benchmarks.py zerospeech-lexical zr2021/ benchmarks/swuggy-dev --tokenizer TOK
    python dataset_scripts/build_benchmarks.py sSC sSC/ benchmarks/ssc --tokenizer TOK
    python dataset_scripts/build_benchmarks.py tSC tSC/ benchmarks/tsc --tokenizer TOK
    python dataset_scripts/build_benchmarks.py salmon salmon_benchmark/ benchmarks/salmon --tokenizer TOK
"""

from __future__ import annotations

import argparse
import sys

from hf_slm.evaluation.cli import BUILD_EPILOG, add_build_arguments, run_build


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, epilog=BUILD_EPILOG,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    add_build_arguments(parser)
    args = parser.parse_args(argv)
    try:
        return run_build(args)
    except (FileNotFoundError, ValueError) as err:
        print(f"build_benchmarks: error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
