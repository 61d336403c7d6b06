"""One outbox, one relay: an exclusive lock on a file beside the outbox, held while the relay runs.

Two relays on one outbox would each deliver every pending change, so Airflow would get most of them
twice. The relay takes a ``flock`` on ``<outbox>.lock`` before it opens the outbox and keeps it until it
stops; the kernel releases it when the process ends in any way (SIGKILL, a crash), so no stale lock
outlives a relay. The file holds the holder's process id, for the message a second relay gives.

Reading the outbox is not locked: ``python -m gooten_provider.webhooks parked`` works beside a running
relay.
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path
from typing import IO


class OutboxInUse(RuntimeError):
    """Another relay holds the outbox's lock; the message names the outbox and that relay's process."""


def lock_path(outbox: Path) -> Path:
    """The lock file of an outbox: ``<outbox>.lock`` beside it."""
    return outbox.with_name(outbox.name + ".lock")


class OutboxLock:
    """The exclusive lock of one outbox, held from :meth:`acquire` until :meth:`release` or process exit."""

    def __init__(self, outbox: Path) -> None:
        self.outbox = outbox
        self.path = lock_path(outbox)
        self._file: IO[str] | None = None

    def acquire(self) -> OutboxLock:
        """Take the lock, or fail at once.

        :raises OutboxInUse: another relay (in this process or another) holds it.
        :raises OSError: the lock file cannot be created (a read-only directory, say).
        """
        self.path.parent.mkdir(parents=True, exist_ok=True)
        handle = self.path.open("a+", encoding="utf-8")
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read().strip()
            handle.close()
            raise OutboxInUse(
                f"Another relay already uses the outbox {self.outbox}"
                + (f" (process {holder})" if holder.isdigit() else "")
                + f": one outbox takes one relay, or every change would be delivered twice. Stop that "
                f"relay, or give this one its own --outbox. (Lock file: {self.path}.)"
            ) from None
        handle.seek(0)
        handle.truncate()
        handle.write(str(os.getpid()))
        handle.flush()
        self._file = handle
        return self

    def release(self) -> None:
        """Let another relay take the outbox (closing the file drops the lock)."""
        if self._file is not None:
            self._file.close()
            self._file = None
