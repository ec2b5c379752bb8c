"""The study config: one YAML file drives a whole scaling study (``hf-slm study CONFIG``).

Sections (each a dataclass below; unknown keys are refused, naming the section and the key):

- ``speech``: where the speech comes from: ``tts`` (stories and benchmarks written and spoken here, the
  miniature) or ``units`` (unit datasets made elsewhere, e.g. the paper's seven corpora);
- ``tokenizer``: the speech tokenizer to fit (``logmel`` k-means) or to load (``pretrained``);
- ``benchmarks``: which benchmarks, how many generated items or which unit benchmark datasets, and the
  scoring preset;
- ``grid``: model sizes, token budgets (absolute ``tokens`` or ``tokens_per_param``), multi-epoch runs;
- ``training``: ``TrainConfig`` keys shared by every run, ``size_overrides`` per size;
- ``text`` / ``unigram``: the other families of the comparison (text LMs trained here on the same stories,
  a table of evaluated text models, the paper's published values, or none; unigram-compressed speech);
- ``fits``, ``report``: the scaling fits and what the report shows;
- ``execution``: local or a Slurm array, threads, and the MFU / peak FLOP/s behind the dry run's GPU-hours.
"""

from __future__ import annotations

import typing
from dataclasses import MISSING, asdict, dataclass, field, fields, is_dataclass
from pathlib import Path
from typing import Any

import yaml

SPEECH_SOURCES = ("tts", "units")
TOKENIZER_TYPES = ("logmel", "pretrained")
SCORING = ("paper", "mean", "sum")
TEXT_SOURCES = ("train", "table", "published", "none")
FIT_RUNS = ("all", "paper")
BACKENDS = ("local", "slurm")
BENCHMARK_NAMES = ("sblimp", "spoken_storycloze", "topic_storycloze")
FIGURES = ("fig1", "fig2", "fig3", "fig4", "fig5", "isoloss")


class StudyConfigError(ValueError):
    """A study config key that does not exist or a value out of range; the message names both."""


@dataclass
class SpeechConfig:
    """Where the training speech comes from.

    ``tts``: ``stories`` training stories (plus ``test_stories`` held out) from the seeded story grammar,
    spoken by eSpeak NG ``voices`` (utterance i by voice i mod len(voices)) at ``rate`` words per minute;
    the benchmarks are spoken by ``benchmark_voices`` (default: the training voices). ``units``: ``datasets`` are unit datasets
    (``TrainConfig.datasets`` entries: local folders or Hub ids) and ``tokens`` their expected unique
    training tokens (for the dry run before they exist).
    """

    source: str = "tts"
    stories: int = 6000
    test_stories: int = 100
    voices: list[str] = field(default_factory=lambda: ["en-us"])
    benchmark_voices: list[str] | None = None
    rate: int = 175
    workers: int = 2
    datasets: list[Any] = field(default_factory=list)
    tokens: float | None = None


@dataclass
class TokenizerConfig:
    """The speech tokenizer: ``logmel`` (log-mel features + k-means, fitted here on ``fit_utterances``
    training utterances) or ``pretrained`` (a ``SpeechTokenizer`` folder or Hub id in ``path``)."""

    type: str = "logmel"
    n_units: int = 100
    encoder: dict[str, Any] = field(default_factory=lambda: {"frame_rate": 12.5, "n_mels": 40, "cmvn": False})
    fit_utterances: int = 1500
    path: str | None = None
    dedup: bool = True


@dataclass
class BenchmarksConfig:
    """Benchmarks and how they are scored.

    With ``speech.source: tts`` each benchmark gets ``items`` generated items (two candidates each), spoken
    like the training stories; otherwise ``datasets`` maps each name to a unit benchmark dataset (and
    ``text_datasets`` to its text form for a text family trained here). ``scoring``: ``paper`` (the
    release's rules: whole utterances, mean unit NLL), ``mean`` or ``sum``; ``also`` lists further presets
    recorded next to it (the same forward passes, no extra cost).
    """

    names: list[str] = field(default_factory=lambda: list(BENCHMARK_NAMES))
    items: int = 500
    datasets: dict[str, str] = field(default_factory=dict)
    text_datasets: dict[str, str] = field(default_factory=dict)
    scoring: str = "paper"
    also: list[str] = field(default_factory=lambda: ["sum"])
    batch_size: int = 32


