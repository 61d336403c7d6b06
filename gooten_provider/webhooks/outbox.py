"""The relay's outbox: accepted order changes in a local SQLite file until Airflow has them.

A change is committed (WAL journal, ``synchronous=FULL``: on disk before the commit returns) before the
relay answers Gooten, so neither an Airflow outage nor a relay restart loses it. Rows hold only the
:class:`~gooten_provider.webhooks.order_change.OrderChange` fields, never the order JSON.

Delivery bookkeeping (delivered, failed attempts, pruning) goes through a second connection with
``synchronous=NORMAL``: no ``fsync`` of its own. A crash may forget that a change was delivered, and it is
then delivered again after the restart: delivery is at least once (consumers tell events apart by
``change_id``), and a change is never lost.

A change Airflow refuses for good (an answer that retrying cannot change, such as 422) is **parked** after
a few refusals: kept, with its last error, but no longer pending, so the changes after it flow on.
:meth:`Outbox.requeue` makes it pending again (``python -m gooten_provider.webhooks parked --requeue``).

Exact duplicates collapse: a change of an order whose latest change has the same item statuses and was
received within the dedupe window only increments that row's ``duplicates``. (Comparing with the latest
change, not any change in the window, keeps New -> Hold -> New as three changes.)

The connections serve every thread, behind one lock; the relay calls :meth:`Outbox.add` from worker
threads so that a commit's ``fsync`` never blocks the event loop.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from gooten_provider.webhooks.order_change import OrderChange

SCHEMA_VERSION = 2
_SCHEMA = """
CREATE TABLE IF NOT EXISTS changes (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    change_id TEXT NOT NULL UNIQUE,
    order_id TEXT NOT NULL,
    nice_id TEXT,
    item_statuses TEXT NOT NULL,
    received_at REAL NOT NULL,
    duplicates INTEGER NOT NULL DEFAULT 0,
    attempts INTEGER NOT NULL DEFAULT 0,
    last_attempt_at REAL,
    last_error TEXT,
    delivered_at REAL,
    refusals INTEGER NOT NULL DEFAULT 0,
    parked_at REAL
);
CREATE INDEX IF NOT EXISTS changes_by_order ON changes (order_id, id);
CREATE INDEX IF NOT EXISTS changes_pending ON changes (id) WHERE delivered_at IS NULL;
"""
# Version 1 had no parking: its rows are all pending or delivered.
_UPGRADE_FROM_1 = """
ALTER TABLE changes ADD COLUMN refusals INTEGER NOT NULL DEFAULT 0;
ALTER TABLE changes ADD COLUMN parked_at REAL;
"""


@dataclass(frozen=True)
class Stored:
    """What :meth:`Outbox.add` did: the row id, and whether it was a duplicate of that row."""

    row_id: int
    duplicate: bool


@dataclass(frozen=True)
class PendingChange:
    """An undelivered change, as read back from the outbox."""

    row_id: int
    change: OrderChange
    attempts: int


@dataclass(frozen=True)
class ParkedChange:
    """A change Airflow refused for good, set aside until someone queues it again."""

    row_id: int
    change: OrderChange
    refusals: int
    parked_at: float
    last_error: str | None


@dataclass(frozen=True)
class OutboxStats:
    """Counts over the outbox (delivered rows are kept for the dedupe window, then pruned)."""

    pending: int
    delivered: int
    duplicates: int
    oldest_pending_received_at: float | None
    parked: int = 0


def _change(row: tuple[Any, ...]) -> PendingChange:
    row_id, change_id, order_id, nice_id, statuses, received_at, attempts = row
    change = OrderChange(
        order_id=order_id,
        nice_id=nice_id,
        item_statuses=tuple(json.loads(statuses)),
        received_at=datetime.fromtimestamp(received_at, UTC),
        change_id=change_id,
    )
    return PendingChange(row_id=row_id, change=change, attempts=attempts)


class Outbox:
    """Accepted changes in a SQLite file, oldest first.

    :param path: the SQLite file (created with its directory if missing).
    :param dedupe_window: seconds within which an exact duplicate of an order's latest change collapses.
    """

    def __init__(self, path: str | Path, dedupe_window: float = 600.0) -> None:
        if dedupe_window < 0:
            raise ValueError(f"dedupe_window must be zero or more seconds, got {dedupe_window!r}.")
        self.path = Path(path)
        self.dedupe_window = float(dedupe_window)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._writer = self._connect("FULL")  # accepted changes: on disk before the answer
        self._db = self._connect("NORMAL")  # reads and delivery bookkeeping
        version = self._db.execute("PRAGMA user_version").fetchone()[0]
        if version not in (0, 1, SCHEMA_VERSION):
            self.close()
            raise RuntimeError(
                f"{self.path} is an outbox of schema version {version}; this relay reads versions 1 to "
                f"{SCHEMA_VERSION}. Run the relay version that wrote it until its outbox is delivered."
            )
        if version == 1:
            self._db.executescript(f"BEGIN IMMEDIATE; {_UPGRADE_FROM_1} PRAGMA user_version = 2; COMMIT;")
        self._db.executescript(_SCHEMA)
        self._db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")

    def _connect(self, synchronous: str) -> sqlite3.Connection:
        db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False, timeout=30)
        db.execute("PRAGMA journal_mode=WAL")
        db.execute(f"PRAGMA synchronous={synchronous}")
        return db

    def close(self) -> None:
        """Close the database connections."""
        with self._lock:
            self._writer.close()
            self._db.close()

    def add(self, change: OrderChange) -> Stored:
        """Commit a change, or count it as a duplicate of the order's latest change; durable on return."""
        return self.add_many([change])[0]

    def add_many(self, changes: Sequence[OrderChange]) -> list[Stored]:
        """Commit changes in one transaction (one ``fsync``), in order; durable on return.

        Each is compared with its order's latest change, including one added earlier in the same call.
        """
        with self._lock:
            self._writer.execute("BEGIN IMMEDIATE")
            try:
                stored = [self._add(change) for change in changes]
                self._writer.execute("COMMIT")
            except BaseException:
                self._writer.execute("ROLLBACK")
                raise
        return stored

    def _add(self, change: OrderChange) -> Stored:
        statuses = json.dumps(list(change.item_statuses))
        received = change.received_at.timestamp()
        latest = self._writer.execute(
            "SELECT id, item_statuses, received_at FROM changes WHERE order_id = ? ORDER BY id DESC LIMIT 1",
            (change.order_id,),
        ).fetchone()
        if latest is not None and latest[1] == statuses and 0 <= received - latest[2] <= self.dedupe_window:
            self._writer.execute("UPDATE changes SET duplicates = duplicates + 1 WHERE id = ?", (latest[0],))
            return Stored(latest[0], duplicate=True)
        cursor = self._writer.execute(
            "INSERT INTO changes (change_id, order_id, nice_id, item_statuses, received_at) "
            "VALUES (?, ?, ?, ?, ?)",
            (change.change_id, change.order_id, change.nice_id, statuses, received),
        )
        return Stored(int(cursor.lastrowid or 0), duplicate=False)

    def pending(self, limit: int = 100) -> list[PendingChange]:
        """The oldest undelivered changes that are not parked, oldest first."""
        with self._lock:
            rows = self._db.execute(
                "SELECT id, change_id, order_id, nice_id, item_statuses, received_at, attempts FROM changes "
                "WHERE delivered_at IS NULL AND parked_at IS NULL ORDER BY id LIMIT ?",
                (limit,),
            ).fetchall()
        return [_change(row) for row in rows]

    def mark_delivered(self, row_id: int, at: float) -> None:
        """Record that Airflow accepted the change (``at``: Unix time)."""
        with self._lock:
            self._db.execute(
                "UPDATE changes SET delivered_at = ?, attempts = attempts + 1, last_attempt_at = ? "
                "WHERE id = ?",
                (at, at, row_id),
            )

    def mark_failed(self, row_id: int, error: str, at: float) -> None:
        """Record a failed delivery attempt and why (``error`` must hold no secret: it is stored)."""
        with self._lock:
            self._db.execute(
                "UPDATE changes SET attempts = attempts + 1, last_attempt_at = ?, last_error = ? "
                "WHERE id = ?",
                (at, error, row_id),
            )

    def mark_refused(self, row_id: int, error: str, at: float, park_after: int) -> bool:
        """Record that Airflow refused the change for good; park it at its ``park_after``-th refusal.

        Returns whether it is now parked. (``error`` must hold no secret: it is stored.)
        """
        # No UPDATE ... RETURNING: SQLite before 3.35 (RHEL 9's 3.34, say) lacks it.
        with self._lock:
            self._db.execute(
                "UPDATE changes SET attempts = attempts + 1, last_attempt_at = ?, last_error = ?, "
                "refusals = refusals + 1, parked_at = CASE WHEN refusals + 1 >= ? THEN ? END WHERE id = ?",
                (at, error, park_after, at, row_id),
            )
            parked = self._db.execute("SELECT parked_at FROM changes WHERE id = ?", (row_id,)).fetchone()
        return parked is not None and parked[0] is not None

    def parked(self) -> list[ParkedChange]:
        """Every parked change, oldest first."""
        with self._lock:
            rows = self._db.execute(
                "SELECT id, change_id, order_id, nice_id, item_statuses, received_at, attempts, refusals, "
                "parked_at, last_error FROM changes WHERE delivered_at IS NULL AND parked_at IS NOT NULL "
                "ORDER BY id"
            ).fetchall()
        return [
            ParkedChange(
                row_id=row[0],
                change=_change(row[:7]).change,
                refusals=row[7],
                parked_at=row[8],
                last_error=row[9],
            )
            for row in rows
        ]

    def requeue(self, row_ids: Sequence[int] | None = None) -> list[int]:
        """Make parked changes pending again (all, or those of ``row_ids``), their refusals forgotten.

        Returns the row ids queued again; a running relay picks them up within
        :data:`~gooten_provider.webhooks.delivery.IDLE_POLL` seconds.
        """
        with self._lock:
            parked = {
                row[0]
                for row in self._db.execute(
                    "SELECT id FROM changes WHERE delivered_at IS NULL AND parked_at IS NOT NULL"
                )
            }
            chosen = sorted(parked if row_ids is None else parked & set(row_ids))
            self._db.executemany(
                "UPDATE changes SET parked_at = NULL, refusals = 0 WHERE id = ?", [(i,) for i in chosen]
            )
        return chosen

    def errors(self) -> list[str]:
        """Every stored delivery error text (for troubleshooting, and for tests that audit them)."""
        with self._lock:
            rows = self._db.execute("SELECT last_error FROM changes WHERE last_error IS NOT NULL").fetchall()
        return [row[0] for row in rows]

    def stats(self) -> OutboxStats:
        """Pending, delivered and parked counts, duplicates collapsed, and the oldest pending change."""
        with self._lock:
            pending, delivered, duplicates, oldest, parked = self._db.execute(
                "SELECT COALESCE(SUM(delivered_at IS NULL AND parked_at IS NULL), 0), "
                "COALESCE(SUM(delivered_at IS NOT NULL), 0), COALESCE(SUM(duplicates), 0), "
                "MIN(CASE WHEN delivered_at IS NULL AND parked_at IS NULL THEN received_at END), "
                "COALESCE(SUM(delivered_at IS NULL AND parked_at IS NOT NULL), 0) FROM changes"
            ).fetchone()
        return OutboxStats(int(pending), int(delivered), int(duplicates), oldest, int(parked))

    def prune(self, delivered_before: float) -> int:
        """Delete changes delivered before ``delivered_before`` (Unix time); return how many."""
        with self._lock:
            cursor = self._db.execute(
                "DELETE FROM changes WHERE delivered_at IS NOT NULL AND delivered_at < ?", (delivered_before,)
            )
        return cursor.rowcount
