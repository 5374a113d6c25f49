# Task Center: `make run` installs and starts the service, `make test` installs and tests it.
# Both create .venv on first use and reinstall only when a requirements file changes.

PYTHON ?= $(shell command -v python3.11 2>/dev/null || command -v python3)
VENV := .venv
PY := $(VENV)/bin/python
# Touched after a successful install; older than a requirements file means "install again".
INSTALLED := $(VENV)/.requirements-installed
PYTEST_ARGS ?=
# `make run` is the demo, so the demo.* kinds are on there (production leaves them off).
TASKCENTER_DEMO_KINDS ?= true

.DEFAULT_GOAL := help
.PHONY: help install run test test-fast lint docs format bench bench-export

help:
	@echo "make run      install (first time) and start the web server and a worker"
	@echo "make test     install (first time), lint and run the test suite (PYTEST_ARGS=...)"
	@echo "make test-fast  everything but the slow process-level tests (about a minute)"
	@echo "make lint     ruff, ruff format --check, import-linter contracts, mypy"
	@echo "make docs     build docs/ with mkdocs --strict (into var/site)"
	@echo "make format   ruff format and safe fixes"
	@echo "make bench    worker throughput benchmark"
	@echo "make bench-export  results export and search at 1M rows (ROWS=...)"

$(PY):
	@test -n "$(PYTHON)" || { echo "Python 3.11+ is needed (python3.11 or python3)"; exit 1; }
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' || \
		{ echo "$(PYTHON) is older than Python 3.11; run: make PYTHON=/path/to/python3.11"; exit 1; }
	$(PYTHON) -m venv $(VENV)

$(INSTALLED): requirements.txt requirements-dev.txt | $(PY)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	@touch $@

install: $(INSTALLED)

run: install
	$(PY) manage.py migrate --noinput --verbosity 0
	$(PY) manage.py ensure_admin
	$(PY) manage.py grant_quota admin 100000 --at-least --note "make run demo"
	TASKCENTER_DEMO_KINDS=$(TASKCENTER_DEMO_KINDS) $(PY) manage.py run_service --with-sandbox

test: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/lint-imports
	$(VENV)/bin/pytest $(PYTEST_ARGS)

# The slow tests start worker processes, servers and throwaway databases; the rest is the
# behaviour of every module, against a real database, in about a minute.
test-fast: install
	$(VENV)/bin/pytest -m "not slow" $(PYTEST_ARGS)

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/lint-imports
	$(VENV)/bin/mypy

docs: install
	$(VENV)/bin/mkdocs build --strict --site-dir var/site

format: install
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

bench: install
	$(PY) bench/worker_throughput.py

ROWS ?= 1000000
bench-export: install
	$(PY) bench/results_export.py --rows $(ROWS)
