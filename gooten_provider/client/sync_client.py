"""The Gooten API client: requests, encoding, responses, errors and retries. It needs no Airflow.

Example::

    with GootenClient(recipe_id, billing_key) as client:
        client.get_order_status("115557-b5c97bb2-934d-48aa-9ad2-a565154b5cd4")  # ['New', 'New']
        client.update_order_status("115557-b5c97bb2-934d-48aa-9ad2-a565154b5cd4", "hold")
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import Any

import requests
from requests.adapters import HTTPAdapter
from urllib3.exceptions import ConnectTimeoutError, NewConnectionError, ReadTimeoutError
from urllib3.exceptions import SSLError as Urllib3SSLError

from gooten_provider.client.base import GootenClientBase
from gooten_provider.client.core import (
    ORDER_PATH,
    ORDER_SEARCH_PATH,
    ORDER_STATUS_PATH,
    GootenRequest,
    TransportFailure,
)
from gooten_provider.client.order_cancel import order_cancel_request
from gooten_provider.client.transport import USER_AGENT, innermost
from gooten_provider.order_cancel_decision import CancelPlan, plan_item_cancellation
from gooten_provider.order_ids import normalize_order_id
from gooten_provider.order_items import normalize_item_ids
from gooten_provider.redaction import install_urllib3_log_redaction

__all__ = [
    "ORDER_PATH",
    "ORDER_SEARCH_PATH",
    "ORDER_STATUS_PATH",
    "SEARCH_FILTERS",
    "GootenClient",
    "SearchPage",
    "search_params",
]

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


def search_params(page_size: int, filters: Mapping[str, str | dt.date | None]) -> dict[str, str]:
    """Gooten's query parameters for search filters given as keywords (see :data:`SEARCH_FILTERS`).

    :raises ValueError: an unknown filter, or a page size outside 1 to 100.
    """
    unknown = sorted(set(filters) - set(SEARCH_FILTERS))
    if unknown:
        raise ValueError(
            f"Unknown order search filter(s) {', '.join(unknown)}; allowed: {', '.join(SEARCH_FILTERS)}."
        )
    if isinstance(page_size, bool) or not isinstance(page_size, int) or not 1 <= page_size <= 100:
        raise ValueError(f"page_size must be between 1 and 100, got {page_size!r}.")
    return {
        SEARCH_FILTERS[name]: value.isoformat() if isinstance(value, dt.date) else str(value)
        for name, value in filters.items()
        if value is not None
    }


@dataclass(frozen=True, slots=True)
class SearchPage:
    """One page of an order search, as :meth:`GootenClient.search_order_pages` yields it."""

    #: The page's number (from 1).
    number: int
    #: The orders on it, as Gooten returned them.
    orders: list[dict[str, Any]]
    #: How many pages Gooten said the search has, on this page.
    total_pages: int


def _urllib3_reason(exc: requests.RequestException) -> object:
    """The urllib3 error a requests error wraps."""
    return exc.args[0] if exc.args else None


def _tls_failed(exc: requests.RequestException) -> bool:
    """Tell whether the TLS handshake failed: it comes before the request, so nothing was sent."""
    return isinstance(exc, requests.exceptions.SSLError) or isinstance(_urllib3_reason(exc), Urllib3SSLError)


def _never_reached_server(exc: requests.RequestException) -> bool:
    """Tell whether a transport error happened before the request was sent (connect or TLS failure)."""
    return (
        isinstance(exc, requests.ConnectTimeout)
        or isinstance(_urllib3_reason(exc), (NewConnectionError, ConnectTimeoutError))
        or isinstance(innermost(exc), (NewConnectionError, ConnectTimeoutError, ConnectionRefusedError))
        or _tls_failed(exc)
    )


def _failure(exc: requests.RequestException) -> TransportFailure:
    """What a ``requests`` error means, in the core's terms."""
    if _never_reached_server(exc):
        return TransportFailure.TLS if _tls_failed(exc) else TransportFailure.NOT_SENT
    if isinstance(exc, requests.Timeout) or isinstance(_urllib3_reason(exc), ReadTimeoutError):
        return TransportFailure.TIMED_OUT
    if isinstance(exc, requests.exceptions.ChunkedEncodingError) or type(innermost(exc)).__name__ == (
        "IncompleteRead"
    ):
        return TransportFailure.CUT_ANSWER
    return TransportFailure.BROKEN


