import datasets
import numpy as np
import pytest
from transformers import AutoTokenizer

from hf_slm.units.unigram import (
    compress,
    compress_dataset,
    compression_ratio,
    decompress,
    string_to_units,
    train_unigram,
    units_to_string,
)


def repetitive_units(n_utts=200, n_units=50, seed=0):
    """Utterances built from a small lexicon of unit 'words', like deduplicated speech units."""
    lexicon = np.random.default_rng(0)
    words = [lexicon.integers(0, n_units, size=lexicon.integers(2, 7)) for _ in range(60)]
    rng = np.random.default_rng(seed + 1)
    return [np.concatenate([words[j] for j in rng.integers(0, len(words), size=25)]) for _ in range(n_utts)]


@pytest.fixture(scope="module")
def unigram():
    return train_unigram(repetitive_units(), n_units=50, vocab_size=400, show_progress=False)


def test_unit_string_round_trip():
    units = np.array([0, 499, 7, 7, 123])
    text = units_to_string(units)
    assert len(text) == 5 and " " not in text
    np.testing.assert_array_equal(string_to_units(text), units)
    with pytest.raises(ValueError):
        units_to_string([-1])


def test_compress_round_trip_and_specials(unigram):
    assert len(unigram) == 400
    assert unigram.eos_token_id == 398 and unigram.pad_token_id == 399
    for units in repetitive_units(20, seed=1) + [np.array([49, 0, 0, 31])]:
        ids = compress(unigram, units)
        assert len(ids) <= len(units)
        np.testing.assert_array_equal(decompress(unigram, ids + [unigram.eos_token_id]), units)
        assert unigram.decode(ids) == units_to_string(units)


def test_save_load(unigram, tmp_path):
    unigram.save_pretrained(tmp_path / "uni")
    loaded = AutoTokenizer.from_pretrained(tmp_path / "uni")
    units = repetitive_units(1, seed=3)[0]
    assert compress(loaded, units) == compress(unigram, units)
    assert loaded.eos_token_id == unigram.eos_token_id


def test_dataset_map_and_ratio(unigram):
    ds = datasets.Dataset.from_dict({"id": ["a", "b", "c"], "units": [u.tolist() for u in repetitive_units(3, seed=4)]})
    out = compress_dataset(ds, unigram)
    assert out.column_names == ["id", "units", "tokens"]
    assert out[0]["tokens"] == compress(unigram, ds[0]["units"])
    ratio = compression_ratio(out)
    assert 0 < ratio < 0.7
    assert compression_ratio(datasets.DatasetDict({"train": ds}), unigram) == pytest.approx(ratio)
    with pytest.raises(ValueError, match="tokens"):
        compression_ratio(ds)


def test_vocab_must_hold_all_units():
    with pytest.raises(ValueError, match="vocab_size"):
        train_unigram(repetitive_units(5), n_units=50, vocab_size=40, show_progress=False)
