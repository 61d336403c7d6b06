"""Durable results of a batch of order changes: JSON Lines under a results path, and resuming from them.

Every try of a task writes into its own folder under the results path, named after the try::

    <results_path>/attempt-002-20260102T030405123456Z/
        records*.jsonl   one final record per order, as the operator returns it (completion order)
        writes*.jsonl    {"order_id", "previous_statuses", "status", "sent_at"}, made durable *before*
                         each write is sent, so a later try can settle a write it never saw answered
        summary.json     written last, once every record of the try is durably written

On a local disk each kind is one file, and every record is appended as it ends, with an unbuffered write
that reaches the operating system at once (it survives the process being killed; a line costs
microseconds). Object storage cannot append: there records are buffered and each flush, at least every
:data:`FLUSH_EVERY_SECONDS` seconds (or :data:`FLUSH_EVERY_RECORDS` records), is one new numbered object.
So a retry after a kill at any moment re-reads only the orders whose write was in flight.

A write that fails (a full disk, a failed upload) keeps its lines and is retried for
:data:`WRITE_RETRY_SECONDS`; a failure that lasts longer makes the journal fail for good
(:class:`ResultsWriteError`, raised to whoever writes next, whichever thread found it), so the batch stops
and no ``summary.json`` is written: a folder with a summary is always complete.

A later try reads every earlier folder (:func:`load_earlier_results`): orders with a final record are carried
over into its own folder without a request, and writes sent without a recorded outcome are settled by
reading. A damaged line there (a torn write, a flipped byte, a line without an order id) is skipped with a
warning naming the file and line; the order it concerned is read again. So the newest complete folder
always holds every order's record (:func:`newest_attempt`, :func:`iter_records`).

Paths are ``pathlib``-like objects (an Airflow ``ObjectStoragePath``, a ``pathlib.Path``); this module does
not import Airflow.
"""

from __future__ import annotations

import json
import logging
import math
import os
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, cast

from gooten_provider.batch.action import EarlierWrite
from gooten_provider.batch.records import (
    OUTCOMES,
    SETTLED_OUTCOMES,
    BatchSummary,
    OrderRecord,
    Outcome,
)

log = logging.getLogger(__name__)

#: On object storage, buffered records are flushed once this many are waiting...
FLUSH_EVERY_RECORDS = 1000
#: ... or once the oldest has waited this many seconds (each flush is one object).
FLUSH_EVERY_SECONDS = 2.0
#: A write that fails is retried for this many seconds before the results count as unwritable.
WRITE_RETRY_SECONDS = 30.0
#: Longest pause between two tries of a failed write.
_MAX_RETRY_PAUSE = 2.0
#: Damaged lines warned about one by one in one reading of the earlier tries; the rest are counted.
_MAX_DAMAGE_WARNINGS = 20
ATTEMPT_PREFIX = "attempt-"
RECORDS_STEM = "records"
WRITES_STEM = "writes"
SUMMARY_NAME = "summary.json"


class ResultsWriteError(Exception):
    """The results could not be written, even after retrying: the batch stops, the folder stays incomplete."""


class DamagedResultsError(ValueError):
    """A complete try's records hold a line that is not a record (damaged after it was written)."""


def attempt_name(try_number: int, now: datetime | None = None) -> str:
    """The folder of one try: sorted by try number, then by start time (a cleared task restarts its count)."""
    stamp = (now or datetime.now(UTC)).strftime("%Y%m%dT%H%M%S%fZ")
    return f"{ATTEMPT_PREFIX}{max(0, try_number):03d}-{stamp}"


def _is_local(path: Any) -> bool:
    return getattr(path, "protocol", "file") in ("file", "local", "")


def _os_path(path: Any) -> str:
    """The operating system's path of a local path object.

    A universal-pathlib path (``ObjectStoragePath``, ``UPath``) keeps it in ``.path``: ``os.fspath`` gives
    its URI with some versions, or is not defined.
    """
    return str(path.path) if hasattr(path, "protocol") else os.fspath(path)


def _line(value: OrderRecord | dict[str, Any]) -> bytes:
    return (json.dumps(value, separators=(",", ":"), ensure_ascii=False) + "\n").encode()


