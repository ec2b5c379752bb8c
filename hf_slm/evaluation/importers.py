"""Import released benchmarks, in their released layouts, as benchmark datasets (Parquet shards + card).

Speech layouts (encoded with any ``SpeechTokenizer``; one row per candidate file with the unit dataset's
columns of contract 1 plus ``item_id``, ``label``, ``text``, ``phenomenon``, ``voice``, ``pair_id``):

- ``zerospeech-syntactic`` / ``zerospeech-lexical``: ZeroSpeech 2021 sLM21 ``syntactic/<split>`` (sBLIMP) and
  ``lexical/<split>`` (sWUGGY): ``gold.csv`` (read by column name: ``filename``, ``id``, ``voice``, ``correct``
  and, for the syntactic task, ``type``, ``subtype``, ``transcription``; for the lexical one ``word``,
  ``phones``) next to ``<filename>.wav``. An item is one (id, voice) question; its pair is the id (within
  ``type``/``subtype`` for sBLIMP, whose phenomenon is ``type``), as the ZeroSpeech scoring groups them.
- ``sSC`` / ``tSC``: spoken and topic StoryCloze (Hassid et al. 2023): ``<n>_<story id>_correct.wav`` and
  ``<n+1>_<story id>_incorrect.wav``, each the whole spoken story; an item is a story id.
- ``salmon``: SALMon: ``<part>/sample_<i>_<k>.wav``; an item is (part, i); of its files in name order the
  first is the positive (``k = 0``), as SALMon's own reader takes them; the phenomenon is the part.

Encoding runs shard by shard through :func:`hf_slm.data.build.build_unit_dataset`: a killed import started
again resumes from its finished shards. Files that cannot be used are skipped and counted by reason in the
card: ``missing_audio`` (in the gold, not on disk), ``not_in_gold`` (on disk, not in the gold),
``unrecognised_name``, the audio reasons of ``load_audio`` (``corrupt``, ``empty``...), and
``incomplete_item`` (a file whose item lost its positive or all its negatives).

Text layouts (rows ``id``, ``item_id``, ``label``, ``text`` + ``prompt``, ``phenomenon``, ``pair_id``) are in
:mod:`hf_slm.evaluation.text_importers`.
"""

from __future__ import annotations

import csv
import hashlib
import json
import re
import shutil
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import datasets
import yaml

from hf_slm.evaluation.benchmarks import BenchmarkError
from hf_slm.evaluation.loading import BENCHMARK_CARD_KEY, read_card, sha256_file

CANDIDATE_COLUMNS = ("item_id", "label", "text", "phenomenon", "voice", "pair_id")
WORK_DIR = ".import"


@dataclass(frozen=True)
class Layout:
    """A released layout: the benchmark it holds and how to list its candidates."""

    name: str
    benchmark: str
    modality: str  # "speech" or "text"
    split: str
    description: str


LAYOUTS: dict[str, Layout] = {
    layout.name: layout
    for layout in (
        Layout("zerospeech-syntactic", "sblimp", "speech", "dev", "ZeroSpeech 2021 sLM21 syntactic task (sBLIMP)"),
        Layout("zerospeech-lexical", "swuggy", "speech", "dev", "ZeroSpeech 2021 sLM21 lexical task (sWUGGY)"),
        Layout("sSC", "spoken_storycloze", "speech", "test", "spoken StoryCloze (Hassid et al. 2023)"),
        Layout("tSC", "topic_storycloze", "speech", "test", "topic StoryCloze (Hassid et al. 2023)"),
        Layout("salmon", "salmon", "speech", "test", "SALMon (Maimon et al. 2024)"),
        Layout("blimp-text", "blimp", "text", "test", "BLiMP (Warstadt et al. 2020), its data/*.jsonl"),
        Layout("storycloze-text", "storycloze", "text", "test", "StoryCloze CSV (Mostafazadeh et al. 2016)"),
        Layout("topic-storycloze-text", "topic_storycloze", "text", "test",
               "topic StoryCloze in text: StoryCloze CSV, negatives = the true endings of other stories (seeded)"),
    )
}


def get_layout(name: str) -> Layout:
    if name not in LAYOUTS:
        raise ValueError(f"unknown benchmark layout {name!r}; expected one of {sorted(LAYOUTS)}")
    return LAYOUTS[name]


# -- listing the candidates of each speech layout ---------------------------------------------------------------

def _candidate(cid: str, item: str, label: int, audio: Path, text: str = "", phenomenon: str = "", voice: str = "",
               pair: str = "") -> dict[str, Any]:
    return {"id": cid, "audio": str(audio.resolve()), "item_id": item, "label": int(label), "text": text,
            "phenomenon": phenomenon, "voice": voice, "pair_id": pair or item}


