"""Where a client's pace is kept: its send slots, its pause, the account's counts and the controller's state.

:class:`~gooten_provider.client.pacer.Pacer` decides; a :class:`PaceStore` only keeps and answers, atomically.
:class:`LocalPaceStore` keeps everything in this process (the threads and coroutines of one client);
:class:`~gooten_provider.client.redis_store.RedisPaceStore` keeps it in Redis for every task of an account.
"""

from __future__ import annotations

import math
import threading
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Protocol

from gooten_provider.client.bucket_fit import HISTORY_ANSWERS, HISTORY_SECONDS, Answer


@dataclass(frozen=True)
class PaceState:
    """What the controller learnt from the last 429, published in the store for every client of it.

    :param token: this state's identity (the store compares tokens, never clocks, to tell states apart).
    :param at: when it was published, in the clock of the client that reads it (a shared store converts
        between its own clock and each client's); every time in ``values`` is an offset from it.
    :param values: the controller's numbers (opaque to the store).
    """

    token: str
    at: float
    values: Mapping[str, float] = field(default_factory=dict)


class PaceStore(Protocol):
    """Where a pace's send slots, pause, answer counts and last published state are kept.

    In this process (:class:`LocalPaceStore`), or shared by every client of an account. Times are in the
    caller's clock; a shared store converts them. Every method answers atomically.
    """

    @property
    def shared(self) -> bool:
        """Whether other clients share this store now (then its counts and slots are theirs too)."""

    def take_slot(self, now: float, interval: float) -> float:
        """Take the next send slot: not before ``now`` nor the pause, ``interval`` after the last one taken.

        ``interval`` 0 means unpaced (only the pause holds).
        """

    def pause(self, until: float) -> None:
        """Hold every slot until ``until`` (a ``Retry-After``); an earlier pause is never shortened."""

    def paused_until(self) -> float:
        """The time until which every slot is held.

        Asked right after a slot due at once was taken, in the same thread, a shared store may answer from
        that slot's round trip (a second one, made at once, would answer no better).
        """

    def take_slot_within(self, now: float, interval: float, horizon: float) -> tuple[float, bool]:
        """:meth:`take_slot`, unless the slot is more than ``horizon`` after ``now``: then take nothing.

        Returns the slot and whether it was taken.
        """

    def note_accepted(self, now: float) -> None:
        """Count one answer the gateway accepted (not a 429) at ``now``."""

    def note_refused(self, now: float) -> None:
        """Count one 429 to a request sent at a settled pace, at ``now``."""

    def counts(self) -> tuple[int, int]:
        """The answers accepted and the 429s counted so far by every client of the store.

        Only differences between two calls mean anything. A shared store answers as of its last round trip
        (at most one request old), plus this client's own counts since.
        """

    def sync(self) -> None:
        """Bring :meth:`counts` and :meth:`shared_state` up to date (a shared store: one round trip).

        The round trip carries this client's counts since its last one.
        """

    def log_answer(self, ticket: float, kind: int) -> None:
        """Keep one answer in the account's log: its request's ticket and what became of it.

        ``kind`` is :data:`~gooten_provider.client.bucket_fit.ACCEPTED`, ``REFUSED`` or ``EMPTIED``. A shared
        store sends it with its next round trip that counts (no round trip of its own).
        """

    def answers(self) -> list[Answer]:
        """The account's logged answers of its last ``HISTORY_SECONDS``, oldest first.

        Tickets are in the caller's clock. A shared store asks in one round trip.
        """

    def started(self) -> float:
        """When the store's pace began (its first slot, by any client)."""

    def shared_state(self) -> PaceState | None:
        """The last state any client published (``None``: none yet).

        A shared store may answer from its last round trip: at most one request old.
        """

    def publish_state(self, state: PaceState, replaces: str | None) -> PaceState:
        """Hold ``state`` if the store still holds the state ``replaces`` (its token; ``None``: none yet).

        Returns the state the store holds afterwards: ``state``, or the one another client published first.
        """


class LocalPaceStore:
    """A :class:`PaceStore` for the threads and coroutines of one process (thread-safe).

    Several clients in one process may share one (pass it to each pacer, with ``shared=True``): they then
    pace as one, as the clients of every task of an account do through Redis.
    """

    def __init__(self, now: float, *, shared: bool = False) -> None:
        self._lock = threading.Lock()
        self._shared = shared
        self._next_slot = now
        self._paused_until = now
        self._started: float | None = None  # the first slot taken
        self._counts = (0, 0)
        self._state: PaceState | None = None
        self._answers: deque[Answer] = deque(maxlen=HISTORY_ANSWERS)

    @property
    def shared(self) -> bool:
        """See :meth:`PaceStore.shared`."""
        return self._shared

    def take_slot(self, now: float, interval: float) -> float:
        """See :meth:`PaceStore.take_slot`."""
        return self.take_slot_within(now, interval, math.inf)[0]

    def take_slot_within(self, now: float, interval: float, horizon: float) -> tuple[float, bool]:
        """See :meth:`PaceStore.take_slot_within`."""
        with self._lock:
            slot = max(now, self._paused_until)
            if interval > 0:
                slot = max(slot, self._next_slot)
            if slot - now > horizon:
                return slot, False
            self._next_slot = slot + interval
            self._started = slot if self._started is None else self._started
            return slot, True

    def pause(self, until: float) -> None:
        """See :meth:`PaceStore.pause`."""
        with self._lock:
            self._paused_until = max(self._paused_until, until)

    def paused_until(self) -> float:
        """See :meth:`PaceStore.paused_until`."""
        with self._lock:
            return self._paused_until

    def note_accepted(self, now: float) -> None:
        """See :meth:`PaceStore.note_accepted`."""
        with self._lock:
            self._counts = (self._counts[0] + 1, self._counts[1])

    def note_refused(self, now: float) -> None:
        """See :meth:`PaceStore.note_refused`."""
        with self._lock:
            self._counts = (self._counts[0], self._counts[1] + 1)

    def counts(self) -> tuple[int, int]:
        """See :meth:`PaceStore.counts`."""
        with self._lock:
            return self._counts

    def sync(self) -> None:
        """See :meth:`PaceStore.sync` (every answer here is the latest: nothing to do)."""

    def log_answer(self, ticket: float, kind: int) -> None:
        """See :meth:`PaceStore.log_answer`."""
        with self._lock:
            self._answers.append((ticket, kind))

    def answers(self) -> list[Answer]:
        """See :meth:`PaceStore.answers`."""
        with self._lock:
            if not self._answers:
                return []
            newest = max(ticket for ticket, _ in self._answers)
            return sorted(answer for answer in self._answers if answer[0] >= newest - HISTORY_SECONDS)

    def started(self) -> float:
        """See :meth:`PaceStore.started` (the next slot's time until one is taken)."""
        with self._lock:
            return self._next_slot if self._started is None else self._started

    def shared_state(self) -> PaceState | None:
        """See :meth:`PaceStore.shared_state`."""
        with self._lock:
            return self._state

    def publish_state(self, state: PaceState, replaces: str | None) -> PaceState:
        """See :meth:`PaceStore.publish_state`."""
        with self._lock:
            if self._state is None or self._state.token == replaces:
                self._state = state
            return self._state
