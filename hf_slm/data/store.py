"""A token store that scales: unit datasets (local or Hub, streamed) -> memory-mapped uint16 tokens on disk.

The trainer never holds the corpus in memory: ``pack_mix`` streams each dataset of a mix through ``datasets``
(Arrow batches, no row loop over tokens) into shard files of uint16 token ids with EOS after every utterance
(contract 2), and :class:`TokenStore` maps them back with ``numpy.memmap``. Opening a store reads one small JSON
manifest, so start-up time and resident memory do not grow with the corpus.

A store is one folder per mix, named by the mix's fingerprint (datasets, their resolved revisions or local
file signatures, splits, the held-out rule, the token type; not the sampling weights, which the trainer
applies without copying tokens)::

    <store root>/<fingerprint>/
        manifest.json                 written last: the store is complete iff it exists
        train/d000-p00000.bin         uint16 tokens of dataset 0, part 0
        train/d000-p00000.len.npy     uint32 utterance lengths (EOS included): the utterance index
        test/d000-p00000.bin ...      the held-out stream, same layout
        parts/d000-train-p00000.json  one marker per finished part (its files, the stream position)
        unigram_tokenizer/            unigram mixes: the tokenizer the ids belong to

Packing is resumable: a part (up to ``shard_tokens`` training tokens) is written to ``*.tmp`` files, renamed,
and only then marked done with the ``datasets`` stream's ``state_dict()``; a rerun after a crash (kill -9
included) skips the finished parts and resumes the stream from the last marker, so no utterance is lost or
written twice. Held-out rule: a dataset's ``test_split`` is the held-out set; a dataset without one gives a
``test_fraction`` of its utterances, chosen by a hash of the utterance id; ``test: false`` keeps a dataset out
of the held-out set altogether (the paper does so for sTinyStories).
"""

from __future__ import annotations

import hashlib
import json
import mmap
import os
import re
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import numpy as np

from hf_slm.data.tokens import TOKEN_TYPES, Vocabulary

STORE_FORMAT = "hf_slm-token-store"
STORE_VERSION = 1
MANIFEST = "manifest.json"
TOKEN_DTYPE = np.uint16
LENGTH_DTYPE = np.uint32
SHARD_TOKENS = 2**27  # 128 Mi tokens (256 MB) of training data per part
BATCH_ROWS = 1000
UNIGRAM_DIR = "unigram_tokenizer"
STORE_DIR_ENV = "HF_SLM_STORE_DIR"
_SHA = re.compile(r"^[0-9a-f]{40}$")


class StoreError(ValueError):
    """A dataset of the mix cannot be packed, or a store on disk is incomplete or damaged; names which."""


# -- the mix --------------------------------------------------------------------------------------------------
@dataclass
class MixEntry:
    """One unit dataset of a training mix (a local folder or a Hub id).

    ``weight`` scales how often the trainer samples it (2.0 = twice as often per token, 0.5 = half) without
    copying tokens; ``test`` False keeps its held-out data out of the test loss (the paper does so for
    sTinyStories); ``revision`` pins a Hub dataset (branch, tag or commit; the store records the commit).
    """

    id: str
    weight: float = 1.0
    test: bool = True
    revision: str | None = None
    train_split: str = "train"
    test_split: str = "test"

    def __post_init__(self) -> None:
        self.id = str(self.id)
        try:
            self.weight = float(self.weight) if not isinstance(self.weight, bool) else float("nan")
        except (TypeError, ValueError):
            raise ValueError(f"datasets: {self.id}: weight expects a number > 0, got {self.weight!r}") from None
        if not self.weight > 0 or not np.isfinite(self.weight):
            raise ValueError(f"datasets: {self.id}: weight must be a number > 0, got {self.weight!r}")
        try:
            self.test = to_bool(self.test)
        except ValueError:
            raise ValueError(f"datasets: {self.id}: test expects true or false, got {self.test!r}") from None
        self.revision = None if self.revision is None else str(self.revision)

    @classmethod
    def parse(cls, item: Any, index: int) -> MixEntry:
        """An entry from a config: an id, or a mapping with ``id`` and any of the other fields."""
        if isinstance(item, MixEntry):
            return item
        if isinstance(item, (str, Path)):
            return cls(id=str(item))
        if isinstance(item, dict):
            names = {f.name for f in fields(cls)}
            unknown = sorted(set(item) - names)
            if unknown or "id" not in item:
                raise ValueError(f"datasets[{index}]: needs 'id' and only keys {sorted(names)}, got {sorted(item)}")
            return cls(**item)
        raise ValueError(f"datasets[{index}]: expected an id or a mapping with 'id', got {item!r}")


