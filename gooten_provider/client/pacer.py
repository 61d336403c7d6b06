"""The one pacer of a client: when each request may leave, learnt from Gooten's 429s, shared by every thread.

Gooten publishes no rate limit, and every gateway in front of an API has one: a token bucket of some rate R
and burst B. Every request of a client, read or write, sync or async, waits here once (:meth:`Pacer.acquire`)
and every answer is reported back (:meth:`Pacer.record`). Requests leave evenly spaced, ``1 / pace`` apart
across threads (a bucket with a small burst refuses clumps even under its rate), and the pace is learnt:

* **Slow start.** Until the first 429 the pace starts at ``pace_tuning.START_RATE`` and doubles every
  ``SLOW_START_DOUBLING`` seconds (unpaced while answers come back at once), so a cold start is not a clump
  of ``max_workers`` requests against a bucket of a few tokens, and costs an account that is never
  throttled about a second.
* **First 429.** The pace drops under the rate of the last answers that came before it.
* **Measuring the limit.** Between two moments the bucket is empty (two 429s) it lets through at most R
  requests per second, exactly R when the client kept sending at or above R in between. So when 429s come
  in a row the pace is set just under what the gateway let through since the first of them; a lone 429
  at a held pace is put down to the jitter of arrivals (requests leaving evenly arrive less so) and, past
  a small share, narrows the margin kept under the limit.
* **With a Retry-After,** the pause refills the bucket and hides part of the rate from that count, so the
  limit is fitted instead (:mod:`gooten_provider.client.bucket_fit`): the token buckets that could have
  given this client's answers. A narrow range pins it; a wide one is crossed slowly from low in it, so the
  429 that ends the crossing pins it.
* **Probing.** After a cut the pace is held, then raised: fast while far under the pace last refused,
  slowly near it, fast again once well past it with no 429 (the limit rose, or a task sharing it is
  done). A probe refused at a pace close to the last refused one doubles the next hold (up to 30 s), since
  each refused probe with a ``Retry-After`` stops every thread for a second.
* A ``Retry-After`` on any answer pauses every thread of the client until it has passed.
* ``requests_per_second`` is a ceiling inside the same pace: one wait per request, never two.

The send slots, the pause, the answers counted and the controller's state after each 429 live in a
:class:`PaceStore`; :class:`LocalPaceStore` keeps them in this process. A store shared by every task of an
account (:mod:`gooten_provider.client.redis_store`, ``rate_limit_conn_id``) makes them the account's, so
every client of every task paces as one controller: one schedule of slots, one slow start (counted from the
account's first request), limits measured from the account's answers, and each 429's outcome (the measured
limit, the margin, the hold and probe schedule: :mod:`gooten_provider.client.controller_state`) published in
the store and adopted by every client once.
``bench/pace_model.py`` runs this class on a fake clock against the local API's token bucket, over the
whole grid of limits of issue 19, in seconds.
"""

from __future__ import annotations

import asyncio
import math
import random
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable

from gooten_provider.client import pace_tuning as tune
from gooten_provider.client.bucket_fit import ACCEPTED, EMPTIED, REFUSED, AnswerHistory
from gooten_provider.client.controller_state import ControllerState
from gooten_provider.client.pace_store import LocalPaceStore, PaceState, PaceStore
from gooten_provider.client.throttle_window import ThrottleWindow

#: The store and the throttling budget live in their own modules; their names stay importable from here.
__all__ = ["LocalPaceStore", "PaceState", "PaceStore", "Pacer", "ThrottleWindow"]


