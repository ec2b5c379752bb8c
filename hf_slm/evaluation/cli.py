"""``hf-slm eval`` (score a model on benchmarks) and ``hf-slm build-benchmark`` (import a released benchmark).

Heavy libraries (torch, transformers, datasets) are imported inside the command functions, so ``hf-slm --help``
stays fast.
"""

from __future__ import annotations

import argparse
import json

PRESET_NAMES = ("paper", "sum", "mean")
BENCHMARK_NAMES = "sblimp, swuggy, spoken_storycloze (sSC), topic_storycloze (tSC), salmon, blimp, storycloze, test_loss"
LAYOUT_NAMES = ("zerospeech-syntactic", "zerospeech-lexical", "sSC", "tSC", "salmon", "blimp-text", "storycloze-text",
                "topic-storycloze-text")

EVAL_EPILOG = """examples:
  hf-slm eval runs/demo/runs/demo-s-1 --benchmark sblimp=benchmarks/sblimp-dev --benchmark sSC=benchmarks/ssc
  hf-slm eval models/823m-82b --benchmark sblimp=benchmarks/sblimp-dev --output results/823m.json
  hf-slm eval EleutherAI/pythia-160m --benchmark blimp=benchmarks/blimp-text --benchmark tSC=benchmarks/tsc-text
  accelerate launch recipes/eval.py MODEL --benchmark ...        (several GPUs)

Scoring presets: paper (default; the authors' release: whole utterance after EOS, mean NLL, ties 0.5 in sBLIMP
and 0 in the StoryClozes, sBLIMP accuracy = macro mean over phenomena of voice-averaged pair decisions), sum and
mean (continuation after its prompt, summed or per-token log-probability, ties 0.5, mean over items).
See docs/evaluating.md."""

BUILD_EPILOG = """layouts (SOURCE is the released folder or file, as unpacked):
  zerospeech-syntactic   sLM21 root (or its syntactic/dev folder): gold.csv + <filename>.wav   -> sblimp
  zerospeech-lexical     sLM21 root (or its lexical/dev folder): gold.csv + <filename>.wav     -> swuggy
  sSC, tSC               the unzipped spoken / topic StoryCloze folder: <n>_<story id>_{correct,incorrect}.wav
  salmon                 the unzipped SALMon folder: <part>/sample_<i>_<k>.wav (k=0 the positive)
  blimp-text             BLiMP's data/ folder of <paradigm>.jsonl (or one .jsonl file)         -> blimp
  storycloze-text        StoryCloze CSV (InputStoryid, InputSentence1-4, RandomFifthSentenceQuiz1/2,
                         AnswerRightEnding), e.g. the spring 2016 test set                     -> storycloze
  topic-storycloze-text  the same CSV; each story's negative is the true ending of another story
                         (seeded), as topic StoryCloze builds its negatives                    -> topic_storycloze

examples:
  hf-slm build-benchmark zerospeech-syntactic zr2021/ benchmarks/sblimp-dev --tokenizer tokenizers/mhubert-km500
  hf-slm build-benchmark sSC sSC_release/ benchmarks/ssc --tokenizer tokenizers/mhubert-km500
  hf-slm build-benchmark blimp-text blimp/data benchmarks/blimp-text
Speech layouts encode shard by shard: a killed import resumes where it stopped; unusable audio is skipped and
counted by reason in the dataset card."""


def parse_benchmarks(values: list[str]) -> dict[str, str]:
    """``["NAME=PATH", ...]`` -> ``{NAME: PATH}``; ``ValueError`` for a malformed or repeated entry."""
    out: dict[str, str] = {}
    for value in values:
        name, sep, path = value.partition("=")
        if not sep or not name or not path:
            raise ValueError(f"--benchmark {value!r}: expected NAME=PATH, e.g. sblimp=benchmarks/sblimp-dev")
        if name in out:
            raise ValueError(f"--benchmark {name!r} given twice")
        out[name] = path
    return out