@dataclass
class MultiEpochConfig:
    """Runs that repeat data: each of ``sizes`` trains on ``tokens`` (or ``tokens_per_param`` x N) tokens
    drawn from ``tokens / epochs`` unique ones, for each of ``epochs``."""

    sizes: list[str] = field(default_factory=list)
    tokens: float | None = None
    tokens_per_param: float | None = None
    epochs: list[float] = field(default_factory=list)


@dataclass
class GridConfig:
    """The runs: every size x every budget (``tokens``: the same D for every size, a rectangular grid;
    ``tokens_per_param``: D/N ratios, the paper's grid), plus ``multi_epoch`` runs."""

    sizes: list[str] = field(default_factory=list)
    tokens: list[float] | None = None
    tokens_per_param: list[float] | None = None
    multi_epoch: MultiEpochConfig = field(default_factory=MultiEpochConfig)


@dataclass
class TextConfig:
    """The text family of the comparison (paper: the Pythia suite).

    ``train``: tiny text LMs on the same stories' text over the same grid, tokenised by a BPE tokenizer
    fitted here (``vocab_size`` pieces; default: the speech tokenizer's K, so both families have the same
    vocabulary), scored on the text forms of the same benchmarks. ``table``: a run table of evaluated text
    models (``table``: CSV / JSONL / Parquet with N, D and metric columns). ``published``: the paper's
    Table 3 gammas. ``none``: no text family. ``training``: ``TrainConfig`` keys of the text runs that differ
    from the study's ``training`` (text learns several times faster per token than speech, so it can take
    larger batches). ``grid``: ``grid`` keys of the text runs that differ from the study's (``tokens``,
    ``multi_epoch``...; the sizes stay the study's).
    """

    source: str = "train"
    vocab_size: int | None = None
    table: str | None = None
    training: dict[str, Any] = field(default_factory=dict)  # TrainConfig keys for the text runs (over ``training``)
    grid: dict[str, Any] = field(default_factory=dict)  # ``grid`` keys for the text runs (over the study's grid)


@dataclass
class UnigramConfig:
    """Speech LMs on unigram-compressed units (paper 4.3, Fig. 5): the ``speech-unigram`` family.

    ``enabled`` trains it over ``sizes`` (default: the grid's) and budgets (``grid``: ``grid`` keys that
    differ from the study's, e.g. ``tokens``: compressed units are fewer than units); with ``speech.source:
    tts`` the study compresses its stories with a tokenizer of ``vocab_size`` it trains, with ``units`` the
    runs train on ``datasets`` (unit datasets compressed by ``dataset_scripts/compress_units.py``). ``table``
    reads a run table of such runs instead.
    """

    enabled: bool = False
    vocab_size: int = 5000
    sizes: list[str] | None = None
    table: str | None = None
    datasets: list[Any] = field(default_factory=list)
    grid: dict[str, Any] = field(default_factory=dict)  # ``grid`` keys for the unigram runs (over the study's grid)


@dataclass
class FitsConfig:
    """The scaling fits: Huber ``delta``, ``bootstrap`` resamples of runs for every interval, which runs
    enter the fits (``all``, or ``paper``: the release's rule, more than ``min_updates`` planned updates and
    at most one epoch) and eq.4's starting grid (``besiroglu``: 4,500 starts; ``coarse``: 243)."""

    delta: float = 0.03
    bootstrap: int = 200
    runs: str = "all"
    min_updates: int = 5000
    seed: int = 0
    starts: str = "besiroglu"


@dataclass
class ReportConfig:
    """What the report holds: ``figures`` (a subset of fig1..fig5 and isoloss) and a self-contained HTML."""

    figures: list[str] = field(default_factory=lambda: list(FIGURES))
    html: bool = True


