"""Group commit: the changes of concurrent webhooks share one outbox transaction, and one ``fsync``.

Each request hands its change to one writer thread and awaits the outcome. The thread takes every change
waiting at that moment and commits them together with :meth:`Outbox.add_many`: at a few webhooks a second
that is one change per commit, as before; when the disk is slow or webhooks come in bursts, the ones that
queued meanwhile are committed by a single ``fsync`` instead of one after the other. Every change is still
on disk before its webhook is answered. When the shared transaction fails, its changes are committed one
by one, so that one change the outbox refuses never costs its neighbours their place.
"""

from __future__ import annotations

import asyncio
import queue
import threading
from typing import Any

from gooten_provider.webhooks.order_change import OrderChange
from gooten_provider.webhooks.outbox import Outbox, Stored

#: The most changes committed in one transaction.
MAX_BATCH = 256

_Item = tuple[OrderChange, asyncio.AbstractEventLoop, "asyncio.Future[Stored]"]


def _settle(future: asyncio.Future[Any], result: Any, error: BaseException | None) -> None:
    if future.done():  # the request went away (client disconnected): nobody waits for it
        return
    if error is not None:
        future.set_exception(error)
    else:
        future.set_result(result)


class GroupCommitter:
    """Commits accepted changes to the outbox from one thread, all that are waiting in one transaction."""

    def __init__(self, outbox: Outbox) -> None:
        self.outbox = outbox
        self._queue: queue.SimpleQueue[_Item | None] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """Start the writer thread."""
        self._thread = threading.Thread(target=self._run, name="gooten-relay-outbox-writer", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        """Commit what is queued, then stop the thread."""
        self._queue.put(None)
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None

    async def add(self, change: OrderChange) -> Stored:
        """Commit a change (or count it as a duplicate); return once it is on disk.

        :raises sqlite3.Error: the outbox could not be written.
        """
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Stored] = loop.create_future()
        self._queue.put((change, loop, future))
        return await future

    def _run(self) -> None:
        stopping = False
        while not stopping:
            first = self._queue.get()
            if first is None:
                break
            batch = [first]
            while len(batch) < MAX_BATCH:
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    break
                if item is None:
                    stopping = True
                    break
                batch.append(item)
            changes = [change for change, _, _ in batch]
            for (_, loop, future), (result, error) in zip(batch, self._commit(changes), strict=True):
                loop.call_soon_threadsafe(_settle, future, result, error)

    def _commit(self, changes: list[OrderChange]) -> list[tuple[Stored | None, BaseException | None]]:
        """Each change's outcome: all in one transaction, or one by one when that fails.

        A change the outbox refuses (a disk error, a value SQLite cannot take) rolls the shared transaction
        back; committing the changes one by one then refuses only that one, and its neighbours, which
        were fine, are stored and answered 200.
        """
        try:
            return [(stored, None) for stored in self.outbox.add_many(changes)]
        except Exception as failure:  # answered 503 by the request that waits for it
            if len(changes) == 1:
                return [(None, failure)]
        outcomes: list[tuple[Stored | None, BaseException | None]] = []
        for change in changes:
            try:
                outcomes.append((self.outbox.add(change), None))
            except Exception as failure:
                outcomes.append((None, failure))
        return outcomes
