"""TTS throughput (seconds of 16 kHz audio per wall-clock second) and intelligibility (WER) per backend.

Every backend speaks the same TinyStories-like stories through ``TTSPipeline`` (normalisation, splitting,
batching, one resampling to 16 kHz); eSpeak NG, measured in the same run, is the baseline of the ratio column.
WER: pocketsphinx (open vocabulary, ``hf_slm.tts.judge``) on the judge's fixed sentences; "n/a" for random
weights. The last column is the wall-clock time to speak sTinyStories (72k hours) on one such device.

Backends are ``NAME`` or ``NAME=MODEL`` (a folder or a Hub id in the local cache). ``--random-weights`` builds
FastSpeech2 / VITS / Bark at their published sizes with random weights (durations biased to typical values),
so their speed can be measured on a machine without the checkpoints.

    python bench/bench_tts.py                                          # espeak, hibari (CPU)
    python bench/bench_tts.py --backends espeak fastspeech2 vits --random-weights --stories 8
    python bench/bench_tts.py --backends espeak vits=facebook/mms-tts-eng bark=suno/bark-small --device cuda
"""

from __future__ import annotations

import argparse
import math
import tempfile
import time
from pathlib import Path

import torch

from hf_slm.tts import TTSPipeline, load_voice
from hf_slm.tts.backends import BackendUnavailable
from hf_slm.tts.judge import SENTENCES, PocketsphinxJudge
from hf_slm.tts.textgen import make_stories

STINYSTORIES_HOURS = 72_000


def random_model(backend: str, folder: Path) -> str:
    """A published-size model of ``backend`` with random weights, saved to ``folder``."""
    import json

    from transformers import AutoTokenizer  # noqa: F401  (fails early when transformers lacks the backend)

    folder.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(0)
    if backend == "vits":
        from transformers import VitsConfig, VitsModel, VitsTokenizer

        chars = list(" abcdefghijklmnopqrstuvwxyz'-.,!?")
        (folder / "vocab.json").write_text(json.dumps({c: i for i, c in enumerate(["<pad>", *chars])}))
        VitsTokenizer(vocab_file=str(folder / "vocab.json"), pad_token="<pad>", unk_token="<pad>",
                      add_blank=True, phonemize=False).save_pretrained(folder)
        model = VitsModel(VitsConfig(vocab_size=len(chars) + 1, use_stochastic_duration_prediction=False))
        with torch.no_grad():
            model.duration_predictor.proj.bias.fill_(math.log(4.0))  # ~4 frames (64 ms) per symbol
    elif backend == "fastspeech2":
        from transformers import (
            FastSpeech2ConformerTokenizer,
            FastSpeech2ConformerWithHifiGan,
            FastSpeech2ConformerWithHifiGanConfig,
        )

        from hf_slm.tts.backends import import_g2p_en

        phonemes = ["<blank>", "<unk>", *import_g2p_en().G2p().phonemes[4:], ",", ".", "?", "!", "<sos/eos>"]
        (folder / "vocab.json").write_text(json.dumps({p: i for i, p in enumerate(phonemes)}))
        FastSpeech2ConformerTokenizer(vocab_file=str(folder / "vocab.json")).save_pretrained(folder)
        config = FastSpeech2ConformerWithHifiGanConfig()
        config.model_config.vocab_size = len(phonemes)
        model = FastSpeech2ConformerWithHifiGan(config)
        with torch.no_grad():
            model.model.duration_predictor.linear.bias.fill_(math.log(7.0))  # ~6 frames (70 ms) per phoneme
    elif backend == "bark":
        from transformers import (
            BarkCoarseConfig,
            BarkConfig,
            BarkFineConfig,
            BarkModel,
            BarkProcessor,
            BarkSemanticConfig,
            BertTokenizer,
            GenerationConfig,
        )
        from transformers.models.bark import generation_configuration_bark as gen

        words = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *"abcdefghijklmnopqrstuvwxyz.,!?'"]
        (folder / "vocab.txt").write_text("\n".join(words) + "\n")
        BarkProcessor(tokenizer=BertTokenizer(vocab_file=str(folder / "vocab.txt"))).tokenizer.save_pretrained(folder)
        config = BarkConfig(  # bark-small: 12 x 768 sub-models over the published vocabularies
            semantic_config=BarkSemanticConfig(input_vocab_size=129_600, output_vocab_size=10_048).to_dict(),
            coarse_acoustics_config=BarkCoarseConfig(input_vocab_size=12_096, output_vocab_size=12_096).to_dict(),
            fine_acoustics_config=BarkFineConfig(input_vocab_size=1_056, output_vocab_size=1_056).to_dict(),
        )
        model = BarkModel(config)
        model.generation_config = GenerationConfig(**gen.BarkGenerationConfig(  # the published settings
            semantic_config=gen.BarkSemanticGenerationConfig().to_dict(),
            coarse_acoustics_config=gen.BarkCoarseGenerationConfig().to_dict(),
            fine_acoustics_config=gen.BarkFineGenerationConfig().to_dict()).to_dict())
    else:
        raise ValueError(f"--random-weights has no {backend!r} model")
    model.save_pretrained(folder)
    return str(folder)


