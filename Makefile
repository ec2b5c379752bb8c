# Quick start:  make demo   (set up .venv and run the offline end-to-end study into runs/demo/)
#               make test   (set up .venv and run the test suite)
#               make wheel-smoke (build the wheel, install it into a fresh venv, train + card from outside)
PYTHON ?= python3
VENV   ?= .venv
# torch is pinned first so pip never resolves a newer torch through another package. On a machine with
# a local CPU wheel of this version (find-links) pip takes it; elsewhere it is PyPI's normal build.
TORCH_SPEC ?= torch==2.13.0
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: setup demo test wheel-smoke lint clean

setup: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -c "import torch" 2>/dev/null || $(BIN)/python -m pip install -q "$(TORCH_SPEC)"
	$(BIN)/python -m pip install -q -e ".[dev]"
	touch $(STAMP)

demo: setup
	$(BIN)/hf-slm demo --output runs/demo

test: setup
	$(BIN)/python -m pytest -q

wheel-smoke: setup
	PYTHON=$(BIN)/python .ci/wheel_smoke.sh

lint: setup
	$(BIN)/ruff check .

clean:
	rm -rf runs/demo
