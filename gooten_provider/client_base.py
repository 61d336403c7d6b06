"""What the sync and the async Gooten clients share: their settings, the request core and the pacing.

:class:`~gooten_provider.client.GootenClient` (``requests``, threads) and
:class:`~gooten_provider.async_client.AsyncGootenClient` (``httpx``, an event loop) differ only in how they
send a request and wait; the checks of their settings, the requests they build, how an answer is read and
what a 429 means for the pace are here and in :mod:`gooten_provider.request_core`, once.
"""

from __future__ import annotations

from collections.abc import Mapping

from gooten_provider.adaptive_rate import AdaptiveRateController
from gooten_provider.base_url import DEFAULT_BASE_URL
from gooten_provider.defaults import (
    DEFAULT_BACKOFF_FACTOR,
    DEFAULT_MAX_RETRIES,
    DEFAULT_POOL_MAXSIZE,
    DEFAULT_THROTTLE_TIMEOUT,
    DEFAULT_TIMEOUT,
)
from gooten_provider.rate_limit import RateLimiter
from gooten_provider.request_core import RequestCore, ThrottleWindow, parse_retry_after


class GootenClientBase:
    """The settings, core and pacing of a Gooten client; a transport subclass sends the requests.

    :param recipe_id: the account's Recipe ID (public; sent on every call).
    :param billing_key: the Partner Billing Key (private). Give it as Gooten shows it; a key stored
        URL-encoded is detected and decoded once, with a warning.
    :param base_url: the API base URL, default ``https://api.print.io``; see :func:`normalize_base_url`.
    :param port: a port to use when ``base_url`` names none.
    :param timeout: seconds to wait for a connection and for each response.
    :param max_retries: retries of a failed request (reads only, and writes that never reached Gooten).
    :param backoff_factor: retry delays grow as ``backoff_factor * 2**n`` seconds, plus jitter.
    :param pool_maxsize: connections kept open; at least the number of threads (or readers) sharing it.
    :param requests_per_second: an optional hard cap on the request rate of this client.
    :param adaptive_rate: pace every request of this client at a rate learnt from Gooten's 429s, and pause
        them all for a ``Retry-After`` (see :mod:`gooten_provider.adaptive_rate`). Off, a 429 is retried
        like a 5xx, up to ``max_retries``.
    :param throttle_timeout: with ``adaptive_rate``, seconds a request keeps being retried while Gooten
        answers 429, before it fails with :class:`GootenRateLimitError` (nothing was applied).
    """

    def __init__(
        self,
        recipe_id: str,
        billing_key: str,
        *,
        base_url: str | None = DEFAULT_BASE_URL,
        port: int | None = None,
        timeout: float = DEFAULT_TIMEOUT,
        max_retries: int = DEFAULT_MAX_RETRIES,
        backoff_factor: float = DEFAULT_BACKOFF_FACTOR,
        pool_maxsize: int = DEFAULT_POOL_MAXSIZE,
        requests_per_second: float | None = None,
        adaptive_rate: bool = True,
        throttle_timeout: float = DEFAULT_THROTTLE_TIMEOUT,
    ) -> None:
        #: The sans-I/O core (settings, requests, answers, errors, retry decisions).
        self.core = RequestCore(
            recipe_id,
            billing_key,
            base_url=base_url,
            port=port,
            timeout=timeout,
            max_retries=max_retries,
            backoff_factor=backoff_factor,
            requests_per_second=requests_per_second,
            adaptive_rate=adaptive_rate,
            throttle_timeout=throttle_timeout,
        )
        self.recipe_id = self.core.recipe_id
        self.base_url = self.core.base_url
        self.timeout = self.core.timeout
        self.max_retries = self.core.max_retries
        self.backoff_factor = self.core.backoff_factor
        self.throttle_timeout = self.core.throttle_timeout
        self._rate_limiter = RateLimiter(requests_per_second) if requests_per_second is not None else None
        #: The rate controller every request of this client shares, or ``None`` with ``adaptive_rate=False``.
        self.rate_controller = AdaptiveRateController() if adaptive_rate else None
        self._open_transport(pool_maxsize)

    def _open_transport(self, pool_maxsize: int) -> None:
        """Set up the HTTP library's pooled connections (each transport its own)."""
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"{type(self).__name__}(base_url={self.base_url!r}, recipe_id={self.recipe_id!r})"

    @property
    def secret_forms(self) -> tuple[str, ...]:
        """Every form of the billing key that must be masked wherever text is shown (raw and encoded)."""
        return self.core.secret_forms

    def _send_again(
        self, ticket: float, throttle: ThrottleWindow, status_code: int, headers: Mapping[str, str]
    ) -> bool:
        """Tell the rate controller how a request was answered; true for a 429 to send again after pacing.

        A throttled request was not applied, so a write may be sent again too, until ``throttle_timeout``.

        :raises GootenRateLimitError: throttled for longer than ``throttle_timeout``.
        """
        controller = self.rate_controller
        if controller is None:
            return False  # not paced here: the transport's retries handle a 429 like a 5xx
        if status_code != 429:
            controller.record(ticket, throttled=False)
            return False
        retry_after = parse_retry_after(headers.get("Retry-After"))
        controller.record(ticket, throttled=True, retry_after=retry_after)
        throttle.throttled(retry_after)
        return True