def zerospeech_folder(source: str | Path, task: str, split: str) -> Path:
    """The folder holding ``gold.csv`` and the wavs: ``SOURCE/<task>/<split>`` or ``SOURCE`` itself."""
    root = Path(source)
    for folder in (root / task / split, root):
        if (folder / "gold.csv").is_file():
            return folder
    raise FileNotFoundError(f"{root}: no {task}/{split}/gold.csv (nor gold.csv) here; point SOURCE at the sLM21 "
                            f"dataset root (holding {task}/{split}/) or at the {task}/{split} folder itself")


_GOLD_COLUMNS = {
    "syntactic": ("filename", "id", "voice", "type", "subtype", "correct"),
    "lexical": ("filename", "id", "voice", "correct"),
}


def zerospeech_candidates(source: str | Path, task: str, split: str = "dev") -> tuple[list[dict], Counter, dict]:
    """Candidates of sLM21 ``task`` (``syntactic`` or ``lexical``) from its ``gold.csv`` and wavs."""
    folder = zerospeech_folder(source, task, split)
    gold = folder / "gold.csv"
    skipped: Counter = Counter()
    rows: list[dict] = []
    with gold.open(newline="") as stream:
        reader = csv.DictReader(stream)
        missing = [c for c in _GOLD_COLUMNS[task] if c not in (reader.fieldnames or [])]
        if missing:
            raise BenchmarkError(f"{gold}: missing column(s) {missing}; have {reader.fieldnames}")
        listed = set()
        for line, rec in enumerate(reader, start=2):
            if rec["correct"] not in ("0", "1"):
                raise BenchmarkError(f"{gold}:{line}: column 'correct' is {rec['correct']!r}; expected 0 or 1")
            name = rec["filename"]
            listed.add(name)
            wav = folder / f"{name}.wav"
            if not wav.is_file():
                skipped["missing_audio"] += 1
                continue
            if task == "syntactic":
                pair = f"{rec['type']}/{rec['subtype']}/{rec['id']}"
                text, phenomenon = rec.get("transcription") or "", rec["type"]
            else:
                pair = str(rec["id"])
                text, phenomenon = rec.get("word") or rec.get("phones") or "", ""
            rows.append(_candidate(name, f"{pair}/{rec['voice']}", int(rec["correct"]), wav, text, phenomenon,
                                   rec["voice"], pair))
    skipped["not_in_gold"] += sum(1 for w in folder.glob("*.wav") if w.stem not in listed)
    release = {"folder": str(folder.resolve()), "gold_sha256": sha256_file(gold)}
    return rows, skipped, release


_STORY = re.compile(r"^(?P<n>\d+)_(?P<story>.+)_(?P<label>correct|incorrect)$")
_STORY_SHORT = re.compile(r"^(?P<story>\d+)_(?P<label>correct|incorrect)$")


def storycloze_candidates(source: str | Path) -> tuple[list[dict], Counter, dict]:
    """Candidates of a spoken / topic StoryCloze folder (searched recursively for wavs)."""
    root = Path(source)
    if not root.is_dir():
        raise FileNotFoundError(f"{root}: no such folder (the unzipped sSC / tSC release)")
    skipped: Counter = Counter()
    found = []
    for wav in sorted(root.rglob("*.wav")):
        match = _STORY.match(wav.stem) or _STORY_SHORT.match(wav.stem)
        if match is None:
            skipped["unrecognised_name"] += 1
            continue
        order = int(match.groupdict().get("n") or match["story"])
        found.append((order, wav.stem, match["story"], int(match["label"] == "correct"), wav))
    found.sort()
    rows = [_candidate(stem, story, label, wav) for _, stem, story, label, wav in found]
    return rows, skipped, {"folder": str(root.resolve())}


_SALMON = re.compile(r"^[^_]+_(?P<i>\d+)_(?P<k>.+)$")


