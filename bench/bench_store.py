"""The token store at scale: a large synthetic corpus against a small one, in the same run.

For each corpus size (default 2e7 and 2e9 units) the script writes a synthetic unit dataset (Parquet shards of
random units, ~300 per utterance, plus its card; not timed), then measures
- pack time: ``pack_mix`` streaming it through ``datasets`` into the memory-mapped uint16 store;
- trainer start-up, in a fresh process: ``load_training_data`` (locating the dataset, fingerprinting the mix,
  finding the packed store, opening both sides) + ``plan_data`` (the paper's random-window sampler); then the
  first batch (from disk); the peak RSS of that process (``VmHWM``) then, and after the batch reads (split
  into private memory and pages of the memory-mapped store, which the kernel can drop at will), with the RSS
  after imports;
- batch-read throughput: random windows of ``block_size + 1`` tokens, ``--batch`` per step, as the trainer reads
  them, from disk: the store's pages are evicted from the page cache first (``--warm`` keeps them).
Targets (issue 13): start-up and peak RSS of the large store within 1.5x of the small one; batch reads far above
what a GPU step consumes (an H100 trains the 20M model at ~1-2 M tokens/s).

    python bench/bench_store.py                              # 2e7 vs 2e9 tokens under /tmp/bench_store
    python bench/bench_store.py --large 2e8 --workdir /scratch/bench --keep

The large case needs ~2.2 x its size in bytes twice over (Parquet source + uint16 store): ~9 GB for 2e9. The
script checks the free space first and scales the large case down (saying so) when it does not fit.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

STARTUP = r"""
import json, sys, time
t0 = time.perf_counter()

def status(key):  # /proc/self/status, in MB: VmHWM is this process's peak RSS (ru_maxrss would include the parent's)
    line = next(l for l in open("/proc/self/status") if l.startswith(key + ":"))
    return int(line.split()[1]) / 1024

