"""``gooten_orders_export`` end to end with ``dag.test()``: the sweep finds exactly the lost webhooks.

The local Gooten API sends its webhooks to a receiver on loopback and loses some on purpose
(``webhook_drop_rate``). What arrived becomes asset events, which ``gooten_order_status_history`` records
(run with ``dag.test()`` as its own tests do); then ``gooten_orders_export`` exports the window, loads it,
and must report exactly the orders whose last webhook was lost.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.testing.test_local_api_webhooks import Receiver

from . import load_dag, set_connections, task_states, xcom_values
from .test_order_status_history import event_extra, run_on_events

pytestmark = pytest.mark.usefixtures("airflow_db")

DAG_ID = "gooten_orders_export"
WINDOW = {"created_from": "2025-03-01", "created_to": "2025-03-02"}


def rows(warehouse: Path, sql: str) -> list[dict[str, Any]]:
    connection = sqlite3.connect(warehouse)
    connection.row_factory = sqlite3.Row
    try:
        return [dict(row) for row in connection.execute(sql)]
    finally:
        connection.close()


@pytest.fixture
def world(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[tuple[Any, Receiver, Path]]:
    from gooten_examples.seed import build_sqlite_warehouse

    from gooten_provider.testing import GootenApiServer

    receiver = Receiver()
    warehouse = build_sqlite_warehouse(tmp_path / "warehouse.db", [])
    try:
        with GootenApiServer(webhook_url=receiver.url, webhook_drop_rate=0.3, seed=5) as api:
            set_connections(monkeypatch, api, warehouse)
            yield api, receiver, warehouse
    finally:
        receiver.server.shutdown()


def move_and_record(
    api: Any, receiver: Receiver, monkeypatch: Any, order_ids: list[str], status: str
) -> None:
    """Gooten moves the orders; the webhooks that arrive are recorded by ``gooten_order_status_history``."""
    already = len(receiver.received)
    for order_id in order_ids:
        api.set_item_statuses(order_id, status)
    assert api.webhooks.wait_idle(30)
    arrived = receiver.received[already:]
    extras = [
        event_extra(order_id, [str(i["Status"]) for i in body["Items"]]) for _, order_id, body in arrived
    ]
    assert run_on_events(monkeypatch, extras).state == "success"


def test_the_sweep_finds_exactly_the_orders_whose_webhooks_were_lost(world: Any, monkeypatch: Any) -> None:
    api, receiver, warehouse = world
    in_window = [
        api.add_order(statuses="New", CreatedAt=f"2025-03-0{1 + n % 2}T{n % 24:02d}:30:00")["Id"]
        for n in range(40)
    ]
    outside = [api.add_order(statuses="New", CreatedAt="2025-03-05T10:00:00")["Id"] for _ in range(6)]
    move_and_record(api, receiver, monkeypatch, in_window[:32] + outside, "InProduction")
    move_and_record(api, receiver, monkeypatch, in_window[:16] + outside, "Shipped")
    last_webhook = {delivery.order_id: delivery for delivery in api.webhooks.deliveries}
    lost = {order_id for order_id in in_window if order_id in last_webhook and last_webhook[order_id].dropped}
    assert 3 <= len(lost) < 32, "the seed gives a sweep something, not everything, to find"
    assert any(last_webhook[o].dropped for o in outside)

    dag_run = load_dag(DAG_ID).test(run_conf=WINDOW)

    assert dag_run.state == "success", task_states(dag_run)
    summary = xcom_values(DAG_ID, dag_run.run_id)[("find_missed_webhooks", "return_value", -1)]
    assert (summary["orders"], summary["missed"]) == (40, len(lost))
    assert set(summary["missed_order_ids"]) == lost
    missed = rows(warehouse, "SELECT * FROM gooten_missed_webhooks")
    assert {row["order_id"] for row in missed} == lost
    assert all(row["current_statuses"] == ",".join(api.item_statuses(row["order_id"])) for row in missed)
    assert {(row["window_from"], row["window_to"]) for row in missed} == {("2025-03-01", "2025-03-02")}
    loaded = rows(warehouse, "SELECT * FROM gooten_orders ORDER BY created_at")
    assert sorted(row["order_id"] for row in loaded) == sorted(in_window)
    assert all(row["item_statuses"] == ",".join(api.item_statuses(row["order_id"])) for row in loaded)

    again = load_dag(DAG_ID).test(run_conf=WINDOW)  # a rerun of the window replaces, never doubles

    assert again.state == "success", task_states(again)
    assert len(rows(warehouse, "SELECT * FROM gooten_orders")) == 40
    per_run = rows(warehouse, "SELECT run_id, COUNT(*) AS n FROM gooten_missed_webhooks GROUP BY run_id")
    assert sorted(row["n"] for row in per_run) == [len(lost), len(lost)]


def test_a_backwards_window_from_the_trigger_form_fails_before_any_request(world: Any) -> None:
    api, _, warehouse = world
    api.add_order(statuses="New", CreatedAt="2025-03-02T10:00:00")

    dag_run = load_dag(DAG_ID).test(run_conf={"created_from": "2025-03-05", "created_to": "2025-03-01"})

    assert dag_run.state == "failed"
    assert task_states(dag_run)["export_orders"] == "failed"
    assert api.journal == []
    assert rows(warehouse, "SELECT * FROM gooten_orders") == []


def test_the_trigger_form_takes_dates_only() -> None:
    from airflow.sdk import Param

    created_from = load_dag(DAG_ID).params.get_param("created_from")
    Param("2025-03-01", **{k: v for k, v in created_from.schema.items()}).resolve()
    with pytest.raises(Exception, match="does not match"):
        Param("03/01/2025", **{k: v for k, v in created_from.schema.items()}).resolve()
