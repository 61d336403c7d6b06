"""The Gooten API client: requests, encoding, responses, errors and retries. It needs no Airflow.

Example::

    with GootenClient(recipe_id, billing_key) as client:
        client.get_order_status("115557-b5c97bb2-934d-48aa-9ad2-a565154b5cd4")  # ['New', 'New']
        client.update_order_status("115557-b5c97bb2-934d-48aa-9ad2-a565154b5cd4", "hold")
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from types import TracebackType
from typing import Any

import requests
from tenacity import Retrying, retry_if_exception, stop_after_attempt, wait_exponential, wait_random
from urllib3.exceptions import (
    ConnectTimeoutError,
    MaxRetryError,
    NewConnectionError,
    ReadTimeoutError,
)
from urllib3.exceptions import SSLError as Urllib3SSLError

from gooten_provider.adaptive_rate import AdaptiveRateController
from gooten_provider.base_url import DEFAULT_BASE_URL
from gooten_provider.defaults import (
    DEFAULT_BACKOFF_FACTOR,
    DEFAULT_MAX_RETRIES,
    DEFAULT_POOL_MAXSIZE,
    DEFAULT_THROTTLE_TIMEOUT,
    DEFAULT_TIMEOUT,
)
from gooten_provider.exceptions import GootenApiError
from gooten_provider.rate_limit import RateLimiter
from gooten_provider.redaction import install_urllib3_log_redaction
from gooten_provider.request_core import (
    MAX_BACKOFF_SECONDS,
    ORDER_PATH,
    ORDER_SEARCH_PATH,
    ORDER_STATUS_PATH,
    GootenRequest,
    RequestCore,
    TransportFailure,
    is_worth_reading_again,
    parse_retry_after,
)
from gooten_provider.transport import build_session

__all__ = ["ORDER_PATH", "ORDER_SEARCH_PATH", "ORDER_STATUS_PATH", "SEARCH_FILTERS", "GootenClient"]

# Python keyword -> Gooten's query parameter, for search_orders().
SEARCH_FILTERS = {
    "email": "email",
    "last_name": "lastName",
    "postal_code": "postalCode",
    "start_date": "startDate",
    "end_date": "endDate",
    "unique_user_id": "uniqueUserId",
    "generic_values": "genericValues",
    "partner_id": "partnerId",
}


def _outer_reason(exc: requests.RequestException) -> object:
    """The urllib3 error a requests error wraps."""
    return exc.args[0] if exc.args else None


def _urllib3_reason(exc: requests.RequestException) -> object:
    """The urllib3 error behind a requests error (after retries, the last attempt's)."""
    reason = _outer_reason(exc)
    return reason.reason if isinstance(reason, MaxRetryError) else reason


def _tls_failed(exc: requests.RequestException) -> bool:
    """Tell whether the TLS handshake failed: it comes before the request, so nothing was sent."""
    return isinstance(exc, requests.exceptions.SSLError) or isinstance(_urllib3_reason(exc), Urllib3SSLError)


def _never_reached_server(exc: requests.RequestException) -> bool:
    """Tell whether a transport error happened before the request was sent (connect or TLS failure)."""
    return (
        isinstance(exc, requests.ConnectTimeout)
        or isinstance(_urllib3_reason(exc), (NewConnectionError, ConnectTimeoutError))
        or _tls_failed(exc)
    )


def _timed_out(exc: requests.RequestException) -> bool:
    """Tell whether the answer did not come in time (directly, or on the last of several attempts)."""
    return isinstance(exc, requests.Timeout) or isinstance(_urllib3_reason(exc), ReadTimeoutError)


def _cause_name(exc: BaseException) -> str:
    """The innermost exception's class name: enough to explain a failure without its URL-bearing text."""
    inner: BaseException = exc
    seen = set()
    while id(inner) not in seen:
        seen.add(id(inner))
        wrapped = [arg for arg in inner.args if isinstance(arg, BaseException)]
        if isinstance(inner, MaxRetryError) and inner.reason is not None:
            wrapped.insert(0, inner.reason)
        nxt = wrapped[0] if wrapped else inner.__cause__ or inner.__context__
        if nxt is None:
            break
        inner = nxt
    return type(inner).__name__


def _failure(exc: requests.RequestException) -> TransportFailure:
    """What a ``requests`` error means, in the core's terms."""
    if _never_reached_server(exc):
        return TransportFailure.TLS if _tls_failed(exc) else TransportFailure.NOT_SENT
    if _timed_out(exc):
        return TransportFailure.TIMED_OUT
    if isinstance(exc, requests.exceptions.ChunkedEncodingError) or _cause_name(exc) == "IncompleteRead":
        return TransportFailure.CUT_ANSWER
    return TransportFailure.BROKEN


class GootenClient:
    """A client of the Gooten order API, safe to share between threads.

    :param recipe_id: the account's Recipe ID (public; sent on every call).
    :param billing_key: the Partner Billing Key (private). Give it as Gooten shows it; a key stored
        URL-encoded is detected and decoded once, with a warning.
    :param base_url: the API base URL, default ``https://api.print.io``; see :func:`normalize_base_url`.
    :param port: a port to use when ``base_url`` names none.
    :param timeout: seconds to wait for a connection and for each response.
    :param max_retries: retries of a failed request (reads only, and writes that never reached Gooten).
    :param backoff_factor: retry delays grow as ``backoff_factor * 2**n`` seconds, plus jitter.
    :param pool_maxsize: connections kept open; at least the number of threads sharing the client.
    :param requests_per_second: an optional hard cap on the request rate of this client, across threads.
    :param adaptive_rate: pace every thread of this client at a rate learnt from Gooten's 429s, and pause
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
        #: The sans-I/O core (settings, requests, answers, errors), shared with the async client.
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
        #: The rate controller every thread of this client shares, or ``None`` with ``adaptive_rate=False``.
        self.rate_controller = AdaptiveRateController() if adaptive_rate else None
        install_urllib3_log_redaction()
        self.session = build_session(
            max_retries=self.max_retries,
            backoff_factor=self.backoff_factor,
            pool_maxsize=pool_maxsize,
            retry_throttled=not adaptive_rate,
        )

    def __repr__(self) -> str:
        return f"GootenClient(base_url={self.base_url!r}, recipe_id={self.recipe_id!r})"

    @property
    def secret_forms(self) -> tuple[str, ...]:
        """Every form of the billing key that must be masked wherever text is shown (raw and encoded)."""
        return self.core.secret_forms

    # -- reads -------------------------------------------------------------------------------------------

    def get_order(self, order_id: str) -> dict[str, Any]:
        """Return one order as Gooten describes it (``Id``, ``NiceId``, ``Items[]`` with ``Status``, ...)."""
        return self._request(self.core.order_request(order_id))

    def get_order_status(self, order_id: str) -> list[str]:
        """Return the status of each item of the order, in item order (Gooten has no order-level status).

        :raises GootenApiError: the order has no items to read a status from.
        """
        return self.core.item_statuses(order_id, self.get_order(order_id))

    def search_orders(
        self, *, page_size: int = 100, **filters: str | dt.date | None
    ) -> Iterator[dict[str, Any]]:
        """Yield every order matching the filters, fetching page after page as the iteration goes on.

        :param page_size: orders per page (Gooten allows 1 to 100).
        :param filters: any of ``email``, ``last_name``, ``postal_code``, ``start_date``, ``end_date``
            (dates or ``yyyy-mm-dd``), ``unique_user_id``, ``generic_values``, ``partner_id``.
        :raises ValueError: an unknown filter or a page size out of range, at the call (not at iteration).
        """
        unknown = sorted(set(filters) - set(SEARCH_FILTERS))
        if unknown:
            raise ValueError(
                f"Unknown order search filter(s) {', '.join(unknown)}; allowed: {', '.join(SEARCH_FILTERS)}."
            )
        if not 1 <= page_size <= 100:
            raise ValueError(f"page_size must be between 1 and 100, got {page_size!r}.")
        params = {
            SEARCH_FILTERS[name]: value.isoformat() if isinstance(value, dt.date) else str(value)
            for name, value in filters.items()
            if value is not None
        }
        return self._search_pages(params, page_size)

    def _search_pages(self, params: dict[str, str], page_size: int) -> Iterator[dict[str, Any]]:
        page = 1
        while True:
            body = self._request(self.core.search_page_request(params, page, page_size))
            orders = body.get("Orders") or []
            yield from orders
            if not orders or page >= int(body.get("TotalPages") or 1):
                return
            page += 1

    def check_credentials(self) -> None:
        """Make one read-only call that needs both the Recipe ID and the billing key; raise if refused."""
        self._request(self.core.credentials_request())

    # -- writes ------------------------------------------------------------------------------------------

    def update_order_status(self, order_id: str, status: str) -> dict[str, Any]:
        """Set the status of every item of an order; return Gooten's body (``{"HadError": false}``).

        The status is checked before any request: one of ``Cancelled``, ``New``, ``Test``, ``Hold``, any case.
        The change is sent at most once unless it provably never reached Gooten.

        :raises ValueError: invalid order id or status.
        :raises GootenOutcomeUnknownError: the change may have been applied; read the order to settle it.
        :raises GootenApiError: Gooten refused the change (e.g. the order is past the statuses that allow it).
        """
        return self._request(self.core.status_change_request(order_id, status))

    # -- plumbing ----------------------------------------------------------------------------------------

    def _request(self, request: GootenRequest) -> dict[str, Any]:
        if request.is_write:
            return self._send(request)
        # urllib3 retries reads by status code and before the body; an HTML page or a cut JSON body sent with
        # 200 (a proxy's or a maintenance page), or a body cut off mid-way, is retried here, with the same
        # budget and backoff as the async client's reads (the core's is_worth_reading_again).
        retrying = Retrying(
            retry=retry_if_exception(is_worth_reading_again),
            stop=stop_after_attempt(self.max_retries + 1),
            wait=wait_exponential(multiplier=self.backoff_factor, max=MAX_BACKOFF_SECONDS)
            + wait_random(0, self.backoff_factor),
            reraise=True,
        )
        for attempt in retrying:
            with attempt:
                body = self._send(request)
        return body

    def _send(self, request: GootenRequest) -> dict[str, Any]:
        controller = self.rate_controller
        throttle = self.core.throttle_window(request)
        while True:
            ticket = controller.acquire() if controller else 0.0
            if self._rate_limiter:
                self._rate_limiter.wait()
            error: GootenApiError | None = None
            try:
                response = self.session.request(
                    request.method,
                    f"{self.base_url}{request.path}",
                    params=request.query,  # requests encodes the billing key, exactly once
                    timeout=self.timeout,
                    allow_redirects=False,
                )
            except requests.RequestException as exc:
                error = self._transport_error(exc, request)
            if error is not None:
                # Raised out here, so that requests' exception (its text holds the full URL, key included)
                # is neither its cause nor its context.
                raise error
            if controller is None or response.status_code != 429:
                break
            # Throttled: nothing was applied, so it is sent again, for as long as throttle_timeout allows.
            retry_after = parse_retry_after(response.headers.get("Retry-After"))
            controller.record(ticket, throttled=True, retry_after=retry_after)
            throttle.throttled(retry_after)
        if controller is not None:
            controller.record(ticket, throttled=False)
        return self.core.parse(response, request)

    def _transport_error(self, exc: requests.RequestException, request: GootenRequest) -> GootenApiError:
        # urllib3 wraps the last error in MaxRetryError only when it retried until it gave up.
        attempts = self.max_retries + 1 if isinstance(_outer_reason(exc), MaxRetryError) else 1
        return self.core.transport_error(_failure(exc), request, cause=_cause_name(exc), attempts=attempts)

    def close(self) -> None:
        """Close the pooled connections."""
        self.session.close()

    def __enter__(self) -> GootenClient:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()
