"""A thread-safe cap on requests per second, shared by every worker of one client."""

from __future__ import annotations

import math
import threading
import time


class RateLimiter:
    """Space calls at least ``1 / requests_per_second`` apart, across threads.

    :param requests_per_second: the cap; must be positive.
    """

    def __init__(self, requests_per_second: float) -> None:
        if not math.isfinite(requests_per_second) or requests_per_second <= 0:
            raise ValueError(f"requests_per_second must be a positive number, got {requests_per_second!r}.")
        self._interval = 1.0 / requests_per_second
        self._lock = threading.Lock()
        self._next_slot = time.monotonic()

    def wait(self) -> None:
        """Block until this caller's slot comes up."""
        with self._lock:
            now = time.monotonic()
            slot = max(now, self._next_slot)
            self._next_slot = slot + self._interval
        if slot > now:
            time.sleep(slot - now)