class _AppendedFile:
    """One file on a local disk, appended with unbuffered writes: each line reaches the OS at once.

    A write cut short (a full disk) keeps what it did not write, and the next one starts there, so a line is
    never torn nor written twice.
    """

    def __init__(self, folder: Any, stem: str) -> None:
        self.name = f"{folder}/{stem}.jsonl"
        self._path = os.path.join(_os_path(folder), f"{stem}.jsonl")
        self._fd: int | None = None
        self._unwritten = bytearray()

    def keep(self, data: bytes) -> None:
        """Queue ``data`` after whatever is not written yet."""
        self._unwritten += data

    def drain(self) -> None:
        """Write everything queued; raise (keeping the rest queued) if not all of it could be written."""
        if self._fd is None and self._unwritten:
            self._fd = os.open(self._path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o644)
        while self._unwritten:
            written = os.write(self._fd, self._unwritten)  # type: ignore[arg-type]  # opened above
            del self._unwritten[:written]

    def sync(self) -> None:
        """Make what was written durable on the disk, not only in the operating system's cache."""
        if self._fd is not None:
            os.fsync(self._fd)

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


class _NumberedParts:
    """Object storage cannot append: every batch of lines is a new object, numbered in order.

    A failed upload keeps its lines, and the next one uploads them again under the same number, with any new
    ones.
    """

    def __init__(self, folder: Any, stem: str) -> None:
        self.name = f"{folder}/{stem}-*.jsonl"
        self._folder = folder
        self._stem = stem
        self._parts = 0
        self._unwritten = b""

    def keep(self, data: bytes) -> None:
        """Queue ``data`` after whatever is not uploaded yet."""
        self._unwritten += data

    def drain(self) -> None:
        """Upload everything queued as one object; raise (keeping it queued) if the upload fails."""
        if not self._unwritten:
            return
        with (self._folder / f"{self._stem}-{self._parts + 1:06d}.jsonl").open("wb") as handle:
            handle.write(self._unwritten)
        self._parts += 1
        self._unwritten = b""

    def sync(self) -> None:
        """An object is whole once its upload returned."""

    def close(self) -> None:
        """Nothing is held open."""


def _write_summary(folder: Any, text: str) -> None:
    """Write ``summary.json`` whole or not at all (one cut short by a full disk would claim completeness)."""
    data = text.encode()
    if not _is_local(folder):
        with (folder / SUMMARY_NAME).open("wb") as handle:  # an object appears whole when uploaded
            handle.write(data)
        return
    directory = _os_path(folder)
    partial = os.path.join(directory, f".{SUMMARY_NAME}.partial")
    fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o644)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(partial, os.path.join(directory, SUMMARY_NAME))
    folder_fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(folder_fd)  # the rename itself survives a crash of the machine
    finally:
        os.close(folder_fd)


