"""Speak a text dataset with a TTS backend and write a unit dataset (no audio stored) or an audio dataset.

    python dataset_scripts/synthesize.py --text-dataset roneneldan/TinyStories --backend fastspeech2 \\
        --tokenizer TOKENIZER --output DIR                       # sTinyStories as in the paper
    accelerate launch dataset_scripts/synthesize.py ...          # shards spread over GPUs / nodes
    python dataset_scripts/synthesize.py --text-dataset TEXTS --backend espeak --voices en-us en-us+m3 \\
        --keep-audio --output DIR                                # an Audio dataset instead of units
    python dataset_scripts/synthesize.py --cloze --text-dataset CLOZE --backend bark \\
        --voices v2/en_speaker_0 v2/en_speaker_1 --tokenizer TOKENIZER --output DIR   # multi-speaker Story Cloze

The text dataset is a Hub id (streamed), a data folder or a ``save_to_disk`` folder. Row i is spoken by voice
i mod len(--voices); text is normalised (numbers, abbreviations, unicode) and long texts are split at sentence
boundaries. The audio, resampled once to 16 kHz, goes straight into the speech tokenizer. The work goes shard
by shard (``--shard-rows``): a killed run (even kill -9) started again with the same command redoes only the
unfinished shards. Texts that could not be spoken are counted by reason in the dataset card, which also
records the backend, voices, hours and units. Backends: espeak, hibari, fastspeech2, vits, bark, kokoro (see
``hf_slm.tts.backends``); ``--cloze`` reads Story Cloze items (prompt/positive/negative, or the ROCStories
layout) and writes a benchmark dataset (id, item_id, label, units, voice, ...) for ``hf-slm eval``.
"""

from __future__ import annotations

import argparse
import sys

from hf_slm.tts.backends import BACKENDS, BackendUnavailable, load_voice
from hf_slm.tts.normalize import TextFrontEnd
from hf_slm.tts.pipeline import TTSPipeline


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--text-dataset", required=True, help="Hub id, data folder or save_to_disk folder")
    parser.add_argument("--splits", nargs="*", default=None,
                        help="splits to speak (default: train; with --cloze: test); validation/dev become test")
    parser.add_argument("--config", default=None, help="dataset config name (Hub datasets)")
    parser.add_argument("--revision", default=None, help="Hub revision of the text dataset (pin a commit)")
    parser.add_argument("--text-column", default="text")
    parser.add_argument("--id-column", default=None, help="default: ids <split>-<row number>")
    parser.add_argument("--limit", type=int, default=None, help="read at most this many rows per split")
    parser.add_argument("--no-streaming", action="store_true", help="download a Hub dataset instead of streaming it")
    parser.add_argument("--backend", required=True, choices=sorted(BACKENDS))
    parser.add_argument("--voices", nargs="*", default=None,
                        help="voices / speaker presets (espeak: en-us en-us+m3 ...; bark: v2/en_speaker_0 ...; "
                        "kokoro: af_heart ...; vits: checkpoints); default: the backend's default voice")
    parser.add_argument("--model", default=None, help="TTS model folder or Hub id (backend default otherwise)")
    parser.add_argument("--tts-tokenizer", default=None, help="fastspeech2: its phoneme tokenizer, if not in --model")
    parser.add_argument("--device", default=None, help="TTS and tokenizer device (default: this process's GPU)")
    parser.add_argument("--tts-batch-size", type=int, default=None, help="texts per TTS forward pass")
    parser.add_argument("--seed", type=int, default=None, help="seed of sampling backends (vits, bark)")
    parser.add_argument("--no-normalize", action="store_true", help="speak the text as it is")
    parser.add_argument("--max-chars", type=int, default=None, help="split longer texts at sentence boundaries "
                        "(default: the backend's limit)")
    parser.add_argument("--tokenizer", default=None, help="SpeechTokenizer folder or Hub id (units output)")
    parser.add_argument("--tokenizer-revision", default=None)
    parser.add_argument("--keep-audio", action="store_true", help="write an Audio dataset instead of units")
    parser.add_argument("--cloze", action="store_true", help="Story Cloze items -> a benchmark unit dataset")
    parser.add_argument("--output", required=True, help="output folder")
    parser.add_argument("--shard-rows", type=int, default=1000, help="rows per shard: the unit of work, of resuming "
                        "and of splitting over processes (default %(default)s)")
    parser.add_argument("--batch-size", type=int, default=16, help="texts per voice handed to the pipeline at once")
    return parser


def _voice_options(args: argparse.Namespace, device: str | None) -> dict:
    """The options of ``load_voice`` that ``--backend`` takes."""
    if args.backend == "espeak":
        return {}
    if args.backend == "hibari":
        return {"seed": args.seed}
    options = {"model": args.model, "device": device}
    if args.backend in ("vits", "bark"):
        options.update(seed=args.seed, batch_size=args.tts_batch_size)
    if args.backend == "fastspeech2":
        options.update(tokenizer=args.tts_tokenizer, batch_size=args.tts_batch_size)
    return options


def _voices(args: argparse.Namespace, device: str | None) -> list[TTSPipeline]:
    voices = []
    for name in args.voices or [None]:
        voice = load_voice(args.backend, name, **_voice_options(args, device))
        front_end = TextFrontEnd(normalize=not args.no_normalize,
                                 max_chars=args.max_chars or getattr(voice, "max_chars", 400))
        voices.append(TTSPipeline(voice, front_end=front_end))
    return voices


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.tokenizer is None and (args.cloze or not args.keep_audio):
        print("synthesize: error: --tokenizer is needed (or --keep-audio for an audio dataset)", file=sys.stderr)
        return 2
    from hf_slm.data.processes import process_state
    from hf_slm.tts.corpus import synthesize_cloze, synthesize_corpus

    state = process_state()  # under `accelerate launch`, each process speaks its own shards
    device = args.device or (str(state.device) if state.device.type == "cuda" else None)
    tokenizer = None
    try:
        voices = _voices(args, device)
        if args.tokenizer is not None:
            from hf_slm.units import SpeechTokenizer

            tokenizer = SpeechTokenizer.from_pretrained(args.tokenizer, revision=args.tokenizer_revision,
                                                        device=device if device and "cuda" in device else None)
        common = dict(config=args.config, revision=args.revision, batch_size=args.batch_size, limit=args.limit,
                      backend=args.backend, tokenizer_id=args.tokenizer, tokenizer_revision=args.tokenizer_revision)
        out = args.output
        if args.cloze:
            if state.is_main_process:
                synthesize_cloze(args.text_dataset, voices, tokenizer, args.output,
                                       split=(args.splits or ["test"])[0], **common)
        else:
            synthesize_corpus(
                args.text_dataset, voices, args.output, tokenizer=tokenizer, keep_audio=args.keep_audio,
                splits=args.splits or ["train"], text_column=args.text_column, id_column=args.id_column,
                shard_rows=args.shard_rows, process_index=state.process_index, num_processes=state.num_processes,
                streaming=not args.no_streaming, **common)
    except (FileNotFoundError, ValueError, BackendUnavailable) as err:
        print(f"synthesize: error: {err}", file=sys.stderr)
        return 2
    state.wait_for_everyone()
    if state.is_main_process:
        print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
