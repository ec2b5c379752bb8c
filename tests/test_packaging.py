"""The wheel holds what a normal (non-editable) install needs: the model card template among the package data.

The full check (wheel installed in a fresh venv, a tiny run trained and its card rendered from outside the
repository) is ``make wheel-smoke`` (.ci/wheel_smoke.sh), run by CI after the suite.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

from hf_slm.training import hub

ROOT = Path(__file__).resolve().parents[1]


def test_card_template_is_package_data():
    package = ROOT / "hf_slm"
    assert hub.TEMPLATE.is_file() and hub.TEMPLATE.resolve().is_relative_to(package)


def test_wheel_ships_every_package_file_and_the_card_template(tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, src / name)
    shutil.copytree(ROOT / "hf_slm", src / "hf_slm", ignore=shutil.ignore_patterns("__pycache__"))
    proc = subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation",
                           "-w", str(tmp_path / "dist"), str(src)], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    (wheel,) = (tmp_path / "dist").glob("hf_slm-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    assert "hf_slm/training/templates/slm_model_card.md" in names
    sources = {p.relative_to(ROOT).as_posix() for p in (ROOT / "hf_slm").rglob("*")
               if p.is_file() and "__pycache__" not in p.parts}
    assert sources <= names, sorted(sources - names)  # every file of the package ships, data included
    entry_points = zipfile.ZipFile(wheel).read(next(n for n in names if n.endswith("entry_points.txt"))).decode()
    assert "hf-slm = hf_slm.cli:main" in entry_points
