"""Item cancellation under lost answers, late landings and races, over real loopback HTTP.

A cancelled item cannot be cancelled again, so the operator may re-send a cancellation whose answer was
lost; these tests hold that the re-send is never *applied* twice: the local API's journal counts each item's
applied cancellations (``cancellation_counts``), which must be at most one.
"""

import time

import pytest
from airflow.providers.common.compat.sdk import AirflowException

from gooten_provider.testing.order_cancel import cancellation_counts, cancellations
from tests.operators.test_item_cancel import cancel, ids_of
from tests.operators.test_write_safety import _run_concurrently


def wait_for_cancellations(api, order_id, count, timeout=10.0):
    """Wait until ``count`` cancellations of the order are journaled (a late landing is journaled late)."""
    deadline = time.monotonic() + timeout
    while len(cancellations(api.journal, order_id)) < count and time.monotonic() < deadline:
        time.sleep(0.02)
    return cancellations(api.journal, order_id)


@pytest.mark.parametrize("statuses", [["Hold"], ["Hold", "AddressIssue"], ["Cancelled", "Hold"]])
def test_a_lost_answer_of_a_cancellation_that_landed_is_settled_by_reading(api, ti, statuses):
    order_id = api.add_order(statuses=statuses)["Id"]
    api.inject_faults(order_id, "lost_response", method="PUT")
    (record,) = cancel(ti, order_ids=[order_id])
    assert record["outcome"] == "updated"
    assert record["error"] is None
    assert api.item_statuses(order_id) == ["Cancelled"] * len(statuses)
    assert [e.outcome for e in cancellations(api.journal, order_id)] == ["cancelled"]  # not re-sent
    assert set(cancellation_counts(api.journal).values()) == {1}


def test_a_cancellation_landing_after_the_settling_read_is_applied_once(api, ti):
    # The answer is lost at once and the cancellation lands 1 s later, long after the 0.01 s backoff's read:
    # the operator re-sends, and whichever lands second is refused (a cancelled item is not cancellable).
    api.slow_seconds = 1.0
    order_id = api.add_order(statuses=["Hold", "Hold"])["Id"]
    api.inject_faults(order_id, "late_apply", method="PUT")
    (record,) = cancel(ti, order_ids=[order_id])
    assert record["outcome"] == "updated"
    sent = wait_for_cancellations(api, order_id, 2)
    time.sleep(0.2)
    assert len(sent) >= 2  # it was re-sent...
    applied = [e for e in cancellations(api.journal, order_id) if e.cancelled_items]
    assert len(applied) == 1  # ...and applied once
    assert cancellation_counts(api.journal) == dict.fromkeys(ids_of(api, order_id), 1)
    assert api.item_statuses(order_id) == ["Cancelled", "Cancelled"]


def test_every_answer_lost_and_nothing_landing_ends_unknown_after_the_resends(api, ti):
    order_id = api.add_order(statuses="Hold")["Id"]
    api.inject_faults(order_id, *["reset"] * 12, method="PUT")  # read, never applied, never answered
    with pytest.raises(AirflowException, match=r"\(unknown\)"):
        cancel(ti, order_ids=[order_id])
    (record,) = ti.xcoms["return_value"]
    assert record["outcome"] == "unknown"
    assert "running the task again is safe" in record["error"]
    assert api.item_statuses(order_id) == ["Hold"]
    assert cancellation_counts(api.journal) == {}


def test_many_lost_and_late_answers_in_one_batch_cancel_each_item_once(api, ti):
    api.slow_seconds = 0.3
    ids = [api.add_order(statuses=["Hold", "New"])["Id"] for _ in range(30)]
    for index, order_id in enumerate(ids):
        api.inject_faults(order_id, ("lost_response", "late_apply", "slow")[index % 3], method="PUT")
    records = cancel(ti, order_ids=ids, max_workers=6)
    assert {r["outcome"] for r in records} == {"updated"}
    time.sleep(0.5)  # let the late landings land
    counts = cancellation_counts(api.journal)
    assert len(counts) == 60 and set(counts.values()) == {1}
    assert all(api.item_statuses(order_id) == ["Cancelled", "Cancelled"] for order_id in ids)


def test_a_refusal_of_items_still_cancellable_is_failed_with_gootens_reason(api, ti):
    order_id = api.add_order(statuses="Hold")["Id"]
    api.inject_faults(order_id, "refused", method="PUT")
    with pytest.raises(AirflowException, match="Gooten refused PUT /api/orderCancel"):
        cancel(ti, order_ids=[order_id])
    (record,) = ti.xcoms["return_value"]
    assert record["outcome"] == "failed"
    methods = [e.method for e in api.journal if e.order_id == order_id]
    assert methods == ["GET", "PUT", "GET"]  # the refusal was checked against the order


def test_items_moving_to_production_before_the_write_end_ineligible_not_failed(api, ti):
    order_id = api.add_order(statuses="Hold")["Id"]
    api.set_item_statuses_once_read(order_id, "InProduction")  # moves after the operator's read
    api.latency = 0.05
    (record,) = cancel(ti, order_ids=[order_id])
    assert record["outcome"] == "ineligible"
    assert "InProduction" in record["error"] and "it changed while this task ran" in record["error"]
    assert cancellation_counts(api.journal) == {}


def test_two_tasks_cancelling_the_same_orders_at_once_cancel_each_item_once(api, ti):
    api.latency = 0.005
    ids = [api.add_order(statuses=["Hold", "Pending"])["Id"] for _ in range(30)]
    first, second = _run_concurrently(
        (ti, {"order_ids": ids, "max_workers": 6, "task_id": "a"}),
        (type(ti)(), {"order_ids": list(reversed(ids)), "max_workers": 6, "task_id": "b"}),
        runner=cancel,
    )
    for order_id in ids:
        mine = sorted(r["outcome"] for r in [*first, *second] if r["order_id"] == order_id)
        assert mine == ["unchanged", "updated"]
    counts = cancellation_counts(api.journal)
    assert len(counts) == 60 and set(counts.values()) == {1}
