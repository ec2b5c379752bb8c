"""Smoke test of an installed hf_slm wheel, run from a folder outside the repository (.ci/wheel_smoke.sh).

Checks that the package in use is the installed wheel (not the checkout), writes a tiny unit dataset, trains
a demo-xs run with the console script, renders its model card from the template shipped in the wheel, and
checks ``hf-slm --help``. Exits non-zero with a message on the first failure.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import datasets
import numpy as np

import hf_slm
from hf_slm.data.schema import unit_features
from hf_slm.data.unit_dataset import UnitDatasetInfo, save_unit_dataset
from hf_slm.training.hub import TEMPLATE, render_model_card
from hf_slm.training.record import RunRecord

K = 16


def check(condition: bool, message: str) -> None:
    if not condition:
        sys.exit(f"wheel smoke test FAILED: {message}")


def tiny_units(folder: Path) -> Path:
    rng = np.random.default_rng(0)
    rows = {"id": [], "units": [], "n_frames": [], "seconds": []}
    for i in range(40):
        units = (np.arange(30) + rng.integers(0, 3)) % K
        rows["id"].append(f"utt{i:03d}")
        rows["units"].append(units.tolist())
        rows["n_frames"].append(30)
        rows["seconds"].append(1.2)
    ds = datasets.Dataset.from_dict(rows, features=unit_features(durations=False))
    info = UnitDatasetInfo("smoke-tokenizer", None, K, 25.0, False)
    info.add(ds)
    return save_unit_dataset({"train": ds.select(range(36)), "test": ds.select(range(36, 40))}, folder, info)


def main() -> None:
    site = Path(hf_slm.__file__).resolve().parent
    check("site-packages" in str(site), f"hf_slm imported from {site}, not from the installed wheel")
    check(TEMPLATE.is_file() and TEMPLATE.is_relative_to(site), f"model card template not in the wheel: {TEMPLATE}")
    here = Path.cwd()
    units = tiny_units(here / "units")
    run_dir = here / "run"
    cmd = ["hf-slm", "train", f"datasets=[{units}]", f"n_units={K}", "size=demo-xs", "block_size=32",
           "batch_size=4", "tokens=512", "eval_every=2", "warmup_min=1", "tracker=null", 'mixed_precision="no"',
           f"output_dir={run_dir}", "--no-progress"]
    subprocess.run(cmd, check=True)
    record = RunRecord.load(run_dir)
    check(record.finished and record.loss is not None and np.isfinite(record.loss), f"bad run record {record}")
    card = render_model_card(record, "me/smoke")
    check(f"# {record.run}" in card and "me/smoke" in card and "$" not in card.split("---")[2][:200],
          "model card not rendered from the template")
    (run_dir / "README.md").write_text(card)
    helped = subprocess.run(["hf-slm", "--help"], capture_output=True, text=True, check=True)
    check("fit" in helped.stdout and "train" in helped.stdout, "hf-slm --help lists no commands")
    print(f"wheel smoke test passed: hf_slm {hf_slm.__version__} from {site}; trained {record.run} "
          f"(loss {record.loss:.3f}) and rendered its card")


if __name__ == "__main__":
    main()
