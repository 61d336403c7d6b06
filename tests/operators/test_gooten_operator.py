"""GootenOrderStatusOperator.execute() against the local Gooten API (no metadata DB needed)."""

import itertools
import json
import logging
import threading
import time

import jinja2
import pytest
from airflow.providers.common.compat.sdk import (
    AirflowException,
    AirflowFailException,
    AirflowNotFoundException,
    AirflowSkipException,
)

from gooten_provider.exceptions import GootenAuthenticationError, GootenConfigurationError
from gooten_provider.links import GootenOrderLink
from gooten_provider.operators.gooten import GootenOrderStatusOperator
from tests.operators.conftest import point_connection_at


def run(ti, **kwargs):
    kwargs.setdefault("task_id", "set_status")
    return GootenOrderStatusOperator(**kwargs).execute({"ti": ti})


def peak_concurrency(entries):
    """The most requests the server was handling at one moment, from the journal's timestamps."""
    events = sorted([(e.started, 1) for e in entries] + [(e.finished, -1) for e in entries])
    return max(itertools.accumulate(delta for _, delta in events))


def by_id(results):
    return {result["order_id"]: result for result in results}


def test_hold_one_order(api, ti):
    order_id = api.add_order(statuses=["New", "AddressIssue"])["Id"]
    (result,) = run(ti, order_ids=order_id, status="hold", reason="address check failed")
    assert result == {
        "order_id": order_id,
        "outcome": "updated",
        "previous_statuses": ["New", "AddressIssue"],
        "status": "Hold",
        "error": None,
        "reason": "address check failed",
    }
    assert api.item_statuses(order_id) == ["Hold", "Hold"]


def test_a_batch_mixing_every_outcome(api, ti):
    updated = api.add_order(statuses="Pending")["Id"]
    unchanged = api.add_order(statuses="Cancelled")["Id"]
    in_production = api.add_order(statuses="InProduction")["Id"]
    held = api.add_order(statuses="Hold")["Id"]
    mixed = api.add_order(statuses=["New", "Shipped"])["Id"]
    unknown = "999-00000000-0000-0000-0000-000000000000"
    with pytest.raises(AirflowException, match=f"(?s)1 of 6 Gooten order.* {unknown} \\(failed\\)"):
        run(
            ti,
            order_ids=[updated, unchanged, in_production, held, mixed, unknown, updated],
            status="Cancelled",
            max_workers=3,
        )
    results = ti.xcoms["return_value"]
    assert [r["order_id"] for r in results] == [updated, unchanged, in_production, held, mixed, unknown]
    outcomes = {r["order_id"]: r["outcome"] for r in results}
    assert outcomes == {
        updated: "updated",
        unchanged: "unchanged",
        in_production: "ineligible",
        held: "ineligible",
        mixed: "ineligible",
        unknown: "failed",
    }
    results = by_id(results)
    assert "released by Gooten support" in results[held]["error"]
    assert "its items can be cancelled with GootenCancelOrderItemsOperator" in results[held]["error"]
    assert "InProduction" in results[in_production]["error"]
    assert results[mixed]["previous_statuses"] == ["New", "Shipped"]
    assert "could not read the order" in results[unknown]["error"]
    # only the eligible order received a write
    assert [w.order_id for w in api.writes()] == [updated]


def test_task_fails_after_pushing_results_naming_failed_orders(api, ti):
    ok = api.add_order(statuses="New")["Id"]
    unknown = "999-11111111-1111-1111-1111-111111111111"
    with pytest.raises(
        AirflowException, match=rf"1 of 2 Gooten order\(s\) could not be set to Hold:\n  {unknown}"
    ):
        run(ti, order_ids=[ok, unknown], status="Hold")
    pushed = by_id(ti.xcoms["return_value"])
    assert pushed[ok]["outcome"] == "updated"
    assert pushed[unknown]["outcome"] == "failed"


