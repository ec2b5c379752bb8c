"""Packing utterances into fixed-length training blocks (the paper's blocks hold 2050 tokens)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np

BLOCK_SIZE = 2050


@dataclass
class PackedBlocks:
    """Blocks of ``block_size`` token ids; ``lengths[i]`` real tokens in block ``i``, the rest is pad."""

    blocks: np.ndarray
    lengths: np.ndarray

    def __len__(self) -> int:
        return len(self.blocks)

    @property
    def n_tokens(self) -> int:
        """Real (non-pad) tokens across all blocks."""
        return int(self.lengths.sum())


def pack_blocks(
    sequences: Iterable[Sequence[int]], block_size: int, eos_id: int, pad_id: int, drop_last: bool = False
) -> PackedBlocks:
    """Concatenate each sequence followed by EOS and cut the stream into blocks of ``block_size``.

    Utterances flow across block boundaries, so no token is lost; the last, partial block is padded with
    ``pad_id`` (its real length is in ``lengths``) unless ``drop_last`` is set.
    """
    if block_size < 2:
        raise ValueError(f"block_size must be >= 2, got {block_size}")
    parts = []
    for seq in sequences:
        arr = np.asarray(seq, dtype=np.int64)
        if arr.size and (arr.min() < 0 or arr.max() >= eos_id):
            raise ValueError(f"unit ids must lie in [0, {eos_id}) (EOS={eos_id}), got range [{arr.min()}, {arr.max()}]")
        parts.append(arr)
        parts.append(np.array([eos_id], dtype=np.int64))
    stream = np.concatenate(parts) if parts else np.zeros(0, dtype=np.int64)
    n_full, rest = divmod(len(stream), block_size)
    blocks = stream[: n_full * block_size].reshape(n_full, block_size)
    lengths = np.full(n_full, block_size, dtype=np.int64)
    if rest and not drop_last:
        tail = np.full((1, block_size), pad_id, dtype=np.int64)
        tail[0, :rest] = stream[n_full * block_size :]
        blocks = np.concatenate([blocks, tail])
        lengths = np.append(lengths, rest)
    return PackedBlocks(blocks=blocks, lengths=lengths)


def labels_for(blocks: np.ndarray, lengths: np.ndarray, ignore_index: int = -100) -> np.ndarray:
    """Causal-LM labels for packed blocks: the inputs themselves, with padding set to ``ignore_index``."""
    labels = blocks.copy()
    positions = np.arange(blocks.shape[1])[None, :]
    labels[positions >= lengths[:, None]] = ignore_index
    return labels
