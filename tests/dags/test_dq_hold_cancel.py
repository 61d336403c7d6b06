"""``gooten_dq_hold_cancel`` with ``dag.test()``: fresh SQLite warehouse, the local Gooten API."""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from gooten_provider.operators.order_results import read_order_results
from gooten_provider.testing.order_cancel import cancellation_counts, cancellations

from . import audit_rows, load_dag, set_connections, task_states, xcom_values

pytestmark = pytest.mark.usefixtures("airflow_db")

DAG_ID = "gooten_dq_hold_cancel"
RULE_NAMES = (
    "invalid_shipping_address",
    "bad_image_url",
    "price_mismatch",
    "duplicate_submission",
    "flagged_test_or_fraud",
)

# label -> (rules hit, action, outcome, Gooten status after the run)
EXPECTED = {
    "missing-postal-code": ("invalid_shipping_address", "Hold", "updated", "Hold"),
    "http-image": ("bad_image_url", "Hold", "updated", "Hold"),
    "missing-image": ("bad_image_url", "Hold", "updated", "Hold"),
    "total-mismatch": ("price_mismatch", "Hold", "updated", "Hold"),
    "already-held": ("invalid_shipping_address", "Hold", "unchanged", "Hold"),
    "double-submission": ("duplicate_submission", "Cancelled", "updated", "Cancelled"),
    "test-order": ("flagged_test_or_fraud", "Cancelled", "updated", "Cancelled"),
    "fraud-bad-address": (
        "invalid_shipping_address, flagged_test_or_fraud",
        "Cancelled",
        "updated",
        "Cancelled",
    ),
    "fraud-in-production": ("flagged_test_or_fraud", "Cancelled", "ineligible", "InProduction"),
    # held by an earlier run, now flagged: only an item cancellation can cancel it
    "held-then-fraud": ("flagged_test_or_fraud", "Cancelled", "updated", "Cancelled"),
}
UNTOUCHED = {
    "clean": "New",
    "repeat-order": "New",
    "first-submission": "New",
    "customer-cancelled": "New",
    "cancel-too-late": "Shipped",
    "held-on-purpose": "Hold",
}


@dataclasses.dataclass
class World:
    """The local Gooten API and the warehouse of one test, with the demo orders by label."""

    api: Any
    warehouse: Path
    ids: dict[str, str]

    def status(self, label: str) -> str:
        statuses = set(self.api.item_statuses(self.ids[label]))
        assert len(statuses) == 1, statuses
        return statuses.pop()


def item_ids(api: Any, order_id: str) -> list[int]:
    return [item["Images"][0]["OrderItemId"] for item in api.order(order_id)["Items"]]


def held_then_fraud() -> Any:
    """An order Gooten holds already (an earlier run held it) that the fraud rule flags now."""
    from gooten_examples.seed import GOOD_ADDRESS, SeedItem, SeedOrder, safe_id

    item = SeedItem("CanvsWrp-BlkWrp-12x12", 1, 24.50, "https://images.example.com/eve.png")
    return SeedOrder(
        order_id=safe_id(3901, "held-then-fraud"),
        source_id="held-then-fraud",
        customer_id="cust-eve",
        items=(item, item),
        address=GOOD_ADDRESS,
        created_minutes_ago=110,
        flagged_fraud=True,
        gooten_statuses=("Hold", "Hold"),
    )


def make_world(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, orders: list[Any] | None = None, **build: Any
) -> Iterator[World]:
    from gooten_examples.seed import build_sqlite_warehouse, demo_orders, gooten_order_specs

    from gooten_provider.testing import GootenApiServer

    orders = [*demo_orders(), held_then_fraud()] if orders is None else orders
    warehouse = build_sqlite_warehouse(tmp_path / "warehouse.db", orders, **build)
    with GootenApiServer(orders=gooten_order_specs(orders)) as api:
        set_connections(monkeypatch, api, warehouse)
        yield World(api, warehouse, {order.source_id: order.order_id for order in orders})