def test_ineligible_orders_do_not_fail_the_task_unless_asked(api, ti):
    shipped = api.add_order(statuses="Shipped")["Id"]
    (result,) = run(ti, order_ids=[shipped], status="Hold")
    assert result["outcome"] == "ineligible"
    with pytest.raises(AirflowFailException, match=rf"{shipped} \(ineligible\): items are Shipped"):
        run(ti, order_ids=[shipped], status="Hold", fail_on_ineligible=True)
    assert ti.xcoms["return_value"][0]["outcome"] == "ineligible"


def test_rerun_is_safe_finished_orders_come_back_unchanged(api, ti):
    ids = [api.add_order(statuses="New")["Id"] for _ in range(3)]
    assert {r["outcome"] for r in run(ti, order_ids=ids, status="Hold")} == {"updated"}
    assert {r["outcome"] for r in run(ti, order_ids=ids, status="Hold")} == {"unchanged"}
    assert len(api.writes()) == 3


def test_dry_run_reads_every_order_and_writes_nothing(api, ti):
    new = api.add_order(statuses="New")["Id"]
    held = api.add_order(statuses="Hold")["Id"]
    shipped = api.add_order(statuses="Shipped")["Id"]
    results = by_id(run(ti, order_ids=[new, held, shipped], status="Hold", dry_run="true"))
    assert {k: (r["outcome"], r["dry_run_outcome"]) for k, r in results.items()} == {
        new: ("dry_run", "updated"),
        held: ("dry_run", "unchanged"),
        shipped: ("dry_run", "ineligible"),
    }
    assert api.writes() == []
    assert api.item_statuses(new) == ["New"]


def test_empty_list_skips_the_task(api, ti, caplog):
    with pytest.raises(AirflowSkipException, match="No order ids given"):
        run(ti, order_ids=[], status="Hold")
    assert api.journal == []


def test_a_rerun_logs_each_order_unchanged_as_the_readme_says(api, ti, caplog, capsys):
    ids = [api.add_order(statuses="New")["Id"] for _ in range(2)]
    run(ti, order_ids=ids, status="Hold")
    capsys.readouterr()
    with caplog.at_level(logging.INFO):
        results = run(ti, order_ids=ids, status="Hold")
    captured = capsys.readouterr()  # the task logger is structlog's: it writes to stdout here
    logged = "\n".join([caplog.text, captured.out, captured.err])
    assert [r["outcome"] for r in results] == ["unchanged", "unchanged"]
    for order_id in ids:
        assert f"{order_id}: Hold, unchanged: already Hold" in logged
    assert "Gooten status summary: updated 0, unchanged 2," in logged


def test_literal_invalid_status_fails_when_the_dag_is_parsed():
    with pytest.raises(ValueError, match="Cancelled, New, Test, Hold"):
        GootenOrderStatusOperator(task_id="t", order_ids=["1-a"], status="Shipped")


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"order_ids": None}, "order_ids is required"),
        ({"max_workers": 0}, "max_workers must be a whole number"),
        ({"requests_per_second": 0}, "requests_per_second must be a number above 0"),
        ({"dry_run": "maybe"}, "Invalid dry_run 'maybe': use true or false"),
    ],
)
def test_bad_arguments_fail_when_the_dag_is_parsed(kwargs, message):
    with pytest.raises(ValueError, match=message):
        GootenOrderStatusOperator(task_id="t", **{"order_ids": ["1-a"], "status": "Hold", **kwargs})


def test_templated_invalid_status_fails_at_run_before_any_request(api, ti):
    op = GootenOrderStatusOperator(task_id="t", order_ids=["1-a"], status="{{ params.status }}")
    op.render_template_fields({"params": {"status": "Paused"}}, jinja_env=jinja2.Environment())
    with pytest.raises(ValueError, match=r"status 'Paused'.*Cancelled, New, Test, Hold"):
        op.execute({"ti": ti})
    assert api.journal == []


