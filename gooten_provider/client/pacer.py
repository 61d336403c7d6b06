"""The one pacer of a client: when each request may leave, learnt from Gooten's 429s, shared by every thread.

Gooten publishes no rate limit, and every gateway in front of an API has one. A client that only retries
429s hammers the gateway harder the more threads it runs. Every request of a client, read or write, sync or
async, waits here once (:meth:`Pacer.acquire`), and every answer is reported back (:meth:`Pacer.record`):

* Until the first 429 nothing is paced (unless ``requests_per_second`` sets a ceiling): an account that is
  never throttled pays nothing.
* A 429 starts a *throttling event*: the rate the gateway let through just before it said no is taken as
  its limit, and the pace drops below it (multiplicative decrease). Answers to requests sent before the
  drop belong to the same event and do not lower it again, as TCP cuts its window once per loss event.
* Each answer without throttling raises the pace along CUBIC's curve (the congestion controller of Linux
  TCP), ``SCALE * (t - K)**3 + w_max``: fast while far below the limit, flat just under it, then probing
  above it, slowly. Clients sharing a gateway converge to fair shares this way, as TCP flows sharing a link
  do, with no coordination but the 429s.
* Requests leave evenly spaced, ``1 / rate`` apart across threads: a gateway's bucket with a small burst
  refuses clumps even when the average rate is under its limit.
* A ``Retry-After`` on any answer pauses every thread of the client until it has passed: the gateway said
  when it takes requests again, and sending earlier only earns more 429s.
* ``requests_per_second`` is a ceiling inside the same pace: one wait per request, never two.

The send slots, the pause, the answers accepted lately and the last throttling event's state live in a
:class:`PaceStore`; :class:`LocalPaceStore` keeps them in this process. A store shared by every task of an
account (:mod:`gooten_provider.client.redis_store`, ``rate_limit_conn_id``) makes them the account's: every
client takes its slots from one schedule, a throttling event any client sees lowers every client's rate, and
one ``Retry-After`` pauses them all. With a shared store the pace starts low and doubles every
:data:`SLOW_START_DOUBLING` seconds until the first 429 (a slow start), rather than unpaced: many tasks
opening at once against a limit nobody knows yet would otherwise open with a storm.
"""

from __future__ import annotations

import asyncio
import math
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Protocol

from gooten_provider.exceptions import GootenRateLimitError

#: CUBIC's decrease factor and curve scale. botocore uses 0.7 and 0.4; a gateway's ``Retry-After`` pauses
#: every thread for a whole second per throttling event, so events are made rarer here: a milder decrease
#: and a flatter curve.
BETA = 0.8
SCALE = 0.02
#: The paced rate never falls below this (requests per second), so a client always makes progress.
MIN_RATE = 0.5
# The sending rate is counted per bucket of this many seconds, then smoothed.
_MEASURE_BUCKET = 0.5
_SMOOTHING = 0.8
# The rate the gateway let through is counted over this many seconds before a throttling event, and
# trusted only when at least the shorter span was measured (time paused by a Retry-After excluded) and
# enough answers came in it (a slow server may not have answered anything yet).
_ACCEPTED_WINDOW = 1.0
_ACCEPTED_MIN_SPAN = 0.05
_ACCEPTED_MIN_ANSWERS = 3
#: CUBIC's plateau is set this much below the rate at which the gateway said "no": that rate still holds
#: the gateway's burst, so a plateau right at it would drain the burst and be throttled again within seconds.
PLATEAU = 0.95
#: At most one decrease per this many seconds: 429s right after a decrease answer requests that met a
#: gateway bucket still empty from before it, and cutting again for each would collapse the rate (as TCP
#: cuts once per round trip, not once per lost packet).
MIN_DECREASE_INTERVAL = 1.0
#: A shared pace's slow start: the rate starts here (requests per second across every client of the store),
#: doubles every :data:`SLOW_START_DOUBLING` seconds until the first 429, and never exceeds twice what the
#: gateway accepted in the last second plus :data:`SLOW_START_RATE` (a rate left to grow while the clients
#: sent little must not let them burst when they need more).
SLOW_START_RATE = 10.0
SLOW_START_DOUBLING = 0.5
#: No slot of a shared schedule is held further ahead than this (seconds): a client whose slot would be
#: later asks again, so a rising rate (a slow start doubling) applies at once however many threads wait;
#: 64 threads at a slow start's 10/s would otherwise hold 6 s of slots at that rate.
SHARED_HORIZON = 1.0
# A client past the horizon asks again this many seconds after the slot comes within it (asking last must
# not mean waiting longest).
_SHARED_ASK_AGAIN = 0.05
# What reserve() returns when no slot was taken: confirm() never holds it.
_NO_SLOT = -math.inf


