"""The results files: what a try writes, what a later try resumes from, and reading the records back."""

import json
import time

import pytest

from gooten_provider.operators.order_results import read_order_results, storage_path
from gooten_provider.order_status_change import EarlierWrite
from gooten_provider.results import (
    ResultsJournal,
    _NumberedParts,
    attempt_name,
    attempts,
    iter_records,
    load_earlier_results,
    newest_attempt,
)


def record(order_id, outcome="updated", previous=("New",), status="Hold", error=None):
    return {
        "order_id": order_id,
        "outcome": outcome,
        "previous_statuses": list(previous),
        "status": status,
        "error": error,
        "reason": None,
    }


@pytest.fixture
def root(tmp_path):
    return storage_path((tmp_path / "results").as_uri())


def journal_of(root, try_number, **kwargs):
    return ResultsJournal(root / attempt_name(try_number), **kwargs)


def test_records_are_flushed_every_n_records_and_at_close(root):
    journal = journal_of(root, 1, flush_every_records=3, flush_every_seconds=60)
    for i in range(4):
        journal.add(record(f"1-{i}"))
    (folder,) = attempts(root)
    assert [r["order_id"] for r in iter_records(folder)] == ["1-0", "1-1", "1-2"]  # the 4th is buffered
    journal.close({"total": 4})
    assert [r["order_id"] for r in iter_records(folder)] == ["1-0", "1-1", "1-2", "1-3"]
    assert newest_attempt(root) == folder


def test_records_waiting_longer_than_the_flush_interval_are_flushed(root):
    journal = journal_of(root, 1, flush_every_records=1000, flush_every_seconds=0.2)
    journal.add(record("1-a"))
    deadline = time.monotonic() + 5
    while not list(iter_records(attempts(root)[0])) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert [r["order_id"] for r in iter_records(attempts(root)[0])] == ["1-a"]
    journal.close()


def test_a_try_without_summary_is_not_complete(root):
    journal_of(root, 1).close()  # killed before the end: no summary
    assert newest_attempt(root) is None
    assert newest_attempt(root, complete=False) is not None
    with pytest.raises(FileNotFoundError, match="no try recorded every order"):
        list(read_order_results(str(root)))


def test_resume_carries_final_records_and_settles_writes_without_one(root):
    first = journal_of(root, 1, flush_every_records=1)
    first.add(record("1-done"))
    first.add(record("1-same", outcome="unchanged", previous=("Hold",)))
    first.write_sent("1-flushed", ["AddressIssue"], "Hold")
    first.add(record("1-flushed", previous=("AddressIssue",)))
    first.write_sent("1-in-flight", ["New"], "Hold")
    first.add(record("1-failed", outcome="failed", previous=(), error="not attempted: stopped"))
    first.close()  # killed: no summary
    earlier = load_earlier_results(root, "Hold", dry_run=False)
    assert earlier.attempts == 1
    assert set(earlier.done) == {"1-done", "1-same", "1-flushed"}
    assert json.loads(earlier.done["1-same"])["previous_statuses"] == ["Hold"]
    assert set(earlier.writes) == {"1-in-flight"}
    assert earlier.writes["1-in-flight"].previous_statuses == ("New",)
    assert isinstance(earlier.writes["1-in-flight"], EarlierWrite)
    # another target, or a dry run, is not settled by these records
    assert not load_earlier_results(root, "Cancelled", dry_run=False).done
    assert not load_earlier_results(root, "Hold", dry_run=True).done


def test_a_later_record_replaces_an_earlier_one(root):
    first = journal_of(root, 1)
    first.write_sent("1-a", ["New"], "Hold")
    first.add(record("1-a", outcome="unknown"))
    first.close()
    second = journal_of(root, 2)
    second.add(record("1-a"))
    second.close()
    earlier = load_earlier_results(root, "Hold", dry_run=False)
    assert set(earlier.done) == {"1-a"}
    assert not earlier.writes


def test_object_storage_gets_numbered_parts(tmp_path):
    parts = _NumberedParts(storage_path((tmp_path).as_uri()), "records")
    parts.append(b'{"a":1}\n')
    parts.append(b'{"a":2}\n')
    assert sorted(p.name for p in tmp_path.iterdir()) == ["records-000001.jsonl", "records-000002.jsonl"]


def test_a_line_cut_by_a_crash_is_not_a_record(root):
    journal = journal_of(root, 1, flush_every_records=1)
    journal.add(record("1-a"))
    journal.close()
    (folder,) = attempts(root)
    with (folder / "records.jsonl").open("ab") as handle:
        handle.write(b'{"order_id": "1-b", "outco')
    assert [r["order_id"] for r in iter_records(folder)] == ["1-a"]


def test_read_order_results_takes_a_list_a_summary_or_a_path(root):
    journal = journal_of(root, 3)
    journal.add(record("1-a"))
    summary = {"total": 1, "results_path": str(root), "attempt": journal.folder.name}
    journal.close(summary)
    assert [r["order_id"] for r in read_order_results([record("1-x")])] == ["1-x"]
    assert [r["order_id"] for r in read_order_results(summary)] == ["1-a"]
    assert [r["order_id"] for r in read_order_results(str(root))] == ["1-a"]
    assert [r["order_id"] for r in read_order_results(root)] == ["1-a"]


@pytest.mark.parametrize("value", ["/data/gooten", "results", ""])
def test_a_results_path_without_a_scheme_is_refused(value):
    with pytest.raises(ValueError, match="use an ObjectStoragePath or a URI with a scheme"):
        storage_path(value)