import numpy as np
from hf_slm.training.config import TrainConfig
from hf_slm.training.mix import load_training_data
from hf_slm.training.trainer import plan_data
rss_imports = status("VmRSS")
t1 = time.perf_counter()
cfg = TrainConfig.from_yaml(None, sys.argv[1:])
data = load_training_data(cfg, progress=False)
sampler = plan_data(cfg, data.train, n_params=20_000_000)
t_open = time.perf_counter()
first = sampler.batch(0, 0, cfg.global_batch_size)
t2 = time.perf_counter()
startup_peak = status("VmHWM")
steps = int(cfg.tokens // (cfg.global_batch_size * cfg.block_size))
t3 = time.perf_counter()
for step in range(1, steps):
    sampler.batch(step, 0, cfg.global_batch_size)
t4 = time.perf_counter()
print(json.dumps({"imports_s": t1 - t0, "startup_s": t_open - t1, "first_batch_s": t2 - t_open,
                  "rss_imports_mb": rss_imports,
                  "peak_rss_mb": startup_peak, "peak_rss_after_reads_mb": status("VmHWM"),
                  "rss_anon_mb": status("RssAnon"), "rss_file_mb": status("RssFile"),
                  "read_tokens_per_s": (steps - 1) * first.n_predictions / (t4 - t3), "read_steps": steps - 1,
                  "store_tokens": data.train.n_tokens, "shards": data.train.n_segments}))
"""


def write_units(folder: Path, n_tokens: int, k: int = 500, per_file: int = 20_000_000, seed: int = 0) -> Path:
    """A unit dataset of ``n_tokens`` random units (train) plus a small test split, written file by file."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from hf_slm.data.unit_dataset import UnitDatasetInfo, render_card

    rng = np.random.default_rng(seed)
    (folder / "data").mkdir(parents=True, exist_ok=True)
    n_files = max(1, -(-n_tokens // per_file))

    def table(tokens: int, tag: str) -> pa.Table:
        lengths = rng.integers(100, 500, size=max(1, tokens // 300))
        lengths[-1] += tokens - lengths.sum()  # exactly ``tokens`` units
        lengths = np.maximum(lengths, 1)
        offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
        units = pa.LargeListArray.from_arrays(offsets, rng.integers(0, k, size=int(offsets[-1]), dtype=np.uint16))
        return pa.table({"id": [f"{tag}-{i}" for i in range(len(lengths))],
                         "units": units.cast(pa.list_(pa.uint16())),
                         "n_frames": pa.array(lengths, pa.int32()), "seconds": pa.array(lengths / 25, pa.float32())})

    for i in range(n_files):
        tokens = min(per_file, n_tokens - i * per_file)
        pq.write_table(table(tokens, f"f{i}"), folder / "data" / f"train-{i:05d}-of-{n_files:05d}.parquet")
    pq.write_table(table(max(n_tokens // 1000, 5000), "test"), folder / "data" / "test-00000-of-00001.parquet")
    info = UnitDatasetInfo(tokenizer="synthetic", tokenizer_revision=None, n_units=k, frame_rate=25.0, dedup=True,
                           tokens=n_tokens)
    (folder / "README.md").write_text(render_card(["train", "test"], info, folder.name))
    return folder


def evict(root: Path) -> None:
    """Drop the store's pages from the OS page cache (``POSIX_FADV_DONTNEED``: these files only), so that the
    reads that follow come from disk as they would for a corpus larger than RAM."""
    for path in root.rglob("*.bin"):
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
            os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
        finally:
            os.close(fd)


def measure(n_tokens: int, work: Path, batch: int, block: int, read_steps: int, cold: bool = True) -> dict:
    from hf_slm.data.store import MixConfig, pack_mix

    units = work / f"units-{n_tokens:.0e}"
    t0 = time.perf_counter()
    write_units(units, n_tokens)
    written = time.perf_counter() - t0
    stores = work / "stores"
    t0 = time.perf_counter()
    root = pack_mix(MixConfig(datasets=[str(units)], n_units=500), stores, progress=False)
    pack_s = time.perf_counter() - t0
    if cold and hasattr(os, "posix_fadvise"):
        evict(root)
    overrides = [f"datasets=[{units}]", f"store_dir={stores}", f"block_size={block}", f"batch_size={batch}",
                 f"tokens={batch * block * (read_steps + 1)}", "tracker=null"]
    out = subprocess.run([sys.executable, "-c", STARTUP, *overrides], capture_output=True, text=True, check=False)
    if out.returncode:
        raise RuntimeError(out.stderr[-3000:])
    row = json.loads(out.stdout.strip().splitlines()[-1])
    size = sum(p.stat().st_size for p in root.rglob("*.bin"))
    return {"tokens": n_tokens, "write_source_s": written, "pack_s": pack_s, "pack_tokens_per_s": n_tokens / pack_s,
            "store_gb": size / 1e9, **row}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--small", type=float, default=2e7, help="tokens of the baseline corpus (default 2e7)")
    parser.add_argument("--large", type=float, default=2e9, help="tokens of the large corpus (default 2e9)")
    parser.add_argument("--workdir", default="/tmp/bench_store", help="where the corpora and stores go")
    parser.add_argument("--batch", type=int, default=64, help="sequences per step (default 64, the 20M batch)")
    parser.add_argument("--block-size", type=int, default=2050)
    parser.add_argument("--read-steps", type=int, default=200, help="steps of batch reads timed (default 200)")
    parser.add_argument("--keep", action="store_true", help="keep the corpora and stores")
    parser.add_argument("--warm", action="store_true", help="leave the freshly written store in the page cache "
                        "(default: evict it first, so that batch reads come from disk)")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    work = Path(args.workdir)
    work.mkdir(parents=True, exist_ok=True)
    small, large = int(args.small), int(args.large)
    free = shutil.disk_usage(work).free
    need = lambda n: 2 * 2.2 * n + 2 * 2.2 * small  # noqa: E731 (Parquet source + store, both cases)
    if need(large) > 0.8 * free:
        scaled = int(max(small, 0.8 * free / 4.4 - small) // 1e7 * 1e7)
        print(f"note: {free / 1e9:.0f} GB free in {work}: the {large:.1e}-token case needs ~{need(large) / 1e9:.0f} GB; "
              f"scaled down to {scaled:.1e} tokens")
        large = scaled
    else:
        print(f"disk: {free / 1e9:.0f} GB free in {work}; the {large:.1e}-token case needs ~{need(large) / 1e9:.0f} GB")
    try:
        measure(int(1e5), work / "warm-up", args.batch, 64, 2)  # imports and first-use costs, not timed
        rows = [measure(n, work, args.batch, args.block_size, args.read_steps, cold=not args.warm)
                for n in (small, large)]
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    if args.json:
        print(json.dumps(rows, indent=2))
        return
    a, b = rows
    print(f"{'':30} {'small':>14} {'large':>14} {'large/small':>12}")
    for key, label, fmt in (("tokens", "corpus tokens", "{:,.0f}"), ("store_gb", "store on disk (GB)", "{:.2f}"),
                            ("shards", "store shards", "{:d}"), ("pack_s", "pack time (s)", "{:.1f}"),
                            ("pack_tokens_per_s", "pack tokens/s", "{:,.0f}"), ("startup_s", "trainer start-up (s)", "{:.3f}"),
                            ("first_batch_s", "first batch, cold (s)", "{:.3f}"),
                            ("rss_imports_mb", "RSS after imports (MB)", "{:.0f}"),
                            ("peak_rss_mb", "peak RSS at start-up (MB)", "{:.0f}"),
                            ("peak_rss_after_reads_mb", "peak RSS after reads (MB)", "{:.0f}"),
                            ("rss_anon_mb", "  of which private (MB)", "{:.0f}"),
                            ("rss_file_mb", "  of which mapped file (MB)", "{:.0f}"),
                            ("read_tokens_per_s", "batch reads (tokens/s)", "{:,.0f}")):
        print(f"{label:30} {fmt.format(a[key]):>14} {fmt.format(b[key]):>14} {b[key] / a[key]:>11.2f}x")
    print(f"targets: start-up {b['startup_s'] / a['startup_s']:.2f}x and peak RSS {b['peak_rss_mb'] / a['peak_rss_mb']:.2f}x "
          f"(<= 1.5x); batch reads {b['read_tokens_per_s'] / 1.5e6:.0f}x an H100's ~1.5 M tokens/s on the 20M model")


if __name__ == "__main__":
    main()
