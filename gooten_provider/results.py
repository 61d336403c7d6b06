"""Durable results of a batch of order changes: JSON Lines under a results path, and resuming from them.

Every try of a task writes into its own folder under the results path, named after the try::

    <results_path>/attempt-002-20260102T030405123456Z/
        records*.jsonl   one final record per order, as the operator returns it (completion order)
        writes*.jsonl    {"order_id", "previous_statuses", "status", "sent_at"}, made durable *before*
                         each write is sent, so a later try can settle a write it never saw answered
        summary.json     written last, when the try has recorded every order

Records are buffered and flushed at least every :data:`FLUSH_EVERY_RECORDS` records or
:data:`FLUSH_EVERY_SECONDS` seconds, and at the end (a stop included). On a local disk each kind is one file,
appended and flushed to the operating system (it survives the process being killed); on object storage,
which cannot append, each flush is a new numbered object. A later try reads every earlier folder
(:func:`load_earlier_results`): orders with a final record are carried over into its own folder without a
request, and writes sent without a recorded outcome are settled by reading. So the newest complete folder
always holds every order's record (:func:`newest_attempt`, :func:`iter_records`).

Paths are ``pathlib``-like objects (an Airflow ``ObjectStoragePath``, a ``pathlib.Path``); this module does
not import Airflow.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from gooten_provider.order_status_change import DRY_RUN, INELIGIBLE, UNCHANGED, UPDATED, EarlierWrite

#: Buffered records are flushed once this many are waiting...
FLUSH_EVERY_RECORDS = 1000
#: ... or once the oldest has waited this many seconds.
FLUSH_EVERY_SECONDS = 10.0
#: Outcomes that are final: a later try carries them over instead of touching the order again.
SETTLED_OUTCOMES: frozenset[str] = frozenset({UPDATED, UNCHANGED, INELIGIBLE, DRY_RUN})
ATTEMPT_PREFIX = "attempt-"
RECORDS_STEM = "records"
WRITES_STEM = "writes"
SUMMARY_NAME = "summary.json"


def attempt_name(try_number: int, now: datetime | None = None) -> str:
    """The folder of one try: sorted by try number, then by start time (a cleared task restarts its count)."""
    stamp = (now or datetime.now(UTC)).strftime("%Y%m%dT%H%M%S%fZ")
    return f"{ATTEMPT_PREFIX}{max(0, try_number):03d}-{stamp}"


def _is_local(path: Any) -> bool:
    return getattr(path, "protocol", "file") in ("file", "local", "")


def _line(value: dict[str, Any]) -> bytes:
    return (json.dumps(value, separators=(",", ":"), ensure_ascii=False) + "\n").encode()


class _AppendedFile:
    """One file on a local disk, appended and flushed to the operating system at every batch of lines."""

    def __init__(self, folder: Any, stem: str) -> None:
        self._path = folder / f"{stem}.jsonl"
        self._handle: Any = None

    def append(self, data: bytes) -> None:
        if self._handle is None:
            self._handle = self._path.open("ab")
        self._handle.write(data)
        self._handle.flush()

    def close(self) -> None:
        if self._handle is not None:
            self._handle.close()


class _NumberedParts:
    """Object storage cannot append: every batch of lines is a new object, numbered in order."""

    def __init__(self, folder: Any, stem: str) -> None:
        self._folder = folder
        self._stem = stem
        self._parts = 0

    def append(self, data: bytes) -> None:
        self._parts += 1
        with (self._folder / f"{self._stem}-{self._parts:06d}.jsonl").open("wb") as handle:
            handle.write(data)

    def close(self) -> None:
        """Nothing is held open."""


class ResultsJournal:
    """The writer of one try's folder; thread-safe (the workers of a batch hand records to it)."""

    def __init__(
        self,
        folder: Any,
        *,
        flush_every_records: int | None = None,
        flush_every_seconds: float | None = None,
    ) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        self.folder = folder
        sink = _AppendedFile if _is_local(folder) else _NumberedParts
        self._records = sink(folder, RECORDS_STEM)
        self._writes = sink(folder, WRITES_STEM)
        self._flush_every_records = flush_every_records or FLUSH_EVERY_RECORDS
        self._flush_every_seconds = flush_every_seconds or FLUSH_EVERY_SECONDS
        self._buffer: list[bytes] = []
        self._oldest: float | None = None
        self._lock = threading.Lock()  # guards the buffer
        self._io_lock = threading.Lock()  # one writer of each file at a time, in order
        self._closed = threading.Event()
        self._timer = threading.Thread(target=self._flush_periodically, name="gooten-results", daemon=True)
        self._timer.start()

    def write_sent(self, order_id: str, previous_statuses: Any, target: str) -> None:
        """Record, durably and before it is sent, that a write of ``order_id`` to ``target`` is being sent."""
        entry = {
            "order_id": order_id,
            "previous_statuses": list(previous_statuses),
            "status": target,
            "sent_at": time.time(),
        }
        with self._io_lock:
            self._writes.append(_line(entry))

    def add(self, record: dict[str, Any]) -> None:
        """Buffer one order's final record; flush when enough are waiting."""
        self.add_line(_line(record))

    def add_line(self, line: bytes) -> None:
        """Buffer one record already encoded as a JSON line (a record carried over from an earlier try)."""
        with self._lock:
            self._buffer.append(line if line.endswith(b"\n") else line + b"\n")
            if self._oldest is None:
                self._oldest = time.monotonic()
            due = len(self._buffer) >= self._flush_every_records
        if due:
            self.flush()

    def flush(self) -> None:
        """Write every buffered record."""
        with self._io_lock:
            with self._lock:
                lines, self._buffer, self._oldest = self._buffer, [], None
            if lines:
                self._records.append(b"".join(lines))

    def _flush_periodically(self) -> None:
        while not self._closed.wait(min(1.0, self._flush_every_seconds)):
            oldest = self._oldest
            if oldest is not None and time.monotonic() - oldest >= self._flush_every_seconds:
                self.flush()

    def close(self, summary: dict[str, Any] | None = None) -> None:
        """Flush the rest; with a summary (every order recorded), write it last: the folder is complete."""
        self._closed.set()
        self._timer.join()
        self.flush()
        self._records.close()
        self._writes.close()
        if summary is not None:
            (self.folder / SUMMARY_NAME).write_text(json.dumps(summary, indent=1))


