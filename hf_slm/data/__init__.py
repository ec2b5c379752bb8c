"""Stage 2: unit datasets (contract 1), LM token ids (contract 2), packing and data budgets."""

from hf_slm.data.budget import Budget, block_order, make_budget
from hf_slm.data.packing import BLOCK_SIZE, PackedBlocks, labels_for, pack_blocks
from hf_slm.data.schema import UNIT_FEATURES, SchemaError, unit_features, validate_unit_dataset
from hf_slm.data.tokens import eos_id, pad_id, vocab_size

__all__ = [
    "BLOCK_SIZE", "Budget", "PackedBlocks", "SchemaError", "UNIT_FEATURES", "block_order", "eos_id",
    "labels_for", "make_budget", "pack_blocks", "pad_id", "unit_features", "validate_unit_dataset", "vocab_size",
]