@dataclass
class MixConfig:
    """What a token store depends on: the datasets and how their tokens and held-out data are chosen.

    ``n_units`` is K of the speech tokenizer (checked against every dataset card); ``token_type`` "units"
    stores the ``units`` column (vocabulary K + 2), "unigram" the ``tokens`` column of datasets compressed by
    ``dataset_scripts/compress_units.py`` (vocabulary pieces + 2, from the tokenizer saved with them).
    """

    datasets: list[MixEntry] = field(default_factory=list)
    n_units: int = 500
    token_type: str = "units"
    test_fraction: float = 0.01

    def __post_init__(self) -> None:
        self.datasets = [MixEntry.parse(d, i) for i, d in enumerate(self.datasets)]
        if isinstance(self.n_units, bool) or not isinstance(self.n_units, int) or self.n_units < 1:
            raise ValueError(f"n_units must be a positive integer, got {self.n_units!r}")
        if self.token_type not in TOKEN_TYPES:
            raise ValueError(f"token_type must be one of {TOKEN_TYPES}, got {self.token_type!r}")
        if not 0 < self.test_fraction < 1:
            raise ValueError(f"test_fraction must lie in (0, 1), got {self.test_fraction!r}")

    @property
    def column(self) -> str:
        return "units" if self.token_type == "units" else "tokens"


def to_bool(value: Any) -> bool:
    """YAML-ish booleans: true/false, yes/no, on/off, 1/0."""
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("true", "yes", "on", "1"):
        return True
    if text in ("false", "no", "off", "0"):
        return False
    raise ValueError(value)


def default_store_root() -> Path:
    """``$HF_SLM_STORE_DIR``, else ``~/.cache/hf_slm/stores``."""
    return Path(os.environ.get(STORE_DIR_ENV) or Path.home() / ".cache" / "hf_slm" / "stores")


# -- sources: local folders and Hub datasets ------------------------------------------------------------------
def looks_like_hub_id(text: str) -> bool:
    """``owner/name`` (what the Hub would resolve), as opposed to a path."""
    return re.fullmatch(r"[A-Za-z0-9][\w.-]*/[\w.-]+", text) is not None and not text.startswith((".", "~"))


def resolve_hub_revision(repo_id: str, revision: str | None) -> str:
    """The commit sha that ``revision`` (None = the default branch) of Hub dataset ``repo_id`` points to now."""
    if revision is not None and _SHA.match(revision):
        return revision
    from huggingface_hub import HfApi, constants

    try:  # the default branch as huggingface_hub's downloads name it (also what mirrors such as olah serve)
        sha = HfApi().dataset_info(repo_id, revision=revision or constants.DEFAULT_REVISION).sha
    except Exception as err:  # offline, unknown repo, gated, ...
        raise StoreError(f"datasets: {repo_id}: not a local folder, and its revision {revision or 'main'!r} could "
                         f"not be resolved on the Hub ({type(err).__name__}: {err}); pin 'revision:' to a commit "
                         "sha to pack from the local cache") from err
    if not sha:
        raise StoreError(f"datasets: {repo_id}: the Hub gave no commit for revision {revision or 'main'!r}")
    return sha


