"""A thread-safe cap on requests per second, shared by every worker of one client."""

from __future__ import annotations

import asyncio
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

    def reserve(self) -> float:
        """Take this caller's slot; return the seconds to wait before it (for sync and async callers)."""
        with self._lock:
            now = time.monotonic()
            slot = max(now, self._next_slot)
            self._next_slot = slot + self._interval
        return slot - now

    def wait(self) -> None:
        """Block until this caller's slot comes up."""
        delay = self.reserve()
        if delay > 0:
            time.sleep(delay)

    async def await_slot(self) -> None:
        """Wait on the event loop until this caller's slot comes up."""
        delay = self.reserve()
        if delay > 0:
            await asyncio.sleep(delay)