class ResultsJournal:
    """The writer of one try's folder; thread-safe (the workers of a batch hand records to it).

    :param give_up: asked while a failed write is being retried; ``True`` stops retrying at once (the task
        was stopped and must end within its grace).
    :raises ResultsWriteError: from any method once the results could not be written.
    """

    def __init__(
        self,
        folder: Any,
        *,
        flush_every_records: int | None = None,
        flush_every_seconds: float | None = None,
        retry_seconds: float | None = None,
        give_up: Callable[[], bool] | None = None,
    ) -> None:
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except Exception as exc:
            raise ResultsWriteError(f"could not create {folder}: {type(exc).__name__}: {exc}") from exc
        self.folder = folder
        self._buffered = not _is_local(folder)
        sink = _NumberedParts if self._buffered else _AppendedFile
        self._records = sink(folder, RECORDS_STEM)
        self._writes = sink(folder, WRITES_STEM)
        self._flush_every_records = flush_every_records or FLUSH_EVERY_RECORDS
        self._flush_every_seconds = flush_every_seconds or FLUSH_EVERY_SECONDS
        self._retry_seconds = WRITE_RETRY_SECONDS if retry_seconds is None else retry_seconds
        self._give_up = give_up or (lambda: False)
        self._buffer: list[bytes] = []
        self._oldest: float | None = None
        #: Why the results could not be written, once they could not: every later write raises it.
        self._failure: str | None = None
        self._lock = threading.Lock()  # guards the buffer
        self._io_lock = threading.Lock()  # one writer at a time, in order
        self._closed = threading.Event()
        self._timer: threading.Thread | None = None
        if self._buffered:
            self._timer = threading.Thread(
                target=self._flush_periodically, name="gooten-results", daemon=True
            )
            self._timer.start()

    @property
    def failure(self) -> str | None:
        """Why the results could not be written, or ``None`` while they can."""
        return self._failure

    def write_sent(self, order_id: str, previous_statuses: Any, target: str) -> None:
        """Record, durably and before it is sent, that a write of ``order_id`` to ``target`` is being sent."""
        entry = {
            "order_id": order_id,
            "previous_statuses": list(previous_statuses),
            "status": target,
            "sent_at": time.time(),
        }
        with self._io_lock:
            self._writes.keep(_line(entry))
            self._retrying(self._writes.name, self._writes.drain)

    def add(self, record: OrderRecord) -> None:
        """Write one order's final record (on object storage: buffer it; flush when enough are waiting)."""
        try:
            line = _line(record)
        except (TypeError, ValueError) as exc:  # a record lost so must not leave a complete-looking folder
            self._failure = f"a record of {record['order_id']!r} is not JSON ({exc})"
            raise ResultsWriteError(self._failure) from exc
        self.carry_over([line])

    def carry_over(self, lines: Iterable[bytes]) -> None:
        """Write records already encoded as JSON lines (records carried over from an earlier try)."""
        data = b"".join(line if line.endswith(b"\n") else line + b"\n" for line in lines)
        if not self._buffered:
            with self._io_lock:
                self._records.keep(data)
                self._retrying(self._records.name, self._records.drain)
            return
        if self._failure is not None:  # found by the timer thread: the batch learns it here
            raise ResultsWriteError(self._failure)
        with self._lock:
            self._buffer.append(data)
            if self._oldest is None:
                self._oldest = time.monotonic()
            due = len(self._buffer) >= self._flush_every_records
        if due:
            self.flush()

    def flush(self) -> None:
        """Write every buffered record (object storage: as one object)."""
        with self._io_lock:
            with self._lock:
                lines, self._buffer, self._oldest = self._buffer, [], None
            self._records.keep(b"".join(lines))
            self._retrying(self._records.name, self._records.drain)

    def _retrying(self, name: str, write: Callable[[], None]) -> None:
        """Run ``write`` (the caller holds the I/O lock), again and again while it fails, for a while.

        Each sink keeps what it could not write, so a retry writes the same lines again, and no other line
        is written meanwhile. When the failure lasts longer than the retry time (or ``give_up`` says so),
        the journal fails for good.
        """
        if self._failure is not None:
            raise ResultsWriteError(self._failure)
        first_failure: float | None = None
        pause = 0.05
        while True:
            try:
                write()
                if first_failure is not None:
                    log.warning("Writing the results to %s works again.", name)
                return
            except Exception as exc:
                now = time.monotonic()
                if first_failure is None:
                    first_failure = now
                    log.warning(
                        "Writing the results to %s failed (%s: %s); retrying for up to %g s.",
                        name,
                        type(exc).__name__,
                        exc,
                        self._retry_seconds,
                    )
                deadline = first_failure + self._retry_seconds
                if now >= deadline or self._give_up():
                    self._failure = f"writing {name} failed for {now - first_failure:.1f} s: " + (
                        f"{type(exc).__name__}: {exc}"
                    )
                    raise ResultsWriteError(self._failure) from exc
            time.sleep(min(pause, max(0.0, deadline - time.monotonic())))
            pause = min(pause * 2, _MAX_RETRY_PAUSE)

    def _flush_periodically(self) -> None:
        tick = min(1.0, max(0.05, self._flush_every_seconds / 4))
        while not self._closed.wait(tick):
            oldest = self._oldest
            if oldest is not None and time.monotonic() - oldest >= self._flush_every_seconds:
                try:
                    self.flush()
                except ResultsWriteError:
                    return  # kept in self._failure: the next record, write or close raises it

    def close(self, summary: BatchSummary | None = None) -> None:
        """Write the rest; with a summary, make every line durable, then write the summary last.

        A summary means every order was recorded: with it, the folder is complete.

        :raises ResultsWriteError: a record, a write's entry or the summary could not be written, now or
            earlier; then the folder has no summary.
        """
        self._closed.set()
        if self._timer is not None:
            self._timer.join()
        try:
            if self._buffered:
                self.flush()
            with self._io_lock:
                if self._failure is not None:
                    raise ResultsWriteError(self._failure)
                if summary is None:
                    return
                for sink in (self._records, self._writes):
                    try:
                        sink.sync()
                    except OSError as exc:  # after a failed fsync the data may be lost: no retry can tell
                        self._failure = f"making {sink.name} durable failed: {type(exc).__name__}: {exc}"
                        raise ResultsWriteError(self._failure) from exc
                text = json.dumps(summary, indent=1)
                self._retrying(f"{self.folder}/{SUMMARY_NAME}", lambda: _write_summary(self.folder, text))
        finally:
            self._records.close()
            self._writes.close()