@pytest.mark.parametrize("ids", [None, "undefined", ["115557-b5c97bb2-934d-48aa-9ad2-a565154b5cd4", None]])
def test_a_template_rendering_a_missing_value_names_the_task_and_order_ids(api, ti, ids):
    # the sensor's errors name them too: one mechanism, order_ids.parse_task_order_ids
    op = GootenOrderStatusOperator(task_id="hold_orders", order_ids="{{ params.ids }}", status="Hold")
    op.render_template_fields({"params": {"ids": ids}}, jinja_env=jinja2.Environment())
    with pytest.raises(
        ValueError,
        match=r"^hold_orders: order_ids: Invalid Gooten order id ('None'|'undefined'|None \(NoneType\))",
    ):
        op.execute({"ti": ti})
    assert api.journal == []


def test_templating_from_params(api, ti):
    ids = [api.add_order(statuses="New")["Id"] for _ in range(2)]
    op = GootenOrderStatusOperator(
        task_id="t",
        order_ids="{{ params.order_ids }}",
        status="{{ params.status }}",
        dry_run="{{ params.dry_run }}",
        reason="{{ params.reason }}",
    )
    context = {
        "params": {"order_ids": ids + ids[:1], "status": "cancelled", "dry_run": False, "reason": "dupe"}
    }
    op.render_template_fields(context, jinja_env=jinja2.Environment())
    assert op.order_ids == str(ids + ids[:1])  # rendered as text: split back into ids
    results = op.execute({"ti": ti})
    assert [(r["order_id"], r["outcome"], r["reason"]) for r in results] == [
        (i, "updated", "dupe") for i in ids
    ]


def test_comma_and_newline_separated_ids(api, ti):
    ids = [api.add_order(statuses="New")["Id"] for _ in range(3)]
    results = run(ti, order_ids=f"{ids[0]}, {ids[1]}\n{ids[2]}\n", status="Test")
    assert [r["order_id"] for r in results] == ids


def test_faults_on_reads_and_writes_end_with_one_outcome_per_order_and_no_second_write(api, ti):
    ids = [api.add_order(statuses="New")["Id"] for _ in range(12)]
    faults = itertools.cycle(["500", "503", "429", "reset", "lost_response"])
    for order_id in ids[:10]:
        api.inject_faults(order_id, next(faults), method="GET")
        api.inject_faults(order_id, next(faults), method="POST")
    results = run(ti, order_ids=ids, status="Hold", max_workers=4)
    assert sorted(r["order_id"] for r in results) == sorted(ids)
    assert {r["outcome"] for r in results} == {"updated"}
    for order_id in ids:
        assert api.item_statuses(order_id) == ["Hold"]
        writes = api.writes(order_id)
        assert sum(w.applied for w in writes) == 1
        assert writes[-1].applied, "no write may follow the one that was applied"


def test_lost_response_is_settled_by_reading_not_by_resending(api, ti):
    order_id = api.add_order(statuses="New")["Id"]
    api.inject_faults(order_id, "lost_response", method="POST")
    (result,) = run(ti, order_ids=[order_id], status="Hold")
    assert result["outcome"] == "updated"
    assert len(api.writes(order_id)) == 1
    methods = [e.method for e in api.journal if e.order_id == order_id]
    assert methods == ["GET", "POST", "GET"]


def test_write_that_never_took_effect_is_resent_after_reading(api, ti):
    order_id = api.add_order(statuses="New")["Id"]
    api.inject_faults(order_id, "500", method="POST")
    (result,) = run(ti, order_ids=[order_id], status="Hold")
    assert result["outcome"] == "updated"
    assert [(e.method, e.fault) for e in api.journal if e.order_id == order_id] == [
        ("GET", None),
        ("POST", "500"),
        ("GET", None),
        ("POST", None),
    ]


def test_resends_are_bounded(api, ti):
    order_id = api.add_order(statuses="New")["Id"]
    api.inject_faults(order_id, *["503"] * 10, method="POST")
    with pytest.raises(AirflowException, match="did not take effect after 3 attempts"):
        run(ti, order_ids=[order_id], status="Hold")
    assert len(api.writes(order_id)) == 3
    assert ti.xcoms["return_value"][0]["outcome"] == "unknown"


