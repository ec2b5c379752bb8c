"""Which tokens each optimizer step trains on: the paper release's random windows, or sequential packed blocks.

Both read token segments (the shards of a :class:`~hf_slm.data.store.TokenStore`, memory-mapped, or arrays in
memory) and both are pure functions of ``(seed, step)``: a run killed at any point and restarted draws exactly the
same batches, and under ``P`` processes each rank reads its own contiguous slice of the step's global batch, so the
run equals the one-process run.

- ``paper`` (:class:`RandomWindows`, the authors' ``SpeechTokenCorpus.get_batch``): each sequence is a uniformly
  random window of ``block_size + 1`` tokens inside one shard (a shard is drawn with probability proportional to
  its window starts times its dataset's weight), trained on all ``block_size`` next-token predictions. D counts
  predictions, ``steps x batch x block_size``; U is the number of tokens windows can come from: the whole store,
  or, with ``unique_tokens`` / ``epochs``, a seeded pool of chunks of ``16 x (block_size + 1)`` tokens.
- ``sequential`` (:class:`SequentialBlocks`): every shard is cut into blocks of ``block_size`` tokens (the last
  one padded), and the run visits ``ceil(U / block_size)`` of them, once per epoch in a fresh seeded order, as
  ``hf_slm.data.budget.block_order`` does; ``block_size - 1`` predictions per full block. A weight of 2.0 lists a
  dataset's blocks twice, 0.5 a seeded half of them (indices only: no token is copied).

Held-out data is read by :class:`EvalWindows`: consecutive windows of ``block_size + 1`` tokens that overlap by
one, so that every held-out token after the first of its shard is predicted exactly once.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from hf_slm.data.budget import block_order, make_budget
from hf_slm.data.tokens import Vocabulary

IGNORE = -100
CHUNK_WINDOWS = 16  # a pool chunk (unique_tokens < the store) holds this many windows
SAMPLINGS = ("paper", "sequential")
_POOL, _STEP, _WEIGHT = 0x706F6F6C, 0x73746570, 0x77656967  # keep the seeded streams apart


class TokenSource(Protocol):
    """Token segments: ``TokenStore`` (memory-mapped shards) or ``InMemoryTokens``."""

    lengths: np.ndarray
    segment_datasets: np.ndarray
    vocabulary: Vocabulary

    @property
    def n_segments(self) -> int: ...

    @property
    def n_tokens(self) -> int: ...

    def segment(self, i: int) -> np.ndarray: ...

    def fingerprint(self) -> dict[str, Any]: ...


@dataclass
class Batch:
    """``input_ids`` and next-token ``targets`` (``-100`` = no prediction), both ``[sequences, block_size]``."""

    input_ids: np.ndarray
    targets: np.ndarray

    def __len__(self) -> int:
        return len(self.input_ids)

    @property
    def n_predictions(self) -> int:
        return int((self.targets != IGNORE).sum())


def _read(source: TokenSource, segments: np.ndarray, starts: np.ndarray, span: int) -> tuple[np.ndarray, np.ndarray]:
    """``[n, span]`` tokens from each (shard, start), padded past a shard's end, and where they are real."""
    n = len(starts)
    tokens = np.full((n, span), source.vocabulary.pad, dtype=np.int64)
    valid = np.zeros((n, span), dtype=bool)
    will_need = getattr(source, "will_need", None)  # a store on disk: start every window's reads at once
    if will_need is not None:
        for seg, start in zip(segments.tolist(), starts.tolist(), strict=True):
            will_need(seg, start, span)
    for row, (seg, start) in enumerate(zip(segments.tolist(), starts.tolist(), strict=True)):
        piece = source.segment(seg)[start : start + span]
        tokens[row, : len(piece)] = piece
        valid[row, : len(piece)] = True
    return tokens, valid


def _windows(source: TokenSource, segments: np.ndarray, starts: np.ndarray, block_size: int) -> Batch:
    """Windows of up to ``block_size + 1`` tokens: ``block_size`` inputs, each predicting the next token."""
    tokens, valid = _read(source, segments, starts, block_size + 1)
    return Batch(tokens[:, :-1], np.where(valid[:, 1:], tokens[:, 1:], IGNORE))