@dataclass
class ExecutionConfig:
    """Where runs train and what the dry run assumes.

    ``local``: one run after another in this process (``threads`` torch threads; 0 = all cores).
    ``slurm``: ``hf-slm study --slurm`` writes a Slurm array (one task per unfinished run, ``accelerate
    launch recipes/train.py``); rerun ``hf-slm study`` when it is done to evaluate and report.
    ``mfu`` x ``peak_flops`` is the sustained FLOP/s per GPU the dry run converts FLOPs to GPU-hours with
    (default: the release's stable A100 MFU, 32-63 %, rounded to 40 %, of 312 TFLOP/s bf16).
    """

    backend: str = "local"
    threads: int = 0
    mfu: float = 0.4
    peak_flops: float = 312e12
    gpu: str = "A100 80GB"
    slurm: dict[str, Any] = field(default_factory=dict)


@dataclass
class StudyConfig:
    """A whole study. ``StudyConfig.from_yaml(path)``; every section has defaults (the demo's)."""

    name: str = "study"
    output: str = "runs/study"
    seed: int = 0
    speech: SpeechConfig = field(default_factory=SpeechConfig)
    tokenizer: TokenizerConfig = field(default_factory=TokenizerConfig)
    benchmarks: BenchmarksConfig = field(default_factory=BenchmarksConfig)
    grid: GridConfig = field(default_factory=GridConfig)
    training: dict[str, Any] = field(default_factory=dict)
    size_overrides: dict[str, dict[str, Any]] = field(default_factory=dict)
    text: TextConfig = field(default_factory=TextConfig)
    unigram: UnigramConfig = field(default_factory=UnigramConfig)
    fits: FitsConfig = field(default_factory=FitsConfig)
    report: ReportConfig = field(default_factory=ReportConfig)
    execution: ExecutionConfig = field(default_factory=ExecutionConfig)
    departures: list[str] = field(default_factory=list)  # where the study departs from the paper, and why
    source_path: str | None = None

    def __post_init__(self) -> None:
        self.validate()

    # -- checks --------------------------------------------------------------------------------------------
    def validate(self) -> None:
        """Raise ``StudyConfigError`` naming the key for any value out of its range."""
        _choice("speech.source", self.speech.source, SPEECH_SOURCES)
        _choice("tokenizer.type", self.tokenizer.type, TOKENIZER_TYPES)
        _choice("benchmarks.scoring", self.benchmarks.scoring, SCORING)
        for preset in self.benchmarks.also:
            _choice("benchmarks.also", preset, SCORING)
        _choice("text.source", self.text.source, TEXT_SOURCES)
        _choice("fits.runs", self.fits.runs, FIT_RUNS)
        _choice("fits.starts", self.fits.starts, ("besiroglu", "coarse"))
        _choice("execution.backend", self.execution.backend, BACKENDS)
        for name in self.benchmarks.names:
            _choice("benchmarks.names", name, BENCHMARK_NAMES)
        for figure in self.report.figures:
            _choice("report.figures", figure, FIGURES)
        if not 80 <= self.speech.rate <= 450:
            raise StudyConfigError(f"speech.rate must lie in 80..450 words per minute, got {self.speech.rate!r}")
        for key in ("stories", "test_stories", "workers"):
            _positive(f"speech.{key}", getattr(self.speech, key))
        _positive("tokenizer.n_units", self.tokenizer.n_units)
        _positive("benchmarks.items", self.benchmarks.items)
        _positive("fits.delta", self.fits.delta)
        if not 0 < self.execution.mfu <= 1:
            raise StudyConfigError(f"execution.mfu must lie in (0, 1], got {self.execution.mfu!r}")
        if self.speech.source == "tts" and not self.speech.voices:
            raise StudyConfigError("speech.voices: at least one eSpeak NG voice is needed with source: tts")
        if self.speech.source == "units":
            if not self.speech.datasets:
                raise StudyConfigError("speech.datasets: source: units needs the unit datasets to train on")
            if self.tokenizer.type != "pretrained":
                raise StudyConfigError("tokenizer.type: source: units needs the tokenizer the datasets were made "
                                       "with (type: pretrained, path: ...)")
            missing = [n for n in self.benchmarks.names if n not in self.benchmarks.datasets]
            if missing:
                raise StudyConfigError(f"benchmarks.datasets: source: units needs a unit benchmark dataset for "
                                       f"{missing}")
            if self.text.source == "train":
                raise StudyConfigError("text.source: train needs the stories' text (speech.source: tts); use "
                                       "table, published or none")
            if self.unigram.enabled and not self.unigram.datasets:
                raise StudyConfigError("unigram.datasets: with speech.source: units the speech-unigram runs need "
                                       "unit datasets compressed by dataset_scripts/compress_units.py")
        if self.tokenizer.type == "pretrained" and not self.tokenizer.path:
            raise StudyConfigError("tokenizer.path: type: pretrained needs a SpeechTokenizer folder or Hub id")
        if self.text.source == "table" and not self.text.table:
            raise StudyConfigError("text.table: source: table needs a run table path")
        _check_grid(self.grid, "grid")
        if self.text.source == "train" and self.text.grid:
            _check_grid(self.family_grid("text"), "text.grid")
        if self.unigram.enabled and self.unigram.grid:
            _check_grid(self.family_grid("speech-unigram"), "unigram.grid")
        grid, me = self.grid, self.grid.multi_epoch
        unknown = sorted(set(self.size_overrides) - set(grid.sizes) - set(me.sizes))
        if unknown:
            raise StudyConfigError(f"size_overrides: sizes {unknown} are not in the grid ({grid.sizes})")

    def family_grid(self, family: str) -> GridConfig:
        """The grid of a family: the study's, with ``text.grid`` or ``unigram.grid`` over it."""
        keys, where = {"text": (self.text.grid, "text.grid"),
                       "speech-unigram": (self.unigram.grid, "unigram.grid")}.get(family, ({}, ""))
        if not keys:
            return self.grid
        if "sizes" in keys:
            sizes = "the text family trains the study's sizes" if family == "text" else "its sizes are unigram.sizes"
            raise StudyConfigError(f"{where}: {sizes}; set tokens or multi_epoch")
        merged = {**asdict(self.grid), **keys}
        if "tokens" in keys and "tokens_per_param" not in keys:
            merged["tokens_per_param"] = None
        if "tokens_per_param" in keys and "tokens" not in keys:
            merged["tokens"] = None
        return _build(GridConfig, merged, where)

    # -- I/O -----------------------------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d.pop("source_path", None)
        return d

    @classmethod
    def from_dict(cls, data: dict[str, Any], where: str = "study config") -> StudyConfig:
        if not isinstance(data, dict):
            raise StudyConfigError(f"{where}: expected a mapping of sections, got {type(data).__name__}")
        return _build(cls, data, where)

    @classmethod
    def from_yaml(cls, path: str | Path, overrides: dict[str, Any] | None = None) -> StudyConfig:
        """Read a study YAML; ``overrides`` maps dotted keys to values (``{"output": "runs/x"}``)."""
        path = Path(path)
        try:
            data = yaml.safe_load(path.read_text()) or {}
        except FileNotFoundError:
            raise FileNotFoundError(f"study config {path} does not exist") from None
        except yaml.YAMLError as err:
            raise StudyConfigError(f"{path}: not valid YAML: {err}") from None
        for dotted, value in (overrides or {}).items():
            _set_dotted(data, dotted, value)
        config = cls.from_dict(data, where=str(path))
        config.source_path = str(path)
        return config


