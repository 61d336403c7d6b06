# Everything installs from uv.lock, on a machine that has only python3 and make.
PYTHON ?= python3
UV_VERSION := 0.13.9
TOOLS := .tools
UV := $(TOOLS)/bin/uv
VENV := .venv
BIN := $(VENV)/bin
# The suites run again on other Airflow lines (make test-oldest, make test-airflow-3.1): everything but
# the browser tests, the secrets audit and the soak; the example DAGs run with dag.test() in tests/dags
# and once with `airflow dags test` (the demo test). The DAG runs are listed one per line (-v), so that
# CI's log shows each of them on each Airflow line.
COMPAT_TESTS := tests/unit tests/client tests/batch tests/hooks tests/operators tests/sensors tests/triggers tests/testing \
	tests/errors tests/transfers
COMPAT_DAG_TESTS := tests/dags tests/integration --deselect \
	tests/dags/test_demo_slow.py::test_make_demo_dry_run_changes_nothing --deselect \
	tests/dags/test_demo_slow.py::test_make_demo_exits_non_zero_when_the_run_fails_and_shows_why
# Airflow 3.1's dag.test() builds its in-process execution API anew for every task (several seconds
# each), so on 3.1 every example DAG is parsed and run once, with dag.test() (there instead of the CLI).
COMPAT_DAG_TESTS_3_1 := tests/dags/test_dagbag.py \
	tests/dags/test_dq_hold_cancel.py::test_holds_and_cancels_the_failing_orders_and_audits_every_outcome \
	tests/dags/test_manual_order_status.py::test_holds_the_given_orders_and_shows_each_outcome \
	tests/dags/test_reconcile_order_statuses.py::test_changes_what_is_allowed_and_reports_the_rest_without_failing \
	tests/integration/test_operator_dag_runs.py::test_mapped_run_one_task_instance_per_order \
	tests/integration/test_operator_dag_runs.py::test_sensor_succeeds_when_every_item_reaches_a_target \
	tests/dags/test_order_status_history.py::test_reads_every_event_rereads_each_order_and_flags_issues \
	tests/dags/test_wait_for_release.py::test_succeeds_once_every_held_order_is_released \
	tests/dags/test_orders_export.py::test_the_sweep_finds_exactly_the_orders_whose_webhooks_were_lost

export UV_COMPILE_BYTECODE := 1
export UV_PYTHON_DOWNLOADS := never
export UV_PROJECT_ENVIRONMENT := $(VENV)

.PHONY: install test typecheck test-oldest test-airflow-3.1 test-ui test-stack dist bench soak constraints \
	demo airflow lint clean

$(UV):
	$(PYTHON) -m venv $(TOOLS)
	$(TOOLS)/bin/pip install --quiet --disable-pip-version-check "uv==$(UV_VERSION)"

$(BIN)/.installed: $(UV) uv.lock pyproject.toml
	$(UV) sync --frozen --python $(PYTHON)
	touch $@

install: $(BIN)/.installed

# The shared-pace tests (tests/shared_pace) start Debian's redis-server: installed with apt-get when missing.
test: install
	sh scripts/install-stack-deps.sh redis
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	# the layers' import contracts ([tool.importlinter] in pyproject.toml)
	$(BIN)/lint-imports --no-logo
	$(MAKE) typecheck
	# Two workers, each test file on one of them (module fixtures set up once); the slowest tests listed.
	$(BIN)/pytest -n 2 --dist loadfile --durations=15
	# The two older lines side by side (3.1's DAG runs mostly wait); each one's output printed as a block.
	$(MAKE) -j2 --output-sync=target test-oldest test-airflow-3.1

typecheck: install
	$(BIN)/mypy

