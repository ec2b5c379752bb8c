"""Token ids of the language model (contract 2).

Units ``0..K-1`` keep their ids; EOS is ``K``; pad is ``K + 1``; the vocabulary has ``K + 2`` entries
(502 for K=500), as in the paper's released checkpoints (``tiagoCuervo/slm_scaling``). Unigram-compressed
datasets follow the same layout with their ``P`` pieces in place of the units: pieces ``0..P-1``, EOS ``P``,
pad ``P + 1`` (the tokenizer saved with the dataset says so, and :meth:`Vocabulary.from_unigram` checks it).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

TOKEN_TYPES = ("units", "unigram")


def eos_id(n_units: int) -> int:
    """Id of the end-of-utterance token for a tokenizer with ``n_units`` units."""
    return n_units


def pad_id(n_units: int) -> int:
    """Id of the padding token for a tokenizer with ``n_units`` units."""
    return n_units + 1


def vocab_size(n_units: int) -> int:
    """Size of the LM vocabulary: the units plus EOS and pad."""
    return n_units + 2


@dataclass(frozen=True)
class Vocabulary:
    """The LM vocabulary of a token stream: ``n_ids`` content ids (units or unigram pieces), then EOS and pad."""

    n_ids: int
    kind: str = "units"

    def __post_init__(self) -> None:
        if self.kind not in TOKEN_TYPES:
            raise ValueError(f"token type must be one of {TOKEN_TYPES}, got {self.kind!r}")
        if not 0 < self.n_ids <= 65534:
            raise ValueError(f"{self.kind}: {self.n_ids} ids do not fit the uint16 token store (at most 65,534)")

    @property
    def eos(self) -> int:
        return eos_id(self.n_ids)

    @property
    def pad(self) -> int:
        return pad_id(self.n_ids)

    @property
    def size(self) -> int:
        return vocab_size(self.n_ids)

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "n_ids": self.n_ids, "eos": self.eos, "pad": self.pad, "size": self.size}

    @classmethod
    def from_unigram(cls, tokenizer: Any, where: str = "unigram tokenizer") -> Vocabulary:
        """The vocabulary of a unigram tokenizer made by ``hf_slm.units.train_unigram`` (pieces, <eos>, <pad>)."""
        pieces = len(tokenizer) - 2
        if (tokenizer.eos_token_id, tokenizer.pad_token_id) != (pieces, pieces + 1):
            raise ValueError(f"{where}: expected <eos> = {pieces} and <pad> = {pieces + 1} after its {pieces} pieces, "
                             f"got eos={tokenizer.eos_token_id}, pad={tokenizer.pad_token_id}")
        return cls(pieces, "unigram")
