"""The results files: what a try writes, what a later try resumes from, and reading the records back."""

import json
import threading
import time

import pytest

from gooten_provider.batch.action import EarlierWrite
from gooten_provider.batch.results import ResultsJournal, ResultsWriteError, _NumberedParts, attempt_name
from gooten_provider.batch.results_reader import (
    DamagedResultsError,
    attempts,
    iter_records,
    load_earlier_results,
    newest_attempt,
)
from gooten_provider.operators.order_results import read_order_results, storage_path
from tests.failing_storage import object_storage, small_disk


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


def test_on_a_local_disk_each_record_is_in_the_file_as_soon_as_it_is_added(root):
    journal = journal_of(root, 1)
    for i in range(3):
        journal.add(record(f"1-{i}"))
        (folder,) = attempts(root)
        assert [r["order_id"] for r in iter_records(folder)] == [f"1-{n}" for n in range(i + 1)]
    assert newest_attempt(root) is None  # no summary yet
    journal.close({"total": 3})
    assert newest_attempt(root) == folder


def test_on_object_storage_records_are_flushed_every_n_records_each_flush_one_object(tmp_path):
    root = object_storage(tmp_path)
    journal = journal_of(root, 1, flush_every_records=3, flush_every_seconds=60)
    for i in range(4):
        journal.add(record(f"1-{i}"))
    (folder,) = attempts(root)
    assert [r["order_id"] for r in iter_records(folder)] == ["1-0", "1-1", "1-2"]  # the 4th is buffered
    journal.close({"total": 4})
    assert [r["order_id"] for r in iter_records(folder)] == ["1-0", "1-1", "1-2", "1-3"]
    assert sorted(p.name for p in folder.iterdir()) == [
        "records-000001.jsonl", "records-000002.jsonl", "summary.json",
    ]  # fmt: skip


def test_on_object_storage_records_waiting_longer_than_the_flush_interval_are_flushed(tmp_path):
    root = object_storage(tmp_path)
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
    for line in (b'{"a":1}\n', b'{"a":2}\n'):
        parts.keep(line)
        parts.drain()
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


# -- a disk that really fills ----------------------------------------------------------------------------


@pytest.fixture
def disk(tmp_path):
    with small_disk(tmp_path / "disk") as mounted:
        yield mounted


def written_ids(folder):
    return [r["order_id"] for r in iter_records(folder)]


def test_a_record_written_while_the_disk_is_full_is_kept_and_written_once_it_has_room(disk):
    root = storage_path(disk.path.as_uri())
    journal = journal_of(root, 1, retry_seconds=30)
    disk.fill()  # the first line needs a block of its own
    writer = threading.Thread(target=journal.add, args=(record("1-a"),))
    writer.start()
    time.sleep(0.5)
    assert writer.is_alive(), "the write gave up, or did not fail, while the disk was full"
    (folder,) = attempts(root)
    assert written_ids(folder) == []
    disk.free()
    writer.join(10)
    assert written_ids(folder) == ["1-a"]
    journal.add(record("1-b"))
    journal.close({"total": 2})
    assert written_ids(folder) == ["1-a", "1-b"]
    assert newest_attempt(root) == folder


def test_a_line_cut_short_by_a_full_disk_goes_on_where_it_stopped(disk):
    root = storage_path(disk.path.as_uri())
    journal = journal_of(root, 1, retry_seconds=30)
    journal.add(record("1-first"))
    disk.fill()  # the file's last block still has room for part of a line
    disk.free_after(0.5)
    long_reason = "x" * 6000  # more than the room left in the file's last block
    journal.add({**record("1-long"), "reason": long_reason})
    journal.add(record("1-after"))
    journal.close({"total": 3})
    (folder,) = attempts(root)
    lines = (folder / "records.jsonl").read_bytes().splitlines()
    assert [json.loads(line)["order_id"] for line in lines] == ["1-first", "1-long", "1-after"]
    assert json.loads(lines[1])["reason"] == long_reason


