"""The operator with ``results_path``: the summary XCom, the files, and resuming an earlier try's writes."""

import json
import logging
import threading
import time

import pytest
from airflow.providers.common.compat.sdk import AirflowException

from gooten_provider.batch import results
from gooten_provider.batch.results import ResultsJournal, attempt_name
from gooten_provider.operators.gooten import GootenOrderStatusOperator
from gooten_provider.operators.order_results import read_order_results, storage_path
from gooten_provider.testing import GootenApiServer
from tests.failing_storage import object_storage, small_disk
from tests.operators.conftest import point_connection_at


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


# -- results on storage that fails, and on damaged earlier tries ------------------------------------------


@pytest.fixture
def slow_api(monkeypatch):
    """A local Gooten API answering after 10 ms, so that the batch still runs when the disk fills."""
    with GootenApiServer(retry_after=0.05, latency=0.01) as server:
        point_connection_at(server, monkeypatch)
        yield server


@pytest.fixture
def disk(tmp_path):
    with small_disk(tmp_path / "disk") as mounted:
        yield mounted


def fill_after_writes(api, disk, count):
    """Fill the disk once ``count`` changes were applied (from a thread, while the batch runs)."""

    def fill():
        while len(api.applied_writes()) < count:
            time.sleep(0.002)
        disk.fill()

    filler = threading.Thread(target=fill, daemon=True)
    filler.start()
    return filler


def test_a_disk_full_for_a_while_costs_no_record(slow_api, ti, disk):
    ids = slow_api.add_orders(60, statuses="New")
    fill_after_writes(slow_api, disk, 20)
    freed = threading.Timer(1.5, disk.free)
    freed.start()
    summary = run(ti, disk.path, order_ids=ids, status="Hold", results_path=disk.path.as_uri())
    freed.join()
    assert summary["counts"]["updated"] == len(ids)
    records = list(read_order_results(summary))
    assert sorted(r["order_id"] for r in records) == sorted(ids)
    assert all(r["outcome"] == "updated" for r in records)


def test_a_disk_that_stays_full_stops_the_batch_and_a_retry_resumes(slow_api, ti, disk, monkeypatch):
    monkeypatch.setattr(results, "WRITE_RETRY_SECONDS", 0.5, raising=False)
    ids = slow_api.add_orders(150, statuses="New")
    uri = disk.path.as_uri()
    fill_after_writes(slow_api, disk, 20)
    with pytest.raises(AirflowException, match="The results could not be written under") as info:
        run(ti, disk.path, order_ids=ids, status="Hold", results_path=uri)
    message = str(info.value)
    assert "No space left on device" in message
    assert "A retry of the task is safe" in message
    summary = ti.xcoms["return_value"]
    assert summary["total"] == len(ids)
    assert summary["counts"]["failed"] > 50  # the orders not started once the disk stayed full
    with pytest.raises(FileNotFoundError, match="incomplete"):
        list(read_order_results(summary))
    with pytest.raises(FileNotFoundError, match="No complete Gooten results"):
        list(read_order_results(uri))
    changed = {entry.order_id for entry in slow_api.applied_writes()}
    assert 20 <= len(changed) < len(ids)

    disk.free()
    slow_api.clear_journal()
    ti.try_number = 2
    retry = run(ti, disk.path, order_ids=ids, status="Hold", results_path=uri)
    assert retry["counts"]["updated"] == len(ids)
    assert not {entry.order_id for entry in slow_api.writes()} & changed, "a change was sent twice"
    records = list(read_order_results(uri))
    assert sorted(r["order_id"] for r in records) == sorted(ids)
    assert all(r["previous_statuses"] == ["New"] for r in records)


def test_a_flush_failing_on_the_timer_thread_fails_the_dry_run(slow_api, ti, disk, monkeypatch):
    monkeypatch.setattr(results, "WRITE_RETRY_SECONDS", 0.3, raising=False)
    monkeypatch.setattr(results, "FLUSH_EVERY_SECONDS", 0.2)
    ids = slow_api.add_orders(110, statuses="New")
    path = object_storage(disk.path)
    disk.fill()  # a dry run sends no write: only the timer thread writes records
    with pytest.raises(AirflowException, match="The results could not be written under"):
        run(ti, disk.path, order_ids=ids, status="Hold", results_path=path, dry_run=True, max_workers=1)
    summary = ti.xcoms["return_value"]
    assert summary["total"] == len(ids)
    assert summary["counts"]["failed"] > 0  # the batch stopped: not every order was read
    assert not list(path.glob("*/summary.json"))


def test_a_retry_skips_damaged_lines_of_an_earlier_try_and_reads_their_orders(api, ti, tmp_path, caplog):
    ids = api.add_orders(4, statuses="New")
    first = run(ti, tmp_path, order_ids=ids, status="Hold")
    folder = storage_path(first["results_path"]) / first["attempt"]
    lines = (folder / "records.jsonl").read_bytes().splitlines(keepends=True)
    torn, flipped = lines[1], lines[2]
    lines[1] = torn[:25] + lines[3]  # a torn write, then a later append on the same line
    lines[2] = flipped.replace(b'"outcome"', b'"outc\xffme"')
    del lines[3]
    (folder / "records.jsonl").write_bytes(b"".join(lines))
    (folder / "summary.json").unlink()
    damaged = {json.loads(torn)["order_id"], json.loads(flipped)["order_id"], ids_of_line(lines[1], ids)}
    api.clear_journal()

    ti.try_number = 2
    with caplog.at_level(logging.WARNING):
        again = run(ti, tmp_path, order_ids=ids, status="Hold")
    assert again["total"] == 4
    assert "records.jsonl, line 2: not a JSON line" in caplog.text
    assert "records.jsonl, line 3: not a JSON line" in caplog.text
    touched = {entry.order_id for entry in api.journal if entry.order_id}
    assert touched == damaged, "only the orders of damaged lines are read again"
    assert not api.writes()
    assert sorted(r["order_id"] for r in read_order_results(again)) == sorted(ids)


def ids_of_line(line, ids):
    (order_id,) = [i for i in ids if i.encode() in line[25:]]
    return order_id


def test_resuming_is_logged_from_the_second_try_only(api, ti, tmp_path, capsys):
    ids = api.add_orders(2, statuses="New")
    run(ti, tmp_path, order_ids=ids, status="Hold")
    assert "Resuming from" not in capsys.readouterr().out
    ti.try_number = 2
    run(ti, tmp_path, order_ids=ids, status="Hold")
    assert "Resuming from 1 earlier try(s)" in capsys.readouterr().out


def test_a_results_path_with_a_host_is_refused_when_the_dag_is_parsed(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ValueError, match=r"use three slashes|after three slashes, such as 'file:///tmp/x'"):
        GootenOrderStatusOperator(task_id="t", order_ids=["1-a"], status="Hold", results_path="file://tmp/x")
    assert not list(tmp_path.iterdir())