class Sampler:
    """A run's training data, step by step: ``batch(step, lo, hi)`` is sequences ``lo:hi`` of step ``step``."""

    name: str
    n_steps: int
    batch_size: int
    block_size: int
    D: int
    U: int

    def batch(self, step: int, lo: int, hi: int) -> Batch:
        raise NotImplementedError

    def tokens_after(self, steps: int) -> int:
        """Training tokens (predictions) seen after ``steps`` steps."""
        raise NotImplementedError

    def describe(self) -> dict[str, Any]:
        return {"sampling": self.name, "n_steps": self.n_steps, "D": self.D, "U": self.U}


class RandomWindows(Sampler):
    """The paper release's sampling: uniformly random windows of ``block_size + 1`` tokens (see module docs)."""

    name = "paper"

    def __init__(self, source: TokenSource, block_size: int, batch_size: int, n_steps: int, seed: int,
                 weights: np.ndarray | None = None, unique_tokens: int | None = None):
        self.source, self.block_size, self.batch_size, self.n_steps, self.seed = (
            source, block_size, batch_size, n_steps, seed)
        span = block_size + 1
        seg = np.flatnonzero(source.lengths >= span)
        if not len(seg):
            raise ValueError(f"no shard of the training data holds block_size + 1 = {span} tokens "
                             f"(longest: {int(source.lengths.max(initial=0))}); use a smaller block_size")
        starts, lengths = np.zeros(len(seg), dtype=np.int64), source.lengths[seg]
        if unique_tokens is not None:
            seg, starts, lengths = self._pool(seg, lengths, unique_tokens, span)
        self.regions = (seg, starts, lengths)
        weight = np.ones(int(source.segment_datasets.max(initial=0)) + 1) if weights is None else np.asarray(weights)
        mass = weight[source.segment_datasets[seg]] * (lengths - block_size)
        self.cdf = np.cumsum(mass / mass.sum())
        self.U = int(lengths.sum())
        self.D = n_steps * batch_size * block_size

    def _pool(self, seg: np.ndarray, lengths: np.ndarray, unique_tokens: int, span: int):
        """A seeded choice of chunks holding ``unique_tokens`` tokens (the last one trimmed to fit)."""
        available = int(lengths.sum())
        if unique_tokens > available:
            raise ValueError(f"unique_tokens={unique_tokens:,} exceeds the {available:,} tokens the training data "
                             "hold in shards of at least block_size + 1 tokens")
        size = CHUNK_WINDOWS * span
        counts = np.maximum(lengths // size, 1)  # the last chunk of a shard absorbs the remainder
        c_seg = np.repeat(seg, counts)
        first = np.repeat(np.cumsum(counts) - counts, counts)
        index = np.arange(len(c_seg)) - first
        c_start = index * size
        c_len = np.where(index == np.repeat(counts, counts) - 1, np.repeat(lengths, counts) - c_start, size)
        order = np.random.default_rng([self.seed, _POOL]).permutation(len(c_seg))
        cum = np.cumsum(c_len[order])
        n = int(np.searchsorted(cum, unique_tokens)) + 1
        chosen = order[:n]
        lengths_out = c_len[chosen].copy()
        lengths_out[-1] -= int(cum[n - 1]) - unique_tokens
        if lengths_out[-1] < span:  # too short for a window: leave it out
            chosen, lengths_out = chosen[:-1], lengths_out[:-1]
        if not len(chosen):
            raise ValueError(f"unique_tokens={unique_tokens:,} is less than one window of block_size + 1 = {span}")
        keep = np.argsort(chosen, kind="stable")  # shard order: reads stay local
        return c_seg[chosen][keep], c_start[chosen][keep], lengths_out[keep]

    def positions(self, step: int) -> tuple[np.ndarray, np.ndarray]:
        """Shard and start of the ``batch_size`` windows of ``step``: a function of ``(seed, step)`` only."""
        rng = np.random.default_rng([self.seed, _STEP, step])
        region = np.minimum(np.searchsorted(self.cdf, rng.random(self.batch_size), side="right"), len(self.cdf) - 1)
        seg, start, length = (a[region] for a in self.regions)
        return seg, start + rng.integers(0, length - self.block_size)

    def batch(self, step: int, lo: int, hi: int) -> Batch:
        seg, start = self.positions(step)
        return _windows(self.source, seg[lo:hi], start[lo:hi], self.block_size)

    def tokens_after(self, steps: int) -> int:
        return steps * self.batch_size * self.block_size

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), "regions": len(self.cdf)}


