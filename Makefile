# Quick start: `make demo` and `make test`. Both create .venv at the repo root when missing.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.deploykit-installed
# The optional extras (ExecuTorch, Ray, AI Hub's client) are installed too: `make test` runs their tests.
# constraints.txt pins torch to the CPU wheel on this project's machines (a bare `torch` pulls CUDA builds).
PIP := $(PY) -m pip install --quiet --constraint constraints.txt

.PHONY: venv demo test test-fast bench lint fmt clean browser

venv: $(STAMP)

$(STAMP): pyproject.toml constraints.txt
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) torch
	$(PIP) -e '.[dev,executorch,ray,aihub]'
	@touch $(STAMP)

# The MNv4 family and the MobileNet baselines, one model per family at least. Measured on this host, estimated on
# the phone/accelerator profiles; then the report. Resumable: run it again and finished cells are skipped.
DEMO_MODELS ?= mnv4_conv_s,mnv4_conv_m,mnv4_hybrid_m,mnv1_100,mnv2_100,mnv3_large_100,mnv3_small_100,mobilevit_xxs,repvit_m0_9
DEMO_ESTIMATED ?= pixel4,pixel6,pixel7,pixel8,s23,iphone13,coral-usb
DEMO_ALL ?= $(DEMO_MODELS),mnv4_conv_l,mnv4_hybrid_l,mnv2_050,mnv3_large_075,mobilevit_s,repvit_m1_5

demo: $(STAMP)
	$(VENV)/bin/deploykit models
	$(VENV)/bin/deploykit info mnv4_conv_s --stages
	$(VENV)/bin/deploykit export mnv4_conv_s --to tflite --precision int8-edgetpu --out artifacts
	$(VENV)/bin/deploykit check artifacts/mnv4_conv_s-224-tflite-int8-edgetpu.tflite --target edgetpu
	@echo "demo: a short benchmark budget (20 warm-up, 5 x at most 200 runs, 3 s per target); deploykit bench's default is 50 warm-up, 5 x 1000 runs"
	@echo "demo: timm's trained weights where the Hugging Face cache holds them, else seeded random weights (the line below says which)"
	@# A failed cell (exit 1) is a result, stored and shown in the report: the demo goes on; a usage error does not.
	@$(VENV)/bin/deploykit sweep --models $(DEMO_MODELS) --devices host --formats tflite,onnx --warmup 20 --runs 200 --budget 3 --weights cached --db deploykit-results.db; \
	  rc=$$?; [ $$rc -le 1 ] || exit $$rc; \
	  [ $$rc -eq 0 ] || echo "demo: the failed cells above are results (kept in the database, shown in the report); the demo goes on"
	$(VENV)/bin/deploykit sweep --models $(DEMO_ALL) --devices $(DEMO_ESTIMATED) --db deploykit-results.db --report reports/latest.html

# Debian's Chromium for the report's browser test, when this is a Debian machine we may install on.
browser:
	@command -v chromium >/dev/null 2>&1 || { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1 && \
	  { apt-get install -y -q chromium >/dev/null 2>&1 || { apt-get update -q >/dev/null 2>&1 && apt-get install -y -q chromium >/dev/null 2>&1; }; }; } || \
	  echo "chromium not installed: the report's browser test will be skipped"

# Every test; the 15 slowest are listed at the end, so every run shows where the time goes.
test: $(STAMP) browser
	$(VENV)/bin/ruff check deploykit exporters reports tests scripts
	$(VENV)/bin/ruff format --check deploykit exporters reports tests scripts
	$(VENV)/bin/pytest -q --durations=15

# The edit loop: everything but the tests marked slow, cluster or browser (pyproject.toml says what each means).
test-fast: $(STAMP)
	$(VENV)/bin/pytest -q -m "not slow and not cluster and not browser" --durations=10

# Timing agreement (harness vs a hand-timed loop, interleaved pairs): a benchmark, never a test gate.
bench: $(STAMP)
	$(PY) scripts/bench_harness.py

lint: $(STAMP)
	$(VENV)/bin/ruff check deploykit exporters reports tests scripts

fmt: $(STAMP)
	$(VENV)/bin/ruff format deploykit exporters reports tests scripts
	$(VENV)/bin/ruff check --fix deploykit exporters reports tests scripts

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .ruff_cache
