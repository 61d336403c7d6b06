"""The production-shaped stack (``make airflow EXECUTOR=celery``) under test: ``make test-stack``.

Skipped unless ``GOOTEN_STACK_TESTS=1`` (``make test-stack`` sets it, after installing Debian's
redis-server and PostgreSQL when missing), so ``make test`` stays fast. One session starts
``demo/airflow_stack.py --executor celery`` on free ports of 127.0.0.1 with a temporary home: PostgreSQL,
Redis, two Celery workers, the scheduler, triggerer, DAG processor, API server, the webhook relay and a
local Gooten API throttled like a gateway (:data:`RATE_LIMIT` requests/s) holding :data:`BATCH_ORDERS`
extra orders for a big batch; and stops it at the end.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.ui.conftest import AirflowStack, start_stack

STACK_TESTS_ENV = "GOOTEN_STACK_TESTS"
ENABLED = os.environ.get(STACK_TESTS_ENV) == "1"
#: The local Gooten API's limit (requests per second per account) and burst, as a gateway's.
RATE_LIMIT = 20.0
RATE_BURST = 4
BATCH_ORDERS = 120
_HERE = Path(__file__).resolve().parent


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Skip the stack tests unless GOOTEN_STACK_TESTS=1."""
    if ENABLED:
        return
    skip = pytest.mark.skip(
        reason=f"Celery stack tests: set {STACK_TESTS_ENV}=1 to run them (make test-stack)"
    )
    for item in items:
        if _HERE in Path(str(item.path)).resolve().parents:
            item.add_marker(skip)


@pytest.fixture(scope="session")
def airflow_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AirflowStack]:
    """``make airflow EXECUTOR=celery`` on free ports, a throttled local API, for the session."""
    started = time.monotonic()
    options = [
        "--executor", "celery", "--rate-limit", str(RATE_LIMIT), "--rate-burst", str(RATE_BURST),
        "--batch-orders", str(BATCH_ORDERS),
    ]  # fmt: skip
    stack = start_stack(tmp_path_factory.mktemp("celery-stack"), options)
    print(f"\n[stack] Celery stack up in {time.monotonic() - started:.1f} s: {stack.airflow_url}", flush=True)
    try:
        yield stack
    finally:
        stack.stop()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    """On a failure: the stack's log tails in the report."""
    outcome = yield
    report = outcome.get_result()
    if report.when in ("setup", "call") and report.failed and ENABLED:
        stack = getattr(item, "funcargs", {}).get("airflow_stack")
        if isinstance(stack, AirflowStack):
            report.sections.append(("Celery stack log tails", stack.log_tails()))