def measure(pipe: TTSPipeline, texts: list[str]) -> tuple[float, float]:
    """(audio seconds, wall seconds) of speaking ``texts`` (one warm-up text first)."""
    pipe.speak(texts[:1])
    if torch.cuda.is_available():
        torch.cuda.synchronize()
    start = time.perf_counter()
    waves = pipe.speak(texts)
    if torch.cuda.is_available():
        torch.cuda.synchronize()
    wall = time.perf_counter() - start
    return sum(len(w) for w in waves if hasattr(w, "__len__")) / pipe.sample_rate, wall


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--backends", nargs="*", default=["espeak", "hibari"])
    parser.add_argument("--stories", type=int, default=16, help="stories spoken per backend")
    parser.add_argument("--device", default=None)
    parser.add_argument("--batch-size", type=int, default=16, help="texts per forward pass (batching backends)")
    parser.add_argument("--random-weights", action="store_true", help="published sizes, random weights")
    parser.add_argument("--no-wer", action="store_true", help="skip the pocketsphinx WER column")
    args = parser.parse_args()

    texts = [s.text for s in make_stories(args.stories, seed=0)]
    judge = None if args.no_wer else PocketsphinxJudge()
    names = ["espeak", *[b for b in args.backends if b != "espeak"]]  # the baseline first
    rows, baseline = [], None
    with tempfile.TemporaryDirectory() as tmp:
        for spec in names:
            backend, _, model = spec.partition("=")
            random = args.random_weights and backend in ("fastspeech2", "vits", "bark") and not model
            kwargs = {"device": args.device, "batch_size": args.batch_size}
            if random and backend == "bark":  # generate a fixed ~6 s per text: random weights never stop by themselves
                kwargs.update(semantic_min_new_tokens=300, semantic_max_new_tokens=300)
            try:
                if random:
                    model = random_model(backend, Path(tmp) / backend)
                if backend in ("espeak", "hibari"):
                    voice = load_voice(backend)
                elif backend == "vits":
                    voice = load_voice("vits", model or None, **kwargs)
                elif backend == "bark":
                    voice = load_voice("bark", "" if random else None, model=model or None, **kwargs)
                else:
                    voice = load_voice(backend, model=model or None, **kwargs)
            except (BackendUnavailable, ImportError, OSError) as err:
                rows.append((spec, None, None, None, f"not available: {err}"))
                continue
            pipe = TTSPipeline(voice)
            audio, wall = measure(pipe, texts)
            speed = audio / wall
            baseline = speed if backend == "espeak" else baseline
            wer = None if random or judge is None else judge.judge(pipe, SENTENCES).wer
            failed = f"  failures: {dict(pipe.failures)}" if pipe.failures else ""
            rows.append((spec + (" (random)" if random else ""), speed, wer, audio, failed))
    device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    print(f"device: {device} ({torch.cuda.get_device_name(0) if device.startswith('cuda') else 'CPU'}), "
          f"{len(texts)} stories, batch {args.batch_size}")
    print(f"{'backend':<34} {'audio s/s':>10} {'vs espeak':>10} {'WER':>6} {'device-hours for 72k h':>24}")
    for name, speed, wer, _, note in rows:
        if speed is None:
            print(f"{name:<34} {note}")
            continue
        hours = f"{STINYSTORIES_HOURS / speed:,.0f}" if speed > 0 else "-"
        wer_text = "n/a" if wer is None else f"{wer:.2f}"
        print(f"{name:<34} {speed:>10.1f} {speed / baseline:>9.2f}x {wer_text:>6} {hours:>24}{note}")


if __name__ == "__main__":
    main()
