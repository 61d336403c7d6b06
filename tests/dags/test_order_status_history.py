"""``gooten_order_status_history`` end to end with ``dag.test()``, on asset events as the relay creates them.

``dag.test()`` starts a manual run, which consumes no asset event. :func:`run_on_events` creates the
events in the metadata DB (on the asset ``gooten://orders``, with the ``extra`` the relay posts) and
attaches them to the run as the scheduler would, so the tasks read them through
``triggering_asset_events`` exactly as in a deployed Airflow. ``tests/ui/test_webhook_events.py`` runs
the same DAG in a real Airflow, triggered by the relay.
"""

from __future__ import annotations

import datetime as dt
import sqlite3
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from . import load_dag, set_connections, task_states, xcom_values

pytestmark = pytest.mark.usefixtures("airflow_db")

DAG_ID = "gooten_order_status_history"


def event_extra(order_id: str, statuses: list[str], *, change_id: str | None = None) -> dict[str, Any]:
    """An event's ``extra`` as the relay posts it."""
    return {
        "change_id": change_id or uuid.uuid4().hex,
        "order_id": order_id,
        "nice_id": None,
        "item_statuses": statuses,
        "received_at": dt.datetime.now(dt.UTC).isoformat(),
    }


def run_on_events(monkeypatch: pytest.MonkeyPatch, extras: list[dict[str, Any]]) -> Any:
    """Run the DAG with ``dag.test()``, its run consuming one asset event per ``extras`` entry."""
    from airflow.models.asset import AssetEvent, AssetModel
    from sqlalchemy import select

    from gooten_provider.assets import gooten_orders_asset

    # The class whose create_dagrun() dag.test() calls: it moved in 3.1 and again in 3.2.
    try:
        from airflow.serialization.definitions.dag import SerializedDAG as RunCreator  # 3.2+
    except ImportError:
        from airflow.serialization.serialized_objects import SerializedDAG as RunCreator

        if not hasattr(RunCreator, "create_dagrun"):  # 3.0: core's DAG creates the run
            from airflow.models.dag import DAG as RunCreator

    create_dagrun = RunCreator.create_dagrun

    def create_dagrun_with_events(self: Any, *args: Any, session: Any, **kwargs: Any) -> Any:
        dag_run = create_dagrun(self, *args, session=session, **kwargs)
        asset = session.scalar(select(AssetModel).where(AssetModel.uri == "gooten://orders"))
        if asset is None:  # Airflow 3.0's dag.test() does not store the DAG's assets
            asset = AssetModel(name=gooten_orders_asset.name, uri=gooten_orders_asset.uri)
            session.add(asset)
            session.flush()
        events = [AssetEvent(asset_id=asset.id, extra=dict(extra, from_rest_api=True)) for extra in extras]
        session.add_all(events)
        dag_run.consumed_asset_events.extend(events)
        session.commit()
        return dag_run

    with monkeypatch.context() as patch:
        patch.setattr(RunCreator, "create_dagrun", create_dagrun_with_events)
        return load_dag(DAG_ID).test()


def history(warehouse: Path) -> list[dict[str, Any]]:
    """The rows of ``gooten_order_status_history``, oldest first."""
    connection = sqlite3.connect(warehouse)
    connection.row_factory = sqlite3.Row
    try:
        return [
            dict(row)
            for row in connection.execute("SELECT * FROM gooten_order_status_history ORDER BY rowid")
        ]
    finally:
        connection.close()