def _check_grid(grid: GridConfig, key: str) -> None:
    """Raise ``StudyConfigError`` naming ``key`` for a grid without sizes or budgets or with bad epochs."""
    if not grid.sizes:
        raise StudyConfigError(f"{key}.sizes: list at least one model size")
    if (grid.tokens is None) == (grid.tokens_per_param is None):
        raise StudyConfigError(f"{key}: set exactly one of tokens (the same D for every size) and "
                               "tokens_per_param (D/N ratios)")
    for value in grid.tokens or grid.tokens_per_param or []:
        _positive(f"{key} budget", value)
    me = grid.multi_epoch
    if me.epochs:
        if (me.tokens is None) == (me.tokens_per_param is None):
            raise StudyConfigError(f"{key}.multi_epoch: set exactly one of tokens and tokens_per_param")
        if not me.sizes:
            raise StudyConfigError(f"{key}.multi_epoch.sizes: list the sizes that get multi-epoch runs")
        for e in me.epochs:
            if not e > 1:
                raise StudyConfigError(f"{key}.multi_epoch.epochs must be > 1, got {e!r}")




def _choice(key: str, value: Any, choices: tuple) -> None:
    if value not in choices:
        raise StudyConfigError(f"{key} must be one of {list(choices)}, got {value!r}")


