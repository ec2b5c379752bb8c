"""The data stage of a study: stories and benchmarks -> speech -> speech tokenizer -> unit datasets, and the
text family's token datasets (the same stories' text through a BPE tokenizer fitted here).

Layout under the study folder (each step is skipped when its output is complete, and writes to a temporary
name renamed at the end, so a crash never leaves half an output that a rerun would trust)::

    texts/{train,test,<benchmark>}.jsonl     the stories and benchmark candidates (one row per candidate)
    speech/{train,test,<benchmark>}/         16 kHz audio (datasets.save_to_disk)
    tokenizer/                               the SpeechTokenizer (log-mel + k-means)
    units/{stories,<benchmark>}/             unit datasets (contract 1)
    text_tokenizer/                          the text family's BPE tokenizer (PreTrainedTokenizerFast)
    text_units/{stories,<benchmark>}/        its token datasets, in the unit-dataset layout (units = token ids)
    unigram_units/stories/                   the speech-unigram family (4.3): the training units with their
                                             unigram pieces (``tokens``) and the tokenizer (unigram_tokenizer/)

A benchmark dataset has one row per candidate: ``id``, ``item_id`` (shared by the item's two candidates),
``label`` (1 = correct), ``units`` and, for sBLIMP, ``phenomenon`` (the paradigm). Both candidates of an item
are spoken by the same voice.
"""

from __future__ import annotations

import json
import shutil
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

from hf_slm.study.config import StudyConfig

STORIES = "stories"
TEXT_SPLITS = ("train", "test")


def _write_jsonl(path: Path, rows: list[dict]) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text("".join(json.dumps(r) + "\n" for r in rows))
    tmp.replace(path)


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in Path(path).read_text().splitlines() if line.strip()]


def _replace_dir(tmp: Path, final: Path) -> None:
    if final.exists():
        shutil.rmtree(final)
    tmp.rename(final)


