"""What the local API does with a request: Gooten's routes and behaviour, its faults and its throttling.

:class:`GootenApi` is the behaviour :class:`~gooten_provider.testing.server.GootenApiServer` serves (the
socket layer calls :meth:`GootenApi.serve` for each request). Each route is answered by its handler in
:data:`HANDLERS`, after the credentials' checks for calls of Gooten's API. Errors use Gooten's ``HadError``
envelope with HTTP 200 by default (``error_status`` switches that), and a bad recipe id gives
``{"Message": "Invalid recipeId"}``.
"""

from __future__ import annotations

import html
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import asdict, dataclass, replace
from http import HTTPStatus
from typing import Any

from gooten_provider.statuses import TARGET_STATUSES
from gooten_provider.testing.faults import FaultKind, FaultPlan
from gooten_provider.testing.http_layer import HTML_TYPE, Arrival, Connection, Reply
from gooten_provider.testing.journal import JournalEntry
from gooten_provider.testing.order_cancel import cancel_items, order_of_request
from gooten_provider.testing.order_search import SearchCache, parse_search, search_fault_key, search_page
from gooten_provider.testing.orders import OrderStore
from gooten_provider.testing.routes import (
    KeyCheck,
    RecipeCheck,
    Request,
    Route,
    had_error,
    json_bytes,
    parse_request,
    route_for,
)
from gooten_provider.testing.throttling import RequestThrottle, retry_after_seconds
from gooten_provider.testing.webhooks import move_order_items

_NOT_FOUND_PAGE = (
    b"<!DOCTYPE html>\r\n<html><head><title>404 - Not Found</title></head>"
    b"<body><h1>Server Error</h1><h2>404 - File or directory not found.</h2>"
    b"<p>The resource you are looking for might have been removed, had its name changed, "
    b"or is temporarily unavailable. Not Found</p></body></html>"
)
_MAINTENANCE_PAGE = (
    b"<!DOCTYPE html>\r\n<html><head><title>Gooten</title></head>"
    b"<body><h1>We'll be right back</h1><p>The service is undergoing maintenance.</p></body></html>"
)

# Faults answered with an HTTP reply before anything is applied.
_REPLY_FAULTS = frozenset(
    {
        FaultKind.HTTP_500,
        FaultKind.HTTP_502,
        FaultKind.HTTP_503,
        FaultKind.HTTP_429,
        FaultKind.HTML,
        FaultKind.REFUSED,
        FaultKind.CUT,
    }
)
# Faults that drop the connection; these two apply a status change first (or later), the rest nothing.
_WRITES_THEN_DROPS = frozenset({FaultKind.LOST_RESPONSE, FaultKind.LATE_APPLY})


@dataclass(frozen=True, slots=True)
class Result:
    """What processing a request produced."""

    reply: Reply
    outcome: str
    applied: bool = False


def format_seconds(seconds: float) -> str:
    """Format a ``Retry-After`` value as given: ``1.0`` -> ``"1"``, ``0.05`` -> ``"0.05"``."""
    value = float(seconds)
    return str(int(value)) if value.is_integer() else repr(value)


def admin_page(order: Mapping[str, Any]) -> bytes:
    """Render the read-only HTML page of one order (every value escaped)."""

    def text(value: object) -> str:
        return html.escape("" if value is None else str(value))

    order_id, nice_id = text(order.get("Id")), text(order.get("NiceId"))
    statuses = sorted({str(item.get("Status")) for item in order.get("Items") or []})
    rows = "".join(
        f"<tr><td>{index}</td><td>{text(item.get('Sku'))}</td><td>{text(item.get('Quantity'))}</td>"
        f'<td class="status">{text(item.get("Status"))}</td></tr>'
        for index, item in enumerate(order.get("Items") or [], start=1)
    )
    total = text((order.get("Total") or {}).get("FormattedPrice"))
    page = (
        '<!DOCTYPE html>\r\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>Order {nice_id} - local Gooten Admin</title></head><body>"
        f'<h1>Order <span id="nice-id">{nice_id}</span></h1>'
        f'<p>Order id: <code id="order-id">{order_id}</code></p>'
        f"<p>Source id: {text(order.get('SourceId'))} &middot; created {text(order.get('CreatedAt'))} "
        f"&middot; total {total}</p>"
        f'<p>Status: <strong id="order-status">{text(", ".join(statuses))}</strong></p>'
        "<table><thead><tr><th>#</th><th>SKU</th><th>Quantity</th><th>Status</th></tr></thead>"
        f"<tbody>{rows}</tbody></table>"
        "<p><small>Read-only page of the local Gooten API (a stand-in for the Gooten Admin).</small></p>"
        "</body></html>"
    )
    return page.encode("utf-8")