@dataclass
class Source:
    """One dataset of the mix, located: a local folder or a Hub dataset at a resolved commit."""

    entry: MixEntry
    path: Path | None  # local folder, or None for a Hub dataset
    revision: str | None  # the resolved commit of a Hub dataset; None for a local folder
    card: dict[str, Any]  # the dataset card's YAML metadata

    @property
    def info(self) -> dict[str, Any]:
        return self.card["hf_slm"]

    @property
    def data_files(self) -> dict[str, list[str]]:
        """``{split: [patterns]}`` of the card's default config (relative to the dataset root)."""
        from hf_slm.data.unit_dataset import card_data_files

        files = card_data_files(self.card)
        if files is None:
            raise StoreError(f"datasets: {self.entry.id}: its card has no default entry under 'configs:'")
        return files

    @property
    def splits(self) -> list[str]:
        return sorted(self.data_files)

    def stream(self, split: str):
        """The split as a streaming ``datasets.IterableDataset`` (resumable with ``state_dict``)."""
        import datasets

        if self.path is not None:
            files = [str(p) for pattern in self.data_files[split] for p in sorted(self.path.glob(pattern))]
            if not files:
                raise StoreError(f"datasets: {self.entry.id}: no data files for split {split!r}")
            return datasets.load_dataset("parquet", data_files={split: files}, split=split, streaming=True)
        return datasets.load_dataset(self.entry.id, split=split, revision=self.revision, streaming=True)

    def signature(self) -> dict[str, Any]:
        """What identifies this dataset's content: the Hub commit, or the local files' names, sizes, mtimes."""
        if self.path is None:
            return {"hub": self.entry.id, "revision": self.revision}
        files = sorted({p for patterns in self.data_files.values() for pattern in patterns
                        for p in self.path.glob(pattern)} | {self.path / "README.md"})
        listing = [(str(p.relative_to(self.path)), p.stat().st_size, p.stat().st_mtime_ns) for p in files]
        return {"local": str(self.path.resolve()), "files": hashlib.sha256(json.dumps(listing).encode()).hexdigest()}

    def unigram_tokenizer_dir(self) -> Path:
        """The folder of the unigram tokenizer saved with a compressed dataset (downloaded for a Hub one)."""
        sub = (self.info.get("unigram") or {}).get("tokenizer")
        if not sub:
            raise StoreError(f"datasets: {self.entry.id}: not unigram-compressed (its card has no 'unigram' block; "
                             "make it with dataset_scripts/compress_units.py) but token_type is 'unigram'")
        if self.path is not None:
            return self.path / sub
        from huggingface_hub import snapshot_download

        root = snapshot_download(self.entry.id, repo_type="dataset", revision=self.revision, allow_patterns=[f"{sub}/*"])
        return Path(root) / sub


def _read_card(text: str, where: str) -> dict[str, Any]:
    import yaml

    parts = text.split("---")
    meta = yaml.safe_load(parts[1]) if text.startswith("---") and len(parts) > 2 else None
    if not isinstance(meta, dict) or "hf_slm" not in meta:
        raise StoreError(f"datasets: {where}: its README.md has no 'hf_slm' metadata block; is it a unit dataset "
                         "(made by 'hf-slm units' / dataset_scripts/build_units.py)?")
    return meta


def locate(entry: MixEntry) -> Source:
    """Decide local folder vs Hub id first (a missing path is never looked up on the Hub), then read the card."""
    path = Path(entry.id).expanduser()
    if path.exists():
        if not path.is_dir():
            raise StoreError(f"datasets: {entry.id}: is a file, not a unit dataset folder")
        card = path / "README.md"
        if not card.is_file():
            raise StoreError(f"datasets: {entry.id}: the folder has no README.md card; is it a unit dataset?")
        return Source(entry, path, None, _read_card(card.read_text(), entry.id))
    if path.is_absolute() or not looks_like_hub_id(entry.id):
        raise StoreError(f"datasets: {entry.id}: no such folder, and not a Hub id (owner/name)")
    from huggingface_hub import hf_hub_download

    revision = resolve_hub_revision(entry.id, entry.revision)
    try:
        readme = hf_hub_download(entry.id, "README.md", repo_type="dataset", revision=revision)
    except Exception as err:
        raise StoreError(f"datasets: {entry.id}@{revision}: could not read its README.md card from the Hub "
                         f"({type(err).__name__}: {err})") from err
    return Source(entry, None, revision, _read_card(Path(readme).read_text(), entry.id))


