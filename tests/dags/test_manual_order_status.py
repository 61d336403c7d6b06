"""``gooten_manual_order_status`` end to end with ``dag.test(run_conf=...)``."""

from __future__ import annotations

from typing import Any

import pytest

from gooten_provider.testing.order_cancel import cancellation_counts, cancellations

from . import load_dag, task_states, xcom_values

pytestmark = pytest.mark.usefixtures("airflow_db")

DAG_ID = "gooten_manual_order_status"


def item_ids(api: Any, order_id: str) -> list[int]:
    return [item["Images"][0]["OrderItemId"] for item in api.order(order_id)["Items"]]


def test_trigger_form_params() -> None:
    params = load_dag(DAG_ID).params
    assert params["dry_run"] is True
    schema = {name: params.get_param(name).schema for name in ("order_ids", "status", "reason", "dry_run")}
    assert schema["order_ids"]["type"] == "array" and schema["order_ids"]["minItems"] == 1
    assert schema["status"]["enum"] == ["Hold", "Cancelled", "New", "Test", "CancelItems"]
    assert "cannot be undone" in schema["status"]["values_display"]["Cancelled"]
    assert schema["status"]["values_display"]["CancelItems"].startswith("Cancel the items of held orders")
    assert schema["reason"]["type"] == ["null", "string"]
    assert load_dag(DAG_ID).render_template_as_native_obj is True


def test_holds_the_given_orders_and_shows_each_outcome(gooten_api: Any) -> None:
    new = gooten_api.add_order(statuses=["New", "New"])["Id"]
    shipped = gooten_api.add_order(statuses="Shipped")["Id"]
    held = gooten_api.add_order(statuses="Hold")["Id"]

    dag_run = load_dag(DAG_ID).test(
        run_conf={"order_ids": [new, f" {new} ", held], "status": "Hold", "dry_run": False, "reason": None}
    )

    assert dag_run.state == "success", task_states(dag_run)
    assert gooten_api.item_statuses(new) == ["Hold", "Hold"]
    assert gooten_api.item_statuses(shipped) == ["Shipped"]
    assert [entry.order_id for entry in gooten_api.writes()] == [new]
    xcoms = xcom_values(DAG_ID, dag_run.run_id)
    assert xcoms[("check_request", "order_ids", -1)] == [new, held]
    results = {r["order_id"]: r for r in xcoms[("change_status", "return_value", -1)]}
    assert {oid: r["outcome"] for oid, r in results.items()} == {new: "updated", held: "unchanged"}
    assert results[new]["previous_statuses"] == ["New", "New"]
    assert xcoms[("show_outcomes", "return_value", -1)] == {"unchanged": 1, "updated": 1}
    assert task_states(dag_run)["cancel_items"] == "skipped"
    assert cancellations(gooten_api.journal) == []


def test_cancels_the_items_of_held_orders_and_shows_each_outcome(gooten_api: Any) -> None:
    held = gooten_api.add_order(statuses=["Hold", "Hold"])["Id"]
    partly = gooten_api.add_order(statuses=["Cancelled", "AddressIssue"])["Id"]
    done = gooten_api.add_order(statuses="Cancelled")["Id"]

    dag_run = load_dag(DAG_ID).test(
        run_conf={
            "order_ids": [held, partly, done],
            "status": "CancelItems",
            "dry_run": False,
            "reason": "fraud review",
        }
    )

    states = task_states(dag_run)
    assert dag_run.state == "success", states
    assert (states["change_status"], states["cancel_items"]) == ("skipped", "success")
    assert gooten_api.item_statuses(held) == ["Cancelled", "Cancelled"]
    assert gooten_api.item_statuses(partly) == ["Cancelled", "Cancelled"]
    assert gooten_api.writes() == []  # no status change: item cancellations only
    # each item cancelled once, the one already cancelled not sent again
    assert cancellation_counts(gooten_api.journal) == {
        **dict.fromkeys(item_ids(gooten_api, held), 1),
        item_ids(gooten_api, partly)[1]: 1,
    }
    xcoms = xcom_values(DAG_ID, dag_run.run_id)
    results = {r["order_id"]: r for r in xcoms[("cancel_items", "return_value", -1)]}
    assert {oid: r["outcome"] for oid, r in results.items()} == {
        held: "updated",
        partly: "updated",
        done: "unchanged",
    }
    assert {r["reason"] for r in results.values()} == {"fraud review"}
    assert xcoms[("show_outcomes", "return_value", -1)] == {"unchanged": 1, "updated": 2}