def salmon_candidates(source: str | Path) -> tuple[list[dict], Counter, dict]:
    """Candidates of the SALMon folder: one subfolder per part (or SOURCE itself is one part)."""
    root = Path(source)
    if not root.is_dir():
        raise FileNotFoundError(f"{root}: no such folder (the unzipped SALMon release)")
    parts = sorted(d for d in root.iterdir() if d.is_dir() and any(d.glob("*.wav")))
    if not parts and any(root.glob("*.wav")):
        parts = [root]
    if not parts:
        raise FileNotFoundError(f"{root}: no part folders with wav files (expected <part>/sample_<i>_<k>.wav)")
    skipped: Counter = Counter()
    rows: list[dict] = []
    for part in parts:
        samples: dict[int, list[Path]] = {}
        for wav in sorted(part.glob("*.wav")):
            match = _SALMON.match(wav.stem)
            if match is None:
                skipped["unrecognised_name"] += 1
                continue
            samples.setdefault(int(match["i"]), []).append(wav)
        for i in sorted(samples):
            files = sorted(samples[i], key=lambda p: p.name)
            item = f"{part.name}/{i}"
            for k, wav in enumerate(files):
                rows.append(_candidate(f"{part.name}/{wav.stem}", item, int(k == 0), wav, phenomenon=part.name))
    return rows, skipped, {"folder": str(root.resolve()), "parts": [p.name for p in parts]}


def _listers(layout: Layout, split: str) -> Callable[[str | Path], tuple[list[dict], Counter, dict]]:
    if layout.name == "zerospeech-syntactic":
        return lambda src: zerospeech_candidates(src, "syntactic", split)
    if layout.name == "zerospeech-lexical":
        return lambda src: zerospeech_candidates(src, "lexical", split)
    if layout.name in ("sSC", "tSC"):
        return storycloze_candidates
    return salmon_candidates


# -- completeness --------------------------------------------------------------------------------------------

def complete_items(item_ids: list[str], labels: list[int]) -> list[bool]:
    """Whether each row's item has exactly one positive and at least one negative."""
    counts: dict[str, Counter] = {}
    for item, label in zip(item_ids, labels, strict=True):
        counts.setdefault(item, Counter())[int(label)] += 1
    return [counts[i][1] == 1 and counts[i][0] >= 1 for i in item_ids]


def _drop_incomplete(rows: list[dict], skipped: Counter) -> list[dict]:
    keep = complete_items([r["item_id"] for r in rows], [r["label"] for r in rows])
    skipped["incomplete_item"] += keep.count(False)
    return [r for r, k in zip(rows, keep, strict=True) if k]


# -- the card ------------------------------------------------------------------------------------------------

def write_benchmark_card(folder: Path, block: dict[str, Any], text_card: dict[str, Any] | None = None) -> None:
    """Add the ``hf_slm_benchmark`` block (and a paragraph) to ``folder/README.md``; for a text benchmark
    (``text_card``: its split) write the whole card."""
    readme = folder / "README.md"
    if text_card is not None:
        meta: dict[str, Any] = {
            "pretty_name": folder.name, "tags": ["benchmark", "hf-slm"],
            "configs": [{"config_name": "default",
                         "data_files": [{"split": text_card["split"], "path": f"data/{text_card['split']}-*.parquet"}]}],
        }
        body = f"# {folder.name}\n"
    else:
        text = readme.read_text()
        _, header, body = text.split("---", 2)
        meta = yaml.safe_load(header)
        body = body.lstrip("\n")
    meta[BENCHMARK_CARD_KEY] = block
    skipped = ", ".join(f"{k}: {v}" for k, v in sorted(block.get("skipped", {}).items())) or "none"
    body += (
        f"\n## Benchmark\n\n`{block['benchmark']}` imported by hf_slm from `{block['release']}` (layout "
        f"`{block['layout']}`): {block['items']} items, {block['rows']} candidates. One row per candidate: `item_id` "
        "groups an item's candidates, `label` is 1 for the correct one, `pair_id` groups the items of a pair (its "
        f"voices), `phenomenon` its group. Skipped files: {skipped}. Score it with "
        f"`hf-slm eval MODEL --benchmark {block['benchmark']}=<this folder>`.\n"
    )
    tmp = readme.with_suffix(".md.tmp")
    tmp.write_text(f"---\n{yaml.safe_dump(meta, sort_keys=False)}---\n\n{body}")
    tmp.replace(readme)


# -- the import ----------------------------------------------------------------------------------------------

def _fingerprint(rows: list[dict]) -> str:
    return hashlib.sha256(json.dumps(rows, sort_keys=True).encode()).hexdigest()[:16]


def _existing(out: Path, fingerprint: str) -> bool:
    """True when ``out`` already holds this import; ``ValueError`` when it holds another dataset."""
    card = read_card(out)
    if not card:
        leftovers = [p.name for p in out.iterdir() if p.name != WORK_DIR] if out.is_dir() else []
        if leftovers:
            raise ValueError(f"{out} is not empty ({', '.join(sorted(leftovers)[:5])}); choose a new output folder")
        return False
    block = card.get(BENCHMARK_CARD_KEY) or {}
    if block.get("fingerprint") != fingerprint:
        raise ValueError(f"{out} already holds another dataset (benchmark {block.get('benchmark')!r} from "
                         f"{block.get('release')!r}); choose a new output folder or delete it")
    return True