@dataclass
class EarlierResults:
    """What earlier tries recorded, for a try that resumes them (keys are order ids in lower case)."""

    #: The JSON line of each order's final record.
    done: dict[str, bytes] = field(default_factory=dict)
    #: Writes sent without a final record after them, to settle by reading.
    writes: dict[str, EarlierWrite] = field(default_factory=dict)
    attempts: int = 0


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


def _lines(folder: Any, stem: str) -> Iterator[bytes]:
    for part in _files(folder, stem):
        with part.open("rb") as handle:
            for line in handle:
                if line.endswith(b"\n"):  # a line cut by a crash is not a record
                    yield line


def load_earlier_results(results_path: Any, target: str, *, dry_run: bool) -> EarlierResults:
    """Read every earlier try under ``results_path``: the final records to carry over, the writes to settle.

    A record counts only for the same target and the same kind of run (a dry run's records do not settle a
    real run, nor the other way round). A later record of an order replaces an earlier one.
    """
    earlier = EarlierResults()
    for folder in attempts(results_path):
        earlier.attempts += 1
        for line in _lines(folder, WRITES_STEM):
            sent = json.loads(line)
            if sent.get("status") == target:
                key = sent["order_id"].lower()
                earlier.writes[key] = EarlierWrite(tuple(sent["previous_statuses"]), float(sent["sent_at"]))
                earlier.done.pop(key, None)
        for line in _lines(folder, RECORDS_STEM):
            record = json.loads(line)
            key = record["order_id"].lower()
            final = record["outcome"] in SETTLED_OUTCOMES and (record["outcome"] == DRY_RUN) == dry_run
            if final and record.get("status") == target:
                earlier.done[key] = line
            else:
                earlier.done.pop(key, None)
    for key in earlier.done:
        earlier.writes.pop(key, None)
    return earlier


def newest_attempt(results_path: Any, *, complete: bool = True) -> Any | None:
    """The newest try's folder (with ``complete``, the newest whose every order was recorded), or ``None``."""
    for folder in reversed(attempts(results_path)):
        if not complete or (folder / SUMMARY_NAME).exists():
            return folder
    return None


def iter_records(folder: Any) -> Iterator[dict[str, Any]]:
    """Yield the records of one try's folder, one per order, without holding them all in memory."""
    for line in _lines(folder, RECORDS_STEM):
        yield json.loads(line)
