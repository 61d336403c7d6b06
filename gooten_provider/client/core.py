"""The sans-I/O core of every Gooten call: requests built, answers read, wire failures named.

It sends nothing. :class:`~gooten_provider.client.GootenClient` (``requests``, threads) and
:class:`~gooten_provider.async_client.AsyncGootenClient` (``httpx``, an event loop) are two transports over
it, as h11 is the protocol under httpx: each builds its request here, sends it its own way, hands the answer
(or what went wrong on the wire) back here, and gets data or the provider's error, redacted the same way.
Whether to try again is :mod:`~gooten_provider.client.retry`'s decision; when to send, the
:mod:`~gooten_provider.client.pacer`'s. The billing key is handed raw to the HTTP library, which encodes it
exactly once.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from functools import cached_property
from typing import Any

from gooten_provider.client.billing_key import billing_key_forms
from gooten_provider.client.responses import HttpAnswer, parse_response
from gooten_provider.client.settings import ClientSettings
from gooten_provider.exceptions import (
    GootenApiError,
    GootenConnectionError,
    GootenIncompleteAnswerError,
    GootenOutcomeUnknownError,
)
from gooten_provider.order_ids import normalize_order_id
from gooten_provider.statuses import canonical_status, normalize_target_status

ORDER_STATUS_PATH = "/api/orderstatus"
ORDER_PATH = "/api/v/5/source/api/orders"
ORDER_SEARCH_PATH = "/api/ordersearch"


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
    #: The JSON body, if the call has one (``orderCancel``'s ``{"Ids": [...]}``); the query holds the rest.
    body: dict[str, Any] | None = None

    @property
    def is_write(self) -> bool:
        """A write may have been applied even when its answer is lost: it is never blindly sent again."""
        return self.method != "GET"

    def __repr__(self) -> str:  # the query holds the key: keep it out of reprs and tracebacks
        return f"GootenRequest({self.action!r})"


class RequestCore:
    """Everything one client does without I/O: build its requests, read their answers, name its errors.

    :param settings: the client's checked settings.
    """

    def __init__(self, settings: ClientSettings) -> None:
        self.settings = settings
        self.recipe_id = settings.recipe_id
        self.base_url = str(settings.base_url)  # normalised by the settings: never None
        self._billing_key = settings.billing_key

    @cached_property
    def secret_forms(self) -> tuple[str, ...]:
        """Every form of the billing key that must be masked wherever text is shown (raw and encoded)."""
        return billing_key_forms(self._billing_key)

    # -- building requests -------------------------------------------------------------------------------

    def request(
        self,
        method: str,
        path: str,
        params: dict[str, Any],
        *,
        about: str,
        with_key: bool = True,
        body: dict[str, Any] | None = None,
    ) -> GootenRequest:
        """A request of ``path`` with the Recipe ID (and the billing key, unless ``with_key`` is false)."""
        query: dict[str, Any] = {"recipeid": self.recipe_id, **params}
        if with_key:
            query["partnerBillingKey"] = self._billing_key
        return GootenRequest(method, path, query, f"{method} {path} ({about})", body)

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
                    if self.settings.scheme_assumed
                    else " The TLS handshake failed: is the server an https server?"
                )
            return GootenConnectionError(
                f"Could not connect to {self.base_url} for {action}{tries} ({cause}); "
                f"the request was never sent.{hint}"
            )
        if failure is TransportFailure.TIMED_OUT:
            what = f"no answer within {self.settings.timeout:g} s"
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