def check_sources(mix: MixConfig, sources: list[Source]) -> tuple[Vocabulary, dict[str, Any], Path | None]:
    """The mix's vocabulary, speech tokenizer and (unigram) tokenizer folder; refuses a mix that disagrees."""
    if not sources:
        raise StoreError("datasets: no training data; list unit dataset folders or Hub ids under 'datasets'")
    speech, unigram = set(), {}
    for src in sources:
        k = src.info.get("n_units")
        if k != mix.n_units:
            raise StoreError(f"n_units={mix.n_units} but dataset {src.entry.id} has K={k} units")
        if src.entry.train_split not in src.splits:
            raise StoreError(f"datasets: {src.entry.id} has no split {src.entry.train_split!r} (splits: {src.splits})")
        speech.add((src.info.get("tokenizer"), src.info.get("tokenizer_revision")))
        if mix.token_type == "unigram":
            folder = src.unigram_tokenizer_dir()
            spec = folder / "tokenizer.json"
            if not spec.is_file():
                raise StoreError(f"datasets: {src.entry.id}: no unigram tokenizer at {folder}")
            unigram[hashlib.sha256(spec.read_bytes()).hexdigest()] = folder
    if len(speech) > 1:
        raise StoreError(f"datasets: the mix uses different speech tokenizers {sorted(map(str, speech))}")
    (tok_id, tok_rev), = speech
    tokenizer: dict[str, Any] = {"id": tok_id, "revision": tok_rev}
    if mix.token_type == "units":
        return Vocabulary(mix.n_units, "units"), tokenizer, None
    if len(unigram) > 1:
        raise StoreError("datasets: the mix's unigram-compressed datasets use different unigram tokenizers: "
                         f"{sorted(str(p) for p in unigram.values())}")
    (sha, folder), = unigram.items()
    from transformers import PreTrainedTokenizerFast

    vocab = Vocabulary.from_unigram(PreTrainedTokenizerFast.from_pretrained(str(folder)), where=str(folder))
    tokenizer["unigram"] = {"pieces": vocab.n_ids, "vocab_size": vocab.size, "sha256": sha, "source": str(folder)}
    return vocab, tokenizer, folder


def mix_fingerprint(mix: MixConfig, sources: list[Source]) -> str:
    """A hash of everything the stored tokens depend on (not the weights: they act at sampling time)."""
    payload = {
        "version": STORE_VERSION, "token_type": mix.token_type, "n_units": mix.n_units,
        "test_fraction": mix.test_fraction,
        "datasets": [{"source": s.signature(), "train_split": s.entry.train_split, "test_split": s.entry.test_split,
                      "test": s.entry.test} for s in sources],
    }
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:20]