def test_requests_overlap_up_to_max_workers(api, ti):
    api.latency = 0.05
    ids = [api.add_order(statuses="New")["Id"] for _ in range(8)]
    run(ti, order_ids=ids, status="Hold", max_workers=4)
    assert 2 <= peak_concurrency(api.journal) <= 4


def test_requests_per_second_caps_the_rate(api, ti):
    ids = [api.add_order(statuses="New")["Id"] for _ in range(4)]
    run(ti, order_ids=ids, status="Hold", max_workers=4, requests_per_second=20)
    starts = sorted(e.started for e in api.journal)
    assert starts[-1] - starts[0] >= (len(starts) - 1) / 20 * 0.9


def test_order_link_is_set_for_a_single_order(api, ti, monkeypatch):
    point_connection_at(api, monkeypatch, admin_order_url="https://admin.example/orders/{order_id}")
    order_id = api.add_order(statuses="New")["Id"]
    op = GootenOrderStatusOperator(task_id="t", order_ids=[order_id], status="Hold")
    op.execute({"ti": ti})
    expected = f"https://admin.example/orders/{order_id}"
    assert op.order_url == expected
    assert GootenOrderLink().get_link(op, ti_key=None) == expected


def test_no_order_link_without_a_template_or_for_a_batch(api, ti, monkeypatch):
    single = GootenOrderStatusOperator(
        task_id="t", order_ids=[api.add_order(statuses="New")["Id"]], status="Hold"
    )
    single.execute({"ti": ti})
    assert GootenOrderLink().get_link(single, ti_key=None) == ""
    point_connection_at(api, monkeypatch, admin_order_url="https://admin.example/orders/{order_id}")
    batch = GootenOrderStatusOperator(
        task_id="t", order_ids=[api.add_order(statuses="New")["Id"] for _ in range(2)], status="Hold"
    )
    batch.execute({"ti": ti})
    assert GootenOrderLink().get_link(batch, ti_key=None) == ""


def test_summary_is_logged(api, ti, capsys):
    new = api.add_order(statuses="New")["Id"]
    shipped = api.add_order(statuses="Shipped")["Id"]
    run(ti, order_ids=[new, shipped], status="Hold", reason="bad address")
    logged = capsys.readouterr().out  # task logs go through structlog to stdout
    assert "updated 1, unchanged 0, ineligible 1, failed 0, unknown 0, dry_run 0" in logged
    assert "Changing 2 order(s) to Hold, 2 at a time, reason: bad address." in logged
    assert f"{new}: New -> Hold, reason: bad address" in logged


def test_gooten_refusal_of_a_write_is_failed_with_its_message_and_reference(api, ti):
    order_id = api.add_order(statuses="New")["Id"]
    api.inject_faults(order_id, "refused", method="POST")
    with pytest.raises(AirflowException, match=f"{order_id} \\(failed\\): Gooten refused POST"):
        run(ti, order_ids=[order_id], status="Hold")
    (result,) = ti.xcoms["return_value"]
    assert result["outcome"] == "failed"
    assert "id: The order could not be updated at this time. (ErrorReferenceCode " in result["error"]
    assert len(api.writes(order_id)) == 1  # a refusal is an answer: nothing to settle, nothing re-sent


def test_refused_credentials_fail_the_task_before_any_order_is_read(api, ti, monkeypatch):
    config = api.connection_config()
    config["password"] = "a-wrong-key"
    monkeypatch.setenv("AIRFLOW_CONN_GOOTEN_DEFAULT", json.dumps(config))
    ids = api.add_orders(20, statuses="New")
    with pytest.raises(GootenAuthenticationError, match="partnerBillingKey"):
        run(ti, order_ids=ids, status="Hold", max_workers=2)
    assert [e.order_id for e in api.journal] == [None]  # only the credentials check was sent


