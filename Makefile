# perfpilot: the two set-up commands are `make demo` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PIP := $(BIN)/python -m pip --disable-pip-version-check -q

.PHONY: demo test check bench venv clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(PIP) install --upgrade pip

venv: $(BIN)/python

# Create .venv, install perfpilot with the sample app, run the end-to-end demo.
demo: venv
	$(PIP) install -e '.[demo]'
	$(BIN)/perfpilot demo

# Install what the tests need (Debian packages as root), then lint, type-check and run every test.
test: venv
	bash scripts/system-deps.sh test
	$(PIP) install -e '.[dev]'
	$(MAKE) --no-print-directory check
	$(BIN)/python -m pytest -q

check: venv
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench
	$(BIN)/mypy

# Side-by-side benchmarks; installs nginx and wrk (Debian), Locust and OpenTelemetry (PyPI).
bench: venv
	bash scripts/system-deps.sh bench
	$(PIP) install -e '.[dev,bench]'
	$(BIN)/python bench/histogram_record.py
	$(BIN)/python bench/load_throughput.py
	$(BIN)/python bench/instrument_overhead.py
	$(BIN)/python bench/instrument_instructions.py
	$(BIN)/python bench/db_advise.py
	$(BIN)/python bench/profiler_overhead.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache build
	rm -f src/perfpilot/instrument/*.so
