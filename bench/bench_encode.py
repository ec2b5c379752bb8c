"""Throughput and memory of the speech tokenizer, each figure next to a baseline measured in the same run.

Default (log-mel, CPU, synthetic audio):
- end to end: what ``build_units.py`` runs, ``encode_audio_dataset`` over rows of WAV bytes (decoding ahead
  on ``--decode-workers`` threads, encoding, k-means assignment, dedup, the unit ``Dataset``), then the
  stages timed apart;
- batch budget: ``LogMelEncoder.encode_batch`` at several ``batch_seconds``, against the old batching (32
  waves padded to the longest) on the same clips, with a check that the units are identical;
- mixed lengths (issue 16): one ``--long-minutes`` file with fifteen 1.5 s files; peak RSS and time of the
  default batching against padding them all into one batch, each in a fresh process.

``--hubert``: batches of 20 s clips with a 25 Hz HuBERT-base (randomly initialised unless ``--model-id``
names weights) end to end, against the raw ``HubertModel`` forward on the same batches, at ``--precision``;
with ``--agreement`` also the share of frames whose unit is the same in bf16 autocast as in float32 (units
from a k-means fitted on the float32 features; random weights make this an indication only).
``--hubert-long``: peak RSS of encoding a ``--long-minutes`` file in 30 s chunks against a 10-minute file and
against unchunked 1- and 4-minute files, each in a fresh process (a toy-width HuBERT, so that an hour runs on
CPU; the memory scaling is what is measured).

    python bench/bench_encode.py [--clips 64 --seconds 10 --long-minutes 10]
    python bench/bench_encode.py --hubert [--clips 128 --batch 16 --precision bf16 --agreement]
    python bench/bench_encode.py --hubert-long [--long-minutes 60]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import resource
import subprocess
import sys
import time

import numpy as np
import torch

from hf_slm.data.unit_dataset import encode_audio_dataset
from hf_slm.units.audio import encode_wav_bytes, load_audio
from hf_slm.units.hubert import HubertEncoder
from hf_slm.units.logmel import LogMelEncoder
from hf_slm.units.tokenizer import SpeechTokenizer

SR = 16000


def synthetic_wave(samples: int, rng: np.random.Generator) -> np.ndarray:
    """Tone sequences (100 ms each) with noise, made a minute at a time (no large temporaries)."""
    out = np.empty(samples, np.float32)
    phase = 0.0
    for start in range(0, samples, 60 * SR):
        n = min(60 * SR, samples - start)
        freqs = np.repeat(rng.uniform(150, 3000, size=n // 1600 + 1), 1600)[:n]
        cycles = phase + np.cumsum(freqs) / SR
        out[start : start + n] = 0.3 * np.sin(2 * np.pi * cycles) + 0.02 * rng.standard_normal(n)
        phase = float(cycles[-1])
    return out


def synthetic_clips(n: int, seconds: float, seed: int = 0) -> list[bytes]:
    """WAV bytes of ``n`` synthetic clips, lengths jittered by +-20 %."""
    rng = np.random.default_rng(seed)
    return [encode_wav_bytes(synthetic_wave(int(seconds * SR * rng.uniform(0.8, 1.2)), rng), SR) for _ in range(n)]


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def _status_mb(field: str) -> float:
    with open("/proc/self/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith(field)) / 1024


def rss_mb() -> float:
    """Resident memory now (Linux), the baseline the peak during encoding is compared with; also restarts the
    peak count (``clear_refs`` 5), so that the peak read after encoding is encoding's, not the imports'."""
    try:
        with open("/proc/self/clear_refs", "w") as refs:
            refs.write("5")
    except OSError:
        pass  # an older kernel: the peak then counts from the process start (an upper bound)
    return _status_mb("VmRSS:")


def peak_rss_mb() -> float:
    """Peak resident memory since :func:`rss_mb` (Linux ``VmHWM``)."""
    try:
        return _status_mb("VmHWM:")
    except (OSError, StopIteration):
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def in_fresh_process(*args: str) -> dict:
    """Run this script with ``--child ...`` and return the JSON it prints (peak RSS is per process)."""
    done = subprocess.run([sys.executable, __file__, "--child", *args], capture_output=True, text=True, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def pipeline(tokenizer: SpeechTokenizer, clips: list[bytes], batch: int) -> tuple[float, dict[str, float]]:
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
        feats = encoder.encode_batch(waves, as_tensors=True)
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


def units_digest(tokenizer: SpeechTokenizer, feats: list[np.ndarray]) -> str:
    units = [tokenizer.units_of(f).units for f in feats]
    return hashlib.sha1(b"".join(u.tobytes() + b"|" for u in units)).hexdigest()[:12]


def old_batching(encoder: LogMelEncoder, waves: list[np.ndarray], batch: int = 32) -> list[np.ndarray]:
    """The encoder before issue 16: ``batch`` waves (sorted by length) padded to the longest, in one pass."""
    order = sorted(range(len(waves)), key=lambda i: -len(waves[i]))
    out: list[np.ndarray] = [np.empty(0)] * len(waves)
    for start in range(0, len(order), batch):
        idx = order[start : start + batch]
        for i, f in zip(idx, encoder.encode_batch([waves[i] for i in idx], batch_seconds=1e12), strict=True):
            out[i] = f
    return out


def bench_logmel(args: argparse.Namespace) -> None:
    torch.set_num_threads(args.threads or torch.get_num_threads())
    encoder = LogMelEncoder()
    clips = synthetic_clips(args.clips, args.seconds)
    tokenizer = SpeechTokenizer(encoder, np.random.default_rng(0).standard_normal((args.units, encoder.dim)))
    pipeline(tokenizer, clips[: args.batch], args.batch)  # warm-up
    audio, wall = end_to_end(tokenizer, clips, args.batch, args.decode_workers)
    _, stages = pipeline(tokenizer, clips, args.batch)
    print(f"log-mel pipeline on CPU ({torch.get_num_threads()} threads), K={args.units}, "
          f"{args.clips} clips of ~{args.seconds} s, {args.batch} rows a batch, {args.decode_workers} decode threads, "
          f"batch_seconds={encoder.batch_seconds:g}")
    print(f"end to end: {audio:.0f} s of audio in {wall:.2f} s = {audio / wall:.1f} audio-s/s")
    report("stages, one after another", audio, stages)

    waves = [load_audio(c) for c in clips]
    runs = {"old: 32 waves padded": lambda: old_batching(encoder, waves)}
    runs.update({f"batch_seconds={b:g}": (lambda b=b: encoder.encode_batch(waves, batch_seconds=b))
                 for b in args.budgets})
    best: dict[str, float] = {}
    digests = {}
    for _ in range(args.repeats):  # interleaved, best of n: the figures share the machine's state
        for name, run in runs.items():
            start = time.perf_counter()
            feats = run()
            best[name] = min(best.get(name, np.inf), time.perf_counter() - start)
            digests[name] = units_digest(tokenizer, feats)
    base = best["old: 32 waves padded"]
    print(f"encoder alone, {audio:.0f} s of audio, best of {args.repeats}:")
    for name, seconds in best.items():
        print(f"  {name:>22}: {audio / seconds:7.1f} audio-s/s  ({base / seconds:.2f}x the old batching)")
    print(f"  units identical in all settings: {len(set(digests.values())) == 1}")

    print(f"mixed lengths: one {args.long_minutes:g}-minute file with fifteen 1.5 s files (fresh process each):")
    old = in_fresh_process("logmel-mixed", str(args.long_minutes), "1e12")
    new = in_fresh_process("logmel-mixed", str(args.long_minutes), "0")
    for name, r in (("old: one padded batch", old), (f"batch_seconds={new['batch_seconds']:g}", new)):
        print(f"  {name:>22}: {r['seconds']:.2f} s, peak RSS {r['rss_mb']:.0f} MB ({r['before_mb']:.0f} MB resident "
              "before encoding)")
    print(f"  encoding raised the peak by {old['rss_mb'] - old['before_mb']:.0f} MB (old) vs "
          f"{new['rss_mb'] - new['before_mb']:.0f} MB; {old['seconds'] / new['seconds']:.2f}x faster; units "
          f"identical: {old['digest'] == new['digest']}")


def child_logmel_mixed(minutes: float, batch_seconds: float) -> dict:
    rng = np.random.default_rng(0)
    waves = [synthetic_wave(int(1.5 * SR), rng) for _ in range(15)]
    waves.insert(3, synthetic_wave(int(minutes * 60 * SR), rng))
    encoder = LogMelEncoder()
    tokenizer = SpeechTokenizer(encoder, np.random.default_rng(0).standard_normal((500, encoder.dim)))
    units_digest(tokenizer, encoder.encode_batch(waves[:2]))  # warm-up: libraries' first-use memory is not encoding's
    before = rss_mb()
    start = time.perf_counter()
    feats = encoder.encode_batch(waves, batch_seconds=batch_seconds or None)
    seconds = time.perf_counter() - start
    return {"seconds": seconds, "rss_mb": peak_rss_mb(), "before_mb": before, "digest": units_digest(tokenizer, feats),
            "batch_seconds": batch_seconds or encoder.batch_seconds}


def hubert_model(model_id: str | None, toy: bool = False):
    from transformers import HubertConfig, HubertModel

    if model_id:
        return HubertModel.from_pretrained(model_id)
    torch.manual_seed(0)
    # HuBERT-base with the 25 Hz conv stack of mhubert-base-25hz (strides 5,2,2,2,2,2,2,2 = 640 samples).
    conv = dict(conv_stride=(5, 2, 2, 2, 2, 2, 2, 2), conv_kernel=(10, 3, 3, 3, 3, 2, 2, 2))
    if toy:
        return HubertModel(HubertConfig(hidden_size=64, num_hidden_layers=2, num_attention_heads=2,
                                        intermediate_size=128, conv_dim=(32,) * 8, num_conv_pos_embeddings=16,
                                        num_conv_pos_embedding_groups=4, **conv)).eval()
    return HubertModel(HubertConfig(conv_dim=(512,) * 8, **conv)).eval()


@torch.inference_mode()
def raw_forward(model, waves: list[np.ndarray], batch: int, device: torch.device, dtype: torch.dtype) -> float:
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
    with torch.autocast(device.type, dtype=dtype, enabled=dtype != torch.float32):
        for x in batches:
            model(x)
    sync(device)
    return time.perf_counter() - t0


def bench_hubert(args: argparse.Namespace) -> None:
    device = torch.device(args.device or ("cuda" if torch.cuda.is_available() else "cpu"))
    dtype = torch.bfloat16 if args.precision == "bf16" else torch.float32
    # batch_seconds never splits a batch: the encoder runs the same batches as the raw forward
    encoder = HubertEncoder(hubert_model(args.model_id), layer=args.layer, device=device, dtype=dtype,
                            batch_seconds=args.batch * args.seconds * 1.2)
    clips = synthetic_clips(args.clips, args.seconds)
    waves = [load_audio(c) for c in clips]
    tokenizer = SpeechTokenizer(encoder, np.random.default_rng(0).standard_normal((args.units, encoder.dim)))
    end_to_end(tokenizer, clips[: 2 * args.batch], args.batch, args.decode_workers)  # warm-up (cudnn, allocator)
    raw_forward(encoder.model, waves[: args.batch], args.batch, device, dtype)
    audio, wall = end_to_end(tokenizer, clips, args.batch, args.decode_workers)
    raw = raw_forward(encoder.model, waves, args.batch, device, dtype)
    _, stages = pipeline(tokenizer, clips, args.batch)
    name = args.model_id or "random 25 Hz HuBERT-base"
    print(f"HuBERT ({name}, layer {args.layer}, {args.precision}) on {device}"
          f"{' ' + torch.cuda.get_device_name(device) if device.type == 'cuda' else ''}, K={args.units}, "
          f"{args.clips} clips of ~{args.seconds} s, batch {args.batch}, {args.decode_workers} decode threads")
    print(f"end to end (decode+encode+kmeans+dedup+Dataset): {audio / wall:.1f} audio-s/s")
    print(f"raw HubertModel forward (all {encoder.model.config.num_hidden_layers} layers, {args.precision}): "
          f"{audio / raw:.1f} audio-s/s; end to end / raw = {raw / wall:.0%}")
    report("stages, one after another", audio, stages)
    if args.agreement:
        agreement(encoder, waves, args)


def agreement(encoder: HubertEncoder, waves: list[np.ndarray], args: argparse.Namespace) -> None:
    """Share of frames with the same unit in bf16 autocast and in float32, and the time of each."""
    from hf_slm.units.kmeans import fit_kmeans

    feats, seconds = {}, {}
    for dtype in (torch.float32, torch.bfloat16):
        encoder.dtype = dtype
        sync(encoder.device)
        start = time.perf_counter()
        feats[dtype] = encoder.encode_batch(waves)
        sync(encoder.device)
        seconds[dtype] = time.perf_counter() - start
    fp32 = np.concatenate(feats[torch.float32])
    centroids = fit_kmeans(fp32[:: max(1, len(fp32) // 100_000)], args.units, n_init=1)
    tokenizer = SpeechTokenizer(encoder, centroids, dedup=False)
    a = tokenizer.units_of(fp32).units
    b = tokenizer.units_of(np.concatenate(feats[torch.bfloat16])).units
    print(f"bf16 vs fp32: unit agreement {float((a == b).mean()):.4f} over {len(a):,} frames (K={args.units}, "
          f"k-means fitted on the fp32 features); encode {seconds[torch.float32] / seconds[torch.bfloat16]:.2f}x "
          "faster in bf16")


def bench_hubert_long(args: argparse.Namespace) -> None:
    print("HuBERT (toy width, 25 Hz conv stack, layer 2) on CPU, peak RSS of one file (fresh process each):")
    cases = [(10, "30"), (args.long_minutes, "30"), (1, "0"), (4, "0")]
    results = {case: in_fresh_process("hubert-long", str(case[0]), case[1]) for case in cases}
    for (minutes, chunk), r in results.items():
        print(f"  {minutes:>4g} min, {'30 s chunks' if chunk == '30' else 'unchunked  '}: peak RSS {r['rss_mb']:6.0f} MB "
              f"(+{r['rss_mb'] - r['before_mb']:5.0f} MB encoding), {r['seconds']:.1f} s, {r['frames']} frames")
    def grown(case: tuple) -> float:
        return results[case]["rss_mb"] - results[case]["before_mb"]

    print(f"  encoding raised the peak by: chunked {grown((10, '30')):.0f} MB (10 min) and "
          f"{grown((args.long_minutes, '30')):.0f} MB ({args.long_minutes:g} min): bounded by batch_seconds, not the "
          f"file; unchunked {grown((1, '0')):.0f} MB (1 min) and {grown((4, '0')):.0f} MB (4 min): attention grows with "
          "the square of the length")


def child_hubert_long(minutes: float, chunk: float) -> dict:
    encoder = HubertEncoder(hubert_model(None, toy=True), layer=2, device="cpu", chunk_seconds=chunk or None)
    wave = synthetic_wave(int(minutes * 60 * SR), np.random.default_rng(0))
    encoder.encode(wave[: 5 * SR])  # warm-up: libraries' first-use memory is not encoding's
    before = rss_mb()
    start = time.perf_counter()
    feats = encoder.encode(wave)
    return {"seconds": time.perf_counter() - start, "rss_mb": peak_rss_mb(), "before_mb": before,
            "frames": len(feats)}


def main() -> None:
    if len(sys.argv) > 2 and sys.argv[1] == "--child":
        kind, *values = sys.argv[2:]
        child = {"logmel-mixed": child_logmel_mixed, "hubert-long": child_hubert_long}[kind]
        print(json.dumps(child(*map(float, values))))
        return
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--hubert", action="store_true", help="benchmark the HuBERT encoder (CUDA)")
    parser.add_argument("--hubert-long", action="store_true", help="peak memory of HuBERT on one long file")
    parser.add_argument("--clips", type=int, default=None, help="number of clips (64 log-mel, 128 HuBERT)")
    parser.add_argument("--seconds", type=float, default=None, help="mean clip length (10 log-mel, 20 HuBERT)")
    parser.add_argument("--batch", type=int, default=16, help="rows a batch (encode_audio_dataset's batch_size)")
    parser.add_argument("--budgets", type=float, nargs="*", default=[10, 30, 60, 160],
                        help="log-mel batch_seconds to compare with the old batching")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--long-minutes", type=float, default=None, help="the long file (10 log-mel, 60 HuBERT)")
    parser.add_argument("--units", type=int, default=500)
    parser.add_argument("--layer", type=int, default=11)
    parser.add_argument("--precision", choices=["fp32", "bf16"], default="fp32")
    parser.add_argument("--agreement", action="store_true", help="--hubert: bf16 vs fp32 unit agreement")
    parser.add_argument("--model-id", default=None, help="HuBERT weights (default: random init, no download)")
    parser.add_argument("--device", default=None)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--decode-workers", type=int, default=2, help="threads decoding audio ahead (0: in line)")
    args = parser.parse_args()
    if args.hubert_long:
        args.long_minutes = args.long_minutes or 60.0
        bench_hubert_long(args)
    elif args.hubert:
        args.clips = args.clips or 128
        args.seconds = args.seconds or 20.0
        bench_hubert(args)
    else:
        args.clips = args.clips or 64
        args.seconds = args.seconds or 10.0
        args.long_minutes = args.long_minutes or 10.0
        bench_logmel(args)


if __name__ == "__main__":
    main()
