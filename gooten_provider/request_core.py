"""The sans-I/O core of every Gooten call: settings, requests, answers, errors and retry decisions.

It sends nothing. :class:`~gooten_provider.client.GootenClient` (``requests``, threads) and
:class:`~gooten_provider.async_client.AsyncGootenClient` (``httpx``, an event loop) are two transports over
it, as h11 is the protocol under httpx: each builds its request here, sends it its own way, hands the answer
(or what went wrong on the wire) back here, and gets data or the provider's error, redacted the same way.
The billing key is handed raw to the HTTP library, which encodes it exactly once.
"""

from __future__ import annotations

import enum
import math
import random
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from functools import cached_property
from typing import Any

from gooten_provider.base_url import DEFAULT_BASE_URL, normalize_base_url
from gooten_provider.billing_key import billing_key_forms, prepare_billing_key
from gooten_provider.defaults import (
    DEFAULT_BACKOFF_FACTOR,
    DEFAULT_MAX_RETRIES,
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
from gooten_provider.responses import HttpAnswer, parse_response
from gooten_provider.statuses import canonical_status, normalize_target_status

ORDER_STATUS_PATH = "/api/orderstatus"
ORDER_PATH = "/api/v/5/source/api/orders"
ORDER_SEARCH_PATH = "/api/ordersearch"

#: HTTP statuses after which a read is sent again (429 only when the client does not pace itself).
RETRYABLE_STATUSES = frozenset({429, 500, 502, 503, 504})
#: A ``Retry-After`` longer than this is cut to it, so one answer cannot stall a task for an hour.
MAX_RETRY_AFTER_SECONDS = 60.0
#: The longest backoff between two tries of a read, before jitter.
MAX_BACKOFF_SECONDS = 30.0


def parse_retry_after(value: str | None) -> float | None:
    """Seconds from a ``Retry-After`` header (seconds, fractions allowed, or an HTTP date), capped.

    ``None`` when the header is absent or unreadable.
    """
    if value is None:
        return None
    if re.fullmatch(r"\s*\d+(\.\d+)?\s*", value):
        seconds = float(value)
    else:
        try:
            seconds = parsedate_to_datetime(value.strip()).timestamp() - time.time()
        except (TypeError, ValueError, IndexError, OverflowError):
            return None
    return min(max(seconds, 0.0), MAX_RETRY_AFTER_SECONDS)


class TransportFailure(enum.Enum):
    """What went wrong on the wire, as a transport tells it; the core turns it into the provider's error."""

    #: The connection could not be opened (or no pooled connection came): the request was never sent.
    NOT_SENT = "not_sent"
    #: The TLS handshake failed: also never sent.
    TLS = "tls"
    #: No answer in time.
    TIMED_OUT = "timed_out"
    #: The connection broke while the answer was being read.
    CUT_ANSWER = "cut_answer"
    #: The connection broke after the request and before any answer.
    BROKEN = "broken"


@dataclass(frozen=True)
class GootenRequest:
    """One call to send: the transport adds only the base URL, headers and timeout."""

    method: str
    path: str
    #: The query, billing key raw when needed (the HTTP library encodes it once). Never log it.
    query: dict[str, Any]
    #: What is asked, for messages, e.g. ``"GET /api/v/5/source/api/orders (order 1-ab)"``.
    action: str

    @property
    def is_write(self) -> bool:
        """A write may have been applied even when its answer is lost: it is never blindly sent again."""
        return self.method != "GET"

    def __repr__(self) -> str:  # the query holds the key: keep it out of reprs and tracebacks
        return f"GootenRequest({self.action!r})"


def is_worth_reading_again(exc: BaseException) -> bool:
    """A read whose answer was cut, or came with a success status but not as Gooten's JSON."""
    if isinstance(exc, GootenIncompleteAnswerError):
        return True
    return isinstance(exc, GootenHttpError) and exc.status_code is not None and exc.status_code < 300


class RequestCore:
    """The settings of one client and everything it does without I/O; shared by both transports.

    The parameters are :class:`~gooten_provider.client.GootenClient`'s (checked here, once, for both).
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
        self.scheme_assumed = "://" not in (base_url or DEFAULT_BASE_URL)
        self.timeout = float(timeout)
        self.max_retries = int(max_retries)
        self.backoff_factor = float(backoff_factor)
        self.requests_per_second = None if requests_per_second is None else float(requests_per_second)
        self.adaptive_rate = adaptive_rate
        self.throttle_timeout = float(throttle_timeout)

    @cached_property
    def secret_forms(self) -> tuple[str, ...]:
        """Every form of the billing key that must be masked wherever text is shown (raw and encoded)."""
        return billing_key_forms(self._billing_key)

    # -- building requests -------------------------------------------------------------------------------

    def request(
        self, method: str, path: str, params: dict[str, Any], *, about: str, with_key: bool = True
    ) -> GootenRequest:
        """A request of ``path`` with the Recipe ID (and the billing key, unless ``with_key`` is false)."""
        query: dict[str, Any] = {"recipeid": self.recipe_id, **params}
        if with_key:
            query["partnerBillingKey"] = self._billing_key
        return GootenRequest(method, path, query, f"{method} {path} ({about})")

    def order_request(self, order_id: str) -> GootenRequest:
        """Read one order (Gooten needs no billing key for it)."""
        order_id = normalize_order_id(order_id)
        return self.request("GET", ORDER_PATH, {"id": order_id}, with_key=False, about=f"order {order_id}")

    def search_page_request(self, params: dict[str, str], page: int, page_size: int) -> GootenRequest:
        """One page of an order search."""
        page_query = {**params, "page": page, "pageSize": page_size}
        return self.request("GET", ORDER_SEARCH_PATH, page_query, about=f"page {page}")

    def credentials_request(self) -> GootenRequest:
        """A read-only call that needs both the Recipe ID and the billing key (a search of one order)."""
        return self.request("GET", ORDER_SEARCH_PATH, {"page": 1, "pageSize": 1}, about="a credentials check")

    def status_change_request(self, order_id: str, status: str) -> GootenRequest:
        """Set the status of every item of an order; the status is checked before anything is sent."""
        order_id = normalize_order_id(order_id)
        target = normalize_target_status(status)
        return self.request(
            "POST",
            ORDER_STATUS_PATH,
            {"id": order_id, "orderStatusName": target},
            about=f"order {order_id} -> {target}",
        )

    # -- reading answers ---------------------------------------------------------------------------------

    def parse(self, answer: HttpAnswer, request: GootenRequest) -> dict[str, Any]:
        """Gooten's JSON body, or the provider's error it stands for (redacted)."""
        return parse_response(
            answer, action=request.action, is_write=request.is_write, secrets=self.secret_forms
        )

    @staticmethod
    def item_statuses(order_id: str, order: dict[str, Any]) -> list[str]:
        """The status of each item of an order body, in item order, known aliases resolved.

        :raises GootenApiError: the order has no items to read a status from.
        """
        items = [item for item in order.get("Items") or [] if isinstance(item, dict)]
        statuses = [canonical_status(str(item.get("Status"))) for item in items]
        if not statuses:
            raise GootenApiError(f"Gooten order {order_id} has no items, so it has no status to read.")
        return statuses

    def transport_error(
        self, failure: TransportFailure, request: GootenRequest, *, cause: str, attempts: int = 1
    ) -> GootenApiError:
        """The provider's error for a request that failed on the wire.

        :param cause: the innermost exception's class name (its text may hold the URL, key included).
        :param attempts: how many times the request was sent, when more than once.
        """
        action, is_write = request.action, request.is_write
        tries = f" after {attempts} attempt(s)" if attempts > 1 else ""
        if failure in (TransportFailure.NOT_SENT, TransportFailure.TLS):
            hint = ""
            if failure is TransportFailure.TLS:
                hint = (
                    " The TLS handshake failed: the connection's host has no scheme, so https was assumed; "
                    "if the server speaks plain HTTP (a local API), write http:// in the host."
                    if self.scheme_assumed
                    else " The TLS handshake failed: is the server an https server?"
                )
            return GootenConnectionError(
                f"Could not connect to {self.base_url} for {action}{tries} ({cause}); "
                f"the request was never sent.{hint}"
            )
        if failure is TransportFailure.TIMED_OUT:
            what = f"no answer within {self.timeout:g} s"
        elif failure is TransportFailure.CUT_ANSWER:
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

    # -- retry decisions ---------------------------------------------------------------------------------

    @property
    def retryable_statuses(self) -> frozenset[int]:
        """Statuses after which a read is sent again: a paced client retries 429s in its throttle loop."""
        return RETRYABLE_STATUSES - {429} if self.adaptive_rate else RETRYABLE_STATUSES

    def should_read_again(self, exc: BaseException) -> bool:
        """Whether a failed read is worth sending again (within ``max_retries``); never a write.

        Connection trouble, a retryable status, or an answer that is cut or not Gooten's JSON.
        """
        if isinstance(exc, GootenRateLimitError):
            return 429 in self.retryable_statuses
        if isinstance(exc, GootenConnectionError) or is_worth_reading_again(exc):
            return True
        return isinstance(exc, GootenHttpError) and exc.status_code in self.retryable_statuses

    def backoff_seconds(self, retry: int) -> float:
        """The wait before retry ``retry`` (0 first): ``backoff_factor * 2**retry``, capped, plus jitter."""
        base = min(self.backoff_factor * 2.0**retry, MAX_BACKOFF_SECONDS)
        return base + random.uniform(0, self.backoff_factor)  # noqa: S311 - jitter, not cryptography

    def throttle_window(
        self, request: GootenRequest, clock: Callable[[], float] = time.monotonic
    ) -> ThrottleWindow:
        """The budget of 429s one request may meet before it fails (``throttle_timeout``)."""
        return ThrottleWindow(request.action, self.throttle_timeout, clock)


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
