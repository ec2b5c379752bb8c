"""How a run visits its tokens: the release's random windows, sequential blocks, held-out windows."""

from __future__ import annotations

import numpy as np
import pytest

from hf_slm.data import eos_id, pack_blocks, pad_id
from hf_slm.data.store import InMemoryTokens
from hf_slm.data.tokens import Vocabulary
from hf_slm.training.sampling import IGNORE, EvalWindows, RandomWindows, SequentialBlocks

K, T = 10, 8
VOCAB = Vocabulary(K)


def _source(lengths=(300, 120, 500), datasets=(0, 0, 1), seed=0) -> InMemoryTokens:
    rng = np.random.default_rng(seed)
    return InMemoryTokens([rng.integers(0, K + 1, size=n).astype(np.uint16) for n in lengths], VOCAB, list(datasets))


def test_random_windows_are_exact_seeded_and_split_across_ranks():
    source = _source()
    sampler = RandomWindows(source, T, batch_size=6, n_steps=50, seed=3)
    assert (sampler.D, sampler.U) == (50 * 6 * T, 920)  # every window gives T predictions; U = the whole store
    batch = sampler.batch(7, 0, 6)
    seg, start = sampler.positions(7)
    for row in range(6):  # window = T + 1 consecutive tokens of one shard; targets are the inputs shifted
        window = np.asarray(source.segment(seg[row])[start[row] : start[row] + T + 1], dtype=np.int64)
        assert len(window) == T + 1
        np.testing.assert_array_equal(batch.input_ids[row], window[:-1])
        np.testing.assert_array_equal(batch.targets[row], window[1:])
    assert batch.n_predictions == 6 * T
    again = RandomWindows(source, T, batch_size=6, n_steps=50, seed=3)  # a restarted run: the same batches
    np.testing.assert_array_equal(again.batch(7, 0, 6).input_ids, batch.input_ids)
    halves = [again.batch(7, 0, 3), again.batch(7, 3, 6)]  # two ranks read disjoint slices of the same batch
    np.testing.assert_array_equal(np.concatenate([h.input_ids for h in halves]), batch.input_ids)
    assert not np.array_equal(sampler.batch(8, 0, 6).input_ids, batch.input_ids)
    assert not np.array_equal(RandomWindows(source, T, 6, 50, seed=4).batch(7, 0, 6).input_ids, batch.input_ids)


def test_window_starts_are_uniform_and_weights_scale_a_dataset_without_copying():
    source = _source(lengths=(400, 400), datasets=(0, 1))
    starts = 400 - T  # window starts per shard
    plain = RandomWindows(source, T, batch_size=500, n_steps=40, seed=0)
    seg, start = map(np.concatenate, zip(*(plain.positions(s) for s in range(40)), strict=True))
    assert abs(np.mean(seg == 1) - 0.5) < 0.02 and start.min() == 0 and start.max() == starts - 1
    counts = np.bincount(start, minlength=starts)  # 20,000 draws over 392 starts: ~51 each
    assert counts.std() < 1.3 * np.sqrt(counts.mean())  # no more spread than multinomial noise
    weighted = RandomWindows(source, T, batch_size=500, n_steps=40, seed=0, weights=np.array([1.0, 3.0]))
    seg = np.concatenate([weighted.positions(s)[0] for s in range(40)])
    assert abs(np.mean(seg == 1) - 0.75) < 0.02 and weighted.U == plain.U == 800


def test_unique_tokens_restrict_random_windows_to_a_seeded_pool():
    source = _source(lengths=(3000, 2000), datasets=(0, 1))
    sampler = RandomWindows(source, T, batch_size=16, n_steps=100, seed=1, unique_tokens=700)
    assert sampler.U == 700  # exact: the last chunk is trimmed to fit
    seg, start, length = sampler.regions
    covered = {(int(s), int(p)) for s, a, n in zip(seg, start, length, strict=True) for p in range(a, a + n)}
    for step in range(100):  # every window lies inside the pool
        for s, a in zip(*sampler.positions(step), strict=True):
            assert all((int(s), int(p)) in covered for p in range(a, a + T + 1))
    with pytest.raises(ValueError, match="exceeds"):
        RandomWindows(source, T, 16, 10, seed=1, unique_tokens=6000)
    with pytest.raises(ValueError, match="block_size \\+ 1 = 9"):
        RandomWindows(_source(lengths=(8,), datasets=(0,)), T, 4, 1, seed=0)


def test_sequential_blocks_are_today_s_packed_blocks():
    rng = np.random.default_rng(0)
    seqs = [rng.integers(0, K, size=rng.integers(1, 20)).tolist() for _ in range(30)]
    packed = pack_blocks(seqs, T, eos_id(K), pad_id(K))
    stream = np.concatenate([np.append(s, K) for s in seqs])
    source = InMemoryTokens([stream], VOCAB)
    n = len(packed.blocks)
    sampler = SequentialBlocks(source, T, batch_size=n, n_steps=1, seed=0)
    assert sampler.U == sampler.D == len(stream) and sorted(sampler.order.tolist()) == list(range(n))
    batch = sampler.batch(0, 0, n)
    order = sampler.order
    np.testing.assert_array_equal(batch.input_ids, packed.blocks[order])  # same blocks, pad included
    expected = np.where(np.arange(T)[None, 1:] < packed.lengths[order][:, None], packed.blocks[order][:, 1:], IGNORE)
    np.testing.assert_array_equal(batch.targets[:, :-1], expected)  # T - 1 predictions per block, none on pad
    assert (batch.targets[:, -1] == IGNORE).all()


def test_sequential_weights_list_blocks_and_u_counts_distinct_ones():
    source = _source(lengths=(80, 40), datasets=(0, 1))  # 10 and 5 blocks
    sampler = SequentialBlocks(source, T, batch_size=5, n_steps=5, seed=0, weights=np.array([0.5, 2.0]))
    listed = SequentialBlocks._weighted(np.repeat([0, 1], [10, 5]), np.array([0.5, 2.0]), seed=0)
    assert len(listed) == 5 + 10 and np.bincount(listed, minlength=15)[10:].tolist() == [2] * 5
    assert sampler.D == 25 * T and sampler.U == 8 * len(np.unique(sampler.order)) < sampler.D


def test_eval_windows_predict_every_held_out_token_once():
    source = _source(lengths=(30, 17, 1, 9))
    windows = EvalWindows(source, T)
    batch = windows.batch(np.arange(len(windows)))
    predicted = batch.targets[batch.targets != IGNORE]
    expected = np.concatenate([np.asarray(source.segment(i), dtype=np.int64)[1:] for i in range(4)])
    np.testing.assert_array_equal(predicted, expected)
    assert windows.n_predictions == 29 + 16 + 0 + 8 == batch.n_predictions