def _positive(key: str, value: Any) -> None:
    if value is None or isinstance(value, bool) or not value > 0:
        raise StudyConfigError(f"{key} must be > 0, got {value!r}")


def _set_dotted(data: dict, dotted: str, value: Any) -> None:
    node = data
    *parents, last = dotted.split(".")
    for part in parents:
        node = node.setdefault(part, {})
        if not isinstance(node, dict):
            raise StudyConfigError(f"override {dotted}: {part} is not a section")
    node[last] = value


def _build(cls, data: dict[str, Any], where: str):
    """Instantiate dataclass ``cls`` from ``data``, recursing into dataclass-typed fields."""
    hints = typing.get_type_hints(cls)
    known = {f.name: f for f in fields(cls) if f.name != "source_path"}
    unknown = sorted(set(data) - set(known))
    if unknown:
        raise StudyConfigError(f"{where}: unknown key(s) {unknown}; known: {sorted(known)}")
    kwargs = {}
    for name, value in data.items():
        hint = hints[name]
        if is_dataclass(hint):
            if value is None:
                continue
            if not isinstance(value, dict):
                raise StudyConfigError(f"{where}: {name} must be a mapping, got {value!r}")
            kwargs[name] = _build(hint, value, f"{where}: {name}")
        else:
            kwargs[name] = _coerce(value, hint, f"{where}: {name}")
    try:
        return cls(**kwargs)
    except StudyConfigError as err:
        raise StudyConfigError(f"{where}: {err}") from None
    except TypeError as err:  # a required field without a default
        raise StudyConfigError(f"{where}: {err}") from None


def _coerce(value: Any, hint: Any, where: str) -> Any:
    """YAML reads ``1e5`` as text and ``2`` as int: numbers become floats where the field is a float."""
    args = typing.get_args(hint)
    origin = typing.get_origin(hint)
    if value is None:
        if type(None) in args or hint is Any:
            return None
        raise StudyConfigError(f"{where} cannot be empty")
    base = next((a for a in args if a is not type(None)), hint) if type(None) in args else hint
    base_origin = typing.get_origin(base) or base
    try:
        if base is float:
            return float(value)
        if base is int:
            number = float(value)
            if not number.is_integer():
                raise ValueError
            return int(number)
        if base is bool:
            if not isinstance(value, bool):
                raise ValueError
            return value
        if base is str:
            if isinstance(value, (dict, list)):
                raise ValueError
            return str(value)
        if base_origin is list:
            items = value if isinstance(value, list) else [value]
            (item_type,) = typing.get_args(base) or (Any,)
            return [_coerce(v, item_type, where) for v in items]
        if base_origin is dict and not isinstance(value, dict):
            raise ValueError
    except (TypeError, ValueError):
        raise StudyConfigError(f"{where} expects {_type_name(hint)}, got {value!r}") from None
    del origin
    return value


def _type_name(hint: Any) -> str:
    return str(hint).replace("typing.", "")


def field_default(cls, name: str) -> Any:
    """The default of dataclass field ``name`` (for CLI help texts)."""
    f = next(f for f in fields(cls) if f.name == name)
    return f.default_factory() if f.default is MISSING else f.default
