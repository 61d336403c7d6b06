"""The local API's routes: which request addresses what, and the parts of a request the API looks at.

A route is found from the method and the path (:data:`ROUTE_TABLE`, one row per route: adding a route is a
member of :class:`Route`, a row here and its handler in :data:`~gooten_provider.testing.gooten_api.HANDLERS`).
The query string is form-decoded (``+`` is a space) before the billing key is compared, so an unencoded
``+`` or a double-encoded key is refused, as in production.
"""

from __future__ import annotations

import hmac
import json
import re
import uuid
from dataclasses import dataclass
from enum import StrEnum
from typing import Any
from urllib.parse import parse_qsl, quote, unquote

from gooten_provider.testing.http_layer import Arrival
from gooten_provider.testing.order_cancel import ORDER_CANCEL_PATH
from gooten_provider.testing.order_search import search_page_number

ORDER_STATUS_PATH = "/api/orderstatus"
ORDER_SEARCH_PATH = "/api/ordersearch"
#: Prefix of the read-only HTML order page: ``GET /admin/orders/{order_id}``.
ADMIN_ORDER_PATH = "/admin/orders/"
_ADMIN_ORDER_PATH = re.compile(r"^/admin/orders/([^/]+)/?$", re.IGNORECASE)
_ADMIN_STATUS_PATH = re.compile(r"^/admin/orders/([^/]+)/status/?$", re.IGNORECASE)
#: The journal as JSON: ``GET /admin/journal``.
ADMIN_JOURNAL_PATH = "/admin/journal"


class Route(StrEnum):
    """What a request addresses (``None`` where a request addresses nothing: an HTML 404)."""

    #: ``POST /api/orderstatus``: change every item of an order.
    STATUS = "orderstatus"
    #: ``PUT /api/orderCancel``: cancel items of an order (named by its GootenId).
    CANCEL = "ordercancel"
    #: ``GET /api/v/{n}/source/{api|ios|android}/orders``: read one order.
    ORDER = "order"
    #: ``GET /api/ordersearch``: page through orders.
    SEARCH = "ordersearch"
    #: ``GET /admin/orders/{order_id}``: the read-only HTML page of an order (local only).
    ADMIN = "admin_order"
    #: ``POST /admin/orders/{order_id}/status``: move an order's items, playing production (local only).
    ADMIN_STATUS = "admin_status"
    #: ``GET /admin/journal``: the journal of API calls as JSON (local only).
    ADMIN_JOURNAL = "admin_journal"

    @property
    def is_api_call(self) -> bool:
        """Whether it is a call of Gooten's API (checked, throttled, faulted), not a local page."""
        return self not in (Route.ADMIN, Route.ADMIN_STATUS, Route.ADMIN_JOURNAL)

    @property
    def needs_billing_key(self) -> bool:
        """Whether Gooten asks for the ``partnerBillingKey`` on this route (reads of one order do not)."""
        return self in (Route.STATUS, Route.CANCEL, Route.SEARCH)

    @property
    def is_write(self) -> bool:
        """Whether it changes orders (a dropped connection may then apply it first, or later)."""
        return self in (Route.STATUS, Route.CANCEL)


class KeyCheck(StrEnum):
    """How ``partnerBillingKey`` compared."""

    OK = "ok"
    MISSING = "missing"
    MISMATCH = "mismatch"
    #: The route takes no billing key.
    NOT_REQUIRED = "not_required"


class RecipeCheck(StrEnum):
    """How ``recipeid`` compared (case-insensitively, like a GUID)."""

    OK = "ok"
    MISSING = "missing"
    INVALID = "invalid"


@dataclass(frozen=True)
class RouteRule:
    """One row of the route table: the method, and the pattern the path must match."""

    route: Route
    method: str
    #: Matched against the path case-folded without a trailing ``/`` (Gooten's API paths), or as sent.
    pattern: re.Pattern[str]
    as_sent: bool = False


#: Every route, found from the method and the path.
ROUTE_TABLE: tuple[RouteRule, ...] = (
    RouteRule(Route.ADMIN, "GET", _ADMIN_ORDER_PATH, as_sent=True),
    RouteRule(Route.ADMIN_STATUS, "POST", _ADMIN_STATUS_PATH, as_sent=True),
    RouteRule(Route.ADMIN_JOURNAL, "GET", re.compile(f"^{re.escape(ADMIN_JOURNAL_PATH)}/?$"), as_sent=True),
    RouteRule(Route.STATUS, "POST", re.compile(f"^{re.escape(ORDER_STATUS_PATH)}$")),
    RouteRule(Route.CANCEL, "PUT", re.compile(f"^{re.escape(ORDER_CANCEL_PATH.casefold())}$")),
    RouteRule(Route.SEARCH, "GET", re.compile(f"^{re.escape(ORDER_SEARCH_PATH)}$")),
    RouteRule(Route.ORDER, "GET", re.compile(r"^/api/v/\d+/source/(?:api|ios|android)/orders$")),
)


