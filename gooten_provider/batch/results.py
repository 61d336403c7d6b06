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

A later try reads every earlier folder (:mod:`gooten_provider.batch.results_reader`), and so does whoever
reads the records back.

Paths are ``pathlib``-like objects (an Airflow ``ObjectStoragePath``, a ``pathlib.Path``); this module does
not import Airflow.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from typing import Any

from gooten_provider.batch.records import (
    BatchSummary,
    OrderRecord,
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
ATTEMPT_PREFIX = "attempt-"
RECORDS_STEM = "records"
WRITES_STEM = "writes"
SUMMARY_NAME = "summary.json"


class ResultsWriteError(Exception):
    """The results could not be written, even after retrying: the batch stops, the folder stays incomplete."""


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
