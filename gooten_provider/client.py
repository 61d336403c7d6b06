"""The Gooten API client: requests, encoding, responses, errors and retries. It needs no Airflow.

Example::

    with GootenClient(recipe_id, billing_key) as client:
        client.get_order_status("115557-b5c97bb2-934d-48aa-9ad2-a565154b5cd4")  # ['New', 'New']
        client.update_order_status("115557-b5c97bb2-934d-48aa-9ad2-a565154b5cd4", "hold")
"""

from __future__ import annotations

import datetime as dt
import math
import time
from collections.abc import Iterator
from functools import cached_property
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
from gooten_provider.base_url import DEFAULT_BASE_URL, normalize_base_url
from gooten_provider.billing_key import billing_key_forms, prepare_billing_key
from gooten_provider.defaults import (
    DEFAULT_BACKOFF_FACTOR,
    DEFAULT_MAX_RETRIES,
    DEFAULT_POOL_MAXSIZE,
    DEFAULT_THROTTLE_TIMEOUT,
    DEFAULT_TIMEOUT,
)
from gooten_provider.exceptions import (
    GootenApiError,
    GootenConfigurationError,
    GootenConnectionError,
    GootenHttpError,
    GootenIncompleteAnswerError,
    GootenOutcomeUnknownError,
    GootenRateLimitError,
)
from gooten_provider.order_ids import normalize_order_id
from gooten_provider.rate_limit import RateLimiter
from gooten_provider.redaction import install_urllib3_log_redaction
from gooten_provider.responses import parse_response
from gooten_provider.statuses import canonical_status, normalize_target_status
from gooten_provider.transport import build_session, parse_retry_after

ORDER_STATUS_PATH = "/api/orderstatus"
ORDER_PATH = "/api/v/5/source/api/orders"
ORDER_SEARCH_PATH = "/api/ordersearch"

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


