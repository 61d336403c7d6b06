"""The operator with ``results_path``: the summary XCom, the files, and resuming an earlier try's writes."""

import threading
import time

import pytest
from airflow.providers.common.compat.sdk import AirflowException

from gooten_provider.operators.gooten import GootenOrderStatusOperator
from gooten_provider.operators.order_results import read_order_results, storage_path
from gooten_provider.results import ResultsJournal, attempt_name


def run(ti, tmp_path, **kwargs):
    kwargs.setdefault("task_id", "set_status")
    kwargs.setdefault("results_path", (tmp_path / "results").as_uri())
    return GootenOrderStatusOperator(**kwargs).execute({"ti": ti})


def earlier_try_sent(tmp_path, order_id, previous, target, seconds_ago):
    """What a try killed right after sending a write leaves behind: the write's entry, no record."""
    journal = ResultsJournal(storage_path((tmp_path / "results").as_uri()) / attempt_name(1))
    journal.write_sent(order_id, previous, target)
    journal.close()
    if seconds_ago:  # rewrite the time it was sent
        (entry,) = journal.folder.glob("writes*.jsonl")
        text = entry.read_text()
        sent = text.split('"sent_at":')[1].rstrip("}\n")
        entry.write_text(text.replace(sent, str(float(sent) - seconds_ago)))


def test_the_summary_replaces_the_records_in_xcom(api, ti, tmp_path):
    updated = api.add_orders(3, statuses="New")
    missing = [f"99{i}-00000000-0000-0000-0000-000000000000" for i in range(3)]
    with pytest.raises(AirflowException, match=r"3 of 6 Gooten order\(s\) could not be set to Hold"):
        run(ti, tmp_path, order_ids=[*updated, *missing], status="Hold")
    summary = ti.xcoms["return_value"]
    assert summary["total"] == 6
    assert summary["counts"] == {
        "updated": 3, "unchanged": 0, "ineligible": 0, "failed": 3, "unknown": 0, "dry_run": 0,
    }  # fmt: skip
    assert sorted(r["order_id"] for r in summary["failed"]) == missing
    assert summary["results_path"] == (tmp_path / "results").as_uri()
    records = {r["order_id"]: r for r in read_order_results(summary)}
    assert set(records) == {*updated, *missing}


def test_a_write_in_flight_that_landed_is_updated_from_its_earlier_previous_statuses(api, ti, tmp_path):
    order_id = api.add_order(statuses="Hold")["Id"]  # the earlier try's change landed
    earlier_try_sent(tmp_path, order_id, ["AddressIssue"], "Hold", seconds_ago=0)
    summary = run(ti, tmp_path, order_ids=[order_id], status="Hold")
    (record,) = read_order_results(summary)
    assert (record["outcome"], record["previous_statuses"]) == ("updated", ["AddressIssue"])
    assert not api.writes(order_id)


def test_a_write_to_new_in_flight_is_read_over_the_rest_of_its_window_never_sent_blindly(api, ti, tmp_path):
    order_id = api.add_order(statuses="AddressIssue")["Id"]
    earlier_try_sent(tmp_path, order_id, ["AddressIssue"], "New", seconds_ago=0)
    # the earlier try's change lands a moment later, within the settle window
    landing = threading.Timer(0.5, api.set_item_statuses, (order_id, "New"))
    landing.start()
    summary = run(ti, tmp_path, order_ids=[order_id], status="New")
    landing.join()
    (record,) = read_order_results(summary)
    assert (record["outcome"], record["previous_statuses"]) == ("updated", ["AddressIssue"])
    assert not api.writes(order_id)


def test_a_write_in_flight_long_ago_that_never_landed_is_sent_after_one_read(api, ti, tmp_path):
    order_id = api.add_order(statuses="AddressIssue")["Id"]
    earlier_try_sent(tmp_path, order_id, ["AddressIssue"], "New", seconds_ago=3600)
    started = time.monotonic()
    summary = run(ti, tmp_path, order_ids=[order_id], status="New")
    assert time.monotonic() - started < 5  # the settle window is long over: no waiting
    (record,) = read_order_results(summary)
    assert (record["outcome"], record["previous_statuses"]) == ("updated", ["AddressIssue"])
    assert len(api.writes(order_id)) == 1
    assert api.item_statuses(order_id) == ["New"]


def test_a_second_run_with_the_same_path_touches_no_order(api, ti, tmp_path):
    ids = api.add_orders(5, statuses="New")
    run(ti, tmp_path, order_ids=ids, status="Cancelled")
    api.clear_journal()
    again = run(ti, tmp_path, order_ids=ids, status="Cancelled")
    assert again["counts"]["updated"] == 5
    assert not [e for e in api.journal if e.order_id]