def add_eval_arguments(p: argparse.ArgumentParser) -> None:
    """The options shared by ``hf-slm eval`` and ``recipes/eval.py``."""
    p.add_argument("model", metavar="MODEL",
                   help="run folder (run.json + model/), model folder (ours, converted, or any causal LM) or Hub id")
    p.add_argument("--benchmark", "-b", action="append", default=[], metavar="NAME=PATH", required=True,
                   help=f"a benchmark to score; NAME is one of {BENCHMARK_NAMES}; PATH a folder written by "
                   "'hf-slm build-benchmark', a Parquet / JSONL / CSV file with the columns, a save_to_disk folder or "
                   "a Hub dataset id (repeat the option for several)")
    p.add_argument("--scoring", choices=PRESET_NAMES, default="paper", help="scoring preset (default: %(default)s)")
    p.add_argument("--output", "-o", metavar="JSON", help="write the results document here")
    p.add_argument("--n-units", type=int, metavar="K", help="units K of a unit LM (default: vocabulary size - 2)")
    p.add_argument("--tokenizer", metavar="ID", help="text tokenizer of a text LM (default: the model's own)")
    p.add_argument("--split", help="benchmark split (default: the only one, else test / dev / validation)")
    p.add_argument("--revision", help="Hub revision of the model (a commit, branch or tag)")
    p.add_argument("--batch-size", type=int, default=256, help="most candidates per forward pass (default 256)")
    p.add_argument("--max-tokens", type=int, default=32768,
                   help="most padded tokens per forward pass (default 32768; lower it if memory runs out)")
    p.add_argument("--device", help="torch device (default: cuda when available, else cpu)")
    p.add_argument("--repo-id", help="repository id written in a run's model card (default: the run name)")
    p.add_argument("--no-update-run", action="store_true",
                   help="with a run folder, leave its run.json and model card unchanged")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")


def add_build_arguments(p: argparse.ArgumentParser) -> None:
    """The options shared by ``hf-slm build-benchmark`` and ``dataset_scripts/build_benchmarks.py``."""
    p.add_argument("layout", choices=LAYOUT_NAMES, metavar="LAYOUT", help="released layout (see below)")
    p.add_argument("source", metavar="SOURCE", help="the release as downloaded and unpacked")
    p.add_argument("output", metavar="OUTPUT", help="folder of the benchmark dataset (Parquet + card)")
    p.add_argument("--tokenizer", metavar="TOK", help="SpeechTokenizer folder or Hub id (speech layouts)")
    p.add_argument("--tokenizer-revision", help="Hub revision of the tokenizer")
    p.add_argument("--split", default="dev", help="sLM21 split to import (default: dev; test has no public gold)")
    p.add_argument("--seed", type=int, default=0, help="seed of topic-storycloze-text's negatives (default 0)")
    p.add_argument("--batch-size", type=int, default=16, help="utterances per encoder batch (default 16)")
    p.add_argument("--shard-rows", type=int, default=2000,
                   help="utterances per resumable shard (default 2000)")


def run_eval(args: argparse.Namespace, state=None) -> int:
    from hf_slm.evaluation.runner import evaluate_model

    document = evaluate_model(
        args.model, parse_benchmarks(args.benchmark), scoring=args.scoring, output=args.output,
        n_units=args.n_units, tokenizer=args.tokenizer, split=args.split, revision=args.revision,
        batch_size=args.batch_size, max_tokens=args.max_tokens, device=args.device,
        update_run=not args.no_update_run, repo_id=args.repo_id, state=state, progress=not args.no_progress,
    )
    if state is None or state.is_main_process:
        if args.output:
            print(f"[hf-slm eval] results: {args.output}")
        if document["model"]["run"] and not args.no_update_run:
            print(f"[hf-slm eval] merged into {document['model']['run']}/run.json and model/README.md")
        if not args.output:
            print(json.dumps(document["results"], indent=2))
    return 0


def eval_command(args: argparse.Namespace) -> int:
    return run_eval(args)


def run_build(args: argparse.Namespace) -> int:
    from hf_slm.evaluation.importers import import_benchmark

    out = import_benchmark(args.layout, args.source, args.output, tokenizer=args.tokenizer,
                           tokenizer_revision=args.tokenizer_revision, split=args.split, seed=args.seed,
                           batch_size=args.batch_size, shard_rows=args.shard_rows)
    print(f"[hf-slm build-benchmark] wrote {out}")
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``hf-slm eval`` and ``hf-slm build-benchmark``."""
    p = subparsers.add_parser(
        "eval", help="score a model on sBLIMP / sWUGGY / spoken and topic StoryCloze / SALMon / text benchmarks",
        formatter_class=argparse.RawDescriptionHelpFormatter, epilog=EVAL_EPILOG,
        description="Score a causal LM on paired-choice benchmark datasets (and the test loss) and write one results "
        "JSON: model and its file hashes, tokenizer, benchmark sources, the scoring preset, and per benchmark "
        "accuracy, n, 95% CI and breakdowns. With a run folder the results are merged into its run.json metrics and "
        "its model card's model-index.",
    )
    add_eval_arguments(p)
    p.set_defaults(func=eval_command)
    b = subparsers.add_parser(
        "build-benchmark", help="import a released benchmark (sLM21, sSC/tSC, SALMon, BLiMP...) as a dataset",
        formatter_class=argparse.RawDescriptionHelpFormatter, epilog=BUILD_EPILOG,
        description="Turn a local copy of a released benchmark, in its released layout, into a benchmark dataset "
        "(Parquet + card): one row per candidate with id, item_id, label, phenomenon, voice, pair_id and units "
        "(speech, encoded with --tokenizer) or text.",
    )
    add_build_arguments(b)
    b.set_defaults(func=run_build)