class GootenApi:
    """Gooten's behaviour over an order store, with faults, throttling and a journal.

    The state below is set up by :class:`~gooten_provider.testing.server.GootenApiServer`, whose
    docstring describes each setting; the handler threads call :meth:`serve`.
    """

    recipe_id: str
    billing_key: str
    latency: float
    connect_latency: float
    error_status: int
    retry_after: float | bool
    slow_seconds: float
    fault_headers: tuple[tuple[str, str], ...]
    throttle: RequestThrottle | None
    _lock: threading.RLock
    _store: OrderStore
    _faults: FaultPlan
    _search_cache: SearchCache
    _journal: list[JournalEntry]
    _connection_ids: Iterator[int]
    _stopping: threading.Event

    def next_connection_id(self) -> int:
        """A new id for an accepted TCP connection (ids keep increasing across restarts)."""
        return next(self._connection_ids)

    def serve(self, arrival: Arrival, connection: Connection) -> None:
        """Answer one request, or drop its connection, as Gooten (with the faults asked for) would.

        The throttle's token is taken on arrival, before the latency; every request is journaled before
        its reply is written, so a client never sees a reply before its entry.
        """
        request = parse_request(arrival, self.recipe_id, self.billing_key)
        if request.route is Route.CANCEL:  # named by its GootenId: journaled and faulted by its Safe ID
            with self._lock:
                request.order_id = order_of_request(self._store, request.params)
        throttle_wait = self._throttle_wait(request)
        self._pause(self.latency + (self.connect_latency if arrival.first_on_connection else 0.0))
        if throttle_wait:
            reply = self._too_many_requests(retry_after_seconds(throttle_wait))
            self._answer(connection, request, Result(reply, "throttled"), None)
            return
        fault = self._draw_fault(request)
        if fault is None or fault is FaultKind.SLOW:
            result = self._process(request)
            if fault is FaultKind.SLOW:
                self._pause(self.slow_seconds)
            self._answer(connection, request, result, fault)
        elif fault in _REPLY_FAULTS:
            self._answer(connection, request, Result(self._fault_reply(fault), fault.value), fault)
        else:
            self._drop(connection, request, fault)

    def _drop(self, connection: Connection, request: Request, fault: FaultKind) -> None:
        """Drop the connection with no reply: after applying the change, before it, or with nothing."""
        if fault not in _WRITES_THEN_DROPS or request.route is None or not request.route.is_write:
            self._record(request, fault, fault.value, applied=False)
            connection.abort()
        elif fault is FaultKind.LATE_APPLY:  # the change lands after the connection broke
            connection.abort()
            self._pause(self.slow_seconds)
            result = self._process(request)
            self._record(request, fault, result.outcome, applied=result.applied)
        else:  # lost response: applied, then the answer never leaves
            result = self._process(request)
            self._record(request, fault, result.outcome, applied=result.applied)
            connection.abort()

    def _answer(
        self, connection: Connection, request: Request, result: Result, fault: FaultKind | None
    ) -> None:
        """Journal the request, then write the reply (so a client never sees a reply before its entry)."""
        self._record(request, fault, result.outcome, applied=result.applied)
        connection.send(result.reply)

    def _pause(self, seconds: float) -> None:
        """Sleep, but wake at once when the server stops."""
        if seconds > 0:
            self._stopping.wait(seconds)

    def _throttle_wait(self, request: Request) -> float:
        """Take a token for an API call: ``0.0`` lets it on, else the seconds until a token is due."""
        throttle = self.throttle
        if throttle is None or request.route is None or not request.route.is_api_call:
            return 0.0
        return throttle.take(request.params.get("recipeid", ""))

    def _too_many_requests(self, retry_after: float) -> Reply:
        send_retry_after = self.retry_after is not False
        headers = (("Retry-After", format_seconds(retry_after)),) if send_retry_after else ()
        return Reply(429, json_bytes({"Message": "Too many requests"}), headers=headers)

    def _draw_fault(self, request: Request) -> FaultKind | None:
        if request.route is None or not request.route.is_api_call:  # faults are for API calls only
            return None
        with self._lock:
            key = search_fault_key(request.page) if request.page is not None else request.order_id
            return self._faults.draw(key, request.method)

    def _record(self, request: Request, fault: FaultKind | None, outcome: str, *, applied: bool) -> None:
        entry = JournalEntry(
            method=request.method,
            path=request.path,
            order_id=request.order_id,
            target_status=request.target_status,
            key_check=request.key_check,
            recipe_check=request.recipe_check,
            fault=fault.value if fault is not None else None,
            applied=applied,
            outcome=outcome,
            connection_id=request.connection_id,
            started=request.started,
            finished=time.monotonic(),
            page=request.page,
            cancelled_items=request.cancelled_items,
        )
        with self._lock:
            self._journal.append(entry)

    def _fault_reply(self, fault: FaultKind) -> Reply:
        reply = self._plain_fault_reply(fault)
        if not self.fault_headers:
            return reply
        replaced = {name.lower() for name, _ in self.fault_headers}
        kept = tuple(header for header in reply.headers if header[0].lower() not in replaced)
        return replace(reply, headers=kept + tuple(self.fault_headers))

    def _plain_fault_reply(self, fault: FaultKind) -> Reply:
        if fault is FaultKind.CUT:
            return Reply(200, b'{"Id": "cut-off', cut=64)
        if fault is FaultKind.HTTP_429:
            return self._too_many_requests(float(self.retry_after))
        if fault is FaultKind.HTML:
            return Reply(200, _MAINTENANCE_PAGE, HTML_TYPE)
        if fault is FaultKind.REFUSED:
            refusal = had_error(("id", "The order could not be updated at this time.", ""))
            return Reply(self.error_status, json_bytes(refusal))
        status = HTTPStatus(int(fault.value))
        body = (
            f"<!DOCTYPE html>\r\n<html><head><title>{status.value} {status.phrase}</title></head>"
            f"<body><h1>{status.value} {status.phrase}</h1></body></html>"
        )
        return Reply(status.value, body.encode("utf-8"), HTML_TYPE)

    def _error(self, outcome: str, *errors: tuple[str, str, str]) -> Result:
        return Result(Reply(self.error_status, json_bytes(had_error(*errors))), outcome)

    def _process(self, request: Request) -> Result:
        if request.route is None:
            return Result(Reply(404, _NOT_FOUND_PAGE, HTML_TYPE), "not_found")
        refused = self._refused_credentials(request) if request.route.is_api_call else None
        return refused or HANDLERS[request.route](self, request)

    def _refused_credentials(self, request: Request) -> Result | None:
        """Gooten's answer to a wrong Recipe ID or billing key, or ``None`` when they are right."""
        if request.recipe_check is not RecipeCheck.OK:
            reply = Reply(self.error_status, json_bytes({"Message": "Invalid recipeId"}))
            return Result(reply, "invalid_recipe")
        if request.key_check is KeyCheck.MISSING:
            return self._error("bad_key", ("partnerBillingKey", "'partnerBillingKey' must not be empty.", ""))
        if request.key_check is KeyCheck.MISMATCH:
            return self._error("bad_key", ("partnerBillingKey", "Invalid partnerBillingKey.", ""))
        return None

    def _update_status(self, request: Request) -> Result:
        order_id = request.order_id or ""
        target = request.target_status or ""
        errors = _status_request_errors(order_id, target)
        if errors:
            bad_status = any(name == "orderStatusName" for name, _, _ in errors)
            return self._error("bad_status" if bad_status else "unknown_order", *errors)
        with self._lock:
            change = self._store.change_status(order_id, target) if order_id in self._store else None
        if change is None:
            return self._error("unknown_order", ("id", "Order not found.", order_id))
        if not change.applied:
            current = change.blocking_status or "unknown"
            return self._error(
                "ineligible",
                ("orderStatusName", f"Order status cannot be updated from '{current}'.", target),
            )
        return Result(Reply(200, json_bytes({"HadError": False})), "updated", applied=True)

    def _cancel_items(self, request: Request) -> Result:
        with self._lock:
            answer = cancel_items(self._store, request.params, request.body)
        request.cancelled_items = answer.cancelled_items
        if answer.errors:
            return self._error(answer.outcome, *answer.errors)
        return Result(Reply(200, json_bytes({"HadError": False})), answer.outcome, applied=True)

    def _read_order(self, request: Request) -> Result:
        with self._lock:
            order = self._store.get(request.order_id)
            body = json_bytes(order) if order is not None else None
        if body is None:
            return self._error("unknown_order", ("id", "Order not found.", request.order_id or ""))
        return Result(Reply(200, body), "read")

    def _admin_order(self, request: Request) -> Result:
        with self._lock:
            order = self._store.get(request.order_id)
            page = admin_page(order) if order is not None else None
        if page is None:
            return Result(Reply(404, _NOT_FOUND_PAGE, HTML_TYPE), "not_found")
        return Result(Reply(200, page, HTML_TYPE), "admin_page")

    def _admin_status(self, request: Request) -> Result:
        with self._lock:
            status, body = move_order_items(self._store, request.order_id, request.params.get("status"))
        return Result(Reply(status, json_bytes(body)), "admin_status", applied=status == 200)

    def _admin_journal(self, request: Request) -> Result:
        with self._lock:
            entries = list(self._journal)
        api_calls = [asdict(entry) for entry in entries if _is_api_call(entry)]
        return Result(Reply(200, json_bytes(api_calls)), "admin_journal")

    def _search(self, request: Request) -> Result:
        query = parse_search(request.params)
        if isinstance(query, list):
            return self._error("bad_request", *query)
        with self._lock:
            found = self._search_cache.matching(self._store, query.search_filter)
            body = json_bytes(search_page(found, query))
        return Result(Reply(200, body), "search")


