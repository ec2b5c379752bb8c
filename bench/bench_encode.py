"""Throughput of the speech tokenizer, in seconds of audio per second.

End to end is what ``build_units.py`` runs: ``encode_audio_dataset`` over rows of WAV bytes (decoding ahead
on ``--decode-workers`` threads, encoding, k-means assignment on the encoder's device, dedup, the unit
``Dataset``). A second, sequential pass times each stage apart, to show where the time goes.

Default: the log-mel encoder on CPU, synthetic audio. ``--hubert``: on CUDA, batches of 20 s clips with a
25 Hz HuBERT-base (randomly initialised unless ``--model-id`` names weights) against the raw ``HubertModel``
forward (all layers, bf16 autocast) on the same batches in the same run.

    python bench/bench_encode.py [--clips 64 --seconds 10]
    python bench/bench_encode.py --hubert [--clips 64 --batch 16 --model-id slprl/mhubert-base-25hz]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from hf_slm.data.unit_dataset import encode_audio_dataset
from hf_slm.units.audio import encode_wav_bytes, load_audio
from hf_slm.units.hubert import HubertEncoder
from hf_slm.units.logmel import LogMelEncoder
from hf_slm.units.tokenizer import SpeechTokenizer


def synthetic_clips(n: int, seconds: float, sr: int = 16000, seed: int = 0) -> list[bytes]:
    """WAV bytes of tone sequences with noise, lengths jittered by +-20 %."""
    rng = np.random.default_rng(seed)
    clips = []
    for _ in range(n):
        samples = int(seconds * sr * rng.uniform(0.8, 1.2))
        freqs = np.repeat(rng.uniform(150, 3000, size=samples // 1600 + 1), 1600)[:samples]
        wave = 0.3 * np.sin(2 * np.pi * np.cumsum(freqs) / sr) + 0.02 * rng.standard_normal(samples)
        clips.append(encode_wav_bytes(wave.astype(np.float32), sr))
    return clips


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def pipeline(
    tokenizer: SpeechTokenizer, clips: list[bytes], batch: int, **encode_kwargs
) -> tuple[float, dict[str, float]]:
    """Tokenize all clips, ``batch`` at a time, with the stages of ``SpeechTokenizer.encode_batch`` timed
    apart; returns (audio seconds, seconds spent per stage)."""
    stages = dict.fromkeys(["decode", "encode", "kmeans+dedup"], 0.0)
    audio = 0.0
    encoder = tokenizer.encoder
    device = getattr(encoder, "device", torch.device("cpu"))
    for start in range(0, len(clips), batch):
        t0 = time.perf_counter()
        waves = [load_audio(c, encoder.sample_rate) for c in clips[start : start + batch]]
        t1 = time.perf_counter()
        feats = encoder.encode_batch(waves, as_tensors=True, **encode_kwargs)
        sync(device)
        t2 = time.perf_counter()
        tokenizer.units_of_batch(feats)
        sync(device)
        t3 = time.perf_counter()
        stages["decode"] += t1 - t0
        stages["encode"] += t2 - t1
        stages["kmeans+dedup"] += t3 - t2
        audio += sum(len(w) for w in waves) / encoder.sample_rate
    return audio, stages


def end_to_end(tokenizer: SpeechTokenizer, clips: list[bytes], batch: int, workers: int) -> tuple[float, float]:
    """(audio seconds, wall seconds) of ``encode_audio_dataset`` over ``clips``, ``batch`` rows at a time."""
    rows = [{"id": str(i), "audio": {"bytes": c, "path": None}} for i, c in enumerate(clips)]
    device = getattr(tokenizer.encoder, "device", torch.device("cpu"))
    sync(device)
    start = time.perf_counter()
    units = encode_audio_dataset(rows, tokenizer, batch_size=batch, decode_workers=workers, desc="end to end")
    sync(device)
    return float(sum(units["seconds"])), time.perf_counter() - start


def report(name: str, audio: float, stages: dict[str, float]) -> None:
    total = sum(stages.values())
    parts = ", ".join(f"{k} {v / total:.0%}" for k, v in stages.items())
    print(f"{name}: {audio:.0f} s of audio in {total:.2f} s = {audio / total:.1f} audio-s/s ({parts})")


def bench_logmel(args: argparse.Namespace) -> None:
    torch.set_num_threads(args.threads or torch.get_num_threads())
    encoder = LogMelEncoder()
    clips = synthetic_clips(args.clips, args.seconds)
    tokenizer = SpeechTokenizer(encoder, np.random.default_rng(0).standard_normal((args.units, encoder.dim)))
    pipeline(tokenizer, clips[: args.batch], args.batch, batch_size=args.batch)  # warm-up
    audio, wall = end_to_end(tokenizer, clips, args.batch, args.decode_workers)
    _, stages = pipeline(tokenizer, clips, args.batch, batch_size=args.batch)
    print(f"log-mel pipeline on CPU ({torch.get_num_threads()} threads), K={args.units}, "
          f"{args.clips} clips of ~{args.seconds} s, batch {args.batch}, {args.decode_workers} decode threads")
    print(f"end to end: {audio:.0f} s of audio in {wall:.2f} s = {audio / wall:.1f} audio-s/s")
    report("stages, one after another", audio, stages)


def hubert_model(model_id: str | None):
    from transformers import HubertConfig, HubertModel

    if model_id:
        return HubertModel.from_pretrained(model_id)
    # HuBERT-base with the 25 Hz conv stack of mhubert-base-25hz (strides 5,2,2,2,2,2,2,2 = 640 samples).
    config = HubertConfig(conv_stride=(5, 2, 2, 2, 2, 2, 2, 2), conv_kernel=(10, 3, 3, 3, 3, 2, 2, 2),
                          conv_dim=(512,) * 8)
    return HubertModel(config)


@torch.inference_mode()
def raw_forward(model, waves: list[np.ndarray], batch: int, device: torch.device) -> float:
    """Seconds for ``HubertModel.forward`` alone on padded batches already on the device."""
    batches = []
    for start in range(0, len(waves), batch):
        chunk = waves[start : start + batch]
        x = torch.zeros(len(chunk), max(len(w) for w in chunk))
        for row, w in zip(x, chunk, strict=True):
            row[: len(w)] = torch.from_numpy(w)
        batches.append(x.to(device))
    sync(device)
    t0 = time.perf_counter()
    with torch.autocast(device.type, dtype=torch.bfloat16, enabled=device.type == "cuda"):
        for x in batches:
            model(x)
    sync(device)
    return time.perf_counter() - t0


def bench_hubert(args: argparse.Namespace) -> None:
    device = torch.device(args.device or ("cuda" if torch.cuda.is_available() else "cpu"))
    if device.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
    # batch_seconds never splits a batch: the encoder runs the same batches as the raw forward
    encoder = HubertEncoder(hubert_model(args.model_id), layer=args.layer, device=device,
                            batch_seconds=args.batch * args.seconds * 1.2)
    clips = synthetic_clips(args.clips, args.seconds)
    waves = [load_audio(c) for c in clips]
    tokenizer = SpeechTokenizer(encoder, np.random.default_rng(0).standard_normal((args.units, encoder.dim)))
    end_to_end(tokenizer, clips[: 2 * args.batch], args.batch, args.decode_workers)  # warm-up (cudnn, allocator)
    raw_forward(encoder.model, waves[: args.batch], args.batch, device)
    audio, wall = end_to_end(tokenizer, clips, args.batch, args.decode_workers)
    raw = raw_forward(encoder.model, waves, args.batch, device)
    _, stages = pipeline(tokenizer, clips, args.batch)
    name = args.model_id or "random 25 Hz HuBERT-base"
    print(f"HuBERT ({name}, layer {args.layer}) on {device}"
          f"{' ' + torch.cuda.get_device_name(device) if device.type == 'cuda' else ''}, K={args.units}, "
          f"{args.clips} clips of ~{args.seconds} s, batch {args.batch}, {args.decode_workers} decode threads")
    print(f"end to end (decode+encode+kmeans+dedup+Dataset): {audio / wall:.1f} audio-s/s")
    print(f"raw HubertModel forward (all {encoder.model.config.num_hidden_layers} layers, bf16 autocast on CUDA): "
          f"{audio / raw:.1f} audio-s/s; end to end / raw = {raw / wall:.0%}")
    report("stages, one after another", audio, stages)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--hubert", action="store_true", help="benchmark the HuBERT encoder (CUDA)")
    parser.add_argument("--clips", type=int, default=None, help="number of clips (64 log-mel, 128 HuBERT)")
    parser.add_argument("--seconds", type=float, default=None, help="mean clip length (10 log-mel, 20 HuBERT)")
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--units", type=int, default=500)
    parser.add_argument("--layer", type=int, default=11)
    parser.add_argument("--model-id", default=None, help="HuBERT weights (default: random init, no download)")
    parser.add_argument("--device", default=None)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--decode-workers", type=int, default=2, help="threads decoding audio ahead (0: in line)")
    args = parser.parse_args()
    if args.hubert:
        args.clips = args.clips or 128
        args.seconds = args.seconds or 20.0
        bench_hubert(args)
    else:
        args.clips = args.clips or 64
        args.seconds = args.seconds or 10.0
        bench_logmel(args)


if __name__ == "__main__":
    main()
