# The README's two commands: `make run` and `make test`. Everything is installed from this file.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
HOST ?= 127.0.0.1
PORT ?= 5000

.PHONY: fuzz run test install install-test translations lint typecheck pytest audit evidence system-packages bench-smoke clean \
	lock lock-upgrade test-latest dist

# Installs come from the lock files (exact versions with sha256 hashes, Python 3.11 on Linux x86_64);
# pyproject.toml keeps the compatible ranges. `make lock` re-resolves after a change of pyproject.toml,
# `make lock-upgrade` moves every pin to the newest allowed version (run `make test-latest` first).
LOCK := requirements/lock.txt
LOCK_TEST := requirements/lock-test.txt
PIP_VERSION ?= 26.3
UV_COMPILE = $(BIN)/uv pip compile pyproject.toml --generate-hashes --python-version 3.11 \
	--python-platform x86_64-manylinux_2_28 --no-emit-package pip --custom-compile-command "make lock" --quiet

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet 'pip==$(PIP_VERSION)'

$(VENV)/.installed: $(LOCK) pyproject.toml setup.py | $(BIN)/python
	$(BIN)/pip install --quiet --require-hashes -r $(LOCK)
	$(BIN)/pip install --quiet --no-deps -e .
	touch $@

$(VENV)/.installed-test: $(LOCK_TEST) pyproject.toml setup.py | $(BIN)/python
	$(BIN)/pip install --quiet --require-hashes -r $(LOCK_TEST)
	$(BIN)/pip install --quiet --no-deps -e .
	touch $(VENV)/.installed $@

install: $(VENV)/.installed translations

install-test: $(VENV)/.installed-test translations tests/e2e/node_modules/axe-core/axe.min.js

# axe-core (accessibility engine the browser tests inject), pinned by tests/e2e/package-lock.json
tests/e2e/node_modules/axe-core/axe.min.js: tests/e2e/package.json tests/e2e/package-lock.json
	npm ci --prefix tests/e2e --no-audit --no-fund --silent
	touch $@

translations: | $(BIN)/python
	@$(BIN)/python scripts/i18n.py compile --quiet

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

## Refresh the lock files after a change of pyproject.toml (pins that still fit stay).
lock: $(VENV)/.installed-test
	$(UV_COMPILE) --extra gevent --extra postgres --extra redis -o $(LOCK)
	$(UV_COMPILE) --extra test -c $(LOCK) -o $(LOCK_TEST)

## Move every pin to the newest version pyproject.toml allows.
lock-upgrade: $(VENV)/.installed-test
	$(UV_COMPILE) --upgrade --extra gevent --extra postgres --extra redis -o $(LOCK)
	$(UV_COMPILE) --upgrade --extra test -c $(LOCK) -o $(LOCK_TEST)

## The drift check before moving the lock: the newest allowed versions in a separate venv, then the suite.
LATEST_VENV ?= .venv-latest
test-latest: system-packages tests/e2e/node_modules/axe-core/axe.min.js
	rm -rf $(LATEST_VENV)
	$(PYTHON) -m venv $(LATEST_VENV)
	$(LATEST_VENV)/bin/pip install --quiet --upgrade pip
	$(LATEST_VENV)/bin/pip install --quiet --upgrade -e '.[test]'
	$(LATEST_VENV)/bin/python scripts/i18n.py compile >/dev/null
	@echo "Versions that differ from $(LOCK_TEST):"
	@$(LATEST_VENV)/bin/python scripts/lock_drift.py $(LOCK_TEST)
	$(LATEST_VENV)/bin/ruff check conference tests bench scripts
	$(LATEST_VENV)/bin/mypy
	$(LATEST_VENV)/bin/pytest

## Build the wheel and the sdist into dist/ (translations compiled, templates/static/migrations inside) and
## check them with twine; the runtime lock file beside them and dist/SHA256SUMS with the hashes of all three
## for the operator (docs/deployment.md, "Install a release").
dist: install-test
	rm -rf build dist
	$(BIN)/python -m build --no-isolation --outdir dist .
	$(BIN)/twine check --strict dist/*
	cp $(LOCK) dist/lock.txt
	cd dist && sha256sum conference-* lock.txt > SHA256SUMS
## The API fuzzer for releases: Schemathesis with every check, 200 examples per operation, with and without an
## organiser token, against a real server with the demo (make test runs the same with 5 examples).
fuzz: install-test
	FUZZ_EXAMPLES=$${FUZZ_EXAMPLES:-200} $(BIN)/pytest -q -s tests/api/test_fuzz.py -p no:cacheprovider --timeout 3600

clean:
	rm -rf $(VENV) $(LATEST_VENV) instance build dist .pytest_cache .mypy_cache .ruff_cache