def test_cancelling_items_needs_a_reason_and_fails_on_items_past_cancelling(gooten_api: Any) -> None:
    held = gooten_api.add_order(statuses="Hold")["Id"]
    shipped = gooten_api.add_order(statuses=["Hold", "Shipped"])["Id"]
    conf = {"order_ids": [held, shipped], "status": "CancelItems", "dry_run": False}

    refused = load_dag(DAG_ID).test(run_conf={**conf, "reason": None})
    assert task_states(refused)["check_request"] == "failed"
    assert cancellations(gooten_api.journal) == []

    dag_run = load_dag(DAG_ID).test(run_conf={**conf, "reason": "duplicate"})
    states = task_states(dag_run)
    assert dag_run.state == "failed"
    assert (states["cancel_items"], states["show_outcomes"]) == ("failed", "failed")
    assert gooten_api.item_statuses(held) == ["Cancelled"]
    assert gooten_api.item_statuses(shipped) == ["Hold", "Shipped"]  # all or nothing: none sent
    assert [e.order_id for e in cancellations(gooten_api.journal)] == [held]


def test_dry_run_is_the_default_and_writes_nothing(gooten_api: Any) -> None:
    order = gooten_api.add_order(statuses="New")["Id"]

    dag_run = load_dag(DAG_ID).test(
        run_conf={"order_ids": [order], "status": "Cancelled", "reason": "customer asked"}
    )

    assert dag_run.state == "success", task_states(dag_run)
    assert gooten_api.writes() == []
    assert gooten_api.item_statuses(order) == ["New"]
    [result] = xcom_values(DAG_ID, dag_run.run_id)[("change_status", "return_value", -1)]
    assert (result["outcome"], result["dry_run_outcome"], result["reason"]) == (
        "dry_run",
        "updated",
        "customer asked",
    )


@pytest.mark.parametrize("reason", [None, "   "])
def test_cancel_without_a_reason_is_refused_before_touching_anything(gooten_api: Any, reason: Any) -> None:
    order = gooten_api.add_order(statuses="New")["Id"]

    dag_run = load_dag(DAG_ID).test(
        run_conf={"order_ids": [order], "status": "Cancelled", "dry_run": False, "reason": reason}
    )

    states = task_states(dag_run)
    assert dag_run.state == "failed"
    assert states["check_request"] == "failed"
    assert states["change_status"] == "upstream_failed"
    assert [entry for entry in gooten_api.journal if entry.order_id] == []
    assert gooten_api.item_statuses(order) == ["New"]


def test_an_order_that_can_no_longer_change_fails_the_run_after_the_others(gooten_api: Any) -> None:
    new = gooten_api.add_order(statuses="Pending")["Id"]
    in_production = gooten_api.add_order(statuses="InProduction")["Id"]

    dag_run = load_dag(DAG_ID).test(
        run_conf={
            "order_ids": [new, in_production],
            "status": "Cancelled",
            "dry_run": False,
            "reason": "duplicate order",
        }
    )

    states = task_states(dag_run)
    assert dag_run.state == "failed"
    assert states["change_status"] == "failed"
    assert states["show_outcomes"] == "failed"
    assert gooten_api.item_statuses(new) == ["Cancelled"]
    assert gooten_api.item_statuses(in_production) == ["InProduction"]
    results = xcom_values(DAG_ID, dag_run.run_id)[("change_status", "return_value", -1)]
    assert {r["order_id"]: r["outcome"] for r in results} == {new: "updated", in_production: "ineligible"}
