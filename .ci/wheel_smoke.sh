#!/usr/bin/env bash
# Build the wheel, install it into a fresh venv (no editable install, no checkout on sys.path) and run
# .ci/wheel_smoke.py from a folder outside the repository: a tiny training run and its model card.
# Dependencies are not downloaded again: the fresh venv sees the site-packages of PYTHON (an interpreter that
# already has them, by default the test venv of `make setup`) through a .pth file, after its own.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
PYTHON=${PYTHON:-$ROOT/.venv/bin/python}
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
mkdir -p "$WORK/src" "$WORK/dist" "$WORK/outside"
# a clean copy of the tracked and new (not ignored) files, so nothing stale in the checkout leaks into the wheel
(cd "$ROOT" && git ls-files -z --cached --others --exclude-standard | xargs -0 tar -cf - 2>/dev/null) \
    | tar -xf - -C "$WORK/src"
"$PYTHON" -m pip wheel -q --no-deps --no-build-isolation -w "$WORK/dist" "$WORK/src" 2>&1 \
    | grep -v -i "deprecat\|^\s*$\|\*\*\*\|!!" || true
WHEEL=$(ls "$WORK"/dist/hf_slm-*.whl)
unzip -l "$WHEEL" | grep -q "hf_slm/training/templates/slm_model_card.md" \
    || { echo "the wheel lacks the model card template" >&2; exit 1; }
"$PYTHON" -m venv --without-pip "$WORK/venv"
"$PYTHON" -m pip --python "$WORK/venv/bin/python" install -q --no-deps --no-index "$WHEEL"
DEPS=$("$PYTHON" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
SITE=$("$WORK/venv/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
echo "$DEPS" > "$SITE/zz_dependencies_from_test_venv.pth"
cd "$WORK/outside"
env -u PYTHONPATH PATH="$WORK/venv/bin:$PATH" "$WORK/venv/bin/python" "$ROOT/.ci/wheel_smoke.py"
