# The README's two commands: `make run` and `make test`. Everything is installed from this file.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
HOST ?= 127.0.0.1
PORT ?= 5000

.PHONY: run test install install-test translations lint typecheck pytest audit evidence system-packages bench-smoke clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e .
	touch $@

$(VENV)/.installed-test: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e '.[test]'
	touch $(VENV)/.installed $@

install: $(VENV)/.installed translations

install-test: $(VENV)/.installed-test translations

translations: | $(BIN)/python
	$(BIN)/python scripts/i18n.py compile >/dev/null

## Install, load the demo conference and serve it on http://127.0.0.1:5000 (Ctrl+C stops).
run: install
	$(BIN)/conference demo
	@echo "Open http://$(HOST):$(PORT)/"
	$(BIN)/conference run --host $(HOST) --port $(PORT)

## Install test dependencies (and Debian's chromium when missing), then ruff, mypy and pytest.
test: install-test system-packages lint typecheck pytest

system-packages:
	@bash scripts/system-packages.sh

lint:
	$(BIN)/ruff check conference tests bench scripts

typecheck:
	$(BIN)/mypy

pytest:
	$(BIN)/pytest

## Dependency audit (pip-audit against OSV, then PyPI). Says plainly when no vulnerability database is
## reachable (exit 2) instead of reporting a result it did not get.
audit: install-test
	$(BIN)/python bench/evidence.py --audit-only

## The adversarial suite (tests/security) and the audit, printed as the published security figures.
evidence: install-test system-packages
	$(BIN)/python bench/evidence.py

bench-smoke: install-test
	$(BIN)/pytest -q tests/test_bench_smoke.py

clean:
	rm -rf $(VENV) instance .pytest_cache .mypy_cache .ruff_cache