# -- writing --------------------------------------------------------------------------------------------------
def _write_json(path: Path, payload: dict[str, Any]) -> None:
    """Atomically: a crash leaves the old file or none, never half of one."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(payload, indent=1, default=str))
    os.replace(tmp, path)


class _ShardFile:
    """One shard, streamed to ``<name>.bin.tmp`` and renamed (with its utterance index) when closed."""

    def __init__(self, path: Path):
        self.path = path
        self.tmp = path.with_name(path.name + ".tmp")
        self.file = None
        self.lengths: list[np.ndarray] = []
        self.n_tokens = 0

    def write(self, tokens: np.ndarray, lengths: np.ndarray) -> None:
        if not len(lengths):
            return
        if self.file is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self.file = open(self.tmp, "wb")  # noqa: SIM115 (closed in close())
        tokens.astype(TOKEN_DTYPE, copy=False).tofile(self.file)
        self.lengths.append(lengths.astype(LENGTH_DTYPE))
        self.n_tokens += len(tokens)

    def close(self) -> dict[str, Any] | None:
        if self.file is None:
            return None
        self.file.flush()
        os.fsync(self.file.fileno())
        self.file.close()
        lengths = np.concatenate(self.lengths)
        index = self.path.with_suffix(".len.npy")
        with open(index.with_name(index.name + ".tmp"), "wb") as f:
            np.save(f, lengths)
        os.replace(index.with_name(index.name + ".tmp"), index)
        os.replace(self.tmp, self.path)
        return {"file": f"{self.path.parent.name}/{self.path.name}", "tokens": self.n_tokens,
                "utterances": len(lengths), "bytes": self.n_tokens * np.dtype(TOKEN_DTYPE).itemsize}


def held_out_mask(ids: Iterable[str], fraction: float) -> np.ndarray:
    """Utterances whose id hashes below ``fraction``: a fixed held-out set, whatever the order or the seed."""
    scale = float(2**64)
    return np.array([int.from_bytes(hashlib.blake2b(str(i).encode(), digest_size=8).digest(), "little") / scale
                     < fraction for i in ids], dtype=bool)


def tokens_of(table: Any, column: str, vocab: Vocabulary, where: str) -> tuple[np.ndarray, np.ndarray]:
    """An Arrow batch's ``column`` as one token stream with EOS after each utterance, and the row lengths."""
    import pyarrow as pa
    import pyarrow.compute as pc

    if column not in table.column_names:
        hint = " (make one with dataset_scripts/compress_units.py)" if column == "tokens" else ""
        raise StoreError(f"datasets: {where}: no column {column!r}{hint}; have {table.column_names}")
    col = table.column(column).combine_chunks()
    if col.null_count:
        raise StoreError(f"datasets: {where}: column {column!r} has {col.null_count} empty (null) rows")
    if not pa.types.is_integer(col.type.value_type):
        raise StoreError(f"datasets: {where}: column {column!r} must hold integer lists, got {col.type}")
    values = pc.list_flatten(col).to_numpy(zero_copy_only=False)
    lengths = pc.list_value_length(col).to_numpy(zero_copy_only=False).astype(np.int64) + 1
    if values.size and (values.min() < 0 or values.max() >= vocab.eos):
        bad = values.max() if values.max() >= vocab.eos else values.min()
        raise StoreError(f"datasets: {where}: column {column!r} has id {int(bad)} outside 0..{vocab.eos - 1} "
                         f"({vocab.kind}: {vocab.n_ids} ids, EOS = {vocab.eos})")
    out = np.empty(int(lengths.sum()), dtype=TOKEN_DTYPE)
    ends = np.cumsum(lengths) - 1
    keep = np.ones(len(out), dtype=bool)
    keep[ends] = False
    out[keep] = values
    out[ends] = vocab.eos
    return out, lengths


