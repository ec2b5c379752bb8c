"""The offline end-to-end study in miniature: text -> speech -> units -> LMs -> benchmarks -> scaling laws.

Every stage is the real component at small scale (eSpeak NG speech, a log-mel tokenizer with k-means, Llama
LMs trained with Accelerate, ``evaluate`` metric modules, the eq.4 fitter). Each stage writes its outputs
under one folder and is skipped when they are already there, so a rerun reuses finished work.
"""

from __future__ import annotations

import argparse
import json
import shutil
import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path

import datasets
import numpy as np


@dataclass
class RunSpec:
    """One training run of the demo grid: a model size and a data budget."""

    size: str
    tokens: int
    unique_tokens: int | None = None

    @property
    def name(self) -> str:
        epochs = "" if self.unique_tokens is None else f"-x{round(self.tokens / self.unique_tokens)}ep"
        return f"{self.size}-{self.tokens // 1000}k{epochs}"


@dataclass
class DemoConfig:
    """Everything the demo study depends on; the defaults run in under ten minutes on two CPU cores.

    Where the miniature departs from the paper, and why:
    - tokenizer: log-mel features (GSLM's LogMel baseline) at 12.5 Hz instead of HuBERT at 25 Hz, without
      per-utterance CMVN. A story is then ~140 units, so a 4-layer model picks up the topic cues of a
      five-sentence story within CPU minutes; and every frame depends only on its own 160 ms of audio, so two
      candidates that share a spoken prompt share its units exactly (CMVN would make each prompt frame
      depend on the ending too, and their scores differ by noise far larger than the topic signal).
    - optimizer: the paper's AdamW and schedule shape, with a higher peak (3e-3, cosine to 10 %), a short
      warm-up and batches of 8 x 256 tokens, as runs of a few hundred steps need.
    - budgets: D/N from 0.625 to 2.5 instead of 2 to 128, so the grid fits in minutes; the 6,000 training
      stories (~0.85M units) hold every run of the two smaller sizes and the smallest budget of the largest
      within one epoch, and the largest model sees 2M tokens, what it needs to pick up the topic cues.
    - speakers: the training stories are spread over four eSpeak NG voices and the benchmarks are spoken by
      a fifth: log-mel units carry the speaker, and a model trained on one voice does not transfer its
      topic knowledge to another (the paper's own main benchmarks share their voice with sTinyStories; its
      multi-speaker check, which this mirrors, does not).
    """

    output: str = "runs/demo"
    seed: int = 0
    n_train_stories: int = 6000
    n_test_stories: int = 80
    n_pairs: int = 400
    train_voices: list[str] = field(default_factory=lambda: ["en-us", "en-us+m1", "en-us+f2", "en-us+m5"])
    bench_voice: str = "en-us+m3"
    n_units: int = 100
    kmeans_utterances: int = 1500
    encoder: dict = field(default_factory=lambda: {"frame_rate": 12.5, "n_mels": 40, "cmvn": False})
    block_size: int = 256
    batch_size: int = 8
    lr: float = 3e-3
    min_lr: float = 3e-4
    warmup_min: int = 10
    mixed_precision: str = field(default_factory=lambda: default_precision())
    num_proc: int = 2
    runs: list[RunSpec] = field(default_factory=lambda: default_grid())

    def to_dict(self) -> dict:
        return asdict(self)


def default_precision() -> str:
    """bf16 autocast where the CPU (or GPU) computes in bf16 natively (1.5x faster here), else fp32."""
    import torch

    if torch.cuda.is_available():
        return "bf16" if torch.cuda.is_bf16_supported() else "no"
    try:
        native = bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())  # oneDNN's own check (AVX512-BF16, AMX)
    except (AttributeError, RuntimeError):
        native = False
    return "bf16" if native else "no"


def default_grid() -> list[RunSpec]:
    """Three sizes x three budgets (D/N = 0.625, 1.25, 2.5), plus one 4-epoch run: the paper's grid in miniature."""
    from hf_slm.training.sizes import get_size

    def tokens(size: str, ratio: float) -> int:
        return int(round(get_size(size).n_non_embedding * ratio, -3))

    grid = [RunSpec(size, tokens(size, ratio)) for size in ("demo-s", "demo-m", "demo-l") for ratio in (0.625, 1.25, 2.5)]
    grid.append(RunSpec("demo-s", tokens("demo-s", 2.5), unique_tokens=tokens("demo-s", 0.625)))
    return grid


BENCHMARKS = ("sblimp", "spoken_storycloze", "topic_storycloze")