class GootenClient(GootenClientBase):
    """A client of the Gooten order API over ``requests``, safe to share between threads.

    Its parameters are :class:`~gooten_provider.client.base.GootenClientBase`'s: a
    :class:`~gooten_provider.client.settings.ClientSettings`, or ``recipe_id``, ``billing_key`` and its
    other fields as keywords.
    """

    def _open_transport(self) -> None:
        install_urllib3_log_redaction()
        # One pooled session shared by the client's threads. urllib3 retries nothing (max_retries=0, the
        # adapter's Retry(0, read=False)): every retry is the client's policy, paced by its pacer.
        self.session = requests.Session()
        adapter = HTTPAdapter(pool_connections=1, pool_maxsize=self.settings.pool_maxsize, max_retries=0)
        self.session.mount("https://", adapter)
        self.session.mount("http://", adapter)
        self.session.headers.update({"User-Agent": USER_AGENT, "Accept": "application/json"})

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
        pages = self._search_pages(search_params(page_size, filters), page_size, 1)
        return (order for page in pages for order in page.orders)

    # -- search pages (a paging iterator for exports) ----------------------------------------------------

    def search_order_pages(
        self, *, page_size: int = 100, first_page: int = 1, **filters: str | dt.date | None
    ) -> Iterator[SearchPage]:
        """Yield the pages of an order search from ``first_page`` on, each with its number and page count.

        For readers that must know where they are, such as an export that resumes after its last complete
        page. The iteration ends after the last page Gooten reports (``TotalPages``, read from every page:
        it may change while a search is paged) or at an empty page.

        :param first_page: the page to start from (pages are numbered from 1).
        :raises ValueError: an unknown filter, a page size out of range or a first page below 1, at the call.
        """
        params = search_params(page_size, filters)
        if isinstance(first_page, bool) or not isinstance(first_page, int) or first_page < 1:
            raise ValueError(f"first_page must be a whole number of 1 or more, got {first_page!r}.")
        return self._search_pages(params, page_size, first_page)

    def _search_pages(self, params: dict[str, str], page_size: int, page: int) -> Iterator[SearchPage]:
        while True:
            body = self._request(self.core.search_page_request(params, page, page_size))
            orders = body.get("Orders") or []
            total_pages = int(body.get("TotalPages") or 1)
            yield SearchPage(number=page, orders=orders, total_pages=total_pages)
            if not orders or page >= total_pages:
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

    def cancel_order_items(self, order_id: str, item_ids: Iterable[object] | None = None) -> CancelPlan:
        """Cancel items of an order (every item when ``item_ids`` is None); return what was decided and sent.

        Reads the order for its GootenId and order-item ids, then sends one ``PUT /api/orderCancel`` for
        the wanted items not cancelled yet (:attr:`CancelPlan.to_send`; none sent when all already are).
        The only API route that cancels a held order. Sent at most once unless it provably never left.

        :raises ValueError: invalid order id or item ids, before any request.
        :raises GootenOrderItemsError: an item id is not the order's (the message lists its ids); nothing
            sent.
        :raises GootenItemsNotCancellableError: a wanted item is in a status Gooten allows no cancellation
            from (e.g. ``InProduction``); nothing sent.
        :raises GootenOutcomeUnknownError: the cancellation may have been applied; read the order to
            settle it.
        :raises GootenApiError: Gooten refused it (its reason in the message), or the read failed.
        """
        order_id, wanted = normalize_order_id(order_id), normalize_item_ids(item_ids)
        plan = plan_item_cancellation(order_id, self.get_order(order_id), wanted).require_eligible()
        if plan.to_send:
            self.send_item_cancellation(plan.gooten_id, plan.to_send, order_id=order_id)
        return plan

    def send_item_cancellation(
        self, gooten_id: int, item_ids: Sequence[int], *, order_id: str | None = None
    ) -> dict[str, Any]:
        """Send one ``PUT /api/orderCancel`` for items of the order ``gooten_id``; return Gooten's body.

        No read, no check of the items' statuses: the write step of a cancellation already decided
        (:func:`~gooten_provider.order_cancel_decision.plan_item_cancellation`). ``order_id`` (the Safe
        ID) only names the order in messages. Errors as for :meth:`cancel_order_items`.
        """
        return self._request(order_cancel_request(self.core, gooten_id, item_ids, order_id=order_id))

    # -- plumbing ----------------------------------------------------------------------------------------

    def _request(self, request: GootenRequest) -> dict[str, Any]:
        call = self.call(request)
        while True:
            ticket = self.pacer.acquire()
            self.requests_sent += 1
            try:
                response = self.session.request(
                    request.method,
                    f"{self.base_url}{request.path}",
                    params=request.query,  # requests encodes the billing key, exactly once
                    json=request.body,
                    timeout=self.timeout,
                    allow_redirects=False,
                )
            except requests.RequestException as exc:
                step = call.failed(_failure(exc), type(innermost(exc)).__name__)
            else:
                step = call.answered(ticket, response)
            # Raised out here, so that requests' exception (its text holds the full URL, key included)
            # is neither the error's cause nor its context.
            if step.body is not None:
                return step.body
            if step.error is not None:
                raise step.error
            if step.delay > 0:
                time.sleep(step.delay)

    def close(self) -> None:
        """Close the pooled connections."""
        self.session.close()

    def __enter__(self) -> GootenClient:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()
