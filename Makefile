# Quick start:  make run   (set up, then serve the main job)
#               make test  (set up, then lint and run the whole test suite)
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# On these machines MNIST lies in ../shared; elsewhere the user cache is used (downloaded once).
export DIGITREC_DATA ?= $(if $(wildcard ../shared/data/mnist),$(abspath ../shared/data/mnist),)
TORCH_SPEC ?= torch==2.13.0
WEIGHTS := src/digitrec/weights

.PHONY: setup run test lint format model clean

setup: $(VENV)/.setup-stamp

$(VENV)/.setup-stamp: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --upgrade --quiet pip
	$(BIN)/pip install --quiet "$(TORCH_SPEC)"
	$(BIN)/pip install --quiet -e ".[train,dev,draw]"
	touch $@

# The drawing page and the JSON API (digitrec serve --help for the address, workers, ...).
run: setup
	@echo "digitrec: open http://127.0.0.1:8000/ in a browser (API docs at /docs); Ctrl-C stops"
	$(BIN)/digitrec serve

lint: setup
	$(BIN)/ruff check src tests benchmarks scripts notebooks
	$(BIN)/ruff format --check src tests benchmarks scripts notebooks

format: setup
	$(BIN)/ruff check --fix src tests benchmarks scripts notebooks
	$(BIN)/ruff format src tests benchmarks scripts notebooks

test: lint
	$(BIN)/pytest -q

# Train the bundled models (the digit reader with the bundled preset, the pair reader that
# read_number uses for touching digits) and export them beside their checkpoints.
model: setup
	$(BIN)/digitrec train --preset bundled --out runs/bundled --force
	$(BIN)/digitrec export --model runs/bundled/model.safetensors --out $(WEIGHTS)/default.onnx --force
	cp runs/bundled/model.safetensors $(WEIGHTS)/default.safetensors
	$(BIN)/digitrec train --preset pairs --out runs/pairs --force
	$(BIN)/digitrec export --model runs/pairs/model.safetensors --out $(WEIGHTS)/pairs.onnx --force

clean:
	rm -rf $(VENV) runs build *.egg-info
