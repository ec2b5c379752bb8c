"""``hf-slm units ...``: import a published k-means, encode an audio file to units."""

from __future__ import annotations

import argparse
import json
import sys


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``units`` command and its subcommands."""
    units = subparsers.add_parser("units", help="speech tokenizer: audio -> discrete units")
    sub = units.add_subparsers(dest="units_command", required=True)

    imp = sub.add_parser(
        "import-kmeans",
        help="convert a pickled scikit-learn k-means (e.g. TWIST's *_km500.bin) into a SpeechTokenizer folder",
        description="WARNING: SRC is unpickled, which can run arbitrary code: only import files you trust. "
        "The output folder (config.json + model.safetensors) loads without unpickling.",
    )
    imp.add_argument("src", help="joblib/pickle file of a fitted sklearn KMeans or MiniBatchKMeans")
    imp.add_argument("out_dir", help="folder to write the tokenizer to")
    imp.add_argument("--encoder-id", default="slprl/mhubert-base-25hz", help="HuBERT model on the Hub (or path)")
    imp.add_argument("--revision", default=None, help="Hub revision of the encoder (pin a commit)")
    imp.add_argument("--layer", type=int, default=11, help="HuBERT layer the k-means was fitted on")
    imp.add_argument("--frame-rate", type=float, default=None, help="expected encoder frame rate, e.g. 25")
    imp.add_argument("--no-dedup", action="store_true", help="keep consecutive repeated units")
    imp.set_defaults(func=_import_kmeans)

    enc = sub.add_parser("encode", help="encode one audio file and print its units")
    enc.add_argument("audio", help="audio file (WAV, FLAC, OGG...)")
    enc.add_argument("--tokenizer", required=True, help="SpeechTokenizer folder or Hub id")
    enc.add_argument("--revision", default=None, help="Hub revision of the tokenizer")
    enc.add_argument("--no-resample", action="store_true", help="fail on audio at another sample rate")
    enc.add_argument("--json", action="store_true", help="print units, durations and n_frames as JSON")
    enc.set_defaults(func=_encode)


def _error(message: str) -> int:
    print(f"error: {message}", file=sys.stderr)
    return 2  # bad input (a missing or unusable file, a wrong tokenizer): a usage error


def _import_kmeans(args: argparse.Namespace) -> int:
    from .convert import hubert_encoder_config, import_sklearn_kmeans

    encoder = hubert_encoder_config(args.encoder_id, layer=args.layer, revision=args.revision)
    try:
        out = import_sklearn_kmeans(args.src, args.out_dir, encoder, dedup=not args.no_dedup,
                                    frame_rate=args.frame_rate)
    except FileNotFoundError:
        return _error(f"{args.src}: file not found")
    except ValueError as e:
        return _error(str(e))
    print(f"wrote SpeechTokenizer to {out}")
    return 0


def _encode(args: argparse.Namespace) -> int:
    from .audio import AudioError, load_audio
    from .tokenizer import SpeechTokenizer

    try:
        tokenizer = SpeechTokenizer.from_pretrained(args.tokenizer, revision=args.revision)
    except (OSError, ValueError) as e:
        return _error(f"cannot load tokenizer {args.tokenizer}: {e}")
    try:
        wave = load_audio(args.audio, tokenizer.sample_rate, resample=not args.no_resample)
    except AudioError as e:
        return _error(str(e))
    seq = tokenizer.encode(wave)
    if args.json:
        durations = None if seq.durations is None else seq.durations.tolist()
        print(json.dumps({"units": seq.units.tolist(), "durations": durations, "n_frames": seq.n_frames}))
    else:
        print(" ".join(map(str, seq.units.tolist())))
    return 0