@dataclass(slots=True)
class Request:
    """The parts of a request the API looks at (the query is parsed; the raw string is dropped)."""

    method: str
    path: str
    route: Route | None
    params: dict[str, str]
    connection_id: int
    started: float
    order_id: str | None = None
    target_status: str | None = None
    key_check: KeyCheck = KeyCheck.NOT_REQUIRED
    recipe_check: RecipeCheck = RecipeCheck.MISSING
    page: int | None = None
    #: The body as sent (its first MiB); only ``orderCancel`` reads it.
    body: bytes = b""
    #: The order-item ids this request cancelled (``orderCancel`` applied), for the journal.
    cancelled_items: tuple[int, ...] = ()


def parse_query(query: str) -> dict[str, str]:
    """Form-decode a query string (``+`` is a space) into a dict keyed by case-folded name.

    The first occurrence of a name wins.
    """
    params: dict[str, str] = {}
    for name, value in parse_qsl(query, keep_blank_values=True):
        params.setdefault(name.casefold(), value)
    return params


def origin_path(raw_path: str) -> str:
    """Return the path of a request target, also for an absolute-form target (``http://host/path``)."""
    if "://" in raw_path:
        return "/" + raw_path.split("://", 1)[1].partition("/")[2]
    return raw_path


def admin_order_path(order_id: str) -> str:
    """Return the path of an order's read-only admin page: ``/admin/orders/{order_id}`` (quoted)."""
    return ADMIN_ORDER_PATH + quote(order_id, safe="")


def route_for(method: str, raw_path: str) -> Route | None:
    """Return the route a request addresses, or ``None`` for a 404."""
    path = origin_path(raw_path)
    folded = path.casefold().rstrip("/") or "/"
    for rule in ROUTE_TABLE:
        if rule.method == method and rule.pattern.match(path if rule.as_sent else folded):
            return rule.route
    return None


def _path_order_id(pattern: re.Pattern[str], raw_path: str) -> str | None:
    """The (percent-decoded) order id of an admin path, as sent (not case-folded)."""
    match = pattern.match(origin_path(raw_path))
    return unquote(match.group(1)) if match else None


def _recipe_check(params: dict[str, str], recipe_id: str) -> RecipeCheck:
    recipe = params.get("recipeid", "")
    if not recipe:
        return RecipeCheck.MISSING
    return RecipeCheck.OK if recipe.strip().casefold() == recipe_id.casefold() else RecipeCheck.INVALID


def _key_check(params: dict[str, str], billing_key: str) -> KeyCheck:
    key = params.get("partnerbillingkey", "")
    if not key:
        return KeyCheck.MISSING
    same = hmac.compare_digest(key.encode("utf-8"), billing_key.encode("utf-8"))
    return KeyCheck.OK if same else KeyCheck.MISMATCH


def parse_request(arrival: Arrival, recipe_id: str, billing_key: str) -> Request:
    """Read what the API looks at from a request: its route, parameters and credentials' checks."""
    params = parse_query(arrival.query)
    route = route_for(arrival.method, arrival.raw_path)
    request = Request(
        method=arrival.method,
        path=arrival.raw_path,
        route=route,
        params=params,
        connection_id=arrival.connection_id,
        started=arrival.started,
        order_id=params.get("id"),
        target_status=params.get("orderstatusname") if route is Route.STATUS else None,
        recipe_check=_recipe_check(params, recipe_id),
        body=arrival.body,
    )
    if route is not None and route.needs_billing_key:
        request.key_check = _key_check(params, billing_key)
    if route is Route.SEARCH:
        request.order_id = None
        request.page = search_page_number(params)
    elif route is Route.ADMIN:
        request.order_id = _path_order_id(_ADMIN_ORDER_PATH, arrival.raw_path)
    elif route is Route.ADMIN_STATUS:
        request.order_id = _path_order_id(_ADMIN_STATUS_PATH, arrival.raw_path)
    return request


def json_bytes(payload: object) -> bytes:
    """``payload`` as a JSON body."""
    return json.dumps(payload).encode("utf-8")


def had_error(*errors: tuple[str, str, str]) -> dict[str, Any]:
    """Return Gooten's error envelope for ``(property_name, error_message, attempted_value)`` errors."""
    return {
        "HadError": True,
        "Errors": [
            {"AttemptedValue": value, "CustomState": None, "ErrorMessage": message, "PropertyName": name}
            for name, message, value in errors
        ],
        "ErrorReferenceCode": str(uuid.uuid4()),
    }
