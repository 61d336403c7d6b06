"""How long one request may keep meeting 429s: ``throttle_timeout``, then the rate-limit error."""

from __future__ import annotations

import time
from collections.abc import Callable

from gooten_provider.exceptions import GootenRateLimitError


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
