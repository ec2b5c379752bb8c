"""Fit a speech tokenizer (k-means on encoder features) on an audio dataset; save it or push it to the Hub.

    python dataset_scripts/fit_tokenizer.py SOURCE --output DIR [--model-id slprl/mhubert-base-25hz --layer 11]
    python dataset_scripts/fit_tokenizer.py SOURCE --output DIR --encoder logmel --frame-rate 12.5 --n-units 100

SOURCE is a ``save_to_disk`` folder, a data folder or a Hub dataset id, as for ``build_units.py``. Features of
``--max-utterances`` utterances (a seeded shuffle of the split) are sampled down to ``--max-frames`` frames
(reservoir sampling), and ``--n-units`` centroids are fitted with scikit-learn's ``MiniBatchKMeans``
(``hf_slm.units.kmeans``). Unusable audio is skipped and counted. The folder loads with
``SpeechTokenizer.from_pretrained(DIR)`` and is what ``build_units.py --tokenizer`` takes.
"""

from __future__ import annotations

import argparse
import sys
from collections import Counter
from collections.abc import Iterable, Iterator
from typing import Any

import numpy as np

from hf_slm.data.build import load_audio_dataset
from hf_slm.units import AudioError, HubertEncoder, LogMelEncoder, SpeechTokenizer, load_audio


def usable_waves(
    rows: Iterable[dict[str, Any]], column: str, sample_rate: int, skipped: Counter
) -> Iterator[np.ndarray]:
    """The decoded audio of ``rows``; unusable audio is skipped and counted in ``skipped`` by reason."""
    for row in rows:
        try:
            yield load_audio(row[column], sample_rate)
        except AudioError as err:
            skipped[err.reason] += 1


def _by_reason(skipped: Counter) -> str:
    return f" ({', '.join(f'{k}: {v}' for k, v in sorted(skipped.items()))})" if skipped else ""


def make_encoder(args: argparse.Namespace):
    if args.encoder == "logmel":
        return LogMelEncoder(frame_rate=args.frame_rate, n_mels=args.n_mels, cmvn=not args.no_cmvn)
    return HubertEncoder(args.model_id, layer=args.layer, revision=args.model_revision, device=args.device,
                         dtype=args.precision)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("source", help="audio dataset: save_to_disk folder, data folder or Hub id")
    parser.add_argument("--output", required=True, help="folder to write the tokenizer to")
    parser.add_argument("--push-to-hub", metavar="REPO_ID", help="also upload the tokenizer to the Hub")
    parser.add_argument("--split", default="train")
    parser.add_argument("--config", default=None, help="dataset config name (Hub datasets)")
    parser.add_argument("--audio-column", default="audio")
    parser.add_argument("--streaming", action="store_true", help="stream the source instead of downloading it")
    parser.add_argument("--encoder", choices=["hubert", "logmel"], default="hubert")
    parser.add_argument("--model-id", default="slprl/mhubert-base-25hz", help="HuBERT model (Hub id or folder)")
    parser.add_argument("--model-revision", default=None, help="Hub revision of the HuBERT model (pin a commit)")
    parser.add_argument("--layer", type=int, default=11, help="HuBERT layer whose features are clustered")
    parser.add_argument("--device", default=None, help="HuBERT device (default: CUDA when available)")
    parser.add_argument("--precision", choices=["fp32", "bf16"], default="fp32",
                        help="HuBERT forward precision (default fp32, as the paper's release; saved with the tokenizer)")
    parser.add_argument("--frame-rate", type=float, default=25.0, help="log-mel frames per second")
    parser.add_argument("--n-mels", type=int, default=40, help="log-mel bands")
    parser.add_argument("--no-cmvn", action="store_true", help="log-mel without per-utterance CMVN")
    parser.add_argument("--n-units", type=int, default=500, help="K, the number of units (default %(default)s)")
    parser.add_argument("--max-utterances", type=int, default=20_000, help="utterances encoded (default %(default)s)")
    parser.add_argument("--max-frames", type=int, default=500_000, help="frames k-means is fitted on")
    parser.add_argument("--no-dedup", action="store_true", help="keep consecutive repeated units when encoding")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    try:
        ds = load_audio_dataset(args.source, split=args.split, config=args.config, audio_column=args.audio_column,
                                streaming=args.streaming)
        encoder = make_encoder(args)
    except (FileNotFoundError, ValueError, OSError) as err:
        print(f"fit_tokenizer: error: {err}", file=sys.stderr)
        return 2
    if args.streaming:
        rows = ds.shuffle(seed=args.seed, buffer_size=10_000).take(args.max_utterances)
    else:
        rows = ds.shuffle(seed=args.seed).select(range(min(args.max_utterances, len(ds))))
    skipped: Counter = Counter()
    try:
        tokenizer = SpeechTokenizer.fit(encoder, usable_waves(rows, args.audio_column, encoder.sample_rate, skipped),
                                        n_units=args.n_units, max_frames=args.max_frames, seed=args.seed,
                                        dedup=not args.no_dedup)
    except ValueError as err:  # e.g. fewer frames than units
        print(f"fit_tokenizer: error: {err}", file=sys.stderr)
        return 2
    tokenizer.save_pretrained(args.output)
    print(f"wrote SpeechTokenizer (K={tokenizer.n_units}, {tokenizer.frame_rate:g} Hz) to {args.output}; "
          f"skipped {sum(skipped.values())} unusable utterance(s){_by_reason(skipped)}")
    if args.push_to_hub:
        print(f"pushed: {tokenizer.push_to_hub(args.push_to_hub)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
