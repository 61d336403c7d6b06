"""A pace store shared with other processes, with this process's own to fall back on (no task fails for it).

A shared store (Redis: :mod:`gooten_provider.client.redis_store`) may become unreachable: a restart, a
network cut, a wrong password. :class:`FallbackPaceStore` then answers from a
:class:`~gooten_provider.client.pacer.LocalPaceStore`, so the client paces itself (as it does without a
shared store), says so once per outage in the log (the task's log, in Airflow), leaves the shared store
alone for :data:`RETRY_SHARED_AFTER_SECONDS`, then tries it again, and says when it is back.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Protocol, TypeVar

from gooten_provider.client.bucket_fit import Answer
from gooten_provider.client.pacer import LocalPaceStore, PaceState, PaceStore

log = logging.getLogger(__name__)

#: After the shared store failed, the client paces itself for this many seconds before trying it again.
RETRY_SHARED_AFTER_SECONDS = 5.0

_T = TypeVar("_T")


class PaceStoreUnavailable(Exception):
    """A shared pace store could not be reached or answered nonsense; the client paces itself meanwhile."""


class SharedPaceStore(PaceStore, Protocol):
    """A :class:`~gooten_provider.client.pacer.PaceStore` kept outside this process."""

    #: Where the store is, for log lines (no secret in it).
    description: str


class FallbackPaceStore:
    """A shared :class:`PaceStore`, or this process's own while the shared one fails (thread-safe).

    :param primary: the shared store; its methods raise :class:`PaceStoreUnavailable` when it fails.
    :param clock: the pacer's clock.
    """

    def __init__(self, primary: SharedPaceStore, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.primary = primary
        self._clock = clock
        self._local = LocalPaceStore(clock())
        self._lock = threading.Lock()
        self._down_until = -1.0
        self._down = False
        #: Calls that failed over to this process's own store, for reports and tests.
        self.failures = 0

    @property
    def shared(self) -> bool:
        """Whether the shared store answers (the last call to it did)."""
        return not self._down

    def _call(self, shared: Callable[[], _T], local: Callable[[], _T]) -> _T:
        if self._clock() < self._down_until:
            return local()
        try:
            value = shared()
        except PaceStoreUnavailable as exc:
            with self._lock:
                self.failures += 1
                self._down_until = self._clock() + RETRY_SHARED_AFTER_SECONDS
                first, self._down = not self._down, True
            if first:
                log.warning(
                    "The shared pace (%s) is unreachable (%s): this client paces itself until it is back "
                    "(tried again every %g s); no request fails for it.",
                    self.primary.description,
                    exc,
                    RETRY_SHARED_AFTER_SECONDS,
                )
            return local()
        if self._down:
            with self._lock:
                back, self._down = self._down, False
            if back:
                log.info("The shared pace (%s) is back: this client uses it again.", self.primary.description)
        return value

    def _last_known(self, shared: Callable[[], _T], local: Callable[[], _T]) -> _T:
        # What the shared store answers from its last round trip: no call to it, so it says nothing of
        # whether it is back.
        return local() if self._down else shared()

    def take_slot(self, now: float, interval: float) -> float:
        """See :meth:`PaceStore.take_slot`."""
        return self._call(
            lambda: self.primary.take_slot(now, interval), lambda: self._local.take_slot(now, interval)
        )

    def take_slot_within(self, now: float, interval: float, horizon: float) -> tuple[float, bool]:
        """See :meth:`PaceStore.take_slot_within`."""
        return self._call(
            lambda: self.primary.take_slot_within(now, interval, horizon),
            lambda: self._local.take_slot_within(now, interval, horizon),
        )

    def pause(self, until: float) -> None:
        """See :meth:`PaceStore.pause`."""
        self._call(lambda: self.primary.pause(until), lambda: self._local.pause(until))

    def paused_until(self) -> float:
        """See :meth:`PaceStore.paused_until`."""
        return self._call(self.primary.paused_until, self._local.paused_until)

    def note_accepted(self, now: float) -> None:
        """See :meth:`PaceStore.note_accepted` (counted in both: the local count serves an outage)."""
        self._local.note_accepted(now)
        self._call(lambda: self.primary.note_accepted(now), lambda: None)

    def note_refused(self, now: float) -> None:
        """See :meth:`PaceStore.note_refused` (counted in both: the local count serves an outage)."""
        self._local.note_refused(now)
        self._call(lambda: self.primary.note_refused(now), lambda: None)

    def sync(self) -> None:
        """See :meth:`PaceStore.sync`."""
        self._call(self.primary.sync, lambda: None)

    def log_answer(self, ticket: float, kind: int) -> None:
        """See :meth:`PaceStore.log_answer` (kept in both: the local log serves an outage)."""
        self._local.log_answer(ticket, kind)
        self._call(lambda: self.primary.log_answer(ticket, kind), lambda: None)

    def answers(self) -> list[Answer]:
        """See :meth:`PaceStore.answers`."""
        return self._call(self.primary.answers, self._local.answers)

    def counts(self) -> tuple[int, int]:
        """See :meth:`PaceStore.counts` (the pacer starts its counts afresh when :attr:`shared` changes)."""
        return self._last_known(self.primary.counts, self._local.counts)

    def started(self) -> float:
        """See :meth:`PaceStore.started`."""
        # answered from the last round trip once a slot was taken: asked of the store only while it is up
        return self._last_known(
            lambda: self._call(self.primary.started, self._local.started), self._local.started
        )

    def shared_state(self) -> PaceState | None:
        """See :meth:`PaceStore.shared_state`."""
        return self._last_known(self.primary.shared_state, self._local.shared_state)

    def publish_state(self, state: PaceState, replaces: str | None) -> PaceState:
        """See :meth:`PaceStore.publish_state`."""
        return self._call(
            lambda: self.primary.publish_state(state, replaces), lambda: self._publish_alone(state)
        )

    def _publish_alone(self, state: PaceState) -> PaceState:
        # Paced alone, this client's event always stands (the pacer's token may be the shared store's).
        held = self._local.shared_state()
        return self._local.publish_state(state, None if held is None else held.token)

    def close(self) -> None:
        """Close the shared store's connections, if it has any."""
        close = getattr(self.primary, "close", None)
        if callable(close):
            close()