def test_a_disk_that_stays_full_fails_the_journal_and_no_summary_is_written(disk):
    root = storage_path(disk.path.as_uri())
    journal = journal_of(root, 1, retry_seconds=0.3)
    journal.add({**record("1-a"), "reason": "x" * 5000})
    disk.fill()  # the next line needs a block, as the first one filled the file's
    full = r"records\.jsonl failed for 0\.[34] s: OSError: .*No space left"
    with pytest.raises(ResultsWriteError, match=full):
        journal.add({**record("1-b"), "reason": "x" * 5000})
    disk.free()
    started = time.monotonic()
    with pytest.raises(ResultsWriteError, match="No space left"):  # failed for good, at once
        journal.write_sent("1-c", ["New"], "Hold")
    assert time.monotonic() - started < 0.2
    with pytest.raises(ResultsWriteError):
        journal.close({"total": 2})
    (folder,) = attempts(root)
    assert not (folder / "summary.json").exists()
    assert newest_attempt(root) is None
    assert written_ids(folder) == ["1-a"]


def test_a_summary_that_does_not_fit_is_not_written_in_part(disk):
    root = storage_path(disk.path.as_uri())
    journal = journal_of(root, 1, retry_seconds=0.3)
    journal.add(record("1-a"))
    disk.fill()
    with pytest.raises(ResultsWriteError, match=r"summary\.json"):
        journal.close({"total": 1, "failed": ["x" * 20000]})
    (folder,) = attempts(root)
    assert sorted(p.name for p in folder.iterdir() if not p.name.startswith(".")) == ["records.jsonl"]


def test_a_failed_upload_is_uploaded_again_under_the_same_number(disk):
    root = object_storage(disk.path)
    journal = journal_of(root, 1, flush_every_records=2, flush_every_seconds=60, retry_seconds=30)
    disk.fill()
    disk.free_after(0.5)
    for name in ("1-a", "1-b", "1-c"):
        journal.add(record(name))
    journal.close({"total": 3})
    (folder,) = attempts(root)
    assert sorted(p.name for p in folder.iterdir()) == [
        "records-000001.jsonl", "records-000002.jsonl", "summary.json",
    ]  # fmt: skip
    assert written_ids(folder) == ["1-a", "1-b", "1-c"]


def test_a_flush_that_fails_on_the_timer_thread_reaches_the_next_record_and_close(disk):
    root = object_storage(disk.path)
    journal = journal_of(root, 1, flush_every_records=1000, flush_every_seconds=0.1, retry_seconds=0.3)
    disk.fill()
    journal.add(record("1-a"))  # flushed by the timer thread, which finds the disk full
    deadline = time.monotonic() + 10
    while journal.failure is None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert journal.failure is not None and "No space left" in journal.failure
    with pytest.raises(ResultsWriteError, match="No space left"):
        journal.add(record("1-b"))
    disk.free()
    with pytest.raises(ResultsWriteError, match="No space left"):
        journal.close({"total": 2})
    assert newest_attempt(root) is None


# -- damaged lines in earlier tries ---------------------------------------------------------------------


def damaged_first_try(root):
    """A try whose files hold every kind of damage, each between good lines."""
    first = journal_of(root, 1)
    for name in ("1-good", "1-torn", "1-flipped", "1-after"):
        first.write_sent(name, ["New"], "Hold")
    first.write_sent("1-nul", ["New"], "Hold")
    first.close()
    (folder,) = attempts(root)
    writes = (folder / "writes.jsonl").read_bytes().splitlines(keepends=True)
    records = [
        json.dumps(record("1-good")).encode() + b"\n",
        json.dumps(record("1-torn")).encode()[:30] + json.dumps(record("1-after")).encode() + b"\n",
        json.dumps(record("1-flipped")).encode().replace(b'"outcome"', b'"outcome\xff') + b"\n",
        json.dumps({**record("x"), "order_id": None}).encode() + b"\n",
        b'{"outcome": "updated", "status": "Hold"}\n',
        b"[1, 2]\n",
        json.dumps(record("1-last")).encode() + b"\n",
    ]
    (folder / "records.jsonl").write_bytes(b"".join(records))
    writes[4] = writes[4].replace(b'"sent_at":', b'"sent_at":"x",')  # 1-nul: a write without its time
    (folder / "writes.jsonl").write_bytes(b"".join(writes) + b'{"status": "Hold"}\n')
    return folder