# An environment per lock in constraints/ (.venv-oldest from oldest.txt, .venv-airflow-3.1 from
# airflow-3.1.txt), rebuilt when its lock or pyproject.toml changes.
.venv-%/.installed: $(UV) constraints/%.txt pyproject.toml
	rm -rf .venv-$*
	$(UV) venv --quiet --python $(PYTHON) .venv-$*
	$(UV) pip sync --quiet --python .venv-$*/bin/python constraints/$*.txt
	$(UV) pip install --quiet --python .venv-$*/bin/python --no-deps -e .
	touch $@

# The suites again on the oldest Airflow (and dependencies) that pyproject.toml admits, so the range
# stays true, and on the newest Airflow 3.1.
test-oldest: .venv-oldest/.installed
	.venv-oldest/bin/python constraints/check_constraints.py constraints/oldest.txt
	.venv-oldest/bin/pytest -p no:cacheprovider -q $(COMPAT_TESTS)
	.venv-oldest/bin/pytest -p no:cacheprovider -v $(COMPAT_DAG_TESTS)

test-airflow-3.1: .venv-airflow-3.1/.installed
	.venv-airflow-3.1/bin/python constraints/check_constraints.py constraints/airflow-3.1.txt
	.venv-airflow-3.1/bin/pytest -p no:cacheprovider -q $(COMPAT_TESTS)
	.venv-airflow-3.1/bin/pytest -p no:cacheprovider -v $(COMPAT_DAG_TESTS_3_1)

# Build the sdist and wheel into dist/, check them, then install the wheel into a fresh venv next to the
# newest Airflow on the package index and run a DAG from the README there (scripts/dist_smoke.py).
dist: install
	rm -rf dist
	$(UV) build --quiet --out-dir dist
	$(BIN)/twine check --strict dist/*
	$(BIN)/check-wheel-contents --package gooten_provider --toplevel gooten_provider dist/*.whl
	$(BIN)/python scripts/check_dist.py dist
	$(BIN)/python scripts/dist_smoke.py dist

# Browser tests of the Airflow UI (tests/ui, docs/ui.md): Debian's chromium (apt-get install when
# /usr/bin/chromium is missing, as root) driven by Playwright from uv.lock. About a minute.
test-ui: install
	sh scripts/install-ui-deps.sh
	GOOTEN_UI_TESTS=1 $(BIN)/pytest tests/ui

# The production-shaped stack (tests/stack): make airflow EXECUTOR=celery on free ports (PostgreSQL, Redis,
# two Celery workers), a batch in mapped chunks sharing one pace, the deferrable sensor, a webhook. Installs
# Debian's redis-server and postgresql when missing (scripts/install-stack-deps.sh). Two to four minutes.
test-stack: install
	sh scripts/install-stack-deps.sh
	GOOTEN_STACK_TESTS=1 $(BIN)/pytest -p no:cacheprovider tests/stack

constraints: $(UV)
	$(UV) pip compile --quiet pyproject.toml --extra examples constraints/oldest.in \
		--resolution lowest-direct --python-version 3.11 --custom-compile-command "make constraints" \
		-o constraints/oldest.txt
	$(UV) pip compile --quiet pyproject.toml --extra examples constraints/airflow-3.1.in \
		--python-version 3.11 --custom-compile-command "make constraints" -o constraints/airflow-3.1.txt

demo: install
	$(BIN)/python demo/demo.py

# The local Airflow of docs/quickstart.md on http://127.0.0.1:8080. EXECUTOR=celery runs the production
# shape instead: PostgreSQL, Redis (broker and shared pace) and two Celery workers, installed with apt-get
# when missing (scripts/install-stack-deps.sh). AIRFLOW_ARGS passes more options (--help lists them).
EXECUTOR ?= local
AIRFLOW_ARGS ?=
airflow: install
	if [ "$(EXECUTOR)" = celery ]; then sh scripts/install-stack-deps.sh; fi
	$(BIN)/python demo/airflow_stack.py --executor $(EXECUTOR) $(AIRFLOW_ARGS)

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
	rm -rf $(VENV) .venv-oldest .venv-airflow-3.1 .venv-dist $(TOOLS) .pytest_cache .mypy_cache dist
