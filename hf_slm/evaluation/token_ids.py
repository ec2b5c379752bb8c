"""Unit sequences -> the token ids a unit LM scores: contract 2, or a unigram-compressed model's own vocabulary.

A plain unit LM has units ``0..K-1`` as ids, EOS ``K``, pad ``K+1`` (vocabulary ``K+2``). A model trained on
unigram-compressed units keeps its tokenizer (``hf_slm.units.unigram``: pieces ``0..P-1``, ``<eos>`` = P,
``<pad>`` = P+1) in its folder, saved with ``save_pretrained``; each benchmark utterance is then compressed with
:func:`hf_slm.units.unigram.compress` before scoring, with EOS = P.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hf_slm.data.tokens import eos_id, vocab_size


class VocabularyError(ValueError):
    """A benchmark's units do not fit the model's vocabulary."""


@dataclass(frozen=True)
class UnitVocabulary:
    """How a unit LM reads unit sequences: ``ids(units)``, ``eos`` and ``vocab_size``.

    ``n_units`` is K, the number of speech units the model was trained on (unit ids must be below it);
    ``tokenizer`` is the unigram tokenizer of a compressed model, else None.
    """

    n_units: int
    eos: int
    vocab_size: int
    tokenizer: Any = None

    @property
    def compressed(self) -> bool:
        return self.tokenizer is not None

    def ids(self, units: Sequence[int], name: str = "sequence") -> list[int]:
        """Token ids of one utterance's units (no EOS); ``VocabularyError`` naming ``name`` for a unit >= K."""
        values = [int(u) for u in units]
        bad = [u for u in values if not 0 <= u < self.n_units]
        if bad:
            raise VocabularyError(
                f"{name} has unit id {bad[0]} >= K={self.n_units} (the model's units); were the benchmark's units "
                "made with another speech tokenizer?"
            )
        if self.tokenizer is None:
            return values
        from hf_slm.units.unigram import compress

        return list(compress(self.tokenizer, values))

    def describe(self) -> dict[str, Any]:
        out: dict[str, Any] = {"n_units": self.n_units, "eos": self.eos, "vocab_size": self.vocab_size}
        if self.tokenizer is not None:
            out["unigram_tokenizer"] = getattr(self.tokenizer, "name_or_path", None)
        return out


def plain_vocabulary(n_units: int) -> UnitVocabulary:
    """Contract 2: ids = units, EOS = K, vocabulary K + 2."""
    if n_units < 1:
        raise ValueError(f"n_units must be >= 1, got {n_units}")
    return UnitVocabulary(n_units=n_units, eos=eos_id(n_units), vocab_size=vocab_size(n_units))


def unigram_vocabulary(tokenizer: Any) -> UnitVocabulary:
    """The vocabulary of a unigram-compressed model from its tokenizer (``hf_slm.units.unigram``).

    K is read from the tokenizer's single-unit pieces (training puts every unit in the alphabet).
    """
    from hf_slm.units.unigram import EOS_TOKEN, PAD_TOKEN, UNIT_CHAR_OFFSET

    vocab = tokenizer.get_vocab()
    eos, pad = vocab.get(EOS_TOKEN), vocab.get(PAD_TOKEN)
    if eos is None or pad is None:
        raise VocabularyError(f"tokenizer {getattr(tokenizer, 'name_or_path', '')!r} has no {EOS_TOKEN} / {PAD_TOKEN}: "
                              "not a unit unigram tokenizer")
    singles = [ord(piece) - UNIT_CHAR_OFFSET for piece in vocab if len(piece) == 1 and ord(piece) >= UNIT_CHAR_OFFSET]
    if not singles:
        raise VocabularyError("the unigram tokenizer has no single-unit pieces")
    if eos != len(vocab) - 2 or pad != len(vocab) - 1:
        raise VocabularyError(f"unigram tokenizer ids: expected pieces 0..P-1, {EOS_TOKEN} = P, {PAD_TOKEN} = P+1; "
                              f"got {EOS_TOKEN} = {eos}, {PAD_TOKEN} = {pad} with {len(vocab)} entries")
    return UnitVocabulary(n_units=max(singles) + 1, eos=eos, vocab_size=len(vocab), tokenizer=tokenizer)


def is_unigram_folder(folder: str | Path) -> bool:
    """Whether a model folder holds a unit unigram tokenizer (``tokenizer.json`` with ``<eos>`` and unit pieces)."""
    import json

    from hf_slm.units.unigram import EOS_TOKEN, UNIT_CHAR_OFFSET

    path = Path(folder) / "tokenizer.json"
    if not path.is_file():
        return False
    try:
        model = json.loads(path.read_text()).get("model", {})
    except (OSError, json.JSONDecodeError):
        return False
    if model.get("type") != "Unigram":
        return False
    pieces = [entry[0] for entry in model.get("vocab", []) if entry]
    has_units = any(len(p) == 1 and ord(p) >= UNIT_CHAR_OFFSET for p in pieces)
    added = {t.get("content") for t in json.loads(path.read_text()).get("added_tokens", [])}
    return has_units and (EOS_TOKEN in added or EOS_TOKEN in pieces)


def model_vocabulary(model: Any, folder: str | Path | None = None, n_units: int | None = None) -> UnitVocabulary:
    """The unit vocabulary of a unit LM: unigram when ``folder`` holds a unit unigram tokenizer, else contract 2
    with K = ``n_units`` or the model's vocabulary size - 2. ``VocabularyError`` when they disagree."""
    size = int(getattr(model.config, "vocab_size", 0) or 0)
    if folder is not None and is_unigram_folder(folder):
        from transformers import PreTrainedTokenizerFast

        vocab = unigram_vocabulary(PreTrainedTokenizerFast.from_pretrained(str(folder)))
        if size and size != vocab.vocab_size:
            raise VocabularyError(f"{folder}: the model's vocabulary ({size}) is not its unigram tokenizer's "
                                  f"({vocab.vocab_size} = pieces + <eos> + <pad>)")
        return vocab
    k = n_units if n_units is not None else size - 2
    if k < 1:
        raise VocabularyError(f"cannot tell K from a vocabulary of {size}; pass n_units")
    if size and size < vocab_size(k):
        raise VocabularyError(f"the model's vocabulary ({size}) is smaller than K + 2 = {vocab_size(k)} for K={k} "
                              "units (contract 2: units 0..K-1, EOS K, pad K+1)")
    return plain_vocabulary(k)
