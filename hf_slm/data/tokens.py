"""Token ids of the language model (contract 2).

Units ``0..K-1`` keep their ids; EOS is ``K``; pad is ``K + 1``; the vocabulary has ``K + 2`` entries
(502 for K=500), as in the paper's released checkpoints (``tiagoCuervo/slm_scaling``).
"""

from __future__ import annotations


def eos_id(n_units: int) -> int:
    """Id of the end-of-utterance token for a tokenizer with ``n_units`` units."""
    return n_units


def pad_id(n_units: int) -> int:
    """Id of the padding token for a tokenizer with ``n_units`` units."""
    return n_units + 1


def vocab_size(n_units: int) -> int:
    """Size of the LM vocabulary: the units plus EOS and pad."""
    return n_units + 2
