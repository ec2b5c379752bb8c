"""Unigram compression of unit sequences (paper 4.3): a SentencePiece-style unigram LM tokenizer.

Each unit ``i`` is written as the character ``chr(0x4E00 + i)``: the CJK Unified Ideographs block is
20,992 contiguous, printable code points that no normaliser rewrites, so a unit sequence is a string
with one character per unit and no spaces. The whole string of an utterance is one "word" (no
pre-tokenizer), so pieces can span any units, up to ``max_piece_length``. The tokenizer is a
``transformers.PreTrainedTokenizerFast``: pieces first (ids 0..P-1), then ``<eos>`` and ``<pad>``, and it
saves, loads and pushes like any Hugging Face tokenizer.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import datasets
import numpy as np
from tokenizers import Tokenizer, decoders, models, trainers
from transformers import PreTrainedTokenizerFast

UNIT_CHAR_OFFSET = 0x4E00
MAX_UNITS = 0x9FFF - UNIT_CHAR_OFFSET + 1
EOS_TOKEN = "<eos>"
PAD_TOKEN = "<pad>"


def unit_char(unit: int) -> str:
    """The character that stands for ``unit``."""
    return chr(UNIT_CHAR_OFFSET + int(unit))


def units_to_string(units: Sequence[int] | np.ndarray) -> str:
    """One character per unit."""
    codes = np.asarray(units, dtype=np.int64)
    if codes.size and not (0 <= codes.min() and codes.max() < MAX_UNITS):
        raise ValueError(f"units must be in 0..{MAX_UNITS - 1}, got {codes.min()}..{codes.max()}")
    return "".join(map(chr, (codes + UNIT_CHAR_OFFSET).tolist()))


def string_to_units(text: str) -> np.ndarray:
    """Inverse of :func:`units_to_string`."""
    return np.array([ord(c) - UNIT_CHAR_OFFSET for c in text], dtype=np.int64)


def train_unigram(
    unit_sequences: Iterable[Sequence[int]],
    n_units: int,
    vocab_size: int = 5000,
    max_piece_length: int = 16,
    show_progress: bool = True,
) -> PreTrainedTokenizerFast:
    """Train a unigram tokenizer on unit sequences with units 0..n_units-1.

    ``vocab_size`` counts everything: pieces (every single unit included, so any unit sequence can be
    encoded) plus ``<eos>`` and ``<pad>``.
    """
    if n_units > MAX_UNITS:
        raise ValueError(f"n_units must be at most {MAX_UNITS}, got {n_units}")
    if vocab_size < n_units + 2:
        raise ValueError(f"vocab_size {vocab_size} cannot hold the {n_units} units plus <eos> and <pad>")
    trainer = trainers.UnigramTrainer(
        vocab_size=vocab_size - 2,
        initial_alphabet=[unit_char(i) for i in range(n_units)],
        max_piece_length=max_piece_length,
        show_progress=show_progress,
    )
    backend = Tokenizer(models.Unigram())
    backend.decoder = decoders.Fuse()
    backend.train_from_iterator((units_to_string(u) for u in unit_sequences), trainer=trainer)
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=backend, eos_token=EOS_TOKEN, pad_token=PAD_TOKEN, clean_up_tokenization_spaces=False
    )
    missing = [i for i in range(n_units) if tokenizer.convert_tokens_to_ids(unit_char(i)) is None]
    if missing:
        raise RuntimeError(f"unigram vocabulary lacks units {missing[:10]}...; raise vocab_size")
    return tokenizer


def compress(tokenizer: PreTrainedTokenizerFast, units: Sequence[int] | np.ndarray) -> list[int]:
    """Unigram token ids of one unit sequence (no EOS added)."""
    return tokenizer(units_to_string(units), add_special_tokens=False)["input_ids"]


def decompress(tokenizer: PreTrainedTokenizerFast, ids: Sequence[int]) -> np.ndarray:
    """Unit sequence of unigram token ids; special tokens are dropped."""
    specials = set(tokenizer.all_special_ids)
    pieces = tokenizer.convert_ids_to_tokens([i for i in ids if i not in specials])
    return string_to_units("".join(pieces))


def compress_dataset(
    dataset: datasets.Dataset | datasets.DatasetDict,
    tokenizer: PreTrainedTokenizerFast,
    batch_size: int = 1000,
    num_proc: int | None = None,
) -> datasets.Dataset | datasets.DatasetDict:
    """Add a ``tokens`` column (int32 unigram ids) computed from the ``units`` column, with ``datasets.map``."""

    def add_tokens(batch: dict[str, list]) -> dict[str, list]:
        texts = [units_to_string(u) for u in batch["units"]]
        return {"tokens": tokenizer(texts, add_special_tokens=False)["input_ids"]}

    sample = dataset[next(iter(dataset))] if isinstance(dataset, datasets.DatasetDict) else dataset
    features = sample.features.copy()
    features["tokens"] = getattr(datasets, "List", datasets.Sequence)(datasets.Value("int32"))
    return dataset.map(add_tokens, batched=True, batch_size=batch_size, num_proc=num_proc, features=features,
                       desc="unigram")


def _count(dataset: datasets.Dataset, column: str) -> int:
    import pyarrow.compute as pc

    total = 0
    for table in dataset.select_columns([column]).with_format("arrow").iter(batch_size=10000):
        total += pc.sum(pc.list_value_length(table.column(column))).as_py() or 0
    return total


def compression_ratio(
    dataset: datasets.Dataset | datasets.DatasetDict, tokenizer: PreTrainedTokenizerFast | None = None
) -> float:
    """Unigram tokens / unit tokens over the dataset (the paper's Table 2 gives ~0.58).

    Uses the ``tokens`` column, or computes it with ``tokenizer`` when the dataset has none.
    """
    splits: list[Any] = list(dataset.values()) if isinstance(dataset, datasets.DatasetDict) else [dataset]
    units = tokens = 0
    for split in splits:
        if "tokens" not in split.column_names:
            if tokenizer is None:
                raise ValueError("dataset has no 'tokens' column; pass the tokenizer to compute it")
            split = compress_dataset(split, tokenizer)
        units += _count(split, "units")
        tokens += _count(split, "tokens")
    if units == 0:
        raise ValueError("dataset has no units")
    return tokens / units