@dataclass
class EarlierResults:
    """What earlier tries recorded, for a try that resumes them (keys are order ids in lower case)."""

    #: The JSON line of each order's final record.
    done: dict[str, bytes] = field(default_factory=dict)
    #: Writes sent without a final record after them, to settle by reading.
    writes: dict[str, EarlierWrite] = field(default_factory=dict)
    attempts: int = 0
    #: Lines skipped because they were damaged.
    damaged: int = 0


def attempts(results_path: Any) -> list[Any]:
    """Every try's folder under ``results_path``, oldest first (none when the path does not exist)."""
    try:
        children = list(results_path.iterdir())
    except (FileNotFoundError, NotADirectoryError):
        return []
    return sorted((c for c in children if c.name.startswith(ATTEMPT_PREFIX)), key=lambda c: c.name)


def _files(folder: Any, stem: str) -> list[Any]:
    try:
        children = list(folder.iterdir())
    except FileNotFoundError:
        return []
    return sorted((c for c in children if c.name.startswith(stem) and c.name.endswith(".jsonl")), key=str)


def _is_text(value: Any) -> bool:
    return isinstance(value, str) and bool(value)


def _is_statuses(value: Any) -> bool:
    return isinstance(value, list) and all(isinstance(status, str) for status in value)


def _write_problem(entry: Any) -> str | None:
    """What makes a line of ``writes*.jsonl`` unusable, or ``None``."""
    if not isinstance(entry, dict) or not _is_text(entry.get("order_id")):
        return "no order_id"
    sent_at = entry.get("sent_at")
    if not _is_text(entry.get("status")) or not _is_statuses(entry.get("previous_statuses")):
        return "no status or previous_statuses"
    if isinstance(sent_at, bool) or not isinstance(sent_at, (int, float)) or not math.isfinite(sent_at):
        return "no sent_at time"
    return None


def _record_problem(record: Any) -> str | None:
    """What makes a line of ``records*.jsonl`` unusable, or ``None``."""
    if not isinstance(record, dict) or not _is_text(record.get("order_id")):
        return "no order_id"
    if record.get("outcome") not in OUTCOMES or not _is_text(record.get("status")):
        return "no known outcome or status"
    if not isinstance(record.get("error"), (str, type(None))) or not _is_statuses(
        record.get("previous_statuses")
    ):
        return "no error text or previous_statuses"
    return None


@dataclass(frozen=True)
class _Damage:
    """A line that is not what its file holds."""

    file: Any
    line: int
    problem: str

    def __str__(self) -> str:
        return f"{self.file}, line {self.line}: {self.problem}"


