"""End to end in the stack of ``make airflow``: webhook -> relay -> asset event -> DAG run -> warehouse row.

An order is moved in the local Gooten API (its admin route plays Gooten's production); the local API sends
Gooten's webhooks to the relay (one per item changed: two identical ones here); the relay stores the
change and creates one event on ``gooten://orders`` through Airflow's REST API; the scheduler runs
``gooten_order_status_history`` on it, which re-reads the order and appends a row to the warehouse. No
browser is needed; the test runs with the browser tests because they share the stack (``make test-ui``).
How long the whole path takes is measured by ``python -m bench.run webhooks`` (``docs/performance.md``).
"""

from __future__ import annotations

import json
import sqlite3
import time
from pathlib import Path
from typing import Any
from urllib.parse import quote

import requests

from .conftest import RUN_TIMEOUT, AirflowStack, demo_order_id

HISTORY_DAG_ID = "gooten_order_status_history"
EXTRA_KEYS = {"change_id", "order_id", "nice_id", "item_statuses", "received_at", "from_rest_api"}


def history_row(warehouse: Path, order_id: str) -> dict[str, Any] | None:
    """The newest row of ``gooten_order_status_history`` for an order, if the table and a row exist."""
    connection = sqlite3.connect(warehouse)
    connection.row_factory = sqlite3.Row
    try:
        row = connection.execute(
            "SELECT * FROM gooten_order_status_history WHERE order_id = ? ORDER BY recorded_at DESC LIMIT 1",
            (order_id,),
        ).fetchone()
    except sqlite3.OperationalError:  # no table yet: no run has finished
        return None
    finally:
        connection.close()
    return dict(row) if row else None


def test_an_order_moved_in_gooten_is_recorded_by_a_run_on_its_asset_event(
    airflow_stack: AirflowStack,
) -> None:
    stack = airflow_stack
    assert stack.warehouse is not None and stack.relay_url
    stack.wait_for_dag(HISTORY_DAG_ID)
    order_id = demo_order_id("first-submission")  # two items, New; no other test or DAG moves it

    started = time.monotonic()
    moved = requests.post(
        f"{stack.gooten_api_url}/admin/orders/{quote(order_id, safe='')}/status",
        params={"status": "AddressIssue"},
        timeout=30,
    )
    assert moved.status_code == 200, moved.text
    deadline = time.monotonic() + RUN_TIMEOUT
    while (row := history_row(stack.warehouse, order_id)) is None:
        assert time.monotonic() < deadline, f"no history row after {RUN_TIMEOUT:.0f} s\n{stack.log_tails()}"
        time.sleep(0.5)
    run = stack.wait_for_run(HISTORY_DAG_ID, row["run_id"])
    print(f"\n[ui] order moved -> {HISTORY_DAG_ID} run {run['state']} in {time.monotonic() - started:.1f} s")

    assert run["state"] == "success"
    assert run["run_type"] == "asset_triggered"
    assert (row["item_statuses"], row["issue_statuses"], row["moved_into_issue"]) == (
        "AddressIssue,AddressIssue",
        "AddressIssue",
        1,
    )
    # two identical webhooks (two items changed), one event, consumed by that run
    reply = stack.api("GET", "/api/v2/assets/events", params={"order_by": "-timestamp", "limit": 100})
    assert reply.status_code == 200, reply.text
    events = [e for e in reply.json()["asset_events"] if e["extra"].get("order_id") == order_id]
    assert len(events) == 1, events
    [event] = events
    assert event["uri"] == "gooten://orders"
    assert set(event["extra"]) == EXTRA_KEYS
    assert event["extra"]["item_statuses"] == ["AddressIssue", "AddressIssue"]
    assert row["run_id"] in [dag_run["run_id"] for dag_run in event["created_dagruns"]]
    # nothing of the order's address reached Airflow
    shown = json.dumps(event)
    assert not [value for value in ("Lovelace", "Analytical Way", "Springfield") if value in shown]
    # and the relay says it has nothing left to deliver
    assert requests.get(f"{stack.relay_url}/healthz", timeout=10).json()["pending"] == 0
