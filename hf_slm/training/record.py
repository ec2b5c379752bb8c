"""The run record (contract 3): one ``run.json`` per training run, read by evaluation and the scaling fits.

Compute is counted two ways:
- ``flops = 6 N D`` (Kaplan et al. 2020; the paper's C), N non-embedding parameters, D training tokens;
- ``flops_attn = 6 N D + 12 L d T D`` adds the attention scores and mixing of a context of T tokens per
  layer (forward + backward, the formula of PaLM's appendix B: 6N + 12 L H Q T per token with H Q = d).
"""

from __future__ import annotations

import json
import math
import subprocess
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

RECORD_FILE = "run.json"
CURVE_KEYS = ("step", "tokens", "flops", "loss")
METRIC_KEYS = ("accuracy", "n", "ci_low", "ci_high", "rule")


class RecordError(ValueError):
    """A run record that is missing a field or has a wrong one; the message names the file and the field."""


def flops_6nd(n_params: int, tokens: int) -> float:
    """C = 6 N D."""
    return 6.0 * n_params * tokens


def flops_with_attention(n_params: int, tokens: int, n_layers: int, d_model: int, context: int) -> float:
    """6 N D + 12 L d T D: the matrix products plus attention over a context of T tokens."""
    return 6.0 * n_params * tokens + 12.0 * n_layers * d_model * context * tokens


@dataclass
class RunRecord:
    """What one training run produced (contract 3). Extra fields may be added, never renamed."""

    run: str
    size: str
    N: int
    N_total: int
    D: int
    U: int
    epochs: float
    flops: float
    flops_attn: float
    loss: float | None
    curve: list[dict[str, Any]] = field(default_factory=list)
    metrics: dict[str, dict[str, Any]] = field(default_factory=dict)
    config: dict[str, Any] = field(default_factory=dict)
    datasets: list[Any] = field(default_factory=list)
    tokenizer: Any = None
    code_version: dict[str, Any] = field(default_factory=dict)
    # additions beyond the contract's table
    finished: bool = True
    stats: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """The record as plain JSON types; a float that is not finite (a diverged loss) becomes None."""
        return finite_or_none(asdict(self))

    def save(self, run_dir: str | Path) -> Path:
        """Write ``run_dir/run.json`` (atomically: a crash never leaves half a record) and return its path."""
        path = Path(run_dir) / RECORD_FILE
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".json.tmp")
        tmp.write_text(json.dumps(self.to_dict(), indent=2, allow_nan=False, default=_jsonable) + "\n")
        tmp.replace(path)
        return path

    @classmethod
    def load(cls, path: str | Path) -> RunRecord:
        """Read a ``run.json`` (or the folder holding one), validating every contract field."""
        path = Path(path)
        if path.is_dir():
            path = path / RECORD_FILE
        try:
            data = json.loads(path.read_text())
        except FileNotFoundError:
            raise FileNotFoundError(f"{path}: no run record here") from None
        except json.JSONDecodeError as err:
            raise RecordError(f"{path}: not valid JSON ({err})") from None
        return cls.from_dict(data, where=str(path))

    @classmethod
    def from_dict(cls, data: dict[str, Any], where: str = "run record") -> RunRecord:
        validate_record(data, where)
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})


def validate_record(data: Any, where: str) -> None:
    """Raise ``RecordError`` naming ``where`` and the field for anything contract 3 does not allow."""
    if not isinstance(data, dict):
        raise RecordError(f"{where}: a run record is a JSON object, got {type(data).__name__}")
    checks = {
        "run": str, "size": str, "N": int, "N_total": int, "D": int, "U": int, "epochs": (int, float),
        "flops": (int, float), "flops_attn": (int, float), "loss": (int, float, type(None)), "curve": list,
        "metrics": dict, "config": dict, "datasets": list, "code_version": dict,
    }
    for name, types_ in checks.items():
        if name not in data:
            raise RecordError(f"{where}: missing field {name!r}")
        value = data[name]
        if isinstance(value, bool) or not isinstance(value, types_):
            raise RecordError(f"{where}: field {name!r} has the wrong type ({type(value).__name__}): {value!r}")
    if "tokenizer" not in data:
        raise RecordError(f"{where}: missing field 'tokenizer'")
    for name in ("N", "N_total", "D", "U"):
        if data[name] < 0:
            raise RecordError(f"{where}: field {name!r} must be >= 0, got {data[name]}")
    if data["loss"] is not None and not math.isfinite(data["loss"]):
        raise RecordError(f"{where}: field 'loss' must be finite, got {data['loss']}")
    for i, point in enumerate(data["curve"]):
        missing = [k for k in CURVE_KEYS if not isinstance(point, dict) or k not in point]
        if missing:
            raise RecordError(f"{where}: field 'curve[{i}]' lacks {missing}")
    for name, metric in data["metrics"].items():
        missing = [k for k in METRIC_KEYS if not isinstance(metric, dict) or k not in metric]
        if missing:
            raise RecordError(f"{where}: field 'metrics.{name}' lacks {missing}")


def finite_or_none(value: Any) -> Any:
    """``value`` with every NaN / infinite float (nested in dicts and lists) replaced by None: JSON has no NaN."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: finite_or_none(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [finite_or_none(v) for v in value]
    if hasattr(value, "item") and not hasattr(value, "__len__"):  # numpy / torch scalars
        return finite_or_none(value.item())
    return value


def code_version() -> dict[str, Any]:
    """``{"version": hf_slm version, "commit": git HEAD of the checkout or None, "dirty": bool or None}``."""
    from hf_slm import __version__

    root = Path(__file__).resolve().parents[2]
    commit = dirty = None
    try:
        commit = _git(root, "rev-parse", "HEAD")
        dirty = bool(_git(root, "status", "--porcelain", "--untracked-files=no"))
    except (OSError, subprocess.SubprocessError):
        pass
    return {"version": __version__, "commit": commit, "dirty": dirty if commit else None}


def _git(root: Path, *args: str) -> str:
    out = subprocess.run(["git", "-C", str(root), *args], capture_output=True, text=True, timeout=10, check=True)
    return out.stdout.strip()


def _jsonable(value: Any) -> Any:
    if hasattr(value, "item"):  # numpy / torch scalars
        return value.item()
    if isinstance(value, (set, tuple)):
        return list(value)
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"cannot store {type(value).__name__} in a run record")
