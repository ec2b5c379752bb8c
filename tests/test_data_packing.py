import numpy as np
import pytest

from hf_slm.data import Budget, block_order, eos_id, labels_for, make_budget, pack_blocks, pad_id, vocab_size


def test_token_ids_follow_contract():
    assert (eos_id(500), pad_id(500), vocab_size(500)) == (500, 501, 502)


def test_packing_loses_no_token_and_keeps_order():
    rng = np.random.default_rng(0)
    seqs = [rng.integers(0, 50, size=rng.integers(1, 40)).tolist() for _ in range(37)]
    packed = pack_blocks(seqs, block_size=16, eos_id=50, pad_id=51)
    assert packed.blocks.shape[1] == 16
    stream = np.concatenate([b[:n] for b, n in zip(packed.blocks, packed.lengths, strict=True)])
    expected = np.concatenate([np.append(s, 50) for s in seqs])
    np.testing.assert_array_equal(stream, expected)
    assert packed.n_tokens == sum(len(s) + 1 for s in seqs)
    assert (packed.blocks[-1, packed.lengths[-1]:] == 51).all()


def test_packing_rejects_ids_outside_unit_range():
    with pytest.raises(ValueError, match="unit ids"):
        pack_blocks([[1, 2, 50]], block_size=8, eos_id=50, pad_id=51)


def test_labels_mask_padding_only():
    packed = pack_blocks([[1, 2, 3]], block_size=8, eos_id=10, pad_id=11)
    labels = labels_for(packed.blocks, packed.lengths)
    assert labels[0].tolist() == [1, 2, 3, 10, -100, -100, -100, -100]


def test_budget_epochs_and_block_order_repeat_the_same_unique_blocks():
    budget = make_budget(available_tokens=10_000, block_size=100, tokens=2_000, unique_tokens=500)
    assert budget.epochs == 4 and budget.n_blocks == 20 and budget.n_unique_blocks == 5
    order = block_order(budget, n_available_blocks=100, seed=3)
    assert len(order) == 20 and len(set(order.tolist())) == 5
    for epoch in order.reshape(4, 5):
        assert sorted(epoch.tolist()) == sorted(order[:5].tolist())
    np.testing.assert_array_equal(order, block_order(budget, 100, seed=3))


def test_budget_from_tokens_per_param_and_errors():
    assert make_budget(10**9, 2050, tokens_per_param=20, n_params=1000).tokens == 20_000
    with pytest.raises(ValueError, match="exceeds"):
        make_budget(available_tokens=100, block_size=10, tokens=1000, unique_tokens=200)
    with pytest.raises(ValueError, match="tokens_per_param"):
        make_budget(available_tokens=100, block_size=10)
    with pytest.raises(ValueError):
        Budget(tokens=0, unique_tokens=1, block_size=10)