def _is_api_call(entry: JournalEntry) -> bool:
    route = route_for(entry.method, entry.path)
    return route is not None and route.is_api_call


def _status_request_errors(order_id: str, target: str) -> list[tuple[str, str, str]]:
    """Gooten's validation errors of a status change's ``id`` and ``orderStatusName``."""
    errors: list[tuple[str, str, str]] = []
    if not order_id:
        errors.append(("id", "'id' must not be empty.", ""))
    if not target:
        errors.append(("orderStatusName", "'orderStatusName' must not be empty.", ""))
    elif target not in TARGET_STATUSES:
        allowed = ", ".join(TARGET_STATUSES)
        message = f"'{target}' is not a valid order status. Valid values: {allowed}."
        errors.append(("orderStatusName", message, target))
    return errors


#: The handler of each route (called after the credentials' checks for calls of Gooten's API).
HANDLERS: dict[Route, Callable[[GootenApi, Request], Result]] = {
    Route.STATUS: GootenApi._update_status,
    Route.CANCEL: GootenApi._cancel_items,
    Route.ORDER: GootenApi._read_order,
    Route.SEARCH: GootenApi._search,
    Route.ADMIN: GootenApi._admin_order,
    Route.ADMIN_STATUS: GootenApi._admin_status,
    Route.ADMIN_JOURNAL: GootenApi._admin_journal,
}
