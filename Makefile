# Two commands do all the set-up on a fresh machine:
#   make book   environment, synthetic data, every notebook at the default scale, HTML
#   make test   environment, lint, unit tests, every notebook at the smoke scale,
#               book build and headless-browser check
# Variables: VENV (.venv), SCALE (default), PYTEST_ARGS (extra pytest options).

SHELL := bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

VENV ?= .venv
PY = $(VENV)/bin/python
SCALE ?= default
MATHJAX_VERSION := 3.2.2
MATHJAX_DIR := book/_static/mathjax
MATHJAX_JS := $(MATHJAX_DIR)/tex-mml-chtml.js
ENV_STAMP := $(VENV)/.mammo-env-installed
PYTEST_ARGS ?=
MUTATE ?= boxes splits manifest
MUTATION_ARGS ?=

.PHONY: help env hooks mathjax data notebooks html book test lint lab bench mutation clean clean-data
# `book` relies on its prerequisites running in order (data, notebooks, then html).
.NOTPARALLEL:

help:
	@echo "make book   - build the book (env, mathjax, data, notebooks at SCALE=$(SCALE), html)"
	@echo "make test   - lint + the whole test-suite (smoke notebooks, book build, browser check)"
	@echo "make lab    - open JupyterLab on notebooks/"
	@echo "make hooks  - install the pre-commit hooks (ruff, ruff format, nbstripout)"
	@echo "make bench  - adapter speed, the CorRELAX engine, torchrun and dask scaling (not in CI)"
	@echo "make mutation - mutation testing (mutmut) of MUTATE=\"$(MUTATE)\" (not in CI; slow)"
	@echo "make clean  - remove build products (book/_build, book/executed, results, build)"
	@echo "make clean-data - remove the cached synthetic cohorts"

# ---- environment: reruns when pyproject.toml or the constraints change
env: $(ENV_STAMP)

$(ENV_STAMP): pyproject.toml requirements/constraints.txt
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -c requirements/constraints.txt -e '.[book,dev]'
	touch $@

# ---- git hooks: ruff and nbstripout before every commit (run from this venv, offline)
hooks: env
	$(VENV)/bin/pre-commit install

# ---- MathJax 3, served from the book's _static folder (no CDN)
mathjax: $(MATHJAX_JS)

$(MATHJAX_JS):
	npm install --no-save --no-audit --no-fund --prefix build/npm mathjax@$(MATHJAX_VERSION)
	rm -rf $(MATHJAX_DIR)
	mkdir -p $(MATHJAX_DIR)/output/chtml/fonts
	cp -r build/npm/node_modules/mathjax/es5/output/chtml/fonts/woff-v2 $(MATHJAX_DIR)/output/chtml/fonts/
	cp build/npm/node_modules/mathjax/es5/tex-mml-chtml.js $(MATHJAX_DIR)/

# ---- the book
data: env
	$(VENV)/bin/mammo-cohort --scale $(SCALE)

notebooks: env
	$(PY) -m mammo_helpers.run --scale $(SCALE)

html: env mathjax
	@ls book/executed/*.ipynb >/dev/null 2>&1 || \
	  { echo "book/executed/ is empty: run 'make notebooks' (or 'make book') first" >&2; exit 1; }
	$(VENV)/bin/jupyter-book build book -W -n --keep-going
	@echo "book: book/_build/html/index.html"

book: env mathjax data notebooks html

# ---- tests: unit tests in parallel, then the notebook + book tests in one session
# (they share the session-scoped smoke run). Both always run; any failure fails make.
lint: env
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

test: env mathjax
	status=0; \
	$(VENV)/bin/ruff check . || status=1; \
	$(VENV)/bin/ruff format --check . || status=1; \
	$(PY) -m pytest -n 2 -m "not notebook and not book" $(PYTEST_ARGS) || status=1; \
	$(PY) -m pytest -m "notebook or book" $(PYTEST_ARGS) || status=1; \
	exit $$status

bench: env
	$(PY) tests/bench_adapters.py --legacy
	$(PY) tests/bench_correlax.py
	$(PY) tests/bench_parallel.py

# ---- mutation testing: each target in a scratch copy under build/mutation (tools/mutation.py)
mutation: env
	$(PY) tools/mutation.py $(MUTATION_ARGS) $(MUTATE)

lab: env
	$(VENV)/bin/jupyter lab notebooks

clean:
	rm -rf book/_build book/executed results build

# the synthetic cohorts cached in $$MAMMO_DATA_DIR (default ~/.cache/mammo_helpers)
clean-data:
	rm -rf "$${MAMMO_DATA_DIR:-$${XDG_CACHE_HOME:-$$HOME/.cache}/mammo_helpers}"/phantom-*
