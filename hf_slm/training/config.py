"""The training config: one dataclass, read from YAML with ``key=value`` overrides from the command line."""

from __future__ import annotations

import dataclasses
import math
import types
import typing
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import yaml

from hf_slm.data.packing import BLOCK_SIZE
from hf_slm.data.store import MixConfig, MixEntry, to_bool
from hf_slm.data.tokens import TOKEN_TYPES
from hf_slm.training.sampling import SAMPLINGS
from hf_slm.training.sizes import ModelSize, get_size

DatasetSpec = MixEntry  # one dataset of the mix: id, weight, test, revision, train_split, test_split

MIXED_PRECISION = ("no", "bf16")
COMPILE_MODES = (None, "default", "reduce-overhead", "max-autotune", "max-autotune-no-cudagraphs")
TRACKERS = (None, "tensorboard", "trackio", "wandb", "all")
SCALED_INITS = ("release", "residual", "none")


class ConfigError(ValueError):
    """A config key that does not exist or a value that does not fit its key; the message names both."""


@dataclass
class TrainConfig:
    """Everything a training run depends on. Defaults are the paper's recipe, from the authors' release
    (``tiagoCuervo/slm_scaling``) where it is more exact than the text, except where noted.

    The budget is ``tokens`` (D) or ``tokens_per_param`` (D/N); repetition is ``unique_tokens`` (U) or
    ``epochs`` (D/U); U defaults to the whole training store (``sampling: paper``) or to D capped at what the
    data hold (``sampling: sequential``). ``batch_size`` is the global batch in sequences (default: the size's
    batch in the release's configs); each process runs ``micro_batch_size`` sequences per forward pass and
    gradient accumulation makes up the rest (computed, never set by hand). Leave ``micro_batch_size`` empty to
    have the largest micro-batch that fits measured on the GPU.

    Warm-up: ``warmup`` steps when set (the release: 1,000 for 20M/85M/155M), else
    ``max(warmup_min, floor(warmup_fraction * steps))`` (the paper's text: max(100, 1 %); the release: 1 % for
    309M/823M); the learning rate of step ``s`` in warm-up is ``lr * s / warmup`` (the first step at 0), then
    half-cycle cosine to ``min_lr``. Init: N(0, ``init_std``) for every matrix; ``scaled_init`` "release" puts
    the attention output and the MLP's ``up_proj`` (their ``w3``) at ``init_std / sqrt(2 n_layers)``, as the
    release's code does; "residual" puts ``o_proj`` and ``down_proj`` there (GPT-2's rule); "none" neither.
    """

    size: str = "demo-s"
    n_units: int = 500
    token_type: str = "units"  # "unigram": train on the 'tokens' column of unigram-compressed unit datasets
    block_size: int = BLOCK_SIZE
    sampling: str = "paper"  # "paper": random windows of block_size + 1 tokens; "sequential": packed blocks
    batch_size: int | None = None
    micro_batch_size: int | None = None  # None: the largest that fits, measured on CUDA; the whole batch on CPU
    tokens: int | None = None
    tokens_per_param: float | None = None
    unique_tokens: int | None = None
    epochs: float | None = None
    lr: float = 5e-4
    min_lr: float = 5e-5
    weight_decay: float = 0.1  # on matrices only (embeddings included), never on norms
    betas: tuple[float, float] = (0.9, 0.95)
    eps: float = 1e-8
    grad_clip: float | None = 1.0
    warmup: int | None = None  # fixed warm-up steps; None = the rule below
    warmup_min: int = 100  # warm-up = max(warmup_min, floor(warmup_fraction * n_iters)); lower it for tiny runs
    warmup_fraction: float = 0.01
    tie_embeddings: bool = True  # one matrix for the input embedding and the LM head, as the release
    norm_eps: float = 1e-5  # RMSNorm epsilon of the release (transformers' Llama default is 1e-6)
    init_std: float = 0.02
    scaled_init: str = "release"
    eval_every: int | None = None  # steps between test-loss evaluations; None = only at the end
    eval_blocks: int | None = None  # test windows (a seeded subset) per periodic evaluation; None = all
    log_every: int = 10
    checkpoint_every: int | None = None
    keep_checkpoints: int = 1
    stop_after: int | None = None  # stop (checkpointed, no run.json) after this many steps: time-sliced jobs
    seed: int = 0
    mixed_precision: str = "no"  # the release trains in bf16 (the paper configs set it); "no" suits a CPU
    compile: bool = False
    compile_mode: str | None = None  # torch.compile mode when compile is on; None = torch's default
    attn_implementation: str = "sdpa"
    output_dir: str = "runs/train"
    tracker: str | None = "tensorboard"
    run_name: str | None = None
    datasets: list[DatasetSpec] = field(default_factory=list)
    test_fraction: float = 0.01  # held-out share of a dataset without a test split (by a hash of the id)
    store_dir: str | None = None  # where token stores are packed; None = $HF_SLM_STORE_DIR or ~/.cache/hf_slm/stores
    store_shard_tokens: int = 2**27  # training tokens per store shard (a resumable unit of packing)

    def __post_init__(self) -> None:
        self.datasets = [_dataset_spec(d, i) for i, d in enumerate(self.datasets)]
        self.betas = tuple(self.betas)
        self.validate()

    # -- checks --------------------------------------------------------------------------------------------
    def validate(self) -> None:
        """Raise ``ConfigError`` naming the key for any value out of its range."""
        try:
            get_size(self.size)
        except ValueError as err:
            raise ConfigError(f"size: {err}") from None
        positive = ("n_units", "block_size", "batch_size", "micro_batch_size", "tokens", "tokens_per_param",
                    "unique_tokens", "epochs", "lr", "log_every", "checkpoint_every", "eval_every",
                    "eval_blocks", "keep_checkpoints", "stop_after", "store_shard_tokens", "norm_eps")
        for key in positive:
            value = getattr(self, key)
            if value is not None and not value > 0:
                raise ConfigError(f"{key} must be > 0, got {value!r}")
        for key in ("min_lr", "weight_decay", "eps", "warmup_min", "warmup_fraction", "warmup", "init_std"):
            if getattr(self, key) is not None and getattr(self, key) < 0:
                raise ConfigError(f"{key} must be >= 0, got {getattr(self, key)!r}")
        if self.min_lr > self.lr:
            raise ConfigError(f"min_lr={self.min_lr} exceeds lr={self.lr}")
        if len(self.betas) != 2 or not all(0 <= b < 1 for b in self.betas):
            raise ConfigError(f"betas must be two numbers in [0, 1), got {self.betas!r}")
        if self.mixed_precision not in MIXED_PRECISION:
            raise ConfigError(f"mixed_precision must be one of {MIXED_PRECISION}, got {self.mixed_precision!r}")
        if self.compile_mode not in COMPILE_MODES:
            raise ConfigError(f"compile_mode must be one of {COMPILE_MODES}, got {self.compile_mode!r}")
        if self.token_type not in TOKEN_TYPES:
            raise ConfigError(f"token_type must be one of {TOKEN_TYPES}, got {self.token_type!r}")
        if self.sampling not in SAMPLINGS:
            raise ConfigError(f"sampling must be one of {SAMPLINGS}, got {self.sampling!r}")
        if self.scaled_init not in SCALED_INITS:
            raise ConfigError(f"scaled_init must be one of {SCALED_INITS}, got {self.scaled_init!r}")
        if self.block_size < 2:
            raise ConfigError(f"block_size must be >= 2, got {self.block_size}")
        if self.tracker not in TRACKERS:
            raise ConfigError(f"tracker must be one of {TRACKERS}, got {self.tracker!r}")
        if self.tokens is not None and self.tokens_per_param is not None:
            raise ConfigError("set only one of tokens and tokens_per_param")
        if self.unique_tokens is not None and self.epochs is not None:
            raise ConfigError("set only one of unique_tokens and epochs")
        if not 0 < self.test_fraction < 1:
            raise ConfigError(f"test_fraction must lie in (0, 1), got {self.test_fraction!r}")
        if self.micro_batch_size and self.micro_batch_size > self.global_batch_size:
            raise ConfigError(f"micro_batch_size={self.micro_batch_size} exceeds batch_size={self.global_batch_size}")

    # -- derived values ------------------------------------------------------------------------------------
    @property
    def model_size(self) -> ModelSize:
        return get_size(self.size)

    @property
    def global_batch_size(self) -> int:
        """Sequences per optimizer step, across all processes (default: the release's batch of the size)."""
        return self.batch_size or self.model_size.release_batch_size

    def grad_accum_steps(self, num_processes: int = 1, micro_batch: int | None = None) -> int:
        """Micro-batches per process per step so that the global batch is exactly ``batch_size``.

        ``micro_batch`` (sequences per process per pass) defaults to ``micro_batch_size``, else the whole
        per-process batch (the trainer measures what fits on a GPU: ``hf_slm.training.memory``).
        """
        micro = micro_batch or self.micro_batch_size or math.ceil(self.global_batch_size / num_processes)
        steps, rest = divmod(self.global_batch_size, micro * num_processes)
        if rest or steps == 0:
            raise ConfigError(
                f"batch_size={self.global_batch_size} is not a multiple of micro_batch_size={micro} x "
                f"{num_processes} processes; pick micro_batch_size so that it divides"
            )
        return steps

    def per_process_micro_batch(self, num_processes: int = 1, micro_batch: int | None = None) -> int:
        return self.global_batch_size // (self.grad_accum_steps(num_processes, micro_batch) * num_processes)

    def warmup_steps(self, n_steps: int) -> int:
        """``warmup`` if set, else ``max(warmup_min, floor(warmup_fraction * n_steps))`` (the release: 588 of
        58,850 steps for 309M; 260 of 26,000 and 660 of 66,050 for 823M)."""
        if self.warmup is not None:
            return self.warmup
        return max(self.warmup_min, math.floor(round(self.warmup_fraction * n_steps, 9)))

    def mix(self) -> MixConfig:
        """What the token store depends on (the data stage's view of this config)."""
        return MixConfig(datasets=list(self.datasets), n_units=self.n_units, token_type=self.token_type,
                         test_fraction=self.test_fraction)

    # -- I/O -----------------------------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["betas"] = list(self.betas)
        return d

    def result_dict(self) -> dict[str, Any]:
        """The keys that change what a run computes (for "is this finished run the same run?")."""
        d = self.to_dict()
        for key in RESULT_NEUTRAL:
            d.pop(key, None)
        return d

    @classmethod
    def from_dict(cls, data: dict[str, Any], where: str = "config") -> TrainConfig:
        """Build from a plain dict; unknown keys and badly typed values raise ``ConfigError`` naming them."""
        if not isinstance(data, dict):
            raise ConfigError(f"{where}: expected a mapping of keys to values, got {type(data).__name__}")
        hints = typing.get_type_hints(cls)
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ConfigError(f"{where}: unknown key(s) {unknown}; known keys: {sorted(known)}")
        kwargs = {k: _coerce(k, v, hints[k], where) for k, v in data.items()}
        try:
            return cls(**kwargs)
        except ConfigError as err:
            raise ConfigError(f"{where}: {err}") from None

    @classmethod
    def from_yaml(cls, path: str | Path | None, overrides: list[str] | tuple[str, ...] = ()) -> TrainConfig:
        """Read ``path`` (None = defaults) and apply ``key=value`` overrides (values parsed as YAML).

        Overriding one side of an exclusive pair (tokens / tokens_per_param, unique_tokens / epochs) drops
        the other side from the file.
        """
        data: dict[str, Any] = {}
        if path is not None:
            if Path(path).is_dir():
                raise ConfigError(f"{path}: is a folder; --config takes a YAML file (see recipes/configs/*.yaml)")
            if not Path(path).is_file():
                raise ConfigError(f"{path}: no such config file")
            try:
                data = yaml.safe_load(Path(path).read_text()) or {}
            except yaml.YAMLError as err:
                raise ConfigError(f"{path}: not valid YAML: {err}") from None
            if not isinstance(data, dict):
                raise ConfigError(f"{path}: expected a mapping of keys to values")
        data.update(parse_overrides(overrides, data))
        return cls.from_dict(data, where=str(path) if path else "config")

    def to_yaml(self, path: str | Path) -> None:
        Path(path).write_text(yaml.safe_dump(self.to_dict(), sort_keys=False))


