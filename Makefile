# Developer shortcuts; CI runs .ci/run, which does the same from a clean checkout.
VENV ?= .venv
PY := $(VENV)/bin/python

.PHONY: dev test lint format typecheck bench clean

dev:
	python3 -m venv $(VENV)
	$(PY) -m pip install -e '.[dev]'

test:
	$(PY) -m pytest $(if $(TESTS),-k "$(TESTS)")

lint:
	$(VENV)/bin/ruff check lib tests bench
	$(VENV)/bin/ruff format --check lib tests bench
	$(VENV)/bin/mypy

typecheck:
	$(VENV)/bin/mypy

format:
	$(VENV)/bin/ruff format lib tests bench
	$(VENV)/bin/ruff check --fix lib tests bench

bench:
	$(PY) bench/startup.py
	$(PY) bench/masking.py
	$(PY) bench/audit.py
	$(PY) bench/creds.py

clean:
	rm -rf $(VENV) build dist .mypy_cache .ruff_cache .pytest_cache .hypothesis