class Demo:
    """Runs the stages in order; ``run()`` is the whole study."""

    def __init__(self, config: DemoConfig):
        self.config = config
        self.root = Path(config.output)

    def run(self) -> Path:
        """Run every stage not yet done; return the report's path."""
        self.root.mkdir(parents=True, exist_ok=True)
        saved, now = self.root / "demo_config.json", json.loads(json.dumps(self.config.to_dict()))
        if saved.exists():
            before = json.loads(saved.read_text())
            changed = sorted(k for k in set(before) | set(now) if k != "output" and before.get(k) != now.get(k))
            if changed:
                raise ValueError(f"{self.root} holds a demo with other settings ({', '.join(changed)}); "
                                 "use another --output or delete it")
        saved.write_text(json.dumps(now, indent=2))
        stages = [self.texts, self.speech, self.tokenizer, self.units, self.train, self.scaling]
        for stage in stages:
            start = time.perf_counter()
            print(f"[hf-slm demo] {stage.__name__} ...", flush=True)
            stage()
            print(f"[hf-slm demo] {stage.__name__} done in {time.perf_counter() - start:.1f} s", flush=True)
        return self.root / "report.md"

    # -- 1. text -------------------------------------------------------------------------------------------
    def texts(self) -> None:
        from hf_slm.tts import textgen

        out = self.root / "texts"
        if (out / "done").exists():
            return
        out.mkdir(parents=True, exist_ok=True)
        c, seed = self.config, self.config.seed
        stories = textgen.make_stories(c.n_train_stories + c.n_test_stories, seed=seed)
        rows = [{"id": s.id, "text": s.text, "topic": s.topic} for s in stories]
        _write_jsonl(out / "train.jsonl", rows[: c.n_train_stories])
        _write_jsonl(out / "test.jsonl", rows[c.n_train_stories :])
        items = {
            "sblimp": textgen.make_minimal_pairs(c.n_pairs, seed=seed + 1),
            "spoken_storycloze": textgen.make_story_cloze(c.n_pairs, seed=seed + 2),
            "topic_storycloze": textgen.make_topic_cloze(c.n_pairs, seed=seed + 3),
        }
        for name, its in items.items():
            _write_jsonl(out / f"{name}.jsonl", _candidates(its))
        (out / "done").touch()

    # -- 2. speech -----------------------------------------------------------------------------------------
    def speech(self) -> None:
        from hf_slm.tts import EspeakVoice, synthesize_dataset

        c = self.config
        jobs = {"train": c.train_voices, "test": c.train_voices} | {name: [c.bench_voice] for name in BENCHMARKS}
        for name, voices in jobs.items():
            out = self.root / "speech" / name
            if out.exists():
                continue
            rows = _read_jsonl(self.root / "texts" / f"{name}.jsonl")
            parts = []
            for i, voice in enumerate(voices):  # utterance i is spoken by voice i mod len(voices)
                mine = rows[i :: len(voices)]
                workers = c.num_proc if len(mine) >= 200 else 1  # a worker takes ~2 s to start
                if mine:
                    parts.append(synthesize_dataset(mine, EspeakVoice(voice), sample_rate=16000, num_proc=workers,
                                                    desc=f"TTS {name} ({voice})"))
            tmp = out.with_name(out.name + ".tmp")  # renamed when complete: a crash leaves no half dataset
            shutil.rmtree(tmp, ignore_errors=True)
            datasets.concatenate_datasets(parts).save_to_disk(str(tmp))
            tmp.rename(out)

    # -- 3. tokenizer --------------------------------------------------------------------------------------
    def tokenizer(self) -> None:
        from hf_slm.units import LogMelEncoder, SpeechTokenizer, load_audio

        out = self.root / "tokenizer"
        if (out / "config.json").exists():
            return
        audio = datasets.load_from_disk(str(self.root / "speech" / "train"))
        sample = audio.shuffle(seed=self.config.seed).select(range(min(self.config.kmeans_utterances, len(audio))))
        waves = (load_audio(a, sample_rate=16000) for a in sample["audio"])
        encoder = LogMelEncoder(sample_rate=16000, **self.config.encoder)
        tok = SpeechTokenizer.fit(encoder, waves, n_units=self.config.n_units, seed=self.config.seed)
        tok.save_pretrained(out)

    # -- 4. unit datasets ----------------------------------------------------------------------------------
    def units(self) -> None:
        from hf_slm.data.unit_dataset import UnitDatasetInfo, encode_audio_dataset, save_unit_dataset
        from hf_slm.units import SpeechTokenizer

        tok = SpeechTokenizer.from_pretrained(self.root / "tokenizer")
        groups = {"stories": ("train", "test")} | {name: (name,) for name in BENCHMARKS}
        for group, splits in groups.items():
            out = self.root / "units" / group
            if (out / "README.md").exists():
                continue
            info = UnitDatasetInfo(str(self.root / "tokenizer"), None, tok.n_units, tok.frame_rate, tok.dedup)
            encoded = {}
            for split in splits:
                skipped: Counter = Counter()
                audio = datasets.load_from_disk(str(self.root / "speech" / split))
                keep = [col for col in audio.column_names if col not in ("audio",)]
                encoded["test" if split != "train" else "train"] = ds = encode_audio_dataset(
                    audio, tok, keep_columns=keep, skipped=skipped, desc=f"units {split}"
                )
                info.add(ds)
                info.skipped.update(skipped)
            save_unit_dataset(encoded, out, info)

    # -- 5. training + evaluation --------------------------------------------------------------------------
    def train(self) -> None:
        from hf_slm.data import eos_id, pack_blocks, pad_id
        from hf_slm.data.unit_dataset import load_unit_dataset
        from hf_slm.evaluation import evaluate_all
        from hf_slm.training import RunRecord, TrainConfig, train

        c, k = self.config, self.config.n_units
        stories = load_unit_dataset(self.root / "units" / "stories")
        train_data = pack_blocks(stories["train"]["units"], c.block_size, eos_id(k), pad_id(k))
        test_data = pack_blocks(stories["test"]["units"], c.block_size, eos_id(k), pad_id(k))
        benches = {name: load_unit_dataset(self.root / "units" / name, split="test") for name in BENCHMARKS}
        for spec in c.runs:
            run_dir = self.root / "runs" / spec.name
            record_path = run_dir / "run.json"
            if record_path.exists() and RunRecord.load(record_path).metrics:
                continue
            cfg = TrainConfig(
                size=spec.size, n_units=k, block_size=c.block_size, batch_size=c.batch_size, tokens=spec.tokens,
                unique_tokens=spec.unique_tokens, lr=c.lr, min_lr=c.min_lr, warmup_min=c.warmup_min,
                mixed_precision=c.mixed_precision, seed=c.seed, output_dir=str(run_dir), run_name=spec.name,
                eval_every=max(1, spec.tokens // (c.batch_size * c.block_size) // 6), tracker=None,
                datasets=[str(self.root / "units" / "stories")],
            )
            record = train(cfg, train_data, test_data)
            model = _load_model(run_dir / "model")
            record.metrics = evaluate_all(model, benches, n_units=k)
            record.tokenizer = str(self.root / "tokenizer")
            record.save(run_dir)

    # -- 6. scaling ----------------------------------------------------------------------------------------
    def scaling(self) -> None:
        from hf_slm.scaling.study import analyze_runs

        analyze_runs(self.root / "runs", self.root)


def _load_model(path: Path):
    from transformers import LlamaForCausalLM

    return LlamaForCausalLM.from_pretrained(path).eval()


def _candidates(items) -> list[dict]:
    """One row per candidate utterance: the positive and negative of each item share ``item_id``."""
    rows = []
    for item in items:
        prompt = getattr(item, "prompt", "") or ""
        for label, text in ((1, item.positive), (0, item.negative)):
            full = f"{prompt} {text}".strip()
            rows.append({"id": f"{item.id}-{label}", "item_id": item.id, "label": label, "text": full})
    return rows


def _write_jsonl(path: Path, rows: list[dict]) -> None:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))


def _read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``hf-slm demo``."""
    p = subparsers.add_parser(
        "demo",
        help="run the offline end-to-end study in miniature",
        description="Synthesize a spoken corpus offline, tokenize it, train a grid of tiny Llama SLMs, score them "
        "on sBLIMP / spoken and topic StoryCloze analogues and fit the scaling law. Finished stages are reused.",
    )
    p.add_argument("--output", default=DemoConfig.output, help="folder for every output (default: %(default)s)")
    p.add_argument("--seed", type=int, default=DemoConfig.seed, help="seed of text, k-means and training")
    p.add_argument("--num-proc", type=int, default=DemoConfig.num_proc, help="processes for speech synthesis")
    p.set_defaults(func=_run_cli)


def _run_cli(args: argparse.Namespace) -> int:
    config = DemoConfig(output=args.output, seed=args.seed, num_proc=args.num_proc)
    report = Demo(config).run()
    print(f"[hf-slm demo] report: {report}")
    return 0


__all__ = ["Demo", "DemoConfig", "RunSpec", "default_grid", "register", "np"]