class Corpus:
    """The data of one study folder; ``build(log)`` makes whatever is missing."""

    def __init__(self, config: StudyConfig, root: Path | None = None):
        self.config = config
        self.root = Path(root or config.output)

    # -- paths ---------------------------------------------------------------------------------------------
    @property
    def tokenizer_dir(self) -> Path:
        if self.config.tokenizer.type == "pretrained":
            return Path(self.config.tokenizer.path)
        return self.root / "tokenizer"

    def unit_dir(self, family: str, group: str) -> Path:
        """The unit (or text token) dataset of ``group`` (``stories`` or a benchmark) for ``family``."""
        if family == "text":
            return self.root / "text_units" / group
        if family == "speech-unigram" and group == STORIES:
            return self.root / "unigram_units" / group
        if group != STORIES and self.config.speech.source == "units":
            return Path(self.config.benchmarks.datasets[group])
        return self.root / "units" / group

    def training_datasets(self, family: str) -> list[Any]:
        """A family's training data (``TrainConfig.datasets`` entries): the study's own stories, or the given
        unit datasets (``speech.datasets``; ``unigram.datasets`` compressed from them) when the source is units."""
        if self.config.speech.source == "units" and family in ("speech", "speech-unigram"):
            return list(self.config.speech.datasets if family == "speech" else self.config.unigram.datasets)
        return [str(self.unit_dir(family, STORIES))]

    # -- the stage -----------------------------------------------------------------------------------------
    def steps(self, families: list[str]) -> list[Callable[[], Any]]:
        steps: list[Callable[[], Any]] = []
        if self.config.speech.source == "tts":
            steps += [self.texts, self.speech, self.tokenizer, self.units]
        if "text" in families:
            steps.append(self.text_units)
        if "speech-unigram" in families and self.config.speech.source == "tts":
            steps.append(self.unigram_units)
        return steps

    def build(self, families: list[str], log: Callable[[str], None] = print) -> dict[str, float]:
        """Run every step not yet done; return the seconds each took."""
        import time

        seconds = {}
        for step in self.steps(families):
            start = time.perf_counter()
            done = step()
            seconds[step.__name__] = time.perf_counter() - start
            if done is not False:
                log(f"{step.__name__}: {seconds[step.__name__]:.1f} s")
        return seconds

    # 1. text -------------------------------------------------------------------------------------------------
    def texts(self) -> bool:
        """Stories (train / test) and benchmark candidates from the seeded story grammar."""
        from hf_slm.tts import textgen

        out = self.root / "texts"
        if (out / "done").exists():
            return False
        out.mkdir(parents=True, exist_ok=True)
        c, seed = self.config, self.config.seed
        stories = textgen.make_stories(c.speech.stories + c.speech.test_stories, seed=seed)
        rows = [{"id": s.id, "text": s.text, "topic": s.topic} for s in stories]
        _write_jsonl(out / "train.jsonl", rows[: c.speech.stories])
        _write_jsonl(out / "test.jsonl", rows[c.speech.stories :])
        makers = {
            "sblimp": lambda n: textgen.make_minimal_pairs(n, seed=seed + 1),
            "spoken_storycloze": lambda n: textgen.make_story_cloze(n, seed=seed + 2),
            "topic_storycloze": lambda n: textgen.make_topic_cloze(n, seed=seed + 3),
        }
        for name in c.benchmarks.names:
            _write_jsonl(out / f"{name}.jsonl", candidates(makers[name](c.benchmarks.items)))
        (out / "done").touch()
        return True

    # 2. speech -----------------------------------------------------------------------------------------------
    def speech(self) -> bool:
        """Speak every story and candidate: training stories by ``speech.voices`` in turn, each benchmark
        item (both candidates) by one of ``benchmark_voices``."""
        import datasets

        from hf_slm.tts import EspeakVoice, synthesize_dataset

        c = self.config.speech
        bench_voices = c.benchmark_voices or c.voices
        jobs = {"train": c.voices, "test": c.voices} | {n: bench_voices for n in self.config.benchmarks.names}
        did = False
        for name, voices in jobs.items():
            out = self.root / "speech" / name
            if out.exists():
                continue
            rows = read_jsonl(self.root / "texts" / f"{name}.jsonl")
            key = (lambda i, r: i) if name in TEXT_SPLITS else (lambda i, r, order={}: order.setdefault(
                r["item_id"], len(order)))
            by_voice: dict[int, list[dict]] = {}
            for i, row in enumerate(rows):
                by_voice.setdefault(key(i, row) % len(voices), []).append(row)
            parts = []
            for v, mine in sorted(by_voice.items()):
                workers = c.workers if len(mine) >= 200 else 1  # a worker takes ~2 s to start
                voice = EspeakVoice(voices[v], rate=c.rate)
                parts.append(synthesize_dataset(mine, voice, sample_rate=16000, num_proc=workers,
                                                desc=f"TTS {name} ({voices[v]})"))
            tmp = out.with_name(out.name + ".tmp")
            shutil.rmtree(tmp, ignore_errors=True)
            datasets.concatenate_datasets(parts).save_to_disk(str(tmp))
            _replace_dir(tmp, out)
            did = True
        return did

    # 3. speech tokenizer -------------------------------------------------------------------------------------
    def tokenizer(self) -> bool:
        """Fit log-mel k-means on a seeded sample of the training utterances."""
        import datasets

        from hf_slm.units import LogMelEncoder, SpeechTokenizer, load_audio

        t = self.config.tokenizer
        out = self.root / "tokenizer"
        if t.type == "pretrained" or (out / "config.json").exists():
            return False
        audio = datasets.load_from_disk(str(self.root / "speech" / "train"))
        n = min(t.fit_utterances, len(audio))
        sample = audio.shuffle(seed=self.config.seed).select(range(n))
        waves = (load_audio(a, sample_rate=16000) for a in sample["audio"])
        tok = SpeechTokenizer.fit(LogMelEncoder(sample_rate=16000, **t.encoder), waves, n_units=t.n_units,
                                  seed=self.config.seed, dedup=t.dedup)
        tmp = out.with_name(out.name + ".tmp")
        shutil.rmtree(tmp, ignore_errors=True)
        tok.save_pretrained(tmp)
        _replace_dir(tmp, out)
        return True

    # 4. unit datasets ----------------------------------------------------------------------------------------
    def units(self) -> bool:
        """Encode the training stories (train / test) and every benchmark into unit datasets."""
        import datasets

        from hf_slm.data.unit_dataset import UnitDatasetInfo, encode_audio_dataset, save_unit_dataset
        from hf_slm.units import SpeechTokenizer

        tok = SpeechTokenizer.from_pretrained(self.tokenizer_dir)
        groups = {STORIES: TEXT_SPLITS} | {n: (n,) for n in self.config.benchmarks.names}
        did = False
        for group, splits in groups.items():
            out = self.root / "units" / group
            if (out / "README.md").exists():
                continue
            info = UnitDatasetInfo(str(self.tokenizer_dir), None, tok.n_units, tok.frame_rate, tok.dedup)
            encoded = {}
            for split in splits:
                skipped: Counter = Counter()
                audio = datasets.load_from_disk(str(self.root / "speech" / split))
                keep = [col for col in audio.column_names if col != "audio"]
                ds = encode_audio_dataset(audio, tok, keep_columns=keep, skipped=skipped, desc=f"units {split}")
                encoded["train" if split == "train" else "test"] = ds
                info.add(ds)
                info.skipped.update(skipped)
            if sum(info.skipped.values()):
                raise RuntimeError(f"units {group}: {dict(info.skipped)} utterances could not be encoded; the "
                                   "study needs every story and candidate (look at the audio in "
                                   f"{self.root / 'speech'})")
            tmp = out.with_name(out.name + ".tmp")
            shutil.rmtree(tmp, ignore_errors=True)
            save_unit_dataset(encoded, tmp, info)
            _replace_dir(tmp, out)
            did = True
        return did

    # 5. the text family's tokens -----------------------------------------------------------------------------
    def text_units(self) -> bool:
        """Fit a BPE tokenizer on the training stories' text and write token datasets in the unit layout."""
        out = self.root / "text_units"
        groups = [STORIES, *self.config.benchmarks.names]
        if all((out / g / "README.md").exists() for g in groups):
            return False
        from hf_slm.study.text import fit_text_tokenizer, save_text_dataset

        tok_dir = self.root / "text_tokenizer"
        train = read_jsonl(self.root / "texts" / "train.jsonl")
        vocab = self.config.text.vocab_size or self.config.tokenizer.n_units
        if not (tok_dir / "tokenizer.json").exists():
            tmp = tok_dir.with_name(tok_dir.name + ".tmp")
            shutil.rmtree(tmp, ignore_errors=True)
            fit_text_tokenizer([r["text"] for r in train], vocab).save_pretrained(tmp)
            _replace_dir(tmp, tok_dir)
        for group in groups:
            if (out / group / "README.md").exists():
                continue
            splits = {"train": train, "test": read_jsonl(self.root / "texts" / "test.jsonl")} if group == STORIES \
                else {"test": read_jsonl(self.root / "texts" / f"{group}.jsonl")}
            save_text_dataset(splits, tok_dir, out / group)
        return True


    # 6. the speech-unigram family's tokens ------------------------------------------------------------------
    def unigram_units(self) -> bool:
        """Train a unigram tokenizer (``unigram.vocab_size``) on the training units and compress the stories with
        it (paper 4.3): a unit dataset with a ``tokens`` column and its tokenizer, which ``token_type: unigram``
        training reads and saves with each model. Benchmarks stay units: evaluation compresses them with the
        model's tokenizer."""
        out = self.root / "unigram_units" / STORIES
        if (out / "README.md").exists():
            return False
        from hf_slm.data.unit_dataset import load_unit_dataset, load_unit_info, save_unigram_dataset
        from hf_slm.units.unigram import train_unigram

        source = self.unit_dir("speech", STORIES)
        stories = load_unit_dataset(source)
        tok = train_unigram(stories["train"]["units"], self.config.tokenizer.n_units,
                            vocab_size=self.config.unigram.vocab_size, show_progress=False)
        tmp = out.with_name(out.name + ".tmp")
        shutil.rmtree(tmp, ignore_errors=True)
        save_unigram_dataset(dict(stories), tmp, load_unit_info(source), tok, pretty_name="unigram pieces: stories")
        _replace_dir(tmp, out)
        return True


def candidates(items) -> list[dict]:
    """One row per candidate utterance (the whole utterance: a story's prompt and ending together); the
    positive and negative of each item share ``item_id``; sBLIMP rows carry their ``phenomenon``."""
    rows = []
    for item in items:
        prompt = getattr(item, "prompt", "") or ""
        for label, text in ((1, item.positive), (0, item.negative)):
            row = {"id": f"{item.id}-{label}", "item_id": item.id, "label": label, "text": f"{prompt} {text}".strip()}
            if hasattr(item, "paradigm"):
                row["phenomenon"] = item.paradigm
            rows.append(row)
    return rows
