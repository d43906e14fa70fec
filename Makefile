# The two commands of the README: `make dev` runs the platform, `make test` runs the tests.
# Both create the virtual environment from pyproject.toml first; nothing else is installed by hand.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
STAMP := $(VENV)/.installed

.PHONY: dev test test-fast lint bench install clean

install: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/python -m pip install --quiet --upgrade pip
	$(VENV)/bin/python -m pip install --quiet -e '.[test]'
	touch $(STAMP)

dev: $(STAMP)
	$(VENV)/bin/greenstream dev

# Two workers: most tests wait on servers and sensor ticks, so two at a time halve the wall time.
# The full suite, what CI runs: the linter first, then every test.
test: $(STAMP) lint
	sh scripts/install-chromium
	$(VENV)/bin/python -m pytest -n 2

# The quick loop: the pure rules and everything else that needs no server, browser or live platform.
test-fast: $(STAMP) lint
	$(VENV)/bin/python -m pytest -n 2 -m "not services and not live and not browser"

lint: $(STAMP)
	$(VENV)/bin/ruff check greenstream_dagster greenstream_dagster_tests benchmarks scripts
	$(VENV)/bin/mypy greenstream_dagster/rules

bench: $(STAMP)
	$(VENV)/bin/python benchmarks/bench_rules.py

clean:
	rm -rf $(VENV) .greenstream .pytest_cache .hypothesis .mypy_cache
