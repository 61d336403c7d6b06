"""The example DAGs' support code (``dags/gooten_examples``): rules, audit rows, reconcile verdicts."""

from __future__ import annotations

import datetime as dt
import sqlite3
from pathlib import Path
from typing import Any

import pytest
from gooten_examples.audit import audit_record, format_table, missing_results, status_text
from gooten_examples.params import order_ids_param
from gooten_examples.reconcile import change_batches, classify
from gooten_examples.rules import RULES, decide_actions, seconds_between_sql
from gooten_examples.seed import build_sqlite_warehouse, demo_orders, gooten_order_specs
from gooten_examples.warehouse import batch_start, sql_timestamp

from . import DAGS_FOLDER


def test_cancel_wins_over_hold_and_each_order_gets_one_action() -> None:
    actions = decide_actions(
        {
            "invalid_shipping_address": [("b", "city is missing"), ("a", "postal code is missing")],
            "bad_image_url": [("a", "item 1 has no image URL"), ("a", "item 2 has no image URL")],
            "flagged_test_or_fraud": [("b", "flagged as suspected fraud")],
            "duplicate_submission": None,
        }
    )
    assert actions["hold"] == ["a"]
    assert actions["cancel"] == ["b"]
    assert [hit["rule"] for hit in actions["findings"]["a"]] == [
        "invalid_shipping_address",
        "bad_image_url",
        "bad_image_url",
    ]
    assert {hit["action"] for hit in actions["findings"]["b"]} == {"Hold", "Cancelled"}


def test_decide_rejects_unknown_rules_and_malformed_rows() -> None:
    with pytest.raises(ValueError, match="Unknown rule"):
        decide_actions({"no_such_rule": []})
    with pytest.raises(ValueError, match="order_id, reason"):
        decide_actions({"price_mismatch": [("only-an-id",)]})


def test_the_order_ids_field_refuses_empty_ids_and_an_empty_list_unless_optional() -> None:
    def refused(param: Any, value: Any) -> bool:
        return param.resolve(value, suppress_exception=True) is None  # None: the form says what is wrong

    required, optional = order_ids_param(), order_ids_param("On events: none needed.", required=False)
    assert required.resolve(["115557-b5c97bb2", "115558-c6d08cc3"]) == ["115557-b5c97bb2", "115558-c6d08cc3"]
    assert refused(required, [])
    assert refused(required, ["115557-b5c97bb2", ""])
    assert refused(required, "115557-b5c97bb2")  # one id is a list of one
    assert optional.resolve([]) == []
    assert refused(optional, [""])
    assert optional.description == "On events: none needed."
    assert required.description == "Gooten order ids (Safe IDs), one per line."


def test_every_rule_has_its_sql_file() -> None:
    for rule in RULES:
        sql = (DAGS_FOLDER / rule.sql_path).read_text()
        assert "order_id" in sql and "reason" in sql, rule.name
        assert "batch_start(dag_run.run_after, params.batch_hours)" in sql, rule.name


def test_seconds_between_is_written_per_dialect() -> None:
    assert "julianday" in seconds_between_sql("a", "b", "sqlite")
    assert seconds_between_sql("a", "b", "postgres") == "EXTRACT(EPOCH FROM (b - a))"
    with pytest.raises(ValueError, match="add one"):
        seconds_between_sql("a", "b", "oracle")


def test_batch_start_is_a_utc_sql_timestamp_and_checks_its_input() -> None:
    run_after = dt.datetime(2025, 3, 1, 12, 30, tzinfo=dt.timezone(dt.timedelta(hours=2)))
    assert batch_start(run_after, 24) == "2025-02-28 10:30:00"
    assert sql_timestamp(dt.datetime(2025, 1, 2, 3, 4, 5)) == "2025-01-02 03:04:05"
    for bad in (0, "1; DROP TABLE orders"):
        with pytest.raises(ValueError):
            batch_start(run_after, bad)


@pytest.mark.parametrize(
    ("outcome", "new_status"),
    [("updated", "Hold"), ("unchanged", "Hold"), ("ineligible", "New, Shipped"), ("failed", None)],
)
def test_audit_record_new_status(outcome: str, new_status: str | None) -> None:
    result = {
        "order_id": "1-a",
        "outcome": outcome,
        "previous_statuses": ["New", "Shipped", "New"],
        "status": "Hold",
        "error": "boom" if outcome == "failed" else None,
        "reason": None,
    }
    record = audit_record(result, dag_id="d", run_id="r", rules="x", detail="why")
    assert record["previous_status"] == "New, Shipped"
    assert record["new_status"] == new_status
    assert record["detail"] == ("why; boom" if outcome == "failed" else "why")
    assert format_table([record]).splitlines()[2].startswith("1-a")


def test_orders_a_task_never_reported_on_are_not_attempted() -> None:
    [result] = missing_results(["1-a"], "Cancelled", "cancel_orders")
    assert result["outcome"] == "not_attempted" and "cancel_orders" in result["error"]
    assert status_text([]) is None


@pytest.mark.parametrize(
    ("intended", "statuses", "verdict"),
    [
        ("Cancelled", ["Cancelled", "Cancelled"], "in_sync"),
        ("hold", ["New"], "to_change"),
        ("Cancelled", ["New", "Shipped"], "cannot_change"),
        ("New", ["Hold"], "cannot_change"),
        ("Shipped", ["New"], "invalid_intent"),
    ],
)
def test_reconcile_verdicts(intended: str, statuses: list[str], verdict: str) -> None:
    assert classify(intended, statuses)[0] == verdict


def test_change_batches_group_by_target_status() -> None:
    rows = [
        {"order_id": "1", "intended": "Hold", "verdict": "to_change"},
        {"order_id": "2", "intended": "Cancelled", "verdict": "to_change"},
        {"order_id": "3", "intended": "Hold", "verdict": "to_change"},
        {"order_id": "4", "intended": "Hold", "verdict": "in_sync"},
    ]
    assert change_batches(rows) == [
        {"order_ids": ["2"], "status": "Cancelled"},
        {"order_ids": ["1", "3"], "status": "Hold"},
    ]


def test_seed_writes_the_same_orders_to_the_warehouse_and_the_api(tmp_path: Path) -> None:
    orders = demo_orders()
    warehouse = build_sqlite_warehouse(tmp_path / "w.db", orders)
    specs = {spec["id"]: spec for spec in gooten_order_specs(orders)}
    with sqlite3.connect(warehouse) as connection:
        ids = [row[0] for row in connection.execute("SELECT order_id FROM orders")]
        items = dict(connection.execute("SELECT order_id, COUNT(*) FROM order_items GROUP BY order_id"))
    assert sorted(ids) == sorted(specs) and len(ids) == len(set(ids)) == 15
    assert all(len(specs[oid]["items"]) == items[oid] for oid in ids)
