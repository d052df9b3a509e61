# Two entry points for a fresh machine: `make demo` and `make test` (see README.md).
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
PYTEST_ARGS ?=

.PHONY: demo test lab bench lifetime clean check-venv

check-venv:
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else 1)' || \
	  { echo "Python >= 3.11 is required (found: $$($(PYTHON) --version 2>&1))"; exit 1; }
	@$(PYTHON) -c 'import venv, ensurepip' 2>/dev/null || \
	  { echo "The Python venv module is missing. Fix: sudo apt-get install -y python3-venv"; exit 1; }

$(BIN)/python: | check-venv
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install -q -e .
	touch $@

$(VENV)/.installed-dev: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install -q -e '.[dev]'
	touch $@ $(VENV)/.installed

demo: $(VENV)/.installed
	$(BIN)/ceremony demo

# The layer contract first (docs/architecture.md), then the suite. pytest exits 5 when it collected no
# tests: that is a failure here, never a silent pass.
test: $(VENV)/.installed-dev
	$(BIN)/lint-imports
	@$(BIN)/python -m pytest $(PYTEST_ARGS); rc=$$?; \
	  if [ $$rc -eq 5 ]; then echo "make test: pytest collected no tests"; exit 1; fi; exit $$rc

# Every figure beside its peer and its limit, measured in the same run; each benchmark rewrites its own section
# of docs/benchmarks.md (never a timed test). The dev extra brings pkilint, the lint benchmark's peer.
bench: $(VENV)/.installed-dev
	$(BIN)/python -m bench.issuance --markdown docs/benchmarks.md
	$(BIN)/python -m bench.lint --markdown docs/benchmarks.md
	$(BIN)/python -m bench.inventory --rows 10000000 --markdown docs/benchmarks.md
	$(BIN)/python -m bench.evidence --markdown docs/benchmarks.md

# Ten simulated years of one PKI, checked after every step, each year's verdict against the golden file
# (docs/lifetime.md; `make test` runs the first six beside its other tests). Before every release.
lifetime: $(VENV)/.installed-dev
	$(BIN)/python -m bench.lifetime --years 10

# An attended ceremony: make lab NOTEBOOK=notebooks/10-root-ca-ceremony.ipynb [WORKSPACE=DIR] [LAB_ARGS=...]
# runs `ceremony open`: the notebook's run copy in <WORKSPACE>/reports/runs/<UTC>-<notebook>/ with its parameters
# injected, opened in JupyterLab on 127.0.0.1 (kernels over Unix sockets, not TCP); notebooks/ is never written,
# and the run copy, saved with its outputs, goes into the workspace's next evidence pack.
# WORKSPACE: default $CEREMONY_WORKSPACE, else ./workspace.
# LAB_ARGS: more `ceremony open` options, e.g. LAB_ARGS='-p ceremony_file data/ceremonies/root-ca.yaml' (a
#   parameter), '-f params.yaml', '--rehearsal', '--port 8890', '--no-browser', '--prepare-only' (copy only).
NOTEBOOK  ?=
WORKSPACE ?= $(or $(CEREMONY_WORKSPACE),workspace)
LAB_ARGS  ?=
$(VENV)/.installed-lab: pyproject.toml | $(VENV)/.installed
	$(BIN)/python -m pip install -q -e '.[lab]'
	touch $@

lab: $(VENV)/.installed-lab
	@test -n "$(NOTEBOOK)" || { echo "make lab: name the notebook, e.g. make lab NOTEBOOK=notebooks/10-root-ca-ceremony.ipynb"; \
	  ls notebooks/*.ipynb; exit 2; }
	$(BIN)/ceremony --workspace $(abspath $(WORKSPACE)) open $(NOTEBOOK) $(LAB_ARGS)

clean:
	rm -rf $(VENV) workspaces .pytest_cache
