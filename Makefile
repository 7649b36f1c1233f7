# The README's two commands: `make run` and `make test`. Everything is installed from this file.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
HOST ?= 127.0.0.1
PORT ?= 5000

.PHONY: fuzz run test install install-test translations lint typecheck pytest audit evidence system-packages bench-smoke clean

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

install-test: $(VENV)/.installed-test translations tests/e2e/node_modules/axe-core/axe.min.js

# axe-core (accessibility engine the browser tests inject), pinned by tests/e2e/package-lock.json
tests/e2e/node_modules/axe-core/axe.min.js: tests/e2e/package.json tests/e2e/package-lock.json
	npm ci --prefix tests/e2e --no-audit --no-fund --silent
	touch $@

translations: | $(BIN)/python
	$(BIN)/python scripts/i18n.py compile >/dev/null

## Install, load the demo conference and serve it on http://127.0.0.1:5000 (Ctrl+C stops).
## Links in mails point at that address (CONFERENCE_EXTERNAL_URL, unless already set).
run: install
	$(BIN)/conference demo
	@echo "Open http://$(HOST):$(PORT)/"
	CONFERENCE_EXTERNAL_URL="$${CONFERENCE_EXTERNAL_URL:-http://$(HOST):$(PORT)}" \
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

## Short runs of every benchmark (they are also part of `make test`).
bench-smoke: install-test
	$(BIN)/pytest -q tests/agenda/test_bench.py tests/presentations/test_bench_and_demo.py tests/live/test_bench.py \
		tests/scaleout/test_bench.py tests/e2e/test_browser_metrics.py

## The API fuzzer for releases: Schemathesis with every check, 200 examples per operation, with and without an
## organiser token, against a real server with the demo (make test runs the same with 5 examples).
fuzz: install-test
	FUZZ_EXAMPLES=$${FUZZ_EXAMPLES:-200} $(BIN)/pytest -q -s tests/api/test_fuzz.py -p no:cacheprovider --timeout 3600

clean:
	rm -rf $(VENV) instance .pytest_cache .mypy_cache .ruff_cache
