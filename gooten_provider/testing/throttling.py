"""Throttling of the local Gooten API as an API gateway does it: one token bucket per Recipe ID.

This is a fault of the local API, **not documented Gooten behaviour**: Gooten publishes no rate limit.
It exists because every gateway in front of an API has one, and a client must survive it.

What counts, as a gateway sees it:

* every request to an API route (``POST /api/orderstatus``, ``GET /api/v/{n}/source/{src}/orders``,
  ``GET /api/ordersearch``) takes one token, whatever it asks and whether or not it would succeed;
  the read-only admin page and unknown paths (HTML 404) take none;
* the bucket is chosen by the ``recipeid`` query parameter exactly as sent once form-decoded (case
  kept: a gateway keys on the string, it does not parse GUIDs); a request without one shares the
  bucket of the empty string. Every connection and thread of the server shares the buckets;
* each bucket holds at most ``rate_burst`` tokens, starts full, and refills continuously at
  ``rate_limit`` tokens per second. A request that finds less than one token takes nothing and is
  answered ``429`` with ``{"Message": "Too many requests"}`` and, unless turned off,
  ``Retry-After`` in whole seconds until a token is due (rounded up, at least 1); nothing else
  happens to it (no change is applied, no fault is drawn).

:class:`RequestThrottle` keeps the buckets and makes the decision; it reads time from an injectable
clock, so tests can drive it without waiting.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable

#: A source of seconds that never goes backwards, such as :func:`time.monotonic`.
Clock = Callable[[], float]

# Float error must not turn a wait of exactly 2 s into "Retry-After: 3".
_ROUNDING_SLACK = 1e-9


class TokenBucket:
    """Tokens that refill continuously at ``rate`` per second, up to ``capacity``; starts full.

    Not thread-safe on its own: :class:`RequestThrottle` calls it under its lock.
    """

    def __init__(self, rate: float, capacity: int, now: float) -> None:
        self.rate = rate
        self.capacity = capacity
        self._tokens = float(capacity)
        self._updated = now

    def take(self, now: float) -> float:
        """Take one token and return ``0.0``, or take nothing and return the seconds until one is due."""
        elapsed = max(0.0, now - self._updated)
        self._tokens = min(float(self.capacity), self._tokens + elapsed * self.rate)
        self._updated = max(self._updated, now)
        if self._tokens >= 1.0:
            self._tokens -= 1.0
            return 0.0
        return (1.0 - self._tokens) / self.rate


def default_burst(rate_limit: float) -> int:
    """Return the burst used when none is given: one second's worth of requests, at least 1."""
    return max(1, math.ceil(rate_limit))


def retry_after_seconds(wait: float) -> int:
    """Return the ``Retry-After`` value for a wait: whole seconds, rounded up, at least 1."""
    return max(1, math.ceil(wait - _ROUNDING_SLACK))


class RequestThrottle:
    """One :class:`TokenBucket` per Recipe ID, shared by every thread that asks (thread-safe).

    :param rate_limit: tokens added to each bucket per second (requests per second it sustains), above 0.
    :param rate_burst: the most tokens a bucket holds (requests it lets through at once), 1 or more;
        ``None`` means one second's worth (:func:`default_burst`).
    :param clock: where time comes from; tests pass one they can move.
    :raises ValueError: ``rate_limit`` or ``rate_burst`` is out of range.
    """

    def __init__(
        self, rate_limit: float, rate_burst: int | None = None, clock: Clock = time.monotonic
    ) -> None:
        if isinstance(rate_limit, bool) or not isinstance(rate_limit, int | float):
            raise ValueError(f"rate_limit must be a number of requests per second, got {rate_limit!r}.")
        if not (0.0 < float(rate_limit) < math.inf):
            raise ValueError(
                f"rate_limit must be above 0 requests per second (and finite), got {rate_limit!r}."
            )
        if rate_burst is None:
            rate_burst = default_burst(float(rate_limit))
        if isinstance(rate_burst, bool) or not isinstance(rate_burst, int) or rate_burst < 1:
            raise ValueError(f"rate_burst must be a whole number of requests, 1 or more, got {rate_burst!r}.")
        #: Requests per second each Recipe ID sustains.
        self.rate_limit = float(rate_limit)
        #: Requests each Recipe ID may send at once after a pause.
        self.rate_burst = rate_burst
        self._clock = clock
        self._lock = threading.Lock()
        self._buckets: dict[str, TokenBucket] = {}

    def take(self, recipe_id: str) -> float:
        """Take a token from ``recipe_id``'s bucket.

        :returns: ``0.0`` when a token was taken (the request goes on), else the seconds until one is
            due (the request is throttled; nothing was taken).
        """
        with self._lock:
            now = self._clock()
            bucket = self._buckets.get(recipe_id)
            if bucket is None:
                bucket = self._buckets[recipe_id] = TokenBucket(self.rate_limit, self.rate_burst, now)
            return bucket.take(now)
