# ostoolkit: `make run` measures this host; `make test` lints and runs every test.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
RUN_STAMP := $(VENV)/.installed-run
STAMP := $(VENV)/.installed

.DEFAULT_GOAL := help
.PHONY: help run test lint fmt typecheck clean venv dbservers browser pythons

help: ## List the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-10s %s\n", $$1, $$2}'

$(RUN_STAMP): pyproject.toml
	@# Debian/Ubuntu ship venv's ensurepip separately (python3-venv); install it when missing.
	@if ! $(PYTHON) -c 'import ensurepip, venv' 2>/dev/null; then \
	  pkg="python3-venv"; ver=$$($(PYTHON) -c 'import sys; print(f"{sys.version_info[0]}.{sys.version_info[1]}")'); \
	  echo "python venv support missing: installing $$pkg (python$$ver-venv)"; \
	  SUDO=$$([ "$$(id -u)" = 0 ] || echo sudo); \
	  $$SUDO apt-get -o DPkg::Lock::Timeout=600 update -qq && \
	  DEBIAN_FRONTEND=noninteractive $$SUDO apt-get -o DPkg::Lock::Timeout=600 install -y -qq "$$pkg" "python$$ver-venv" \
	    || { echo "could not install $$pkg: install it, then rerun make" >&2; exit 1; }; \
	fi
	$(PYTHON) -m venv --clear $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e .
	@touch $(RUN_STAMP)

# The test tools (pytest, ruff, mypy, the database drivers) go into the same .venv, for make test only.
$(STAMP): $(RUN_STAMP)
	$(BIN)/python -m pip install --quiet -e '.[test]'
	@touch $(STAMP)

venv: $(STAMP) ## Create .venv and install ostoolkit with its test tools

run: $(RUN_STAMP) ## Measure this host: fingerprint, context-switch cost, a live fork tree
	$(BIN)/ostoolkit host
	$(BIN)/ostoolkit measure-switch
	$(BIN)/ostoolkit fork-tree

test: $(STAMP) lint typecheck dbservers browser ## Lint, type-check and run the whole test suite
	$(BIN)/python -m pytest
	bash tests/pythons.sh $(BIN)/python

pythons: $(STAMP) ## The unit tests and each command under every other CPython 3.10-3.13 here
	bash tests/pythons.sh $(BIN)/python

# The real-server tests start throwaway PostgreSQL, MariaDB and PgBouncer from Debian's packages;
# the clone tests read clone(2) flags with strace. Installed only when one is missing; without
# root or sudo those tests skip (and fail under CI).
dbservers: ## Install PostgreSQL, MariaDB, PgBouncer and strace when missing (Debian/Ubuntu)
	@export PATH="$$PATH:/usr/sbin:/sbin"; \
	if ls -d /usr/lib/postgresql/*/bin >/dev/null 2>&1 && command -v mariadbd >/dev/null \
	  && command -v pgbouncer >/dev/null && command -v strace >/dev/null; then exit 0; fi; \
	if ! command -v apt-get >/dev/null; then \
	  echo "dbservers: no apt-get here: install postgresql, mariadb-server and pgbouncer yourself" >&2; exit 0; fi; \
	if [ "$$(id -u)" = 0 ]; then SUDO=""; \
	elif command -v sudo >/dev/null && sudo -n true 2>/dev/null; then SUDO="sudo"; \
	else echo "dbservers: not root and no password-less sudo: skipping the install of postgresql," \
	  "mariadb-server and pgbouncer (their tests will skip)" >&2; exit 0; fi; \
	echo "dbservers: installing postgresql, mariadb-server, pgbouncer and strace (about 30 s)"; \
	$$SUDO apt-get -o DPkg::Lock::Timeout=600 update -qq && \
	$$SUDO env DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 install -y -qq \
	  postgresql mariadb-server pgbouncer strace >/dev/null \
	  || echo "dbservers: the install failed: their tests will skip (and fail under CI)" >&2

# The browser test (tests/os/test_browser_os.py) renders ostoolkit's markdown as GitHub would:
# Debian's cmark-gfm (GitHub's parser) and chromium, driven by playwright-core with mermaid 10.9
# and 11 from tests/browser's lockfile. Installed only when missing; without root or sudo, or
# without node and npm, the test skips (and fails under CI).
browser: ## Install chromium, cmark-gfm and tests/browser's node packages when missing
	@if ! { command -v chromium >/dev/null && command -v cmark-gfm >/dev/null; }; then \
	  if ! command -v apt-get >/dev/null; then \
	    echo "browser: no apt-get here: install chromium and cmark-gfm yourself" >&2; exit 0; fi; \
	  if [ "$$(id -u)" = 0 ]; then SUDO=""; \
	  elif command -v sudo >/dev/null && sudo -n true 2>/dev/null; then SUDO="sudo"; \
	  else echo "browser: not root and no password-less sudo: skipping the install of chromium" \
	    "and cmark-gfm (the browser test will skip)" >&2; exit 0; fi; \
	  echo "browser: installing chromium and cmark-gfm (about a minute)"; \
	  $$SUDO apt-get -o DPkg::Lock::Timeout=600 update -qq && \
	  $$SUDO env DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 install -y -qq \
	    chromium cmark-gfm >/dev/null \
	    || { echo "browser: the install failed: the browser test will skip (and fail under CI)" >&2; \
	      exit 0; }; \
	fi; \
	if ! { command -v node >/dev/null && command -v npm >/dev/null; }; then \
	  echo "browser: node or npm is missing: the browser test will skip (and fail under CI)" >&2; \
	  exit 0; fi; \
	if [ ! -d tests/browser/node_modules ] \
	  || [ tests/browser/package-lock.json -nt tests/browser/node_modules ]; then \
	  npm ci --prefix tests/browser --no-audit --no-fund \
	    && touch tests/browser/node_modules \
	    || echo "browser: npm ci failed: the browser test will skip (and fail under CI)" >&2; \
	fi

lint: $(STAMP) ## ruff check and format check
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(STAMP) ## mypy (strict) on the package
	$(BIN)/mypy

fmt: $(STAMP) ## Format and auto-fix with ruff
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

clean: ## Remove the venv and caches
	rm -rf $(VENV) .pytest_cache .ruff_cache .mypy_cache build *.egg-info benchmarks/build
