# Quick start:  make run   (set up, then serve the main job; HOST=... PORT=... to move it)
#               make test  (set up, Debian packages included, then lint and run the whole suite)
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# On these machines MNIST lies in ../shared; elsewhere the user cache is used (downloaded once).
export DIGITREC_DATA ?= $(if $(wildcard ../shared/data/mnist),$(abspath ../shared/data/mnist),)
# ... and UNIPEN's pen digits, which `make model` and the tests read (no download: see README)
export DIGITREC_UNIPEN ?= $(if $(wildcard ../shared/data/realworld/unipen),$(abspath ../shared/data/realworld/unipen),)
TORCH_SPEC ?= torch==2.13.0
WEIGHTS := src/digitrec/weights
HOST ?= 127.0.0.1
PORT ?= 8000

.PHONY: setup system-packages run test lint format model clean

setup: $(VENV)/.setup-stamp

$(VENV)/.setup-stamp: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --upgrade --quiet pip
	$(BIN)/pip install --quiet "$(TORCH_SPEC)"
	$(BIN)/pip install --quiet -e ".[train,dev,draw]"
	touch $@

# The Debian packages the tests need (browser, virtual screen): as root or through sudo.
system-packages:
	@bash scripts/system-packages.sh

# The drawing page and the JSON API; digitrec serve prints the address it listens on
# (digitrec serve --help for workers, threads, ...).
run: setup
	$(BIN)/digitrec serve --host $(HOST) --port $(PORT)

lint: setup
	$(BIN)/ruff check src tests benchmarks scripts notebooks
	$(BIN)/ruff format --check src tests benchmarks scripts notebooks

format: setup
	$(BIN)/ruff check --fix src tests benchmarks scripts notebooks
	$(BIN)/ruff format src tests benchmarks scripts notebooks

test: system-packages lint
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
