"""Fitting the tokenizer's k-means: time and inertia of ``hf_slm.units.kmeans.fit_kmeans`` (scikit-learn
``MiniBatchKMeans``, the fairseq HuBERT recipe's settings) on HuBERT-sized features.

Features are a seeded mixture of ``--k`` Gaussians in ``--dim`` dimensions (768 = HuBERT-base). The printed
figures are what the choice of a CPU fitter rests on: fitting runs once per tokenizer, on a sample of frames,
so its minutes compare with the hours of encoding a corpus (``bench/bench_encode.py``).

    python bench/bench_kmeans.py [--frames 200000 --dim 768 --k 500 --n-init 3]
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np

from hf_slm.units.kmeans import assign, fit_kmeans


def mixture(n: int, dim: int, k: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """``n`` float32 frames from ``k`` Gaussian clusters with unequal weights and spreads, and the true means
    of the frames' clusters."""
    rng = np.random.default_rng(seed)
    means = rng.standard_normal((k, dim)).astype(np.float32) * 3
    weights = rng.dirichlet(np.full(k, 2.0))
    labels = rng.choice(k, size=n, p=weights)
    spread = rng.uniform(0.5, 1.5, size=k).astype(np.float32)
    noise = rng.standard_normal((n, dim), dtype=np.float32) * spread[labels, None]
    return means[labels] + noise, means[labels]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--frames", type=int, default=200_000)
    parser.add_argument("--dim", type=int, default=768)
    parser.add_argument("--k", type=int, default=500)
    parser.add_argument("--n-init", type=int, default=3)
    args = parser.parse_args()

    features, true_means = mixture(args.frames, args.dim, args.k)
    oracle = float(((features - true_means) ** 2).sum(axis=1).mean())
    print(f"{args.frames:,} frames x {args.dim} dims ({features.nbytes / 2**30:.2f} GiB), K={args.k}, "
          f"{os.cpu_count()} CPU cores")
    start = time.perf_counter()
    centroids = fit_kmeans(features, args.k, n_init=args.n_init)
    fit_s = time.perf_counter() - start
    start = time.perf_counter()
    labels = assign(features, centroids)
    assign_s = time.perf_counter() - start
    inertia = float(((features - centroids[labels]) ** 2).sum(axis=1).mean())
    print(f"fit: {fit_s:.1f} s ({args.frames / fit_s:,.0f} frames/s), n_init={args.n_init}; "
          f"mean squared distance to the nearest centroid {inertia:.1f}, to the true cluster means "
          f"{oracle:.1f} ({inertia / oracle - 1:+.1%})")
    print(f"assign (torch, CPU): {assign_s:.2f} s ({args.frames / assign_s:,.0f} frames/s = "
          f"{args.frames / assign_s / 25:,.0f} audio-s/s at 25 Hz)")


if __name__ == "__main__":
    main()