class SequentialBlocks(Sampler):
    """Blocks of ``block_size`` tokens cut from each shard, visited in seeded epochs (see module docs)."""

    name = "sequential"

    def __init__(self, source: TokenSource, block_size: int, batch_size: int, n_steps: int, seed: int,
                 weights: np.ndarray | None = None, unique_tokens: int | None = None):
        self.source, self.block_size, self.batch_size, self.n_steps = source, block_size, batch_size, n_steps
        per_segment = -(-source.lengths // block_size)
        self.first_block = np.concatenate([[0], np.cumsum(per_segment)])
        n_blocks = int(self.first_block[-1])
        block_segment = np.repeat(np.arange(source.n_segments), per_segment)
        offset = (np.arange(n_blocks) - self.first_block[block_segment]) * block_size
        self.block_length = np.minimum(block_size, source.lengths[block_segment] - offset)
        listed = self._weighted(source.segment_datasets[block_segment], weights, seed)
        lengths = self.block_length[listed]
        budget = make_budget(int(lengths.sum()), block_size, tokens=n_steps * batch_size * block_size,
                             unique_tokens=unique_tokens)
        self.order = listed[block_order(budget, len(listed), seed=seed)]
        self.cum_tokens = np.cumsum(self.block_length[self.order].reshape(n_steps, batch_size).sum(axis=1))
        self.D = int(self.cum_tokens[-1])
        self.U = int(self.block_length[np.unique(self.order)].sum())

    @staticmethod
    def _weighted(block_dataset: np.ndarray, weights: np.ndarray | None, seed: int) -> np.ndarray:
        """Block ids, each dataset's ``floor(w)`` times plus a seeded ``w % 1`` share of them."""
        ids = np.arange(len(block_dataset))
        if weights is None or np.all(np.asarray(weights) == 1):
            return ids
        parts = []
        for d, w in enumerate(np.asarray(weights, dtype=float)):
            mine = ids[block_dataset == d]
            whole, frac = divmod(w, 1.0)
            extra = np.random.default_rng([seed, _WEIGHT, d]).permutation(len(mine))[: round(frac * len(mine))]
            parts += [mine] * int(whole) + [mine[np.sort(extra)]]
        return np.concatenate(parts)

    def batch(self, step: int, lo: int, hi: int) -> Batch:
        blocks = self.order[step * self.batch_size + lo : step * self.batch_size + hi]
        seg = np.searchsorted(self.first_block, blocks, side="right") - 1
        start = (blocks - self.first_block[seg]) * self.block_size
        tokens, valid = _read(self.source, seg, start, self.block_size)  # T tokens: T - 1 predictions
        targets = np.full_like(tokens, IGNORE)
        targets[:, :-1] = np.where(valid[:, 1:], tokens[:, 1:], IGNORE)
        return Batch(tokens, targets)

    def tokens_after(self, steps: int) -> int:
        return int(self.cum_tokens[steps - 1]) if steps else 0


def make_sampler(sampling: str, source: TokenSource, block_size: int, batch_size: int, n_steps: int, seed: int,
                 weights: np.ndarray | None = None, unique_tokens: int | None = None) -> Sampler:
    """The sampler called ``sampling`` ("paper" or "sequential")."""
    classes = {"paper": RandomWindows, "sequential": SequentialBlocks}
    if sampling not in classes:
        raise ValueError(f"sampling must be one of {SAMPLINGS}, got {sampling!r}")
    return classes[sampling](source, block_size, batch_size, n_steps, seed, weights, unique_tokens)


class EvalWindows:
    """The held-out stream as windows of ``block_size + 1`` tokens overlapping by one (see module docs)."""

    def __init__(self, source: TokenSource, block_size: int):
        self.source, self.block_size = source, block_size
        counts = np.where(source.lengths >= 2, -(-(source.lengths - 1) // block_size), 0)
        self.first = np.concatenate([[0], np.cumsum(counts)])

    def __len__(self) -> int:
        return int(self.first[-1])

    @property
    def n_predictions(self) -> int:
        return int(np.maximum(self.source.lengths - 1, 0).sum())

    def batch(self, windows: np.ndarray) -> Batch:
        windows = np.asarray(windows, dtype=np.int64)
        seg = np.searchsorted(self.first, windows, side="right") - 1
        return _windows(self.source, seg, (windows - self.first[seg]) * self.block_size, self.block_size)


def n_steps_for(tokens: int, batch_size: int, block_size: int) -> int:
    """Steps of ``batch_size`` sequences of ``block_size`` predictions that cover ``tokens`` (at least one)."""
    return max(1, math.ceil(tokens / (batch_size * block_size)))