class Pacer:
    """Paces every request of one client across its threads: a slow start, then just under the learnt limit.

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
        self._min_rtt = math.inf
        self._started: float | None = None  # the first request's slot
        self._pace = self._slow_start_pace(now)
        self._estimate = math.inf  # the gateway's rate as learnt: requests per second
        self._margin = tune.MARGIN  # the pace is held at this share of the estimate
        # answers without throttling and 429s to requests sent at a settled pace, counted in the store (the
        # account's, when shared), as of this pacer's last answer
        self._counts = self._store.counts()
        self._counted_shared = self._store.shared
        # when each answer of the last second without throttling came, and the store's count after it
        self._recent: deque[tuple[float, int]] = deque()
        self._history = AnswerHistory()  # this client's answers, to fit the gateway's bucket across pauses
        self._mark: tuple[float, int, int] | None = None  # (ticket, accepted, refused): the bucket was empty
        self._last_refused = -math.inf  # the ticket of the last request answered 429
        self._last_retry_after = 0.0
        self._booked = 0  # slots taken and not yet confirmed
        self._sent = 0  # slots taken
        self._last_slot = -math.inf  # the latest slot handed out
        self._settled = -math.inf  # slots after this one were taken at the current pace
        self._cut_at = -math.inf  # when the pace was last set by a 429
        self._cut_counts = self._counts  # (accepted, refused) then
        self._hold = tune.HOLD
        self._raised_at = now
        self._resumed = now  # when the last Retry-After pause ends
        self._probing = False  # whether the hold since the last cut has ended
        self._crossing = False  # whether the pace is rising through a fitted range of the limit
        self._last_peak = 0.0
        self._upper = math.inf  # the pace last refused
        self._state_token: str | None = None  # the store's state this pacer paces by (None: none yet)
        self._state_at = -math.inf  # when that state was published
        #: Throttling events (rate decreases) and 429 answers seen, for reports and tests.
        self.events = 0
        self.throttled = 0

    @property
    def _accepted(self) -> int:
        return self._counts[0]

    @property
    def _refused_total(self) -> int:
        return self._counts[1]

    @property
    def rate(self) -> float:
        """The pace in requests per second: what was learnt, under the ceiling (``inf``: not paced)."""
        return min(self._pace, self.ceiling) if self.adaptive else self.ceiling

    @property
    def paused_until(self) -> float:
        """The clock time until which a ``Retry-After`` holds every thread."""
        return self._store.paused_until()

    @property
    def calls_out(self) -> bool:
        """Whether the store is outside this process: its calls are round trips, to keep off an event loop."""
        return not isinstance(self._store, LocalPaceStore)

    @property
    def store(self) -> PaceStore:
        """Where this pacer's slots, pause, counts and published state are kept."""
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
        offload = self.calls_out
        while True:
            slot, wait = await asyncio.to_thread(self.reserve) if offload else self.reserve()
            if wait > 0:
                await asyncio.sleep(wait)
            if await asyncio.to_thread(self.confirm, slot) if offload else self.confirm(slot):
                return slot

    def reserve(self) -> tuple[float, float]:
        """Take the next send slot without waiting: return ``(slot, seconds to wait before it)``.

        The pure half of :meth:`acquire`, shared by the sync and the async transports; after the wait, call
        :meth:`confirm` with the slot. While more than ``pace_tuning.BOOKED_AHEAD`` seconds of slots are taken
        and not yet confirmed, no slot is given (``slot`` is NaN, which :meth:`confirm` refuses): a slot taken
        far ahead would keep the pace it was taken at, and the pace changes on every answer. Nor is a slot of
        a shared schedule more than ``pace_tuning.SHARED_BOOKED`` of the account's slots ahead.
        """
        now = self._clock()
        with self._lock:
            self._adopt(self._store.shared_state(), now)  # another client's 429 paces this one at once
            rate = self.rate
            interval = 0.0 if math.isinf(rate) else 1.0 / rate
            room = max(
                tune.MIN_BOOKED_SHARED if self._store.shared else tune.MIN_BOOKED, tune.BOOKED_AHEAD * rate
            )
            if interval and self._booked >= room:
                spread = 1 + random.random()  # noqa: S311  # waiting threads wake apart, not for secrecy
                return math.nan, (self._booked - room + 1) * interval * spread
            self._booked += 1
            self._sent += 1
        if self._store.shared:
            horizon = min(tune.SHARED_HORIZON, max(tune.BOOKED_AHEAD, tune.SHARED_BOOKED * interval))
            slot, taken = self._store.take_slot_within(now, interval, horizon)
            if not taken:  # ask again once the slot is within the horizon (a long pause: seconds later)
                with self._lock:
                    self._booked -= 1
                    self._sent -= 1
                return math.nan, max(slot - now - horizon, tune.SHARED_ASK_AGAIN)
        else:
            slot = self._store.take_slot(now, interval)
        with self._lock:
            self._started = slot if self._started is None else self._started
            self._last_slot = max(self._last_slot, slot)
            self._adopt(self._store.shared_state(), now)  # as of this round trip: the next slot's pace
        return slot, slot - now

    def confirm(self, slot: float) -> bool:
        """Tell whether a reserved slot still holds: ``False`` when a ``Retry-After`` came in meanwhile.

        Then reserve again: the gateway asked every thread of the client to wait.
        """
        if math.isnan(slot):
            return False
        with self._lock:
            self._booked -= 1
        return self._store.paused_until() <= slot

    def record(self, ticket: float, *, throttled: bool, retry_after: float | None = None) -> None:
        """Take in one answer: ``throttled`` (a 429) lowers the rate once per event, others raise it.

        :param ticket: what :meth:`acquire` returned for the request.
        :param retry_after: the answer's ``Retry-After`` in seconds, already capped; pauses every thread.
        """
        with self._lock:
            now = self._clock()
            if throttled and self.adaptive and self._store.shared:
                self._store.sync()  # a 429 is judged on the account's latest counts and state
            self._adopt(self._store.shared_state(), now)  # another client's 429 is this one's too
            learns = throttled and self.adaptive  # only a 429 changes what the store's clients share
            shared_before = self._shareable() if learns else None
            if now >= ticket:
                self._min_rtt = min(self._min_rtt, now - ticket)
            emptied = self.adaptive and self._log(ticket, throttled=throttled, retry_after=retry_after)
            # Off, each thread waits out its own Retry-After (the first release's behaviour): without a
            # learnt pace, every thread resuming at once after a shared pause drains a small burst at once,
            # and 4 threads at 50 requests/s kept 0.13 of the rate and failed orders. On, the pause is set
            # before anything is learnt from the 429, so that other clients sharing the store stop at once
            # (and their 429s meanwhile are part of this emptiness, not another).
            if retry_after and self.adaptive:
                self._store.pause(now + retry_after)
                self._resumed = max(self._resumed, now + retry_after)
            if not throttled:
                self._accepted_answer(now)
            else:
                self.throttled += 1
                events_before = self.events
                if self.adaptive:
                    self._refused(ticket, now, retry_after or 0.0, emptied=emptied)
            if learns and self._shareable() != shared_before:
                self._publish(now, events_before)
                return
        if not throttled and self.adaptive and self._store.shared:
            # the account's counts are this answer's at once, not a slot later (at a low pace, with a
            # slot booked per task, a second later), and this client sees the others' meanwhile
            self._store.sync()

    def _log(self, ticket: float, *, throttled: bool, retry_after: float | None) -> bool:
        """Keep the answer for the fit (this client's; sharing a store, the account's log).

        Returns whether it is a 429 with a ``Retry-After`` to a request sent after the last pause ended (the
        bucket found empty once more), not one sent before the pause it belongs to began.
        """
        emptied = throttled and bool(retry_after) and ticket >= max(self._resumed, self._store.paused_until())
        kind = EMPTIED if emptied else REFUSED if throttled else ACCEPTED
        if self._store.shared:
            self._store.log_answer(ticket, kind)
        else:
            self._history.add(ticket, refused=throttled)
            if emptied:
                self._history.refused_after_pause(ticket)
        return emptied

    def _accepted_answer(self, now: float) -> None:
        """An answer without a 429: counted, then the slow start goes on or the pace rises."""
        self._store.note_accepted(now)
        self._count()
        self._recent.append((now, self._accepted))
        while self._recent[0][0] < now - tune.ANSWERS_WINDOW:
            self._recent.popleft()
        if not self.paced:
            self._pace = self._slow_start_pace(now)
        else:
            self._raise(now)

    def throttle_window(self, action: str, throttle_timeout: float) -> ThrottleWindow:
        """The budget of 429s one request may meet before it fails (``throttle_timeout``)."""
        return ThrottleWindow(action, throttle_timeout, self._clock)

    def _slow_start_pace(self, now: float) -> float:
        """START_RATE doubled every SLOW_START_DOUBLING seconds (unpaced while answers come at once).

        Counted from the store's first slot: a task joining an account's slow start late joins it where it is.
        """
        if self._min_rtt <= 0:
            return math.inf
        since = 0.0 if self._started is None else max(0.0, now - self._store.started())
        return tune.START_RATE * 2 ** min(60.0, since / tune.SLOW_START_DOUBLING)

    def _raise(self, now: float) -> None:
        """An answer without a 429: after the hold, raise the pace (fast while far under the estimate)."""
        elapsed, self._raised_at = now - self._raised_at, now
        if now < max(self._cut_at, self._resumed) + self._hold:  # held from the cut, or the pause's end
            self._pace = min(self.ceiling, self._pace * (1 + tune.HOLD_SLOPE * elapsed))  # nearly flat
            return
        if not self._probing:  # a whole hold without a 429: a narrowed margin widens back one step
            self._probing = True
            self._margin = min(tune.MARGIN, self._margin / tune.MARGIN_CUT)
        if self._crossing:  # through the fitted range up to its top
            self._pace = min(self.ceiling, self._upper, self._pace * (1 + tune.CROSSING_SLOPE * elapsed))
            if self._pace >= self._upper:  # no 429 up to its top: the range was wrong, probe on from there
                self._crossing, self._upper = False, math.inf
            return
        if self._pace >= tune.STALE * self._upper:  # well past the pace last refused with no 429: it moved
            self._upper = math.inf
        fast = tune.FAST_SLOPE_PAUSED if self._last_retry_after else tune.FAST_SLOPE
        slope = tune.PROBE_SLOPE if self._pace >= tune.NEAR * self._upper else fast
        self._pace = min(self.ceiling, self._pace * (1 + slope * elapsed))

    def _refused(self, ticket: float, now: float, retry_after: float, *, emptied: bool) -> None:
        """A 429: the gateway's bucket was empty when this request came."""
        sent_at = self._pace
        settled = ticket > self._settled
        if settled:
            self._store.note_refused(now)
        self._count()
        gap = ticket - self._last_refused
        in_a_row = gap < max(tune.CLUSTER_GAP, 4 / sent_at) and not self._last_retry_after
        self._last_refused = max(self._last_refused, ticket)
        self._last_retry_after = retry_after
        if emptied and self._refit(ticket, now, sent_at):
            return
        if self._mark is not None and (not settled or in_a_row):
            self._measure(ticket, now, self._mark, sent_at, settled)
            return
        floor = self._floor(ticket)
        self._mark = (ticket, self._accepted, self._refused_total)
        if not self.paced:
            self._first_cut(now)
            return
        probing = sent_at > self._margin * self._estimate * 1.001
        if not probing and not retry_after and self._tolerable():
            return  # an odd 429 at a held pace (requests arriving closer than they left): not worth a cut
        self.events += 1
        upper, self._upper = self._upper, sent_at
        if probing:  # the held pace was safe: back to it (or to what was measured since, if more)
            # Raised slowly, the pace passed the limit only just; fast, maybe by much more. Without a
            # Retry-After the limit is then measured exactly if the pace is still over it (the 429s that
            # follow come in a row).
            slow = sent_at >= tune.NEAR * upper
            if retry_after:
                backoff = tune.PROBE_BACKOFF if slow else tune.FAST_BACKOFF
            else:  # a 429 costs one request: stay close, and measure the limit if still over it
                backoff = tune.PROBE_BACKOFF_NO_PAUSE if slow else tune.FAST_BACKOFF_NO_PAUSE
            estimate = min(max(self._estimate, floor, backoff * sent_at), sent_at)
            near_last = self._near_last_peak(sent_at)
            self._hold = min(tune.MAX_HOLD, 2 * self._hold) if near_last else self._base_hold(retry_after)
            self._last_peak = sent_at
        elif floor >= tune.JITTER * self._estimate:  # the gateway took what was learnt, yet refused: jitter
            estimate = self._estimate
            self._margin = max(tune.MIN_MARGIN, self._margin * tune.MARGIN_CUT)
            self._hold = max(self._hold, self._base_hold(retry_after))
        else:  # the limit is lower than learnt (or shared with others now): what it took since the mark
            # (with a Retry-After, less than the limit when the pause refilled the bucket past its
            # burst: then between that and the pace refused)
            estimate = floor or self._estimate * tune.MARGIN_CUT
            if retry_after and floor:
                estimate = math.sqrt(floor * sent_at)
            self._hold = self._base_hold(retry_after)
        self._estimate = estimate
        self._cut(self._margin * self._estimate, now)

    def _refit(self, ticket: float, now: float, sent_at: float) -> bool:
        """A 429 that found the bucket empty again after a pause: pace by the bucket the answers fit.

        The answers are this client's; sharing a store, the account's.

        Counting what the gateway let through between two 429s over the time between them counts the pause
        as time it let requests through, and misses the burst the pause refilled: it read 0.56 of the rate
        at 50/s, burst 5. The fit counts both. Returns whether the pace was set so.
        """
        if not self.paced:
            return False
        history = AnswerHistory.of(self._store.answers()) if self._store.shared else self._history
        # A bucket refuses a pace held over its rate; under it, only clumps of arrivals: so the limit is
        # sought under the pace refused (over it, a bucket of burst 1 and a high rate explains any 429 as
        # well as the true one does).
        bucket = history.fit_rate(max(tune.MIN_RATE, sent_at / 20), sent_at)
        if bucket is None:
            return False
        self._mark = (ticket, self._accepted, self._refused_total)
        # One 429 lowers the limit learnt to no less than FIT_FLOOR of the pace refused: two short runs of
        # answers may fit a slow bucket with a deep burst alone (the true limit above the pace refused, the
        # 429 the jitter of arrivals), and a limit that low is reached in a few such steps anyway.
        least = max(bucket.least, tune.FIT_FLOOR * sent_at)
        most = max(bucket.most, least)
        self.events += 1
        # Pinned when the answers leave a narrow range, or when a crossing of the range was refused: the
        # limit is under that pace, whatever the answers leave (a burst of 1 never narrows them: jitter).
        if most <= tune.FIT_NARROW * least or self._crossing:
            # Not under PIN_FLOOR of the pace refused, nor under PROBE_BACKOFF after a refused crossing:
            # with a burst of 1 every rate up to that pace fits the answers about as well (a bucket of one
            # token that refills faster than requests come refuses only those that arrive close together),
            # so the range's middle means little.
            floor = tune.PROBE_BACKOFF if self._crossing else tune.PIN_FLOOR
            fitted = min(sent_at, max(math.sqrt(least * most), floor * sent_at))
            # The hold doubles only when this client's own probe was refused near the last peak: a 429 while
            # held is another task's probe (or jitter), and a doubled hold would keep this one down after it.
            near_last = self._near_last_peak(sent_at) and self._probing
            self._hold = min(tune.MAX_HOLD, 2 * self._hold) if near_last else tune.HOLD_FITTED
            self._last_peak = sent_at
            self._estimate = self._upper = fitted
            self._cut(self._margin * fitted, now)
        else:  # a range: from low in it, rise through it (a slow crossing pins the limit at the next 429)
            self._hold = tune.FIRST_HOLD
            self._estimate = max(least, tune.CROSSING_START * most)
            self._upper = most
            self._cut(self._estimate, now)
            self._crossing = True
        return True

    @staticmethod
    def _base_hold(retry_after: float) -> float:
        return tune.HOLD_RETRY_AFTER if retry_after else tune.HOLD

    def _tolerable(self) -> bool:
        """Whether 429s since the last cut are rare enough to be the jitter of arrivals, not the limit."""
        accepted, refused = self._accepted - self._cut_counts[0], self._refused_total - self._cut_counts[1]
        return refused <= tune.TOLERATED * (accepted + refused)

    def _floor(self, ticket: float) -> float:
        """What the gateway let through since the mark: a lower bound of its rate (0 without a mark)."""
        if self._mark is None or ticket <= self._mark[0]:
            return 0.0
        return (self._accepted - self._mark[1]) / (ticket - self._mark[0])

    def _measured(self, ticket: float, mark: tuple[float, int, int]) -> float | None:
        """The rate the gateway let through since the mark (a lower bound), if enough time and answers."""
        span, count = ticket - mark[0], self._accepted - mark[1]
        if span >= tune.MIN_SPAN and count >= tune.MIN_COUNT:
            return count / span
        return None

    def _measure(
        self, ticket: float, now: float, mark: tuple[float, int, int], sent_at: float, settled: bool
    ) -> None:
        """Refused again soon after the mark: the client has sent faster than the bucket refills ever since.

        Between two moments the bucket was empty it let through R requests per second at most, exactly R
        when it never filled up in between (the client kept sending at or above R).
        """
        span, count, refused = ticket - mark[0], self._accepted - mark[1], self._refused_total - mark[2]
        if span <= 0 or refused < tune.RIDING * (count + refused):
            return  # few 429s among many answers: not riding above the limit
        measured = self._measured(ticket, mark)
        if measured is not None:
            self._estimate = self._upper = measured  # measured, not guessed: probe above it slowly
            self._hold = max(self._hold, tune.HOLD)
            if settled or self._margin * measured < self._pace:
                self.events += not settled
                self._cut(self._margin * measured, now)
        elif settled and refused >= tune.QUICK * (count + refused):  # far over it: cut before measuring
            estimate = (count + 0.5) / span  # half a token more: few came yet
            self._estimate = min(estimate, sent_at)
            self._cut(self._margin * self._estimate, now)

    def _first_cut(self, now: float) -> None:
        """The first 429 ends the slow start: pace under the rate of the last answers before it."""
        sending = self._upper = self._pace
        if self._recent and (first := self._last_answers()) is not None:  # the rate of the last answers
            (since, count_then), (latest, count) = first, self._recent[-1]
            sending = min(sending, (count - count_then) / (latest - since))
        elif (  # no answers yet: the rate this client sent at (sharing a store, only its share: not used)
            not self._store.shared
            and self._sent > 1
            and self._started is not None
            and self._last_slot > self._started
        ):
            sending = min(sending, (self._sent - 1) / (self._last_slot - self._started))
        self.paced = True
        self.events += 1
        self._hold = tune.FIRST_HOLD
        self._estimate = sending
        self._cut(tune.BETA * sending, now)

    def _last_answers(self) -> tuple[float, int] | None:
        """Where the last FIRST_CUT_ANSWERS answers (the store's: the account's, when shared) began.

        Counted back over this client's own answers of the last second, each with the store's count then;
        ``None`` when fewer than 3 answers came, or all at once.
        """
        latest, count = self._recent[-1]
        first = next(
            (entry for entry in reversed(self._recent) if count - entry[1] >= tune.FIRST_CUT_ANSWERS - 1),
            self._recent[0],
        )
        return first if count - first[1] >= 2 and latest > first[0] else None

    def _keep_old_spacing(self, now: float) -> None:
        """Before a new pace: the slots taken so far, and the one after the last of them, keep the old one."""
        old = self.rate
        self._settled = max(now, self._last_slot + (0.0 if math.isinf(old) else 1 / old))

    def _near_last_peak(self, sent_at: float) -> bool:
        """Whether a probe refused at ``sent_at`` was refused about where the last one was."""
        return abs(sent_at - self._last_peak) <= 0.1 * sent_at

    def _cut(self, pace: float, now: float) -> None:
        self._keep_old_spacing(now)
        self._pace = max(tune.MIN_RATE, min(pace, self.ceiling))
        self._cut_at = self._raised_at = now
        self._probing = False
        self._crossing = False
        self._cut_counts = (self._accepted, self._refused_total)

    # Sharing a store, every client paces as one controller: what a 429 taught the client that saw it is
    # published in the store (times as offsets from the publication), and every client adopts the latest
    # state once, at its next request or answer. Between 429s each client raises the pace by the same
    # schedule from the same state. The counts the controller measures with are the store's (the account's).

    def _count(self) -> None:
        """Read the store's counts; counts from another store (a shared one down, or back) start afresh."""
        counts, shared = self._store.counts(), self._store.shared
        if shared != self._counted_shared:  # differences across the switch mean nothing
            self._counted_shared = shared
            self._mark = None
            self._history.forget()
            self._recent.clear()
            self._cut_counts = counts
        self._counts = counts

    def _shareable(self) -> ControllerState:
        """The state other clients of the store pace by; unequal after a 429: it taught them something."""
        return ControllerState(
            paced=self.paced,
            pace=self._pace,
            estimate=self._estimate,
            margin=self._margin,
            hold=self._hold,
            upper=self._upper,
            last_peak=self._last_peak,
            last_retry_after=self._last_retry_after,
            probing=self._probing,
            crossing=self._crossing,
            cut_at=self._cut_at,
            resumed=self._resumed,
            last_refused=self._last_refused,
            cut_counts=self._cut_counts,
            mark=self._mark,
        )

    def _publish(self, now: float, events_before: int) -> None:
        """Publish what this 429 taught; if another client published first, adopt its state instead."""
        mine = PaceState(uuid.uuid4().hex, now, self._shareable().to_values(now))
        held = self._store.publish_state(mine, self._state_token)
        if held.token == mine.token:
            self._state_token, self._state_at = mine.token, now
        else:  # built on a state another client replaced meanwhile: that one stands
            self.events = events_before
            self._adopt(held, now, force=True)

    def _adopt(self, state: PaceState | None, now: float, *, force: bool = False) -> None:
        """Pace by the state another client published, when it is newer than this pacer's."""
        if state is None or state.token == self._state_token:
            return
        self._state_token = state.token
        if not force and state.at <= self._state_at:
            return  # older than what this client published (say, while the store was unreachable)
        shared = ControllerState.from_values(state.values, state.at)
        if shared is None:  # written by another version of this controller (within the keys' TTL)
            return
        self._state_at = state.at
        if shared.cut_at > self._cut_at:
            self._keep_old_spacing(now)
        self.paced = shared.paced
        self._pace = shared.pace
        self._estimate = shared.estimate
        self._margin = shared.margin
        self._hold = shared.hold
        self._upper = shared.upper
        self._last_peak = shared.last_peak
        self._last_retry_after = shared.last_retry_after
        self._probing = shared.probing
        self._crossing = shared.crossing
        self._cut_at = shared.cut_at
        self._raised_at = state.at
        self._resumed = max(self._resumed, shared.resumed)
        self._last_refused = shared.last_refused
        self._cut_counts = shared.cut_counts
        self._mark = shared.mark
