"""Write safety under late landings, races and a dead host, over real loopback HTTP (issue: write safety).

Each test checks the operator's records against the local API's journal: what the records say happened must
be what the server saw, and no order may have a change applied twice.
"""

import json
import threading
import time

import pytest
from airflow.providers.common.compat.sdk import AirflowException

from gooten_provider.batch.engine import MAX_CONSECUTIVE_UNREACHABLE
from gooten_provider.exceptions import GootenConnectionError
from gooten_provider.hooks.gooten import GootenHook
from gooten_provider.testing import GootenApiServer
from tests.operators.conftest import point_connection_at
from tests.operators.test_gooten_operator import run


def wait_for_writes(api, order_id, count, timeout=10.0):
    """Wait until ``count`` writes of the order are journaled (a late landing is journaled when it lands)."""
    deadline = time.monotonic() + timeout
    while len(api.writes(order_id)) < count and time.monotonic() < deadline:
        time.sleep(0.02)
    return api.writes(order_id)


@pytest.mark.parametrize("target", ["Hold", "Cancelled", "Test", "New"])
@pytest.mark.parametrize("previous", ["AddressIssue", "NeedsManualApproval"])
def test_a_change_landing_after_the_settling_read_is_applied_once_whatever_the_target(
    api, ti, monkeypatch, target, previous
):
    # The answer is lost at once and the change lands 1 s later, long after the 0.01 s backoff's read.
    api.slow_seconds = 1.0
    order_id = api.add_order(statuses=previous)["Id"]
    api.inject_faults(order_id, "late_apply", method="POST")
    (result,) = run(ti, order_ids=[order_id], status=target)
    assert result["outcome"] == "updated"
    time.sleep(1.2)  # let the late change land, if it has not yet
    assert api.item_statuses(order_id) == [target]
    assert len(api.applied_writes(order_id)) == 1
    if target == "New":  # a second change to New would re-submit the order: it is never re-sent
        assert len(api.writes(order_id)) == 1


def test_a_change_to_new_still_not_seen_after_the_settle_window_is_unknown_and_not_resent(
    api, ti, monkeypatch
):
    point_connection_at(api, monkeypatch, timeout=0.5)  # the settle window is the request timeout
    api.slow_seconds = 1.5
    order_id = api.add_order(statuses="AddressIssue")["Id"]
    api.inject_faults(order_id, "late_apply", method="POST")
    with pytest.raises(AirflowException, match=r"\(unknown\).*It was not sent again"):
        run(ti, order_ids=[order_id], status="New")
    (record,) = ti.xcoms["return_value"]
    assert record["outcome"] == "unknown"
    assert record["previous_statuses"] == ["AddressIssue"]
    assert "It reads AddressIssue after" in record["error"]
    assert "Check the order in the Gooten Admin" in record["error"]
    writes = wait_for_writes(api, order_id, 1)
    time.sleep(0.1)
    assert [(w.fault, w.applied) for w in api.writes(order_id)] == [("late_apply", True)]
    assert writes and api.item_statuses(order_id) == ["New"]


