# Quick start: `make demo` and `make test`. Both create .venv at the repo root when missing.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.deploykit-installed
# constraints.txt pins torch to the CPU wheel on this project's machines (a bare `torch` pulls CUDA builds).
PIP := $(PY) -m pip install --quiet --constraint constraints.txt

.PHONY: venv demo test lint fmt clean

venv: $(STAMP)

$(STAMP): pyproject.toml constraints.txt
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) torch
	$(PIP) -e '.[dev]'
	@touch $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/deploykit models
	$(VENV)/bin/deploykit info mnv4_conv_s --stages
	$(VENV)/bin/deploykit export mnv4_conv_s --to tflite --precision int8-edgetpu --out artifacts
	$(VENV)/bin/deploykit check artifacts/mnv4_conv_s-224-tflite-int8-edgetpu.tflite --target edgetpu

test: $(STAMP)
	$(VENV)/bin/ruff check deploykit exporters reports tests scripts
	$(VENV)/bin/ruff format --check deploykit exporters reports tests scripts
	$(VENV)/bin/pytest -q

lint: $(STAMP)
	$(VENV)/bin/ruff check deploykit exporters reports tests scripts

fmt: $(STAMP)
	$(VENV)/bin/ruff format deploykit exporters reports tests scripts
	$(VENV)/bin/ruff check --fix deploykit exporters reports tests scripts

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .ruff_cache