@pytest.fixture
def world(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[tuple[Any, Path]]:
    from gooten_examples.seed import build_sqlite_warehouse

    from gooten_provider.testing import GootenApiServer

    warehouse = build_sqlite_warehouse(tmp_path / "warehouse.db", [])
    with GootenApiServer() as api:
        set_connections(monkeypatch, api, warehouse)
        yield api, warehouse


def test_is_scheduled_on_the_gooten_orders_asset() -> None:
    from gooten_provider.assets import gooten_orders_asset

    dag = load_dag(DAG_ID)
    assert list(dag.timetable.asset_condition.objects) == [gooten_orders_asset]
    assert gooten_orders_asset.uri == "gooten://orders"


def test_reads_every_event_rereads_each_order_and_flags_issues(world: Any, monkeypatch: Any) -> None:
    api, warehouse = world
    issue = api.add_order(statuses=["New", "New"])["Id"]
    shipped = api.add_order(statuses=["InProduction"])["Id"]
    api.set_item_statuses(issue, ["AddressIssue", "New"])
    api.set_item_statuses(shipped, "Shipped")
    repeated = event_extra(issue, ["AddressIssue", "New"])
    extras = [
        event_extra(issue, ["New", "New"]),
        repeated,
        dict(repeated),  # the same change delivered twice
        event_extra(shipped, ["InProduction"]),  # older than Gooten's state: Gooten's word wins
    ]

    dag_run = run_on_events(monkeypatch, extras)

    assert dag_run.state == "success", task_states(dag_run)
    xcoms = xcom_values(DAG_ID, dag_run.run_id)
    changes = {c["order_id"]: c["events"] for c in xcoms[("changed_orders", "return_value", -1)]}
    assert changes == {issue: 2, shipped: 1}
    assert xcoms[("record_history", "return_value", -1)] == {"recorded": 2, "moved_into_issue": [issue]}
    rows = {row["order_id"]: row for row in history(warehouse)}
    assert {oid: (r["item_statuses"], r["moved_into_issue"], r["events"]) for oid, r in rows.items()} == {
        issue: ("AddressIssue,New", 1, 2),
        shipped: ("Shipped", 0, 1),
    }
    assert rows[issue]["issue_statuses"] == "AddressIssue"
    assert rows[shipped]["webhook_statuses"] == "InProduction"
    assert rows[issue]["nice_id"] == api.order(issue)["NiceId"]
    assert {row["run_id"] for row in rows.values()} == {dag_run.run_id}
    # orders were only read, each once, without the billing key (Airflow does not order the events)
    assert sorted((e.method, e.order_id, e.key_check) for e in api.journal) == sorted(
        [("GET", issue, "not_required"), ("GET", shipped, "not_required")]
    )


def test_flags_an_order_only_when_it_moves_into_an_issue(world: Any, monkeypatch: Any) -> None:
    api, warehouse = world
    order_id = api.add_order(statuses="New")["Id"]
    api.set_item_statuses(order_id, "AddressIssue")
    assert run_on_events(monkeypatch, [event_extra(order_id, ["AddressIssue"])]).state == "success"
    assert run_on_events(monkeypatch, [event_extra(order_id, ["AddressIssue"])]).state == "success"
    api.set_item_statuses(order_id, "ImageIssue")
    assert run_on_events(monkeypatch, [event_extra(order_id, ["ImageIssue"])]).state == "success"
    api.set_item_statuses(order_id, "Shipped")
    assert run_on_events(monkeypatch, [event_extra(order_id, ["Shipped"])]).state == "success"

    rows = history(warehouse)
    assert [(r["previous_statuses"], r["item_statuses"], r["moved_into_issue"]) for r in rows] == [
        (None, "AddressIssue", 1),
        ("AddressIssue", "AddressIssue", 0),
        ("AddressIssue", "ImageIssue", 1),
        ("ImageIssue", "Shipped", 0),
    ]


def test_an_order_gooten_does_not_know_fails_the_run_after_recording_the_others(
    world: Any, monkeypatch: Any
) -> None:
    api, warehouse = world
    known = api.add_order(statuses="Shipped")["Id"]
    unknown = "999-00000000-0000-0000-0000-000000000000"

    dag_run = run_on_events(monkeypatch, [event_extra(unknown, ["New"]), event_extra(known, ["Shipped"])])

    assert dag_run.state == "failed"
    assert task_states(dag_run)["record_history"] == "failed"
    assert [row["order_id"] for row in history(warehouse)] == [known]


def test_a_run_by_hand_records_the_orders_of_the_form(world: Any) -> None:
    api, warehouse = world
    order_id = api.add_order(statuses="Pending")["Id"]

    dag_run = load_dag(DAG_ID).test(run_conf={"order_ids": [order_id]})

    assert dag_run.state == "success", task_states(dag_run)
    [row] = history(warehouse)
    assert (row["order_id"], row["item_statuses"], row["events"], row["webhook_statuses"]) == (
        order_id,
        "Pending",
        0,
        None,
    )