def _select_rows(tokens: np.ndarray, lengths: np.ndarray, keep: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The tokens and lengths of the utterances where ``keep`` (one bool per utterance) is true."""
    return tokens[np.repeat(keep, lengths)], lengths[keep]


@dataclass
class _Pass:
    """One read of a dataset split: ``role`` "train" (the train split, plus hashed held-out rows when
    ``hashed``) or "test" (the test split)."""

    index: int
    source: Source
    role: str
    split: str
    hashed: bool = False

    @property
    def name(self) -> str:
        return f"d{self.index:03d}-{self.role}"


def _passes(mix: MixConfig, sources: list[Source]) -> list[_Pass]:
    out = []
    for i, src in enumerate(sources):
        has_test = src.entry.test_split in src.splits
        out.append(_Pass(i, src, "train", src.entry.train_split, hashed=src.entry.test and not has_test))
        if src.entry.test and has_test:
            out.append(_Pass(i, src, "test", src.entry.test_split))
    return out


def _run_pass(p: _Pass, root: Path, mix: MixConfig, vocab: Vocabulary, shard_tokens: int, progress: bool,
              batch_rows: int) -> None:
    """Stream one split into parts; resume after the last finished part's stream position."""
    from tqdm.auto import tqdm

    parts = root / "parts"
    if (parts / f"{p.name}.done.json").exists():
        return
    markers = sorted(parts.glob(f"{p.name}-p*.json"))
    part = len(markers)
    stream = p.source.stream(p.split).with_format("arrow")
    if markers:
        stream.load_state_dict(json.loads(markers[-1].read_text())["state"])
    where = f"{p.source.entry.id} split {p.split!r}"
    primary = "train" if p.role == "train" else "test"

    def open_part(k: int) -> dict[str, _ShardFile]:
        return {s: _ShardFile(root / s / f"d{p.index:03d}-p{k:05d}.bin") for s in ("train", "test")}

    def finish(files: dict[str, _ShardFile], k: int, state: dict) -> None:
        shards = {s: f.close() for s, f in files.items()}
        _write_json(parts / f"{p.name}-p{k:05d}.json", {"dataset": p.index, "role": p.role, "part": k,
                                                          "shards": shards, "state": state})

    bar = tqdm(desc=f"pack {p.source.entry.id} ({p.split})", unit="tok", unit_scale=True, disable=not progress)
    files = open_part(part)
    batches = stream.iter(batch_size=batch_rows)
    try:
        for table in batches:
            tokens, lengths = tokens_of(table, mix.column, vocab, where)
            if p.hashed:
                held = held_out_mask(table.column("id").to_pylist(), mix.test_fraction)
                files["train"].write(*_select_rows(tokens, lengths, ~held))
                files["test"].write(*_select_rows(tokens, lengths, held))
            else:
                files[primary].write(tokens, lengths)
            bar.update(len(tokens))
            if files[primary].n_tokens >= shard_tokens:
                finish(files, part, stream.state_dict())
                part += 1
                files = open_part(part)
    finally:
        batches.close()
        bar.close()
    finish(files, part, stream.state_dict())
    _write_json(parts / f"{p.name}.done.json", {"dataset": p.index, "role": p.role, "parts": part + 1})


def _manifest(root: Path, mix: MixConfig, sources: list[Source], vocab: Vocabulary, tokenizer: dict[str, Any],
              fingerprint: str) -> dict[str, Any]:
    stores: dict[str, dict[str, Any]] = {s: {"tokens": 0, "utterances": 0, "shards": []} for s in ("train", "test")}
    per_dataset = [{"train_tokens": 0, "test_tokens": 0, "train_utterances": 0, "test_utterances": 0} for _ in sources]
    for p in _passes(mix, sources):
        for marker in sorted((root / "parts").glob(f"{p.name}-p*.json")):
            for split, shard in json.loads(marker.read_text())["shards"].items():
                if shard is None:
                    continue
                stores[split]["shards"].append({**shard, "dataset": p.index})
                stores[split]["tokens"] += shard["tokens"]
                stores[split]["utterances"] += shard["utterances"]
                per_dataset[p.index][f"{split}_tokens"] += shard["tokens"]
                per_dataset[p.index][f"{split}_utterances"] += shard["utterances"]
    datasets = []
    for src, counts in zip(sources, per_dataset, strict=True):
        held = ("split " + src.entry.test_split if src.entry.test_split in src.splits else
                f"hash of id < {mix.test_fraction}") if src.entry.test else "none (test: false)"
        datasets.append({"id": src.entry.id, "revision": src.revision, "requested_revision": src.entry.revision,
                         "local": src.path is not None, "weight": src.entry.weight, "test": src.entry.test,
                         "train_split": src.entry.train_split, "held_out": held, **counts})
    return {"format": STORE_FORMAT, "version": STORE_VERSION, "fingerprint": fingerprint,
            "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "token_type": mix.token_type,
            "dtype": np.dtype(TOKEN_DTYPE).name, "vocabulary": vocab.to_dict(), "tokenizer": tokenizer,
            "test_fraction": mix.test_fraction, "datasets": datasets, **stores}


def pack_mix(mix: MixConfig, root: str | Path | None = None, *, shard_tokens: int = SHARD_TOKENS,
             progress: bool = True, batch_rows: int = BATCH_ROWS) -> Path:
    """Pack ``mix`` into ``<root>/<fingerprint>`` (default root: :func:`default_store_root`) unless it is there.

    Returns the store folder (open it with :class:`TokenStore`). Safe to rerun after a crash: finished parts
    are kept and the streams resume where the last one ended. Concurrent callers wait on a file lock.
    """
    from filelock import FileLock

    if shard_tokens < 1:
        raise ValueError(f"shard_tokens must be >= 1, got {shard_tokens}")
    sources = [locate(e) for e in mix.datasets]
    vocab, tokenizer, unigram_dir = check_sources(mix, sources)
    fingerprint = mix_fingerprint(mix, sources)
    out = Path(root or default_store_root()) / fingerprint
    out.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(out) + ".lock"):
        if (out / MANIFEST).exists():
            return out
        (out / "parts").mkdir(parents=True, exist_ok=True)
        if unigram_dir is not None:
            from transformers import PreTrainedTokenizerFast

            PreTrainedTokenizerFast.from_pretrained(str(unigram_dir)).save_pretrained(out / UNIGRAM_DIR)
            tokenizer["unigram"]["path"] = UNIGRAM_DIR
        for p in _passes(mix, sources):
            _run_pass(p, out, mix, vocab, shard_tokens, progress, batch_rows)
        manifest = _manifest(out, mix, sources, vocab, tokenizer, fingerprint)
        if manifest["train"]["tokens"] == 0:
            raise StoreError(f"datasets: the mix has no training tokens ({[e.id for e in mix.datasets]})")
        _write_json(out / MANIFEST, manifest)
    return out


