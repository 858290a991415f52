# Everything a fresh machine needs: each target creates .venv and installs the project first.
# pip byte-compiles every installed module on one core (half of the install's time); compileall
# does the same on every core. Compiled they must be: where PYTHONDONTWRITEBYTECODE is set (as on
# some CI machines) Python would otherwise recompile each module in every process it starts. As
# with pip, a file that does not compile (e.g. written for another Python) is skipped. The tests
# compile the project's own modules first, for the hundreds of CLI processes they start.
# make test runs pytest-xdist, one worker per core (up to 4), a whole test file per worker
# (--dist loadfile) so that module fixtures and per-module counts stay in one process.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
PYTEST := $(BIN)/python -m pytest -n auto --maxprocesses 4 --dist loadfile

.PHONY: demo test test-fast lint bench bench-smoke clean

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else 1)' || \
	  { echo "iris-mlops needs Python 3.11+: run make PYTHON=/path/to/python3.11"; exit 2; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --no-compile -e '.[dev]'
	@$(BIN)/python -m compileall -q -j 0 "$$($(BIN)/python -c 'import sysconfig; print(sysconfig.get_path("purelib"))')" >/dev/null || true
	@touch $(STAMP)

demo: $(STAMP)        ## the whole lifecycle on the local env
	@PATH="$(CURDIR)/$(BIN):$$PATH" bash scripts/demo.sh

test: $(STAMP)        ## the full test suite (what CI runs)
	@$(BIN)/python -m compileall -q -j 0 mlops_cli >/dev/null
	$(PYTEST)

test-fast: $(STAMP)   ## without the tests that download wheels
	@$(BIN)/python -m compileall -q -j 0 mlops_cli >/dev/null
	$(PYTEST) -m "not slow"

lint: $(STAMP)
	$(BIN)/ruff check mlops_cli tests benchmarks

bench: $(STAMP)
	$(BIN)/python -m benchmarks

bench-smoke: $(STAMP)
	$(BIN)/python -m benchmarks --smoke

clean:
	rm -rf $(VENV) artifacts/models artifacts/packages artifacts/deployments
