# Everything installs from uv.lock, on a machine that has only python3 and make.
PYTHON ?= python3
UV_VERSION := 0.13.9
TOOLS := .tools
UV := $(TOOLS)/bin/uv
VENV := .venv
BIN := $(VENV)/bin
OLDEST_VENV := .venv-oldest
OLDEST_TESTS := tests/unit tests/client tests/hooks tests/operators tests/testing tests/errors

export UV_COMPILE_BYTECODE := 1
export UV_PYTHON_DOWNLOADS := never
export UV_PROJECT_ENVIRONMENT := $(VENV)

.PHONY: install test test-oldest test-ui bench soak constraints demo airflow lint clean

$(UV):
	$(PYTHON) -m venv $(TOOLS)
	$(TOOLS)/bin/pip install --quiet --disable-pip-version-check "uv==$(UV_VERSION)"

$(BIN)/.installed: $(UV) uv.lock pyproject.toml
	$(UV) sync --frozen --python $(PYTHON)
	touch $@

install: $(BIN)/.installed

test: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/pytest
	$(MAKE) test-oldest

# The unit-level suites again on the oldest Airflow that pyproject.toml admits, so the range stays true.
$(OLDEST_VENV)/.installed: $(UV) constraints/oldest.txt pyproject.toml
	rm -rf $(OLDEST_VENV)
	$(UV) venv --quiet --python $(PYTHON) $(OLDEST_VENV)
	$(UV) pip sync --quiet --python $(OLDEST_VENV)/bin/python constraints/oldest.txt
	$(UV) pip install --quiet --python $(OLDEST_VENV)/bin/python --no-deps -e .
	touch $@

test-oldest: $(OLDEST_VENV)/.installed
	$(OLDEST_VENV)/bin/python constraints/check_oldest.py
	$(OLDEST_VENV)/bin/pytest -p no:cacheprovider $(OLDEST_TESTS)

# Browser tests of the Airflow UI (tests/ui, docs/ui.md): Debian's chromium (apt-get install when
# /usr/bin/chromium is missing, as root) driven by Playwright from uv.lock. About a minute.
test-ui: install
	sh scripts/install-ui-deps.sh
	GOOTEN_UI_TESTS=1 $(BIN)/pytest tests/ui

constraints: $(UV)
	$(UV) pip compile --quiet pyproject.toml constraints/oldest.in --resolution lowest-direct \
		--python-version 3.11 --custom-compile-command "make constraints" -o constraints/oldest.txt

demo: install
	$(BIN)/python demo/demo.py

airflow: install
	$(BIN)/python demo/airflow_stack.py

# Benchmarks against the alternatives (about 20 minutes; results into docs/performance.md).
bench: install
	$(BIN)/python -m bench.run

# 2,000 orders under ~20% injected faults (make test runs the same with 200).
soak: install
	$(BIN)/python -m bench.soak

lint: install
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

clean:
	rm -rf $(VENV) $(OLDEST_VENV) $(TOOLS) .pytest_cache
