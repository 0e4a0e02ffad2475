# Two commands do everything:  `make lab` (the workbench in JupyterLab)  and  `make test` (the whole suite).
# Both create and use a local virtual environment in .venv.

SHELL := /bin/bash
.SHELLFLAGS := -eo pipefail -c
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# The CPU build of PyTorch; on a GPU machine pass your own, e.g. `make lab TORCH=torch`.
TORCH ?= torch==2.13.0
# pip prints one warning per package for index mirrors that lack it; they are noise here.
QUIET_PIP := { grep -v "^WARNING: Location" || true; }

.PHONY: setup lab test browser-deps clean

setup: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q "$(TORCH)" 2>&1 | $(QUIET_PIP)
	$(BIN)/python -m pip install -q -e ".[qm,lab,test]" 2>&1 | $(QUIET_PIP)
	$(BIN)/python -c "import torch, workbench, nglview, pyscf, tblite; print('workbench environment ready, torch', torch.__version__)"
	touch $(STAMP)

# Debian's Chromium drives the browser tests (never a downloaded browser build).
browser-deps:
	@command -v chromium >/dev/null || { \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; \
	  else echo "chromium is missing: install Debian's chromium package (the browser tests need it)"; fi; }

# Opens the app notebook; run its cells (Run > Run All Cells) to start the workbench.
lab: $(STAMP)
	$(BIN)/jupyter lab notebooks/workbench.ipynb --ServerApp.ip=127.0.0.1 $$( [ "$$(id -u)" = 0 ] && echo --allow-root )

test: $(STAMP) browser-deps
	$(BIN)/python -m pytest -ra $(PYTEST_ARGS)

clean:
	rm -rf $(VENV) .pytest_cache test-artifacts