@dataclass(frozen=True)
class PaceState:
    """What a throttling event left the controller with, published in the store for every client of it.

    :param token: this event's identity (the store compares tokens, never clocks, to tell events apart).
    :param at: the clock time of the event, in the clock of the client that reads it (a shared store
        converts between its own clock and each client's).
    :param values: the controller's numbers after the event (opaque to the store).
    """

    token: str
    at: float
    values: Mapping[str, float] = field(default_factory=dict)


class PaceStore(Protocol):
    """Where a pace's send slots, pause, accepted answers and last throttling event are kept.

    In this process (:class:`LocalPaceStore`), or shared by every client of an account. Times are in the
    caller's clock; a shared store converts them. Every method answers atomically.
    """

    @property
    def shared(self) -> bool:
        """Whether clients in other processes share this store now (then a pace starts with a slow start)."""

    def take_slot(self, now: float, interval: float) -> float:
        """Take the next send slot: not before ``now`` nor the pause, ``interval`` after the last one taken.

        ``interval`` 0 means unpaced (only the pause holds).
        """

    def pause(self, until: float) -> None:
        """Hold every slot until ``until`` (a ``Retry-After``); an earlier pause is never shortened."""

    def paused_until(self) -> float:
        """The time until which every slot is held."""

    def take_slot_within(self, now: float, interval: float, horizon: float) -> tuple[float, bool]:
        """:meth:`take_slot`, unless the slot is more than ``horizon`` after ``now``: then take nothing.

        Returns the slot and whether it was taken.
        """

    def note_accepted(self, now: float) -> None:
        """Count one answer the gateway accepted (not a 429) at ``now``."""

    def accepted_since(self, since: float, now: float) -> int:
        """The answers accepted from ``since`` to ``now`` by every client of the store (the last second)."""

    def started(self) -> float:
        """When the store's pace began (its first slot, by any client)."""

    def shared_state(self) -> PaceState | None:
        """The last throttling event's state any client published (``None``: none yet).

        A shared store may answer from its last round trip: at most one request old.
        """

    def publish_state(self, state: PaceState, replaces: str | None) -> PaceState:
        """Hold ``state`` if the store still holds the event ``replaces`` (its token; ``None``: no event yet).

        Returns the state the store holds afterwards: ``state``, or the event another client published first.
        """


class LocalPaceStore:
    """A :class:`PaceStore` for the threads and coroutines of one process (thread-safe).

    Two clients in one process may share one (pass it to both pacers): they then share one pace.
    """

    shared = False

    def __init__(self, now: float) -> None:
        self._lock = threading.Lock()
        self._next_slot = now
        self._paused_until = now
        self._started = now
        self._accepted: deque[float] = deque()  # when each recent answer without throttling came
        self._state: PaceState | None = None

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
            self._accepted.append(now)
            while self._accepted and self._accepted[0] < now - _ACCEPTED_WINDOW:
                self._accepted.popleft()

    def accepted_since(self, since: float, now: float) -> int:
        """See :meth:`PaceStore.accepted_since` (only the last :data:`_ACCEPTED_WINDOW` is kept)."""
        with self._lock:
            return sum(1 for at in self._accepted if since < at <= now)

    def started(self) -> float:
        """See :meth:`PaceStore.started`."""
        return self._started

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


