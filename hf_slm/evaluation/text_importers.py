"""Text forms of the benchmarks, for the paper's comparison of speech and text LMs (the Pythia suite).

Rows ``id``, ``item_id``, ``label``, ``text`` plus ``prompt`` (StoryCloze: the four-sentence context),
``phenomenon`` and ``pair_id``:

- ``blimp-text``: BLiMP's released ``data/<paradigm>.jsonl`` (``sentence_good``, ``sentence_bad``,
  ``linguistics_term``, ``UID``, ``pair_id``); the phenomenon is ``linguistics_term``, BLiMP's 12 phenomenon
  families, the same 12 that sBLIMP's ``type`` column names.
- ``storycloze-text``: a StoryCloze CSV (``InputStoryid``, ``InputSentence1``..``4``,
  ``RandomFifthSentenceQuiz1``/``2``, ``AnswerRightEnding``; the Hub's snake_case names work too), e.g. the
  spring 2016 test set whose 1,871 stories spoken StoryCloze synthesizes.
- ``topic-storycloze-text``: the same CSV with each story's negative replaced by the true ending of another
  story, drawn by a seeded derangement (topic StoryCloze's rule: a random ending from the whole set). The exact
  negatives of the spoken tSC release are in its audio only; use the spoken release to score those.
"""

from __future__ import annotations

import csv
import json
import re
from pathlib import Path

import datasets
import numpy as np

from hf_slm.evaluation.benchmarks import BenchmarkError
from hf_slm.evaluation.importers import Layout, _existing, _fingerprint, write_benchmark_card
from hf_slm.evaluation.loading import sha256_file

TEXT_FEATURES = datasets.Features({
    "id": datasets.Value("string"), "item_id": datasets.Value("string"), "label": datasets.Value("int64"),
    "text": datasets.Value("string"), "prompt": datasets.Value("string"), "phenomenon": datasets.Value("string"),
    "pair_id": datasets.Value("string"),
})
_BLIMP_FIELDS = ("sentence_good", "sentence_bad", "linguistics_term", "UID", "pair_id")


def blimp_rows(source: str | Path) -> tuple[list[dict], dict]:
    """Rows of BLiMP's jsonl files (a folder of them, or one file)."""
    root = Path(source)
    files = sorted(root.glob("*.jsonl")) if root.is_dir() else [root]
    if not files or not files[0].is_file():
        raise FileNotFoundError(f"{root}: no BLiMP .jsonl files (expected BLiMP's data/ folder or one .jsonl)")
    rows = []
    for path in files:
        for line_no, line in enumerate(path.read_text().splitlines(), start=1):
            if not line.strip():
                continue
            try:
                rec = json.loads(line)
            except json.JSONDecodeError as err:
                raise BenchmarkError(f"{path}:{line_no}: not JSON ({err})") from None
            missing = [f for f in _BLIMP_FIELDS if f not in rec]
            if missing:
                raise BenchmarkError(f"{path}:{line_no}: missing field(s) {missing}")
            item = f"{rec['UID']}/{rec['pair_id']}"
            for label, key in ((1, "sentence_good"), (0, "sentence_bad")):
                rows.append({"id": f"{item}/{'good' if label else 'bad'}", "item_id": item, "label": label,
                             "text": rec[key], "prompt": "", "phenomenon": rec["linguistics_term"], "pair_id": item})
    return rows, {"files": {p.name: sha256_file(p) for p in files}}


def _key(name: str) -> str:
    return re.sub(r"[^a-z0-9]", "", name.lower()).removeprefix("input").removeprefix("random")


_STORY_FIELDS = {"storyid": "story", "sentence1": "s1", "sentence2": "s2", "sentence3": "s3", "sentence4": "s4",
                 "fifthsentencequiz1": "e1", "sentencequiz1": "e1", "fifthsentencequiz2": "e2", "sentencequiz2": "e2",
                 "answerrightending": "answer"}


def storycloze_stories(source: str | Path) -> tuple[list[dict], dict]:
    """The stories of a StoryCloze CSV: ``{story, prompt, right, wrong}``."""
    path = Path(source)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such StoryCloze CSV")
    stories = []
    with path.open(newline="", encoding="utf-8-sig") as stream:
        reader = csv.DictReader(stream)
        columns = {_STORY_FIELDS[_key(c)]: c for c in reader.fieldnames or [] if _key(c) in _STORY_FIELDS}
        missing = sorted({"story", "s1", "s2", "s3", "s4", "e1", "e2", "answer"} - set(columns))
        if missing:
            raise BenchmarkError(f"{path}: missing StoryCloze column(s) for {missing}; have {reader.fieldnames}")
        for line, rec in enumerate(reader, start=2):
            answer = rec[columns["answer"]].strip()
            if answer not in ("1", "2"):
                raise BenchmarkError(f"{path}:{line}: AnswerRightEnding is {answer!r}; expected 1 or 2")
            endings = (rec[columns["e1"]], rec[columns["e2"]])
            right = int(answer) - 1
            stories.append({"story": rec[columns["story"]],
                            "prompt": " ".join(rec[columns[f"s{i}"]].strip() for i in range(1, 5)),
                            "right": endings[right].strip(), "wrong": endings[1 - right].strip()})
    return stories, {"file": path.name, "sha256": sha256_file(path)}


def storycloze_rows(stories: list[dict], topic: bool = False, seed: int = 0) -> list[dict]:
    """Two rows per story (true / negative ending, both after the prompt); ``topic`` draws each negative from the
    true endings of the other stories (a seeded derangement)."""
    wrong = [s["wrong"] for s in stories]
    if topic:
        if len(stories) < 2:
            raise BenchmarkError("topic StoryCloze needs at least two stories to draw negatives from")
        order = np.random.default_rng(seed).permutation(len(stories))
        for j, i in enumerate(order):
            wrong[i] = stories[order[(j + 1) % len(order)]]["right"]
    rows = []
    for story, negative in zip(stories, wrong, strict=True):
        for label, ending in ((1, story["right"]), (0, negative)):
            rows.append({"id": f"{story['story']}/{'correct' if label else 'incorrect'}", "item_id": story["story"],
                         "label": label, "text": ending, "prompt": story["prompt"], "phenomenon": "",
                         "pair_id": story["story"]})
    return rows


def import_text(layout: Layout, source: str | Path, output: str | Path, seed: int = 0) -> Path:
    """Write a text benchmark (one Parquet file + card) from the release at ``source``."""
    if layout.name == "blimp-text":
        rows, release = blimp_rows(source)
    else:
        stories, release = storycloze_stories(source)
        topic = layout.name == "topic-storycloze-text"
        rows = storycloze_rows(stories, topic=topic, seed=seed)
        if topic:
            release["seed"] = seed
    out = Path(output)
    fingerprint = _fingerprint(rows)
    if _existing(out, fingerprint):
        return out
    ds = datasets.Dataset.from_list(rows, features=TEXT_FEATURES)
    (out / "data").mkdir(parents=True, exist_ok=True)
    target = out / "data" / f"{layout.split}-00000-of-00001.parquet"
    tmp = target.with_suffix(".tmp")
    ds.to_parquet(str(tmp))
    tmp.replace(target)
    block = {"benchmark": layout.benchmark, "layout": layout.name, "release": str(source), "release_files": release,
             "fingerprint": fingerprint, "split": layout.split, "items": len(set(ds["item_id"])), "rows": len(ds),
             "skipped": {}}
    write_benchmark_card(out, block, text_card={"split": layout.split})
    return out