def _load_tokenizer(tokenizer: Any, revision: str | None) -> tuple[Any, str]:
    if tokenizer is None:
        raise ValueError("speech layouts need a speech tokenizer: pass --tokenizer (a SpeechTokenizer folder or Hub id)")
    if isinstance(tokenizer, (str, Path)):
        from hf_slm.units import SpeechTokenizer

        return SpeechTokenizer.from_pretrained(str(tokenizer), revision=revision), str(tokenizer)
    return tokenizer, getattr(tokenizer, "name_or_path", None) or type(tokenizer).__name__


def import_speech(
    layout: Layout, source: str | Path, output: str | Path, tokenizer: Any, tokenizer_id: str,
    tokenizer_revision: str | None = None, split: str = "dev", batch_size: int = 16, shard_rows: int = 2000,
) -> Path:
    """List, encode (resumable) and write one speech benchmark; see the module docstring."""
    from hf_slm.data.build import build_unit_dataset
    from hf_slm.data.unit_dataset import load_unit_info, save_unit_dataset

    rows, skipped, release = _listers(layout, split)(source)
    rows = _drop_incomplete(rows, skipped)
    if not rows:
        raise BenchmarkError(f"{source}: no complete item found for layout {layout.name!r} (skipped: {dict(skipped)})")
    out = Path(output)
    fingerprint = _fingerprint(rows)
    if _existing(out, fingerprint):
        return out
    target = layout.split if layout.name not in ("zerospeech-syntactic", "zerospeech-lexical") else split
    work = out / WORK_DIR
    manifest = work / f"manifest-{fingerprint}"
    if not (manifest / "dataset_info.json").is_file():
        tmp = work / f"manifest-{fingerprint}.tmp"
        shutil.rmtree(tmp, ignore_errors=True)
        datasets.Dataset.from_list(rows).save_to_disk(str(tmp))
        tmp.rename(manifest)
    units_dir = work / "units"
    build_unit_dataset(manifest, tokenizer, units_dir, id_column="id", keep_columns=CANDIDATE_COLUMNS,
                       tokenizer_id=tokenizer_id, tokenizer_revision=tokenizer_revision, batch_size=batch_size,
                       shard_rows=shard_rows, split_map={"train": target})
    info = load_unit_info(units_dir)
    files = sorted((units_dir / "data").glob("*.parquet"))
    ds = datasets.load_dataset("parquet", data_files=[str(f) for f in files], split="train")
    keep = complete_items(ds["item_id"], ds["label"])
    audio_skipped = Counter(info.skipped)
    audio_skipped["incomplete_item"] += keep.count(False)
    ds = ds.select([i for i, k in enumerate(keep) if k])
    skipped.update(audio_skipped)
    info.skipped = {k: int(v) for k, v in sorted(skipped.items()) if v}
    info.hours = info.frames = info.tokens = info.utterances = 0
    info.add(ds)
    save_unit_dataset({target: ds}, out, info, pretty_name=out.name)
    block = {"benchmark": layout.benchmark, "layout": layout.name, "release": str(source),
             "release_files": release, "fingerprint": fingerprint, "split": target,
             "items": len(set(ds["item_id"])), "rows": len(ds), "skipped": info.skipped}
    write_benchmark_card(out, block)
    shutil.rmtree(work)
    return out


def import_benchmark(
    layout: str, source: str | Path, output: str | Path, tokenizer: Any = None, tokenizer_revision: str | None = None,
    split: str = "dev", seed: int = 0, batch_size: int = 16, shard_rows: int = 2000, tokenizer_id: str | None = None,
) -> Path:
    """Import ``source`` (a release in layout ``layout``) into the benchmark dataset folder ``output``.

    ``tokenizer`` (speech layouts): a ``SpeechTokenizer`` or the folder / Hub id of one. ``split`` selects the
    sLM21 split (``dev``: ``test`` has no public gold); ``seed`` the topic StoryCloze text negatives. Importing
    again into a finished folder returns it; a different dataset there is refused.
    """
    spec = get_layout(layout)
    if spec.modality == "text":
        from hf_slm.evaluation.text_importers import import_text

        return import_text(spec, source, output, seed=seed)
    tok, tok_id = _load_tokenizer(tokenizer, tokenizer_revision)
    return import_speech(spec, source, output, tok, tokenizer_id or tok_id, tokenizer_revision, split=split,
                         batch_size=batch_size, shard_rows=shard_rows)