class Pacer:
    """Paces every request of one client across its threads; lowers the rate on 429, raises it on success.

    Call :meth:`acquire` (or, on an event loop, ``await`` :meth:`aacquire`) before each request (it waits,
    and returns a ticket), then :meth:`record` with the ticket and what the answer was. Thread-safe; the
    lock is never held while waiting, so threads and coroutines may share one pacer.

    :param adaptive: learn the rate from 429s and pause every thread on a ``Retry-After``; off, only the
        ceiling holds (each thread waits out its own ``Retry-After``).
    :param ceiling: the most requests per second, or ``None`` for no ceiling.
    :param store: where the slots and the pause are kept (default: this process).
    :param clock: seconds that never go backwards (tests pass their own).
    :param sleep: how to wait (tests pass their own).
    """

    def __init__(
        self,
        *,
        adaptive: bool = True,
        ceiling: float | None = None,
        store: PaceStore | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._clock = clock
        self._sleep = sleep
        self._lock = threading.Lock()
        now = clock()
        self._store: PaceStore = store if store is not None else LocalPaceStore(now)
        #: Whether the rate is learnt from 429s.
        self.adaptive = adaptive
        #: The ceiling, in requests per second (``inf`` when none).
        self.ceiling = math.inf if ceiling is None else float(ceiling)
        #: Whether requests are paced by what was learnt (from the first 429 on).
        self.paced = False
        self._learnt = math.inf
        self._w_max = 0.0
        self._k = 0.0
        self._last_decrease = -math.inf
        self._measured = 0.0
        self._bucket_start: float | None = None  # from the first request on
        self._bucket_count = 0
        self._resumed = now  # when the last Retry-After pause ended (or the pacer started)
        #: Throttling events (rate decreases) and 429 answers seen, for reports and tests.
        self.events = 0
        self.throttled = 0
        self._event_token: str | None = None  # the store's last throttling event this pacer has seen

    @property
    def rate(self) -> float:
        """The pace in requests per second: what was learnt, under the ceiling (``inf``: not paced)."""
        return min(self._learnt, self.ceiling)

    @property
    def paused_until(self) -> float:
        """The clock time until which a ``Retry-After`` holds every thread."""
        return self._store.paused_until()

    @property
    def store(self) -> PaceStore:
        """Where this pacer's slots, pause and throttling events are kept."""
        return self._store

    def acquire(self) -> float:
        """Wait until a request may be sent (a ``Retry-After`` in force, then a paced slot); return a ticket.

        The ticket is the clock time the request goes out; pass it to :meth:`record`.
        """
        while True:
            slot, wait = self.reserve()
            if wait > 0:
                self._sleep(wait)
            if self.confirm(slot):
                return slot

    async def aacquire(self) -> float:
        """:meth:`acquire` for an event loop: the wait is an ``asyncio.sleep``, so the loop keeps running.

        With a store outside this process (a network call), its calls run in a thread, off the loop.
        """
        offload = not isinstance(self._store, LocalPaceStore)
        while True:
            slot, wait = await asyncio.to_thread(self.reserve) if offload else self.reserve()
            if wait > 0:
                await asyncio.sleep(wait)
            if await asyncio.to_thread(self.confirm, slot) if offload else self.confirm(slot):
                return slot

    def reserve(self) -> tuple[float, float]:
        """Take the next send slot without waiting: return ``(slot, seconds to wait before it)``.

        The pure half of :meth:`acquire`, shared by the sync and the async transports; after the wait, call
        :meth:`confirm` with the slot.
        """
        now = self._clock()
        rate = self._shared_rate(now) if self._store.shared else self.rate
        interval = 0.0 if math.isinf(rate) else 1.0 / rate
        if self._store.shared:
            slot, taken = self._store.take_slot_within(now, interval, SHARED_HORIZON)
            if not taken:  # ask again once the slot is within the horizon (a long pause: seconds later)
                return _NO_SLOT, max(slot - now - SHARED_HORIZON, _SHARED_ASK_AGAIN)
        else:
            slot = self._store.take_slot(now, interval)
        with self._lock:
            self._count_sent(slot)
        return slot, slot - now

    def confirm(self, slot: float) -> bool:
        """Tell whether a reserved slot still holds: ``False`` when a ``Retry-After`` came in meanwhile.

        Then reserve again: the gateway asked every thread of the client to wait.
        """
        return slot != _NO_SLOT and self._store.paused_until() <= slot

    def record(self, ticket: float, *, throttled: bool, retry_after: float | None = None) -> None:
        """Take in one answer: ``throttled`` (a 429) lowers the rate once per event, others raise it.

        :param ticket: what :meth:`acquire` returned for the request.
        :param retry_after: the answer's ``Retry-After`` in seconds, already capped; pauses every thread.
        """
        with self._lock:
            now = self._clock()
            self._adopt(self._store.shared_state())  # another client's throttling event is this one's too
            if not throttled:
                self._store.note_accepted(now)
                if self.paced:
                    self._learnt = max(MIN_RATE, self._cubic(now))
            else:
                self.throttled += 1
                # sent before the last decrease, or too soon after it: part of the same event
                recent = now - self._last_decrease < MIN_DECREASE_INTERVAL
                if self.adaptive and ticket >= self._last_decrease and not recent:
                    self._decrease(now)
                    self._publish(now)
            # Off, each thread waits out its own Retry-After (the first release's behaviour): without a
            # learnt pace, every thread resuming at once after a shared pause drains a small burst at once,
            # and 4 threads at 50 requests/s kept 0.13 of the rate and failed orders.
            if retry_after and self.adaptive:
                self._store.pause(now + retry_after)
                self._resumed = max(self._resumed, now + retry_after)

    def throttle_window(self, action: str, throttle_timeout: float) -> ThrottleWindow:
        """The budget of 429s one request may meet before it fails (``throttle_timeout``)."""
        return ThrottleWindow(action, throttle_timeout, self._clock)

    def _decrease(self, now: float) -> None:
        """A throttling event: remember where the gateway said no, and drop the rate below it."""
        # Paced, the client sent at its rate (a sending rate measured across a Retry-After pause would be
        # far too low); not yet paced, at the rate measured since its first request (or, sharing a store,
        # the slow start's: this client's own sending rate is only its share of the account's).
        if self.paced:
            current = self.rate
        else:
            current = self._slow_start_rate(now) if self._store.shared else self._sending_rate(now)
        # What the gateway let through just before saying "no" is its limit, more exactly than what was
        # sent (which overshot it): CUBIC's plateau then sits at the limit rather than above it.
        span = now - max(now - _ACCEPTED_WINDOW, self._resumed, min(now, self._store.paused_until()))
        answers = self._store.accepted_since(now - span, now)
        if span >= _ACCEPTED_MIN_SPAN and answers >= _ACCEPTED_MIN_ANSWERS:
            current = min(current, answers / span)
        current = max(MIN_RATE, min(current, self.ceiling))
        self.events += 1
        self.paced = True
        self._w_max = PLATEAU * current
        self._k = (self._w_max - current * BETA) ** (1 / 3) / SCALE ** (1 / 3)
        self._last_decrease = now
        self._learnt = max(MIN_RATE, current * BETA)

    # The shared pace: a throttling event is published in the store, and every client of the store adopts
    # the latest one, so they all pace by one curve (and decrease once per event, whoever saw it).

    def _controller_values(self) -> dict[str, float]:
        return {"learnt": self._learnt, "w_max": self._w_max, "k": self._k}

    def _publish(self, now: float) -> None:
        """Publish the event just taken in; if another client's came first, this one's is dropped for it."""
        mine = PaceState(uuid.uuid4().hex, now, self._controller_values())
        held = self._store.publish_state(mine, self._event_token)
        self._event_token = held.token
        if held.token != mine.token:
            self.events -= 1  # not an event after all: the one published first stands
            self._adopt(held, force=True)

    def _adopt(self, state: PaceState | None, *, force: bool = False) -> None:
        """Pace by another client's throttling event, when it is newer than this pacer's last one."""
        if state is None or state.token == self._event_token:
            return
        self._event_token = state.token
        if not force and state.at <= self._last_decrease:
            return  # older than what this client learnt meanwhile (say, while the store was unreachable)
        self.paced = True
        self._last_decrease = state.at
        self._learnt = state.values.get("learnt", self._learnt)
        self._w_max = state.values.get("w_max", self._w_max)
        self._k = state.values.get("k", self._k)

    def _shared_rate(self, now: float) -> float:
        """The pace with a shared store: the latest event's curve, or the slow start before any."""
        with self._lock:
            self._adopt(self._store.shared_state())
            if self.paced or not self.adaptive:
                return self.rate
        return min(self._slow_start_rate(now), self.ceiling)

    def _slow_start_rate(self, now: float) -> float:
        """Before the first 429 with a shared store: low, doubling fast, never far above what was accepted."""
        doubled = SLOW_START_RATE * 2 ** min((now - self._store.started()) / SLOW_START_DOUBLING, 60.0)
        accepted = self._store.accepted_since(now - _ACCEPTED_WINDOW, now) / _ACCEPTED_WINDOW
        return min(doubled, SLOW_START_RATE + 2 * accepted)

    def _cubic(self, now: float) -> float:
        return SCALE * (now - self._last_decrease - self._k) ** 3 + self._w_max

    def _count_sent(self, at: float) -> None:
        if self._bucket_start is None:
            self._bucket_start = at
        self._bucket_count += 1
        elapsed = at - self._bucket_start
        if elapsed >= _MEASURE_BUCKET:
            self._measured = (self._bucket_count / elapsed) * _SMOOTHING + self._measured * (1 - _SMOOTHING)
            self._bucket_count = 0
            self._bucket_start = at

    def _sending_rate(self, now: float) -> float:
        """The smoothed sending rate; before a first full bucket, the rate of the bucket so far."""
        if self._measured or self._bucket_start is None:
            return self._measured
        elapsed = now - self._bucket_start
        return self._bucket_count / elapsed if elapsed > 0 else 0.0


class ThrottleWindow:
    """How long one request has been answered 429: it is sent again until ``throttle_timeout`` is spent.

    Nothing was applied while Gooten answers 429, so both reads and writes may be sent again.
    """

    def __init__(
        self, action: str, throttle_timeout: float, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._action = action
        self._throttle_timeout = throttle_timeout
        self._clock = clock
        self._since: float | None = None

    def throttled(self, retry_after: float | None) -> None:
        """Take in one 429.

        :raises GootenRateLimitError: waiting ``retry_after`` more would pass ``throttle_timeout``.
        """
        now = self._clock()
        self._since = now if self._since is None else self._since
        if now + (retry_after or 0.0) - self._since >= self._throttle_timeout:
            more = f" and asked to wait {retry_after:g} s more" if retry_after else ""
            raise GootenRateLimitError(
                f"Gooten answered 429 Too Many Requests to {self._action} for {now - self._since:.1f} s"
                f"{more}, past throttle_timeout ({self._throttle_timeout:g} s); nothing was applied. "
                "Gooten is throttling this account: lower max_workers, spread the work over time, or "
                "raise throttle_timeout.",
                status_code=429,
            )
