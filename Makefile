# Every target sets itself up: `make test` and `make demo` work on a fresh clone.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
# CPU build of PyTorch unless a GPU is present (a GPU user may set TORCH_SPEC, see README).
HAS_GPU := $(shell command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L >/dev/null 2>&1 && echo 1)
TORCH_SPEC ?= $(if $(HAS_GPU),torch>=2.3$(comma)<2.15,torch==2.13.0)
ORT_EXTRA ?= $(if $(HAS_GPU),gpu,cpu)
comma := ,
DEMO_OUT ?= out/demo
# SoVITS version of the demo's sample voice: `make demo VERSION=v2ProPlus` (or v2Pro).
VERSION ?= v2

.PHONY: setup test lint readme demo bench bench-quick clean

setup: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q "$(TORCH_SPEC)"
	$(PY) -m pip install -q -e ".[$(ORT_EXTRA),postgres,ja,dev]"
	touch $(STAMP)

test: setup
	$(PY) -m pytest -q

lint: setup
	$(VENV)/bin/ruff check renderer jobs export tests
	$(VENV)/bin/mypy renderer jobs export

# The README's command reference, regenerated from the CLI's help texts (a test fails when it is stale).
readme: setup
	$(PY) -m jobs.cli.reference README.md

demo: setup
	$(VENV)/bin/render demo --out $(DEMO_OUT) --version $(VERSION)

bench: setup
	$(VENV)/bin/render bench --out bench-results

bench-quick: setup
	$(VENV)/bin/render bench --quick --out bench-results

clean:
	rm -rf $(VENV) out bench-results .pytest_cache .mypy_cache .ruff_cache build *.egg-info
	find . -name __pycache__ -type d -prune -exec rm -rf {} +