def _run_concurrently(*runs, runner=run):
    """Run operator executions (``runner(ti, **kwargs)``) in threads at once; return each one's records."""
    results: list[object] = [None] * len(runs)
    start = threading.Barrier(len(runs))

    def go(index, ti, kwargs):
        start.wait()
        try:
            results[index] = runner(ti, **kwargs)
        except AirflowException:
            results[index] = ti.xcoms["return_value"]

    threads = [threading.Thread(target=go, args=(i, ti, kw)) for i, (ti, kw) in enumerate(runs)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    return results


def test_two_tasks_holding_the_same_orders_at_once_report_no_false_failure(api, ti):
    api.latency = 0.005
    ids = api.add_orders(60, statuses="New")
    other_ti = type(ti)()
    first, second = _run_concurrently(
        (ti, {"order_ids": ids, "status": "Hold", "max_workers": 8}),
        (other_ti, {"order_ids": list(reversed(ids)), "status": "Hold", "max_workers": 8}),
    )
    records = [*first, *second]
    assert {r["outcome"] for r in records} <= {"updated", "unchanged"}
    for order_id in ids:
        mine = [r for r in records if r["order_id"] == order_id]
        # exactly one task changed it, and the journal agrees: one applied write
        assert sorted(r["outcome"] for r in mine) == ["unchanged", "updated"]
        assert len(api.applied_writes(order_id)) == 1
        assert api.item_statuses(order_id) == ["Hold"]
    concurrent = [r for r in records if r["outcome"] == "unchanged" and r["error"]]
    for record in concurrent:  # a refused write whose order was already at the target says so
        assert "another task or person changed it meanwhile" in record["error"]


def test_two_tasks_setting_different_targets_at_once_record_what_each_order_shows(api, ti):
    api.latency = 0.005
    ids = api.add_orders(60, statuses="New")
    other_ti = type(ti)()
    holds, cancels = _run_concurrently(
        (ti, {"order_ids": ids, "status": "Hold", "max_workers": 8}),
        (other_ti, {"order_ids": list(reversed(ids)), "status": "Cancelled", "max_workers": 8}),
    )
    assert {r["outcome"] for r in [*holds, *cancels]} <= {"updated", "ineligible"}
    hold_by_id = {r["order_id"]: r for r in holds}
    cancel_by_id = {r["order_id"]: r for r in cancels}
    for order_id in ids:
        (final,) = set(api.item_statuses(order_id))
        (applied,) = api.applied_writes(order_id)
        assert applied.target_status == final
        winner, loser = (hold_by_id, cancel_by_id) if final == "Hold" else (cancel_by_id, hold_by_id)
        assert winner[order_id]["outcome"] == "updated"
        assert loser[order_id]["outcome"] == "ineligible"
        assert final in loser[order_id]["error"]


def test_a_refusal_of_an_order_that_is_still_changeable_is_failed_with_gootens_reason(api, ti):
    order_id = api.add_order(statuses="New")["Id"]
    api.inject_faults(order_id, "refused", method="POST")
    with pytest.raises(AirflowException, match="Gooten refused"):
        run(ti, order_ids=[order_id], status="Hold")
    (record,) = ti.xcoms["return_value"]
    assert record["outcome"] == "failed"
    methods = [e.method for e in api.journal if e.order_id == order_id]
    assert methods == ["GET", "POST", "GET"]  # the refusal was checked against the order


def test_a_dead_host_fails_the_task_once_before_any_order(ti, monkeypatch):
    with GootenApiServer() as api:
        point_connection_at(api, monkeypatch, backoff_factor=0.01)
        ids = api.add_orders(50)
    # the server is gone: the port refuses connections
    with pytest.raises(GootenConnectionError, match=r"Could not connect to .* the request was never sent"):
        run(ti, order_ids=ids, status="Hold")
    assert "return_value" not in ti.xcoms


def test_a_host_that_stops_answering_mid_batch_stops_the_batch_and_records_every_order(api, ti):
    ids = api.add_orders(20, statuses="New")
    for order_id in ids:  # every read of every order is cut off: Gooten is unreachable for them
        api.inject_faults(order_id, *["reset"] * 4, method="GET")
    with pytest.raises(AirflowException, match="20 of 20"):
        run(ti, order_ids=ids, status="Hold", max_workers=1)
    records = ti.xcoms["return_value"]
    assert [r["order_id"] for r in records] == ids
    tried = [r for r in records if r["error"].startswith("could not read the order")]
    skipped = [r for r in records if r["error"].startswith("not attempted: Gooten could not be reached")]
    assert len(tried) == MAX_CONSECUTIVE_UNREACHABLE
    assert len(skipped) == len(ids) - MAX_CONSECUTIVE_UNREACHABLE
    read_orders = {e.order_id for e in api.journal if e.order_id}
    assert read_orders == {r["order_id"] for r in tried}
    assert api.writes() == []


def test_a_host_without_scheme_that_speaks_plain_http_gets_an_error_saying_so(api, ti, monkeypatch):
    config = api.connection_config()
    monkeypatch.setenv(
        "AIRFLOW_CONN_GOOTEN_DEFAULT",
        json.dumps({**config, "host": "127.0.0.1", "port": api.port}),
    )
    order_id = api.add_order(statuses="New")["Id"]
    with pytest.raises(GootenConnectionError, match=r"no scheme, so https was assumed.*write http://"):
        run(ti, order_ids=[order_id], status="Hold")
    # a write there was never sent, so it is not reported as "outcome unknown"
    with pytest.raises(GootenConnectionError, match="the request was never sent"):
        GootenHook().update_order_status(order_id, "Hold")
    assert api.writes() == []
