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
	$(BIN)/pip install --quiet -e ".[train,dev]"
	touch $@

run: setup
	$(BIN)/digitrec info
	$(BIN)/digitrec predict examples/*.png

lint: setup
	$(BIN)/ruff check src tests benchmarks scripts
	$(BIN)/ruff format --check src tests benchmarks scripts

format: setup
	$(BIN)/ruff check --fix src tests benchmarks scripts
	$(BIN)/ruff format src tests benchmarks scripts

test: lint
	$(BIN)/pytest -q

# Train the bundled model with the default preset and export it beside its checkpoint.
model: setup
	$(BIN)/digitrec train --out runs/bundled --force
	$(BIN)/digitrec export --model runs/bundled/model.safetensors --out $(WEIGHTS)/default.onnx --force
	cp runs/bundled/model.safetensors $(WEIGHTS)/default.safetensors

clean:
	rm -rf $(VENV) runs build *.egg-info
