"""``gooten_reconcile_order_statuses`` end to end with ``dag.test()``."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from . import audit_rows, load_dag, set_connections, task_states, xcom_values

pytestmark = pytest.mark.usefixtures("airflow_db")

DAG_ID = "gooten_reconcile_order_statuses"

# label -> (intended status in the warehouse, Gooten item statuses before)
PLAN: dict[str, tuple[str | None, tuple[str, ...]]] = {
    "wants-cancel": ("Cancelled", ("New",)),
    "wants-hold": ("Hold", ("Pending", "Pending")),
    "wants-test-lowercase": ("test", ("AddressIssue",)),
    "shipped-too-late": ("Cancelled", ("Shipped",)),
    "in-sync": ("Hold", ("Hold",)),
    "held-wants-new": ("New", ("Hold",)),
    "bogus-intent": ("Shipped", ("New",)),
    "no-intent": (None, ("New",)),
}


def _orders(plan: dict[str, tuple[str | None, tuple[str, ...]]]) -> list[Any]:
    from gooten_examples.seed import GOOD_ADDRESS, SeedItem, SeedOrder, safe_id

    item = SeedItem("Mug-11oz-White", 1, 12.5, "https://images.example.com/a.png")
    return [
        SeedOrder(
            order_id=safe_id(4001 + n, f"reconcile-{label}"),
            source_id=label,
            customer_id=f"cust-{n}",
            items=(item,) * len(statuses),
            address=GOOD_ADDRESS,
            created_minutes_ago=60,
            intended_gooten_status=intended,
            gooten_statuses=statuses,
        )
        for n, (label, (intended, statuses)) in enumerate(plan.items())
    ]


@pytest.fixture
def world(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[tuple[Any, Path, dict[str, str]]]:
    from gooten_examples.seed import build_sqlite_warehouse, gooten_order_specs

    from gooten_provider.testing import GootenApiServer

    orders = _orders(PLAN)
    warehouse = build_sqlite_warehouse(tmp_path / "warehouse.db", orders)
    with GootenApiServer(orders=gooten_order_specs(orders)) as api:
        set_connections(monkeypatch, api, warehouse)
        yield api, warehouse, {order.source_id: order.order_id for order in orders}


def test_schedule_is_hourly_or_on_warehouse_updates() -> None:
    from gooten_reconcile_order_statuses import AssetOrTimeSchedule  # the DAG's own, from any Airflow 3

    dag = load_dag(DAG_ID)
    assert isinstance(dag.timetable, AssetOrTimeSchedule)
    cron = dag.timetable.timetable  # the Task SDK's (3.2+) names its expression, core's (3.0, 3.1) sums it up
    assert (getattr(cron, "expression", None) or cron.summary) == "0 * * * *"
    assert dag.timetable.asset_condition.name == "gooten_warehouse_orders"


def test_changes_what_is_allowed_and_reports_the_rest_without_failing(world: Any) -> None:
    api, warehouse, ids = world

    dag_run = load_dag(DAG_ID).test()

    assert dag_run.state == "success", task_states(dag_run)
    after = {label: api.item_statuses(ids[label]) for label in PLAN}
    assert after == {
        "wants-cancel": ["Cancelled"],
        "wants-hold": ["Hold", "Hold"],
        "wants-test-lowercase": ["Test"],
        "shipped-too-late": ["Shipped"],
        "in-sync": ["Hold"],
        "held-wants-new": ["Hold"],
        "bogus-intent": ["New"],
        "no-intent": ["New"],
    }
    assert {e.order_id for e in api.writes()} == {
        ids["wants-cancel"],
        ids["wants-hold"],
        ids["wants-test-lowercase"],
    }
    assert ids["no-intent"] not in {e.order_id for e in api.journal}

    xcoms = xcom_values(DAG_ID, dag_run.run_id)
    verdicts = {row["order_id"]: row["verdict"] for row in xcoms[("compare_with_gooten", "return_value", -1)]}
    assert verdicts == {
        ids["wants-cancel"]: "to_change",
        ids["wants-hold"]: "to_change",
        ids["wants-test-lowercase"]: "to_change",
        ids["shipped-too-late"]: "cannot_change",
        ids["in-sync"]: "in_sync",
        ids["held-wants-new"]: "cannot_change",
        ids["bogus-intent"]: "invalid_intent",
    }
    mapped = {key: value for key, value in xcoms.items() if key[:2] == ("apply_changes", "return_value")}
    assert len(mapped) == 3  # one mapped task per target status: Cancelled, Hold, Test
    outcomes = {r["order_id"]: (r["status"], r["outcome"]) for batch in mapped.values() for r in batch}
    assert outcomes == {
        ids["wants-cancel"]: ("Cancelled", "updated"),
        ids["wants-hold"]: ("Hold", "updated"),
        ids["wants-test-lowercase"]: ("Test", "updated"),
    }
    assert xcoms[("report", "return_value", -1)] == {"in_sync": 1, "ineligible": 3, "updated": 3}

    rows = {row["order_id"]: row for row in audit_rows(warehouse, dag_run.run_id)}
    assert {
        oid: (r["action"], r["previous_status"], r["new_status"], r["outcome"]) for oid, r in rows.items()
    } == {
        ids["wants-cancel"]: ("Cancelled", "New", "Cancelled", "updated"),
        ids["wants-hold"]: ("Hold", "Pending", "Hold", "updated"),
        ids["wants-test-lowercase"]: ("Test", "AddressIssue", "Test", "updated"),
        ids["shipped-too-late"]: ("Cancelled", "Shipped", "Shipped", "ineligible"),
        ids["held-wants-new"]: ("New", "Hold", "Hold", "ineligible"),
        ids["bogus-intent"]: ("Shipped", "New", "New", "ineligible"),
    }
    assert {row["rules"] for row in rows.values()} == {"intended_gooten_status"}
    assert "Gooten support" in rows[ids["held-wants-new"]]["detail"]


def test_a_second_run_finds_everything_in_sync(world: Any) -> None:
    api, _, _ = world
    assert load_dag(DAG_ID).test().state == "success"
    writes = len(api.writes())

    dag_run = load_dag(DAG_ID).test()

    assert dag_run.state == "success"
    assert len(api.writes()) == writes
    assert task_states(dag_run)["apply_changes"] == "skipped"
    assert xcom_values(DAG_ID, dag_run.run_id)[("report", "return_value", -1)] == {
        "in_sync": 4,
        "ineligible": 3,
    }


def test_an_order_gooten_does_not_know_fails_the_run_after_the_others_are_done(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from gooten_examples.seed import build_sqlite_warehouse, gooten_order_specs

    from gooten_provider.testing import GootenApiServer

    orders = _orders({"wants-cancel": ("Cancelled", ("New",)), "unknown": ("Hold", ("New",))})
    warehouse = build_sqlite_warehouse(tmp_path / "warehouse.db", orders)
    with GootenApiServer(orders=gooten_order_specs(orders[:1])) as api:
        set_connections(monkeypatch, api, warehouse)
        dag_run = load_dag(DAG_ID).test()

        assert dag_run.state == "failed"
        assert task_states(dag_run)["report"] == "failed"
        assert api.item_statuses(orders[0].order_id) == ["Cancelled"]
        rows = {row["order_id"]: row for row in audit_rows(warehouse, dag_run.run_id)}
        assert rows[orders[0].order_id]["outcome"] == "updated"
        assert rows[orders[1].order_id]["outcome"] == "failed"
        assert "could not read the order" in rows[orders[1].order_id]["detail"]