def test_damaged_lines_of_an_earlier_try_are_skipped_naming_the_file_and_line(root, caplog):
    folder = damaged_first_try(root)
    earlier = load_earlier_results(root, "Hold", dry_run=False)
    assert set(earlier.done) == {"1-good", "1-last"}
    # the torn and flipped records are lost: their writes are settled by reading
    assert set(earlier.writes) == {"1-torn", "1-flipped", "1-after"}
    assert earlier.damaged == 7
    warned = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert len(warned) == 7
    for number in (2, 3, 4, 5, 6):
        assert any(f"{folder / 'records.jsonl'}, line {number}:" in w for w in warned), number
    for number in (5, 6):
        assert any(f"{folder / 'writes.jsonl'}, line {number}:" in w for w in warned), number
    assert all("the order it concerned is read again" in w for w in warned)


def test_a_complete_folder_with_a_damaged_line_is_not_read_as_if_whole(root):
    journal = journal_of(root, 1)
    journal.add(record("1-a"))
    journal.close({"total": 1})
    (folder,) = attempts(root)
    with (folder / "records.jsonl").open("ab") as handle:
        handle.write(b'{"order_id": "1-b", "outco\n')
    with pytest.raises(DamagedResultsError, match=r"records\.jsonl, line 2: not a JSON line"):
        list(read_order_results(str(root)))


# -- reading the results back ---------------------------------------------------------------------------


def test_read_order_results_refuses_an_incomplete_try(root):
    journal = journal_of(root, 1)
    journal.add(record("1-a"))
    journal.close()  # no summary: the try did not record every order
    summary = {"total": 2, "results_path": str(root), "attempt": journal.folder.name}
    with pytest.raises(FileNotFoundError, match=r"incomplete: it has no summary\.json"):
        list(read_order_results(summary))
    with pytest.raises(FileNotFoundError, match=r"incomplete: it has no summary\.json"):
        list(read_order_results(journal.folder))


def test_read_order_results_takes_a_plain_local_path(tmp_path, monkeypatch):
    root = storage_path((tmp_path / "results").as_uri())
    journal = journal_of(root, 1)
    journal.add(record("1-a"))
    journal.close({"total": 1})
    assert [r["order_id"] for r in read_order_results(str(tmp_path / "results"))] == ["1-a"]
    monkeypatch.chdir(tmp_path)
    assert [r["order_id"] for r in read_order_results("results")] == ["1-a"]


@pytest.mark.parametrize("value", ["", "  ", None])
def test_read_order_results_says_what_it_takes_without_a_dag_template(value):
    with pytest.raises(ValueError, match="give what the operator returned") as info:
        list(read_order_results(value))
    assert "{{" not in str(info.value)


@pytest.mark.parametrize(
    ("value", "instead"),
    [
        ("file://tmp/x", "file:///tmp/x"),
        ("file://localhost/data/gooten", "file:///data/gooten"),
        ("local://data/x", "local:///data/x"),
    ],
)
def test_a_local_uri_with_a_host_is_refused_not_written_under_the_working_directory(value, instead):
    with pytest.raises(ValueError, match="a local path takes none") as info:
        storage_path(value)
    assert repr(instead) in str(info.value)
    with pytest.raises(ValueError, match="a local path takes none"):
        list(read_order_results(value))


def test_a_record_that_cannot_be_encoded_leaves_the_folder_incomplete(root):
    journal = journal_of(root, 1)
    journal.add(record("1-a"))
    with pytest.raises(ResultsWriteError, match="'1-b' is not JSON"):
        journal.add({**record("1-b"), "error": object()})
    with pytest.raises(ResultsWriteError):
        journal.close({"total": 2})
    assert newest_attempt(root) is None


def test_a_stopped_task_stops_retrying_a_write_at_once(disk):
    root = storage_path(disk.path.as_uri())
    stopped = threading.Event()
    journal = journal_of(root, 1, retry_seconds=30, give_up=stopped.is_set)
    disk.fill()
    threading.Timer(0.3, stopped.set).start()
    # not the 30 s of retries: the task must end within its stop's grace
    with pytest.raises(ResultsWriteError, match=r"failed for [0-4]\.\d s: OSError: .*No space left"):
        journal.add(record("1-a"))