def _is_worth_reading_again(exc: BaseException) -> bool:
    """A read whose answer was cut, or came with a success status but not as Gooten's JSON."""
    if isinstance(exc, GootenIncompleteAnswerError):
        return True
    return isinstance(exc, GootenHttpError) and exc.status_code is not None and exc.status_code < 300


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
        if not isinstance(recipe_id, str) or not recipe_id.strip():
            raise GootenConfigurationError("A Gooten Recipe ID is required (the connection's login field).")
        if not isinstance(billing_key, str) or not billing_key.strip():
            raise GootenConfigurationError(
                "A Gooten Partner Billing Key is required (the connection's password field)."
            )
        if not isinstance(timeout, (int, float)) or not math.isfinite(timeout) or timeout <= 0:
            raise GootenConfigurationError(f"timeout must be a positive number of seconds, got {timeout!r}.")
        if not isinstance(max_retries, int) or isinstance(max_retries, bool) or not 0 <= max_retries <= 10:
            raise GootenConfigurationError(
                f"max_retries must be a whole number from 0 to 10, got {max_retries!r}."
            )
        if requests_per_second is not None and (
            isinstance(requests_per_second, bool)
            or not isinstance(requests_per_second, (int, float))
            or not 0 < requests_per_second < math.inf
        ):
            raise GootenConfigurationError(
                f"requests_per_second must be a positive number (or None for no cap), got "
                f"{requests_per_second!r}."
            )
        if (
            not isinstance(backoff_factor, (int, float))
            or not math.isfinite(backoff_factor)
            or backoff_factor < 0
        ):
            raise GootenConfigurationError(
                f"backoff_factor must be 0 or more seconds, got {backoff_factor!r}."
            )
        if not isinstance(throttle_timeout, (int, float)) or not 0 <= throttle_timeout < math.inf:
            raise GootenConfigurationError(
                f"throttle_timeout must be 0 or more seconds, got {throttle_timeout!r}."
            )
        if not isinstance(adaptive_rate, bool):
            raise GootenConfigurationError(f"adaptive_rate must be True or False, got {adaptive_rate!r}.")
        self.recipe_id = recipe_id.strip()
        self._billing_key = prepare_billing_key(billing_key)
        self.base_url = normalize_base_url(base_url, port)
        # A host given without a scheme is taken as https; a TLS failure then likely means plain HTTP.
        self._scheme_assumed = "://" not in (base_url or DEFAULT_BASE_URL)
        self.timeout = float(timeout)
        self.max_retries = int(max_retries)
        self.backoff_factor = float(backoff_factor)
        self._rate_limiter = RateLimiter(requests_per_second) if requests_per_second is not None else None
        self.throttle_timeout = float(throttle_timeout)
        #: The rate controller every thread of this client shares, or ``None`` with ``adaptive_rate=False``.
        self.rate_controller = AdaptiveRateController() if adaptive_rate else None
        install_urllib3_log_redaction()
        self.session = build_session(
            max_retries=self.max_retries,
            backoff_factor=backoff_factor,
            pool_maxsize=pool_maxsize,
            retry_throttled=not adaptive_rate,
        )

    def __repr__(self) -> str:
        return f"GootenClient(base_url={self.base_url!r}, recipe_id={self.recipe_id!r})"

    @cached_property
    def secret_forms(self) -> tuple[str, ...]:
        """Every form of the billing key that must be masked wherever text is shown (raw and encoded)."""
        return billing_key_forms(self._billing_key)

    # -- reads -------------------------------------------------------------------------------------------

    def get_order(self, order_id: str) -> dict[str, Any]:
        """Return one order as Gooten describes it (``Id``, ``NiceId``, ``Items[]`` with ``Status``, ...)."""
        order_id = normalize_order_id(order_id)
        return self._request("GET", ORDER_PATH, {"id": order_id}, with_key=False, about=f"order {order_id}")

    def get_order_status(self, order_id: str) -> list[str]:
        """Return the status of each item of the order, in item order (Gooten has no order-level status).

        :raises GootenApiError: the order has no items to read a status from.
        """
        order = self.get_order(order_id)
        items = [item for item in order.get("Items") or [] if isinstance(item, dict)]
        statuses = [canonical_status(str(item.get("Status"))) for item in items]
        if not statuses:
            raise GootenApiError(f"Gooten order {order_id} has no items, so it has no status to read.")
        return statuses

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
            page_query = {**params, "page": page, "pageSize": page_size}
            body = self._request("GET", ORDER_SEARCH_PATH, page_query, about=f"page {page}")
            orders = body.get("Orders") or []
            yield from orders
            if not orders or page >= int(body.get("TotalPages") or 1):
                return
            page += 1

    def check_credentials(self) -> None:
        """Make one read-only call that needs both the Recipe ID and the billing key; raise if refused."""
        self._request("GET", ORDER_SEARCH_PATH, {"page": 1, "pageSize": 1}, about="a credentials check")

    # -- writes ------------------------------------------------------------------------------------------

    def update_order_status(self, order_id: str, status: str) -> dict[str, Any]:
        """Set the status of every item of an order; return Gooten's body (``{"HadError": false}``).

        The status is checked before any request: one of ``Cancelled``, ``New``, ``Test``, ``Hold``, any case.
        The change is sent at most once unless it provably never reached Gooten.

        :raises ValueError: invalid order id or status.
        :raises GootenOutcomeUnknownError: the change may have been applied; read the order to settle it.
        :raises GootenApiError: Gooten refused the change (e.g. the order is past the statuses that allow it).
        """
        order_id = normalize_order_id(order_id)
        target = normalize_target_status(status)
        return self._request(
            "POST",
            ORDER_STATUS_PATH,
            {"id": order_id, "orderStatusName": target},
            about=f"order {order_id} -> {target}",
        )

    # -- plumbing ----------------------------------------------------------------------------------------

    def _request(
        self, method: str, path: str, params: dict[str, Any], *, about: str, with_key: bool = True
    ) -> dict[str, Any]:
        if method != "GET":
            return self._send(method, path, params, about=about, with_key=with_key)
        # urllib3 retries reads by status code and before the body; an HTML page or a cut JSON body sent with
        # 200 (a proxy's or a maintenance page), or a body cut off mid-way, is retried here, with the same
        # budget and backoff.
        retrying = Retrying(
            retry=retry_if_exception(_is_worth_reading_again),
            stop=stop_after_attempt(self.max_retries + 1),
            wait=wait_exponential(multiplier=self.backoff_factor, max=30)
            + wait_random(0, self.backoff_factor),
            reraise=True,
        )
        for attempt in retrying:
            with attempt:
                body = self._send(method, path, params, about=about, with_key=with_key)
        return body

    def _send(
        self, method: str, path: str, params: dict[str, Any], *, about: str, with_key: bool
    ) -> dict[str, Any]:
        query: dict[str, Any] = {"recipeid": self.recipe_id, **params}
        if with_key:
            query["partnerBillingKey"] = self._billing_key  # requests encodes it, exactly once
        action = f"{method} {path} ({about})"
        is_write = method != "GET"
        controller = self.rate_controller
        throttled_since: float | None = None
        while True:
            ticket = controller.acquire() if controller else 0.0
            if self._rate_limiter:
                self._rate_limiter.wait()
            error: GootenApiError | None = None
            try:
                response = self.session.request(
                    method,
                    f"{self.base_url}{path}",
                    params=query,
                    timeout=self.timeout,
                    allow_redirects=False,
                )
            except requests.RequestException as exc:
                error = self._transport_error(exc, action, is_write)
            if error is not None:
                # Raised out here, so that requests' exception (its text holds the full URL, key included)
                # is neither its cause nor its context.
                raise error
            if controller is None or response.status_code != 429:
                break
            # Throttled: nothing was applied, so it is sent again, for as long as throttle_timeout allows.
            retry_after = parse_retry_after(response.headers.get("Retry-After"))
            controller.record(ticket, throttled=True, retry_after=retry_after)
            now = time.monotonic()
            throttled_since = now if throttled_since is None else throttled_since
            if now + (retry_after or 0.0) - throttled_since >= self.throttle_timeout:
                more = f" and asked to wait {retry_after:g} s more" if retry_after else ""
                raise GootenRateLimitError(
                    f"Gooten answered 429 Too Many Requests to {action} for {now - throttled_since:.1f} s"
                    f"{more}, past throttle_timeout ({self.throttle_timeout:g} s); nothing was applied. "
                    "Gooten is throttling this account: lower max_workers, spread the work over time, or "
                    "raise throttle_timeout.",
                    status_code=429,
                )
        if controller is not None:
            controller.record(ticket, throttled=False)
        return parse_response(response, action=action, is_write=is_write, secrets=self.secret_forms)

    def _transport_error(self, exc: requests.RequestException, action: str, is_write: bool) -> GootenApiError:
        cause = _cause_name(exc)
        # urllib3 wraps the last error in MaxRetryError only when it retried until it gave up.
        tries = (
            f" after {self.max_retries + 1} attempt(s)"
            if isinstance(_outer_reason(exc), MaxRetryError)
            else ""
        )
        if _never_reached_server(exc):
            hint = ""
            if _tls_failed(exc):
                hint = (
                    " The TLS handshake failed: the connection's host has no scheme, so https was assumed; "
                    "if the server speaks plain HTTP (a local API), write http:// in the host."
                    if self._scheme_assumed
                    else " The TLS handshake failed: is the server an https server?"
                )
            return GootenConnectionError(
                f"Could not connect to {self.base_url} for {action}{tries} ({cause}); "
                f"the request was never sent.{hint}"
            )
        if _timed_out(exc):
            what = f"no answer within {self.timeout:g} s"
        elif isinstance(exc, requests.exceptions.ChunkedEncodingError) or cause == "IncompleteRead":
            what = f"the connection broke during the answer ({cause})"
            if not is_write:
                return GootenIncompleteAnswerError(f"{action}: {what}.")
        else:
            what = f"the connection broke before an answer ({cause})"
        if is_write:
            return GootenOutcomeUnknownError(
                f"{action}: {what}; the change may or may not have been applied. "
                "Read the order to find out before sending it again."
            )
        return GootenConnectionError(f"{action}: {what}{tries.replace(' after', ', after')}.")

    def close(self) -> None:
        """Close the pooled connections."""
        self.session.close()

    def __enter__(self) -> GootenClient:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()