# -- reading --------------------------------------------------------------------------------------------------
class TokenStore:
    """One side (``"train"`` or ``"test"``) of a packed store, read by memory map.

    Segments are the shard files (each holds whole utterances of one dataset); ``segment(i)`` maps one on first
    use. Nothing proportional to the corpus is read at open time.
    """

    def __init__(self, root: str | Path, split: str = "train"):
        self.root = Path(root)
        path = self.root / MANIFEST
        if not path.is_file():
            raise StoreError(f"{self.root}: not a complete token store (no {MANIFEST}); pack it with 'hf-slm pack'")
        try:
            self.manifest = json.loads(path.read_text())
        except json.JSONDecodeError as err:
            raise StoreError(f"{path}: not valid JSON ({err})") from None
        if self.manifest.get("format") != STORE_FORMAT or self.manifest.get("version") != STORE_VERSION:
            raise StoreError(f"{path}: not a version-{STORE_VERSION} hf_slm token store")
        if split not in ("train", "test"):
            raise ValueError(f"split must be 'train' or 'test', got {split!r}")
        self.split = split
        self.shards = self.manifest[split]["shards"]
        self.lengths = np.array([s["tokens"] for s in self.shards], dtype=np.int64)
        self.segment_datasets = np.array([s["dataset"] for s in self.shards], dtype=np.int64)
        self.vocabulary = Vocabulary(self.manifest["vocabulary"]["n_ids"], self.manifest["vocabulary"]["kind"])
        self._maps: dict[int, np.ndarray] = {}
        self._mmaps: dict[int, mmap.mmap] = {}

    def __repr__(self) -> str:
        return f"TokenStore({str(self.root)!r}, {self.split!r}: {self.n_tokens:,} tokens in {self.n_segments} shards)"

    @property
    def n_tokens(self) -> int:
        return int(self.lengths.sum())

    @property
    def n_segments(self) -> int:
        return len(self.shards)

    @property
    def datasets(self) -> list[dict[str, Any]]:
        return self.manifest["datasets"]

    @property
    def tokenizer(self) -> dict[str, Any]:
        return self.manifest["tokenizer"]

    @property
    def tokenizer_dir(self) -> Path | None:
        """The unigram tokenizer of a unigram store (``PreTrainedTokenizerFast.from_pretrained`` loads it)."""
        unigram = self.tokenizer.get("unigram")
        return self.root / unigram["path"] if unigram else None

    def segment(self, i: int) -> np.ndarray:
        """Shard ``i``'s tokens, memory-mapped read-only (``MADV_RANDOM``: the kernel reads only the pages that
        are touched, so resident memory follows the batches read, not the corpus)."""
        if i not in self._maps:
            shard = self.shards[i]
            path = self.root / shard["file"]
            size = path.stat().st_size if path.exists() else -1
            if size != shard["bytes"]:
                raise StoreError(f"{path}: expected {shard['bytes']} bytes, found {size}; the store is damaged, "
                                 "delete it and pack again")
            with open(path, "rb") as f:
                mapped = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
            if hasattr(mapped, "madvise"):  # random windows: no read-ahead, only the pages a batch touches
                mapped.madvise(mmap.MADV_RANDOM)
            self._maps[i] = np.frombuffer(mapped, dtype=TOKEN_DTYPE)
            self._mmaps[i] = mapped
        return self._maps[i]

    def will_need(self, i: int, start: int, length: int) -> None:
        """Ask the kernel to start reading tokens ``start:start + length`` of shard ``i`` (``MADV_WILLNEED``):
        called for every window of a batch before any is copied, so that their disk reads run concurrently."""
        self.segment(i)
        mapped = self._mmaps[i]
        if hasattr(mapped, "madvise"):
            itemsize = np.dtype(TOKEN_DTYPE).itemsize
            first = start * itemsize // mmap.PAGESIZE * mmap.PAGESIZE
            end = min((start + length) * itemsize, len(mapped))
            if end > first:
                mapped.madvise(mmap.MADV_WILLNEED, first, end - first)

    def utterance_offsets(self, i: int) -> np.ndarray:
        """Start of every utterance of shard ``i`` (and its end as the last entry), from its length index."""
        lengths = np.load(self.root / self.shards[i]["file"].replace(".bin", ".len.npy"), mmap_mode="r")
        return np.concatenate([[0], np.cumsum(lengths, dtype=np.int64)])

    def iter_segments(self) -> Iterator[np.ndarray]:
        for i in range(self.n_segments):
            yield self.segment(i)

    def fingerprint(self) -> dict[str, Any]:
        return {"store": self.manifest["fingerprint"], "split": self.split, "tokens": self.n_tokens}