@pytest.fixture
def world(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[World]:
    yield from make_world(monkeypatch, tmp_path)


def test_holds_and_cancels_the_failing_orders_and_audits_every_outcome(world: World) -> None:
    dag_run = load_dag(DAG_ID).test()

    assert dag_run.state == "success", task_states(dag_run)
    for label, (_, _, _, status) in EXPECTED.items():
        assert world.status(label) == status, label
    for label, status in UNTOUCHED.items():
        assert world.status(label) == status, label
    # Only the orders that changed were written to; ineligible and unchanged ones were only read.
    held = {entry.order_id for entry in world.api.writes()}
    cancelled = {entry.order_id for entry in cancellations(world.api.journal)}
    changed = {label for label, expected in EXPECTED.items() if expected[2] == "updated"}
    assert held == {world.ids[label] for label in changed if EXPECTED[label][1] == "Hold"}
    assert cancelled == {world.ids[label] for label in changed if EXPECTED[label][1] == "Cancelled"}
    # every item of each order cancelled, each once
    assert cancellation_counts(world.api.journal) == {
        item: 1 for order_id in cancelled for item in item_ids(world.api, order_id)
    }

    rows = {row["order_id"]: row for row in audit_rows(world.warehouse, dag_run.run_id)}
    assert set(rows) == {world.ids[label] for label in EXPECTED}
    for label, (rules, action, outcome, status) in EXPECTED.items():
        row = rows[world.ids[label]]
        assert (row["rules"], row["action"], row["outcome"], row["new_status"]) == (
            rules,
            action,
            outcome,
            status,
        ), label
        assert row["dag_id"] == DAG_ID
        assert row["recorded_at"]
    assert rows[world.ids["fraud-in-production"]]["previous_status"] == "InProduction"
    assert "InProduction" in rows[world.ids["fraud-in-production"]]["detail"]
    assert rows[world.ids["missing-postal-code"]]["previous_status"] == "New"
    assert rows[world.ids["missing-postal-code"]]["detail"] == "postal code is missing"
    assert (
        "same customer and items as order " + world.ids["first-submission"]
        in (rows[world.ids["double-submission"]]["detail"])
    )

    xcoms = xcom_values(DAG_ID, dag_run.run_id)
    decided = xcoms[("decide", "return_value", -1)]
    assert decided["cancel"] == sorted(
        world.ids[label] for label, e in EXPECTED.items() if e[1] == "Cancelled"
    )
    assert decided["hold"] == sorted(world.ids[label] for label, e in EXPECTED.items() if e[1] == "Hold")
    hold_summary = xcoms[("hold_orders", "return_value", -1)]
    assert hold_summary["results_path"].startswith((world.warehouse.parent / "results").as_uri())
    assert hold_summary["results_path"].endswith(f"/{DAG_ID}/{dag_run.run_id}/hold_orders")
    held = {r["order_id"]: r["outcome"] for r in read_order_results(hold_summary)}
    assert held == {world.ids[label]: e[2] for label, e in EXPECTED.items() if e[1] == "Hold"}
    cancelled = {
        r["order_id"]: r["outcome"] for r in read_order_results(xcoms[("cancel_orders", "return_value", -1)])
    }
    assert cancelled == {world.ids[label]: e[2] for label, e in EXPECTED.items() if e[1] == "Cancelled"}
    assert xcoms[("audit_outcomes", "return_value", -1)] == {
        "Cancelled ineligible": 1,
        "Cancelled updated": 4,
        "Hold unchanged": 1,
        "Hold updated": 4,
    }


def test_dry_run_changes_nothing_but_audits_what_would_happen(world: World) -> None:
    dag_run = load_dag(DAG_ID).test(run_conf={"dry_run": True})

    assert dag_run.state == "success", task_states(dag_run)
    assert world.api.writes() == [] and cancellations(world.api.journal) == []
    initial = {"fraud-in-production": "InProduction", "already-held": "Hold", "held-then-fraud": "Hold"}
    for label in EXPECTED:
        assert world.status(label) == initial.get(label, "New"), label
    rows = {row["order_id"]: row for row in audit_rows(world.warehouse, dag_run.run_id)}
    assert {row["outcome"] for row in rows.values()} == {"dry_run"}
    assert rows[world.ids["http-image"]]["detail"].endswith("dry run: would be updated")
    assert rows[world.ids["fraud-in-production"]]["detail"].startswith("flagged as suspected fraud")
    assert "would be ineligible" in rows[world.ids["fraud-in-production"]]["detail"]
    assert rows[world.ids["http-image"]]["new_status"] == "New"


def _stale(orders: list[Any]) -> list[Any]:
    return [dataclasses.replace(order, loaded_minutes_ago=3 * 24 * 60) for order in orders]


def _duplicate_id(orders: list[Any]) -> list[Any]:
    return [*orders, dataclasses.replace(orders[3], source_id="reloaded-twice")]


@pytest.mark.parametrize(
    ("broken", "failing_task"),
    [
        pytest.param(_stale, "table_checks.orders_batch", id="batch-not-fresh"),
        pytest.param(_duplicate_id, "table_checks.order_columns", id="order-id-not-unique"),
        pytest.param(lambda orders: [], "table_checks.orders_batch", id="batch-empty"),
    ],
)
def test_failed_table_check_fails_the_run_and_touches_no_order(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, broken: Any, failing_task: str
) -> None:
    from gooten_examples.seed import demo_orders

    orders = demo_orders()
    warehouse_orders = broken(orders)
    from gooten_examples.seed import build_sqlite_warehouse, gooten_order_specs

    from gooten_provider.testing import GootenApiServer

    warehouse = build_sqlite_warehouse(tmp_path / "warehouse.db", warehouse_orders)
    with GootenApiServer(orders=gooten_order_specs(orders)) as api:
        set_connections(monkeypatch, api, warehouse)
        dag_run = load_dag(DAG_ID).test()

        states = task_states(dag_run)
        assert dag_run.state == "failed"
        assert states[failing_task] == "failed"
        assert all(states[f"row_rules.{name}"] == "upstream_failed" for name in RULE_NAMES)
        assert states["decide"] == "upstream_failed"
        assert states["hold_orders"] == states["cancel_orders"] == "upstream_failed"
        assert states["audit_outcomes"] == "failed"  # runs anyway (all_done), says nothing was decided
        assert api.writes() == []
        assert [entry for entry in api.journal if entry.order_id] == []
        assert audit_rows(warehouse) == []


def test_a_failed_change_is_audited_and_fails_the_run(world: World) -> None:
    broken = world.ids["http-image"]
    world.api.inject_faults(broken, *["html"] * 10, method="POST")

    dag_run = load_dag(DAG_ID).test()

    states = task_states(dag_run)
    assert dag_run.state == "failed"
    assert states["hold_orders"] == "failed"
    assert states["cancel_orders"] == "success"
    assert states["audit_outcomes"] == "failed"  # after writing every row
    rows = {row["order_id"]: row for row in audit_rows(world.warehouse, dag_run.run_id)}
    assert set(rows) == {world.ids[label] for label in EXPECTED}
    assert rows[broken]["outcome"] == "unknown"  # HTML answers to a write: it may or may not have landed
    assert rows[broken]["new_status"] is None
    assert rows[world.ids["missing-postal-code"]]["outcome"] == "updated"
    assert world.status("missing-postal-code") == "Hold"
    assert world.status("test-order") == "Cancelled"


def test_batch_window_leaves_older_orders_alone(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from gooten_examples.seed import demo_orders

    orders = demo_orders()
    old = {"missing-postal-code", "test-order"}
    orders = [
        dataclasses.replace(o, loaded_minutes_ago=30 * 60, created_minutes_ago=31 * 60)
        if o.source_id in old
        else o
        for o in orders
    ]
    for world in make_world(monkeypatch, tmp_path, orders, now=dt.datetime.now(dt.UTC)):
        dag_run = load_dag(DAG_ID).test()

        assert dag_run.state == "success", task_states(dag_run)
        assert world.status("missing-postal-code") == "New"
        assert world.status("test-order") == "New"
        assert world.status("http-image") == "Hold"
        audited = {row["order_id"] for row in audit_rows(world.warehouse)}
        assert world.ids["missing-postal-code"] not in audited
        assert world.ids["http-image"] in audited


@pytest.mark.parametrize(
    ("labels", "expected"),
    [
        pytest.param({"clean", "test-order"}, {"Cancelled updated": 1}, id="only-cancels"),
        pytest.param({"clean", "repeat-order"}, {}, id="clean-batch"),
    ],
)
def test_audit_runs_when_a_status_task_has_nothing_to_do(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, labels: set[str], expected: dict[str, int]
) -> None:
    from gooten_examples.seed import demo_orders

    orders = [order for order in demo_orders() if order.source_id in labels]
    for world in make_world(monkeypatch, tmp_path, orders):
        dag_run = load_dag(DAG_ID).test()

        states = task_states(dag_run)
        assert dag_run.state == "success", states
        assert states["hold_orders"] == "skipped"
        assert states["cancel_orders"] == ("success" if expected else "skipped")
        assert states["audit_outcomes"] == "success"
        assert xcom_values(DAG_ID, dag_run.run_id)[("audit_outcomes", "return_value", -1)] == expected
        assert len(audit_rows(world.warehouse)) == sum(expected.values())


def test_a_broken_gooten_connection_fails_the_run_and_every_decided_order_is_audited(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AIRFLOW_CONN_GOOTEN_DEFAULT", '{"conn_type": "gooten", "login": "recipe"}')  # no key

    dag_run = load_dag(DAG_ID).test()

    states = task_states(dag_run)
    assert dag_run.state == "failed"
    assert states["hold_orders"] == states["cancel_orders"] == "failed"
    assert states["audit_outcomes"] == "failed"
    assert world.api.journal == []
    rows = audit_rows(world.warehouse, dag_run.run_id)
    assert {row["order_id"] for row in rows} == {world.ids[label] for label in EXPECTED}
    assert {row["outcome"] for row in rows} <= {"failed", "not_attempted"}