RESULT_NEUTRAL = ("output_dir", "tracker", "log_every", "checkpoint_every", "keep_checkpoints", "stop_after",
                  "micro_batch_size", "compile", "compile_mode", "run_name", "store_dir", "store_shard_tokens")
EXCLUSIVE = {"tokens": "tokens_per_param", "tokens_per_param": "tokens", "unique_tokens": "epochs",
             "epochs": "unique_tokens"}


def parse_overrides(overrides: list[str] | tuple[str, ...], base: dict[str, Any] | None = None) -> dict[str, Any]:
    """``["lr=3e-4", "size=85M"]`` -> ``{"lr": 3e-4, "size": "85M"}``; drops the exclusive partner from ``base``."""
    out: dict[str, Any] = {}
    for item in overrides:
        key, sep, text = item.partition("=")
        key = key.strip().replace("-", "_")
        if not sep or not key:
            raise ConfigError(f"override {item!r}: expected key=value")
        try:
            out[key] = yaml.safe_load(text) if text.strip() else None
        except yaml.YAMLError:
            out[key] = text
        if base is not None and key in EXCLUSIVE:
            base.pop(EXCLUSIVE[key], None)
    return out


def _coerce(key: str, value: Any, hint: Any, where: str) -> Any:
    """Fit ``value`` to the type ``hint`` of ``key`` (YAML reads 1e-4 as text, 2e9 as float, ...)."""
    args = typing.get_args(hint)
    optional = typing.get_origin(hint) in (typing.Union, types.UnionType) and type(None) in args
    if value is None or (isinstance(value, str) and value.strip().lower() in ("none", "null", "~")):
        if optional:
            return None
        raise ConfigError(f"{where}: {key} cannot be empty")
    base = next(a for a in args if a is not type(None)) if optional else hint
    origin = typing.get_origin(base) or base
    try:
        if base is bool:
            return to_bool(value)
        if base is int:
            number = float(value) if isinstance(value, str) else value
            if isinstance(number, bool) or not float(number).is_integer():
                raise ValueError
            return int(number)
        if base is float:
            if isinstance(value, bool):
                raise ValueError
            return float(value)
        if base is str:
            if isinstance(value, (dict, list)):
                raise ValueError
            return str(value)
        if origin is tuple:
            return tuple(float(v) for v in value)
        if origin is list:
            return list(value) if isinstance(value, (list, tuple)) else [value]
    except (TypeError, ValueError):
        raise ConfigError(f"{where}: {key} expects {_type_name(hint)}, got {value!r}") from None
    return value


def _type_name(hint: Any) -> str:
    """``float``, ``int | None``, ``list[MixEntry]``: the hint as one writes it."""
    if isinstance(hint, type):
        return hint.__name__
    return str(hint).replace("typing.", "").replace("hf_slm.training.config.", "").replace("hf_slm.data.store.", "")


def _dataset_spec(item: Any, index: int) -> DatasetSpec:
    try:
        return MixEntry.parse(item, index)
    except (TypeError, ValueError) as err:
        raise ConfigError(str(err)) from None


def replace(config: TrainConfig, **changes: Any) -> TrainConfig:
    """A copy of ``config`` with ``changes`` (validated)."""
    return dataclasses.replace(config, **changes)