class InMemoryTokens:
    """Token segments held in memory, with the interface of :class:`TokenStore` (for data already in RAM)."""

    def __init__(self, segments: list[np.ndarray], vocabulary: Vocabulary, datasets: list[int] | None = None):
        self._segments = [np.asarray(s) for s in segments]
        self.lengths = np.array([len(s) for s in self._segments], dtype=np.int64)
        self.segment_datasets = np.asarray(datasets if datasets is not None else [0] * len(segments), dtype=np.int64)
        self.vocabulary = vocabulary
        self.tokenizer_dir = None
        self.n_segments = len(self._segments)

    @property
    def n_tokens(self) -> int:
        return int(self.lengths.sum())

    def segment(self, i: int) -> np.ndarray:
        return self._segments[i]

    def fingerprint(self) -> dict[str, Any]:
        """Sizes and a hash of up to 256 evenly spaced 64-token slices of each segment."""
        digest = hashlib.sha1(self.lengths.tobytes())
        for seg in self._segments:
            starts = np.unique(np.linspace(0, max(len(seg) - 64, 0), num=min(len(seg), 256)).astype(np.int64))
            for s in starts:
                digest.update(np.ascontiguousarray(seg[s : s + 64], dtype=np.int64).tobytes())
        return {"memory": digest.hexdigest(), "tokens": self.n_tokens}


def store_summary(root: str | Path) -> dict[str, Any]:
    """The manifest without the shard lists: what ``hf-slm pack`` prints."""
    manifest = json.loads((Path(root) / MANIFEST).read_text())
    return {k: ({kk: vv for kk, vv in v.items() if kk != "shards"} if k in ("train", "test") else v)
            for k, v in manifest.items()}


def mix_from_dict(data: dict[str, Any]) -> MixConfig:
    """The mix keys of a training config (``datasets``, ``n_units``, ``token_type``, ``test_fraction``)."""
    keys = {f.name for f in fields(MixConfig)}
    return MixConfig(**{k: v for k, v in data.items() if k in keys})


__all__ = [
    "InMemoryTokens", "MixConfig", "MixEntry", "Source", "StoreError", "TokenStore", "default_store_root",
    "held_out_mask", "locate", "mix_fingerprint", "pack_mix", "store_summary", "tokens_of",
]