def _entries(
    folder: Any, stem: str, problem_of: Callable[[Any], str | None]
) -> Iterator[tuple[dict[str, Any], bytes] | _Damage]:
    """Each complete line of a folder's files of one kind: the value and its bytes, or what damaged it."""
    for part in _files(folder, stem):
        with part.open("rb") as handle:
            for number, line in enumerate(handle, start=1):
                if not line.endswith(b"\n"):  # the last line, cut by a crash: not a record
                    continue
                try:
                    value = json.loads(line)
                except ValueError as exc:  # not JSON, or not UTF-8 (a torn write, a flipped byte)
                    yield _Damage(part, number, f"not a JSON line ({exc})")
                    continue
                problem = problem_of(value)
                yield _Damage(part, number, problem) if problem else (value, line)


def _damaged(earlier: EarlierResults, damage: _Damage) -> None:
    earlier.damaged += 1
    if earlier.damaged <= _MAX_DAMAGE_WARNINGS:
        log.warning(
            "Skipped a damaged line of an earlier try's results, %s; the order it concerned is read again.",
            damage,
        )


def _read_writes(folder: Any, target: str, earlier: EarlierResults) -> None:
    """Take the writes to ``target`` one try sent: each one is to settle, unless a later record settles it."""
    for item in _entries(folder, WRITES_STEM, _write_problem):
        if isinstance(item, _Damage):
            _damaged(earlier, item)
            continue
        sent, _ = item
        if sent["status"] == target:
            key = sent["order_id"].lower()
            earlier.writes[key] = EarlierWrite(tuple(sent["previous_statuses"]), float(sent["sent_at"]))
            earlier.done.pop(key, None)


def _read_records(folder: Any, target: str, dry_run: bool, earlier: EarlierResults) -> None:
    """Take the final records one try wrote: settled ones (same target, same kind of run) are carried over."""
    for item in _entries(folder, RECORDS_STEM, _record_problem):
        if isinstance(item, _Damage):
            _damaged(earlier, item)
            continue
        record, line = item
        key = record["order_id"].lower()
        outcome = record["outcome"]
        final = outcome in SETTLED_OUTCOMES and (outcome == Outcome.DRY_RUN) == dry_run
        if final and record["status"] == target:
            earlier.done[key] = line
        else:
            earlier.done.pop(key, None)


def load_earlier_results(results_path: Any, target: str, *, dry_run: bool) -> EarlierResults:
    """Read every earlier try under ``results_path``: the final records to carry over, the writes to settle.

    A record counts only for the same target and the same kind of run (a dry run's records do not settle a
    real run, nor the other way round). A later record of an order replaces an earlier one. A damaged line
    is skipped with a warning naming its file and line: the order it concerned has no record, so it is
    read again (a write's entry that is lost so is settled by that read).
    """
    earlier = EarlierResults()
    for folder in attempts(results_path):
        earlier.attempts += 1
        _read_writes(folder, target, earlier)
        _read_records(folder, target, dry_run, earlier)
    if earlier.damaged > _MAX_DAMAGE_WARNINGS:
        log.warning(
            "Skipped %d damaged lines of earlier tries' results in all (the first %d are named above).",
            earlier.damaged,
            _MAX_DAMAGE_WARNINGS,
        )
    for key in earlier.done:
        earlier.writes.pop(key, None)
    return earlier


def is_complete(folder: Any) -> bool:
    """Whether a try's folder holds every order's record, durably: it has its ``summary.json``."""
    return bool((folder / SUMMARY_NAME).exists())


def newest_attempt(results_path: Any, *, complete: bool = True) -> Any | None:
    """The newest try's folder (with ``complete``, the newest whose every order was recorded), or ``None``."""
    for folder in reversed(attempts(results_path)):
        if not complete or is_complete(folder):
            return folder
    return None


def iter_records(folder: Any) -> Iterator[OrderRecord]:
    """Yield the records of one try's folder, one per order, without holding them all in memory.

    :raises DamagedResultsError: a line is not a record (naming the file and line).
    """
    for item in _entries(folder, RECORDS_STEM, _record_problem):
        if isinstance(item, _Damage):
            raise DamagedResultsError(
                f"Damaged Gooten results at {item}. Run the task again: it reads the order of that line "
                "again and writes a complete folder."
            )
        yield cast("OrderRecord", item[0])  # checked by _record_problem
