"""The text family in miniature: a BPE tokenizer fitted on the stories' text, and token datasets in the
unit-dataset layout, so that the same trainer, packing and scoring serve text LMs and speech LMs alike.

Token ids follow contract 2 with the text pieces in place of units: pieces 0..P-1, EOS = P, pad = P + 1
(``<eos>`` and ``<pad>`` are the tokenizer's last two tokens). The datasets hold ``units`` = token ids,
``n_frames`` = number of tokens and ``seconds`` = 0, plus ``text`` and the benchmark columns.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

EOS_TOKEN, PAD_TOKEN = "<eos>", "<pad>"


def fit_text_tokenizer(texts: Sequence[str], n_pieces: int):
    """A byte-free BPE tokenizer (``tokenizers``) with ``n_pieces`` pieces over the characters of ``texts``
    (spaces marked by the Metaspace pre-tokenizer), then ``<eos>`` and ``<pad>``: a
    ``PreTrainedTokenizerFast`` that saves and loads like any Hugging Face tokenizer."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    alphabet = sorted({ch for t in texts for ch in t.replace(" ", "\u2581")})
    if n_pieces < len(alphabet):
        raise ValueError(f"text vocabulary of {n_pieces} pieces cannot hold the {len(alphabet)} characters of "
                         "the stories; raise text.vocab_size")
    backend = Tokenizer(models.BPE(unk_token=None))
    backend.pre_tokenizer = pre_tokenizers.Metaspace()
    backend.decoder = decoders.Metaspace()
    trainer = trainers.BpeTrainer(vocab_size=n_pieces, initial_alphabet=alphabet, show_progress=False,
                                  limit_alphabet=len(alphabet))
    backend.train_from_iterator(texts, trainer=trainer)
    if backend.get_vocab_size() != n_pieces:
        raise ValueError(f"BPE stopped at {backend.get_vocab_size()} pieces, fewer than {n_pieces}: the stories "
                         "have too few distinct merges; lower text.vocab_size")
    backend.add_special_tokens([EOS_TOKEN, PAD_TOKEN])
    return PreTrainedTokenizerFast(tokenizer_object=backend, eos_token=EOS_TOKEN, pad_token=PAD_TOKEN,
                                   clean_up_tokenization_spaces=False)


def n_pieces(tokenizer) -> int:
    """P, the pieces of a text tokenizer from :func:`fit_text_tokenizer` (its EOS id)."""
    return int(tokenizer.convert_tokens_to_ids(EOS_TOKEN))


def encode_texts(tokenizer, texts: Sequence[str]) -> list[list[int]]:
    """Token ids of each text, without special tokens."""
    return [list(ids) for ids in tokenizer(list(texts), add_special_tokens=False)["input_ids"]]


def save_text_dataset(splits: Mapping[str, list[dict]], tokenizer_dir: str | Path, output_dir: str | Path) -> Path:
    """Tokenise each split's rows (``id``, ``text`` and any other columns) and save them in the unit-dataset
    layout (Parquet shards + card) under ``output_dir``; written to a temporary folder, then renamed."""
    import shutil

    import datasets
    import numpy as np
    from transformers import PreTrainedTokenizerFast

    from hf_slm.data.schema import UNIT_FEATURES, unit_features
    from hf_slm.data.unit_dataset import UnitDatasetInfo, save_unit_dataset

    tokenizer = PreTrainedTokenizerFast.from_pretrained(str(tokenizer_dir))
    info = UnitDatasetInfo(tokenizer=str(tokenizer_dir), tokenizer_revision=None, n_units=n_pieces(tokenizer),
                           frame_rate=0.0, dedup=False)
    encoded = {}
    for split, rows in splits.items():
        ids = encode_texts(tokenizer, [r["text"] for r in rows])
        columns = {"id": [r["id"] for r in rows], "units": [np.asarray(x, dtype=np.uint16) for x in ids],
                   "n_frames": [len(x) for x in ids], "seconds": [0.0] * len(rows)}
        for key in rows[0] if rows else []:
            if key not in columns:
                columns[key] = [r[key] for r in rows]
        features = unit_features({k: datasets.Value("int64") if isinstance(v[0], int) else datasets.Value("string")
                                  for k, v in columns.items() if k not in UNIT_FEATURES}, durations=False)
        encoded[split] = ds = datasets.Dataset.from_dict(columns, features=features)
        info.add(ds)
    out = Path(output_dir)
    tmp = out.with_name(out.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    save_unit_dataset(encoded, tmp, info, pretty_name=f"text tokens: {out.name}")
    if out.exists():
        shutil.rmtree(out)
    tmp.rename(out)
    return out
