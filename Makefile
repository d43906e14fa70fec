# The two commands of the README: `make dev` runs the platform, `make test` runs the tests.
# Both create the virtual environment from pyproject.toml first; nothing else is installed by hand.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
STAMP := $(VENV)/.installed

.PHONY: dev test bench install clean

install: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/python -m pip install --quiet --upgrade pip
	$(VENV)/bin/python -m pip install --quiet -e '.[test]'
	touch $(STAMP)

dev: $(STAMP)
	$(VENV)/bin/greenstream dev

# Two workers: most tests wait on servers and sensor ticks, so two at a time halve the wall time.
test: $(STAMP)
	sh scripts/install-chromium
	$(VENV)/bin/python -m pytest -n 2

bench: $(STAMP)
	$(VENV)/bin/python benchmarks/bench_rules.py

clean:
	rm -rf $(VENV) .greenstream .pytest_cache .hypothesis
