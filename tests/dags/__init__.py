"""Tests of the example DAGs in ``dags/``, and helpers shared by them.

Airflow puts a DAG bundle's folder on ``sys.path`` when it parses or runs DAGs from it (``BundleDagBag``),
which is how the DAG files import ``gooten_examples``; the tests do the same, once, here.
"""

from __future__ import annotations

import json
import sqlite3
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[2]
DAGS_FOLDER = REPO_ROOT / "dags"
DAG_IDS = {
    "gooten_dq_hold_cancel",
    "gooten_reconcile_order_statuses",
    "gooten_manual_order_status",
    "gooten_order_status_history",
    "gooten_wait_for_release",
    "gooten_orders_export",
    "gooten_bulk_order_status",
}

if str(DAGS_FOLDER) not in sys.path:
    sys.path.append(str(DAGS_FOLDER))


def load_dag(dag_id: str) -> Any:
    """Parse ``dags/`` and return one DAG, ready for ``test()`` (fails the test on any import error)."""
    from tests.airflow_compat import dag_bag, testable

    bag = dag_bag(dag_folder=str(DAGS_FOLDER))
    assert not bag.import_errors, bag.import_errors
    return testable(bag.dags[dag_id])


def set_connections(monkeypatch: Any, api: Any, warehouse: Path) -> None:
    """Point ``gooten_default`` at the local API and ``gooten_warehouse`` at a SQLite file (env vars)."""
    from gooten_examples.seed import warehouse_connection

    for name, value in api.connection_env("gooten_default").items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("AIRFLOW_CONN_GOOTEN_WAREHOUSE", json.dumps(warehouse_connection(warehouse)))
    monkeypatch.setenv("AIRFLOW_VAR_GOOTEN_RESULTS_ROOT", (warehouse.parent / "results").as_uri())


def xcom_values(dag_id: str, run_id: str) -> dict[tuple[str, str, int], Any]:
    """Every XCom of a run, deserialized: ``{(task_id, key, map_index): value}``."""
    from tests.integration.dag_runs import run_xcoms

    return run_xcoms(dag_id, run_id)


def task_states(dag_run: Any) -> dict[str, str]:
    """``{task_id: state}`` of a finished DagRun (mapped tasks: the state of each map index, joined)."""
    from tests.integration import dag_runs

    states: dict[str, list[str]] = {}
    for (task_id, _), state in sorted(dag_runs.task_states(dag_run).items()):
        states.setdefault(task_id, []).append(state)
    return {task_id: ",".join(values) for task_id, values in states.items()}


def audit_rows(warehouse: Path, run_id: str | None = None) -> list[dict[str, Any]]:
    """Rows of ``gooten_status_audit`` (optionally of one run), as dicts, by order id."""
    connection = sqlite3.connect(warehouse)
    connection.row_factory = sqlite3.Row
    try:
        exists = connection.execute(
            "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'gooten_status_audit'"
        ).fetchone()
        if not exists:
            return []
        sql = "SELECT * FROM gooten_status_audit"
        params: Sequence[str] = ()
        if run_id is not None:
            sql += " WHERE run_id = ?"
            params = (run_id,)
        return [dict(row) for row in connection.execute(sql + " ORDER BY order_id", params)]
    finally:
        connection.close()
