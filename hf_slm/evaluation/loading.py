"""Load a benchmark dataset from where users keep it: a folder the importers wrote (Parquet shards + card), a
``save_to_disk`` folder, a plain Parquet / JSON Lines / CSV file, a Hub dataset id, or a ``datasets.Dataset``.

The split is the only one there is, else the one asked for, else ``test``, ``dev`` or ``validation``. What was
loaded is recorded (source, split, revision, SHA-256 of local files, the card's tokenizer and K) so a results file
says exactly what it scored.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import datasets
import yaml

from hf_slm.data.unit_dataset import CARD_KEY, card_data_files, looks_like_hub_id

BENCHMARK_CARD_KEY = "hf_slm_benchmark"
PREFERRED_SPLITS = ("test", "dev", "validation")
_FILE_BUILDERS = {".parquet": "parquet", ".jsonl": "json", ".json": "json", ".csv": "csv"}


@dataclass
class LoadedBenchmark:
    """A benchmark dataset and where it came from."""

    dataset: datasets.Dataset
    source: str
    split: str | None = None
    revision: str | None = None
    files_sha256: dict[str, str] = field(default_factory=dict)
    card: dict[str, Any] = field(default_factory=dict)

    @property
    def n_units(self) -> int | None:
        """K of the speech tokenizer that made the units, from the card (None when unknown)."""
        info = self.card.get(CARD_KEY) or {}
        return info.get("n_units")

    @property
    def tokenizer(self) -> str | None:
        info = self.card.get(CARD_KEY) or {}
        return info.get("tokenizer")

    def provenance(self) -> dict[str, Any]:
        bench = self.card.get(BENCHMARK_CARD_KEY) or {}
        out = {"source": self.source, "split": self.split, "revision": self.revision, "rows": len(self.dataset),
               "files_sha256": self.files_sha256, "tokenizer": self.tokenizer, "n_units": self.n_units}
        out.update({k: bench[k] for k in ("layout", "release", "release_files") if k in bench})
        if "card_error" in self.card:
            out["card_error"] = self.card["card_error"]
        return out


def sha256_file(path: str | Path) -> str:
    digest = hashlib.sha256()
    with Path(path).open("rb") as stream:
        while chunk := stream.read(8 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def read_card(folder: str | Path) -> dict[str, Any]:
    """The YAML header of ``folder/README.md`` (empty when there is none)."""
    path = Path(folder) / "README.md"
    if not path.is_file():
        return {}
    text = path.read_text()
    parts = text.split("---")
    if not text.startswith("---") or len(parts) < 3:
        return {}
    meta = yaml.safe_load(parts[1])
    return meta if isinstance(meta, dict) else {}


def _card_data_files(folder: Path, card: dict[str, Any]) -> dict[str, list[str]]:
    files = card_data_files(card) or {}
    return {split: [str(folder / p) for p in paths] for split, paths in files.items()}


def pick_split(ds: datasets.Dataset | datasets.DatasetDict, split: str | None, where: str) -> tuple[datasets.Dataset,
                                                                                                      str | None]:
    """The split to score: ``split`` if given, else the only one, else test / dev / validation."""
    if isinstance(ds, datasets.Dataset):
        return ds, split
    names = list(ds)
    if split is not None:
        if split not in ds:
            raise ValueError(f"benchmark {where}: no split {split!r}; have {names}")
        return ds[split], split
    if len(names) == 1:
        return ds[names[0]], names[0]
    for name in PREFERRED_SPLITS:
        if name in ds:
            return ds[name], name
    raise ValueError(f"benchmark {where}: several splits {names} and none of {PREFERRED_SPLITS}; choose one with "
                     "--split")


def load_benchmark(
    source: str | Path | datasets.Dataset | datasets.DatasetDict, split: str | None = None,
    revision: str | None = None,
) -> LoadedBenchmark:
    """Load one benchmark dataset (see the module docstring); ``FileNotFoundError`` for a path that is not there
    and is not a Hub id."""
    if isinstance(source, (datasets.Dataset, datasets.DatasetDict)):
        ds, chosen = pick_split(source, split, "<in memory>")
        return LoadedBenchmark(ds, source="<in memory>", split=chosen)
    path = Path(source)
    if path.is_file():
        builder = _FILE_BUILDERS.get(path.suffix.lower())
        if builder is None:
            raise ValueError(f"benchmark {source}: unknown file type {path.suffix!r}; use Parquet, JSON Lines or CSV")
        ds = datasets.load_dataset(builder, data_files=str(path), split="train")
        return LoadedBenchmark(ds, str(source), split, files_sha256={path.name: sha256_file(path)})
    if path.is_dir():
        if (path / "dataset_info.json").exists() or (path / "dataset_dict.json").exists():
            ds, chosen = pick_split(datasets.load_from_disk(str(path)), split, str(source))
            files = sorted(path.rglob("*.arrow"))
            return LoadedBenchmark(ds, str(source), chosen, files_sha256={
                str(f.relative_to(path)): sha256_file(f) for f in files})
        card = read_card(path)
        data_files = _card_data_files(path, card)
        if data_files:
            # the parquet builder on the card's files: datasets caches a folder loaded by path under its README
            # config without looking at the files, so a rebuilt folder would come back with its old rows
            all_ds = datasets.load_dataset("parquet", data_files=data_files)
        else:
            all_ds = datasets.load_dataset(str(path))
        ds, chosen = pick_split(all_ds, split, str(source))
        files = sorted(p for p in path.rglob("*.parquet") if ".import" not in p.parts)
        return LoadedBenchmark(ds, str(source), chosen, files_sha256={
            str(f.relative_to(path)): sha256_file(f) for f in files}, card=card)
    if not looks_like_hub_id(source):
        raise FileNotFoundError(f"benchmark {str(source)!r}: no such file or folder, and not a Hub id (owner/name)")
    all_ds = datasets.load_dataset(str(source), revision=revision)
    ds, chosen = pick_split(all_ds, split, str(source))
    card = {}
    try:
        from huggingface_hub import hf_hub_download

        card = read_card(Path(hf_hub_download(str(source), "README.md", repo_type="dataset", revision=revision)).parent)
    except Exception as err:  # noqa: BLE001 - a Hub dataset without a card is still scorable
        card = {"card_error": str(err)}
    return LoadedBenchmark(ds, str(source), chosen, revision=revision, card=card)