def test_a_key_revoked_mid_batch_stops_the_batch_and_every_order_still_gets_an_outcome(api, ti):
    api.latency = 0.01
    ids = api.add_orders(30, statuses="New")

    def revoke_after_some_writes():
        while len(api.applied_writes()) < 3:
            time.sleep(0.005)
        api.billing_key = "a-rotated-key"  # reads need no key; the next writes are refused

    revoker = threading.Thread(target=revoke_after_some_writes)
    revoker.start()
    with pytest.raises(AirflowException, match="of 30 Gooten order"):
        run(ti, order_ids=ids, status="Hold", max_workers=2)
    revoker.join(5)
    results = ti.xcoms["return_value"]
    assert [r["order_id"] for r in results] == ids
    updated = [r for r in results if r["outcome"] == "updated"]
    failed = [r for r in results if r["outcome"] == "failed"]
    assert len(updated) + len(failed) == len(ids)
    assert {r["order_id"] for r in updated} == {w.order_id for w in api.applied_writes()}
    assert all("partnerBillingKey" in r["error"] for r in failed)
    assert sum("not attempted" in r["error"] for r in failed) >= len(ids) - len(updated) - 2 * 2


def test_dry_run_checks_the_billing_key_that_reads_do_not_need(api, ti, monkeypatch):
    config = api.connection_config()
    config["password"] = "a-wrong-key"
    monkeypatch.setenv("AIRFLOW_CONN_GOOTEN_DEFAULT", json.dumps(config))
    order_id = api.add_order(statuses="New")["Id"]
    with pytest.raises(GootenAuthenticationError, match="partnerBillingKey"):
        run(ti, order_ids=[order_id], status="Hold", dry_run=True)
    assert [e.order_id for e in api.journal] == [None]  # only the credentials check was sent


@pytest.mark.parametrize(
    ("conn", "error", "message"),
    [
        (None, AirflowNotFoundException, "gooten_default"),
        ({"conn_type": "gooten", "login": "r"}, GootenConfigurationError, "has no password"),
    ],
)
def test_a_broken_connection_fails_the_task_before_any_request(api, ti, monkeypatch, conn, error, message):
    if conn is None:
        monkeypatch.delenv("AIRFLOW_CONN_GOOTEN_DEFAULT")
    else:
        monkeypatch.setenv("AIRFLOW_CONN_GOOTEN_DEFAULT", json.dumps({**conn, "host": api.base_url}))
    with pytest.raises(error, match=message):
        run(ti, order_ids=api.add_orders(2), status="Hold")
    assert api.journal == []


def test_a_resend_waits_the_backoff_so_a_short_outage_does_not_use_up_every_attempt(api, ti, monkeypatch):
    point_connection_at(api, monkeypatch, backoff_factor=0.2)
    order_id = api.add_order(statuses="New")["Id"]
    api.inject_faults(order_id, "503", method="POST")
    (result,) = run(ti, order_ids=[order_id], status="Hold")
    assert result["outcome"] == "updated"
    first, second = api.writes(order_id)
    assert second.started - first.finished >= 0.2


def test_a_change_that_lands_late_is_seen_by_the_settling_read_and_not_sent_again(api, ti, monkeypatch):
    point_connection_at(api, monkeypatch, backoff_factor=0.3)
    api.slow_seconds = 0.1  # the reply is lost at once; the change lands 0.1 s later, before the read
    order_id = api.add_order(statuses="Pending")["Id"]
    api.inject_faults(order_id, "late_apply", method="POST")
    (result,) = run(ti, order_ids=[order_id], status="New")  # New -> New again would re-submit the order
    assert result["outcome"] == "updated"
    assert api.item_statuses(order_id) == ["New"]
    writes = wait_for_journal(api, order_id)
    assert [(w.fault, w.applied) for w in writes] == [("late_apply", True)]


def wait_for_journal(api, order_id, timeout=5.0):
    import time

    deadline = time.monotonic() + timeout
    while not api.writes(order_id) and time.monotonic() < deadline:
        time.sleep(0.02)
    return api.writes(order_id)
