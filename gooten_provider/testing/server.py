"""A local stand-in of the Gooten order API: a real HTTP server on 127.0.0.1.

It mimics what is known of Gooten's ``https://api.print.io``:

* ``POST /api/orderstatus?recipeid=&partnerBillingKey=&id=&orderStatusName=`` changes the status of
  every item of an order, only while every item is in a status Gooten allows a change from;
* ``GET /api/v/{n}/source/{api|ios|android}/orders?id=`` returns one order (no billing key needed);
* ``GET /api/ordersearch?recipeid=&partnerBillingKey=&page=&pageSize=...`` pages through orders;
* ``GET /admin/orders/{order_id}`` is a read-only HTML page of one order, a stand-in for the order's page
  in the Gooten Admin (the target of the "Gooten order" extra link in demos; no credentials, no faults);
* ``POST /admin/orders/{order_id}/status?status=Shipped`` (local only, not Gooten's) moves every item of
  an order to a status, playing Gooten's production; with ``webhook_url`` set, every item status change
  sends Gooten's webhooks (see :mod:`gooten_provider.testing.webhooks`);
* ``GET /admin/journal`` (local only) is the journal as JSON, one object per API request (method, path,
  order id, target status, outcome, applied, throttled, started and finished in the server's monotonic
  clock; no query string, so no key), for scripts that drive a server in another process;
* anything else is an HTML 404 page.

Errors use Gooten's ``HadError`` envelope with HTTP 200 by default (``error_status`` switches that),
and a bad recipe id gives ``{"Message": "Invalid recipeId"}``. Query strings are form-decoded before
the billing key is compared, so an unencoded ``+`` or a double-encoded key is refused, as in
production. Faults (HTTP 5xx/429, TCP resets, lost or slow responses, HTML pages) can be queued per
order or drawn at random, and ``rate_limit`` throttles each Recipe ID like an API gateway (see
:mod:`gooten_provider.testing.throttling`); every request is recorded in :attr:`GootenApiServer.journal`.

It is built on :class:`http.server.ThreadingHTTPServer` because fault injection needs raw control of
each socket. Each reply is written with one ``sendall`` on a ``TCP_NODELAY`` socket, so keep-alive
clients do not stall on delayed ACKs.
"""

from __future__ import annotations

import copy
import errno
import hmac
import html
import ipaddress
import itertools
import json
import math
import re
import socket
import socketserver
import struct
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, replace
from datetime import date
from email.utils import formatdate
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any
from urllib.parse import parse_qsl, quote, unquote

from gooten_provider.statuses import TARGET_STATUSES
from gooten_provider.testing.faults import ALL_FAULT_KINDS, CONNECTION_FAULTS, FaultKind, FaultPlan
from gooten_provider.testing.order_search import (
    SearchCache,
    parse_search,
    search_fault_key,
    search_page,
    search_page_number,
)
from gooten_provider.testing.orders import OrderStore, add_specs
from gooten_provider.testing.orders_over_days import orders_over_days
from gooten_provider.testing.throttling import RequestThrottle, retry_after_seconds
from gooten_provider.testing.webhooks import WebhookOrderStore, WebhookSender, move_order_items

#: Recipe id the local API accepts unless told otherwise. Fake, for tests only.
DEFAULT_RECIPE_ID = "a2b7c1d4-5e6f-4a8b-9c0d-1e2f3a4b5c6d"
#: Partner billing key the local API accepts unless told otherwise. Fake, for tests only; like real
#: keys it is base64-style, with ``+``, ``/`` and ``=``, so it must be URL-encoded exactly once.
DEFAULT_BILLING_KEY = "q+Zb/7Kx9Lm2Pw+Yr4Tn8Vc1Ds6Fg0Hj3Ak5Ml7No9="

ORDER_STATUS_PATH = "/api/orderstatus"
ORDER_SEARCH_PATH = "/api/ordersearch"
_GET_ORDER_PATH = re.compile(r"^/api/v/\d+/source/(?:api|ios|android)/orders$")
#: Prefix of the read-only HTML order page: ``GET /admin/orders/{order_id}``.
ADMIN_ORDER_PATH = "/admin/orders/"
_ADMIN_ORDER_PATH = re.compile(r"^/admin/orders/([^/]+)/?$", re.IGNORECASE)
_ADMIN_STATUS_PATH = re.compile(r"^/admin/orders/([^/]+)/status/?$", re.IGNORECASE)

# Route names, used internally and by JournalEntry consumers through ``path``/``method``.
_ROUTE_STATUS = "orderstatus"
_ROUTE_ORDER = "order"
_ROUTE_SEARCH = "ordersearch"
_ROUTE_ADMIN = "admin_order"
_ROUTE_ADMIN_STATUS = "admin_status"
_ROUTE_ADMIN_JOURNAL = "admin_journal"
#: The journal as JSON: ``GET /admin/journal``.
ADMIN_JOURNAL_PATH = "/admin/journal"

_JSON = "application/json; charset=utf-8"
_HTML = "text/html; charset=utf-8"

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


class PortUnavailableError(OSError):
    """The local API could not listen on its port; the message names the port and what to do.

    An :class:`OSError` with the bind's ``errno`` (``EADDRINUSE``, ``EACCES``), whose text is the
    explanation alone, not ``[Errno 98] Address already in use``.
    """

    def __str__(self) -> str:
        return str(self.strerror)

    @classmethod
    def explain(cls, host: str, port: int, error: OSError) -> OSError:
        """The error to raise for a failed bind: explained when the port is the cause, else ``error``."""
        if error.errno == errno.EADDRINUSE:
            why = "is already in use (another local Gooten API, or another program, listens there)"
        elif error.errno == errno.EACCES:
            why = "may not be used by this user (ports below 1024 need privileges)"
        else:
            return error
        return cls(
            error.errno,
            f"Port {port} on {host} {why}: stop that program, choose another port, or pass --port 0 "
            "(GootenApiServer(port=0)) to listen on a free port the system picks.",
        )


@dataclass(frozen=True, slots=True)
class JournalEntry:
    """One request the local API handled. Never holds the billing key or the raw query string."""

    #: HTTP method, e.g. ``"POST"``.
    method: str
    #: Request path as sent, without the query string.
    path: str
    #: The ``id`` query parameter, if any.
    order_id: str | None
    #: ``orderStatusName`` as sent (``POST /api/orderstatus`` only).
    target_status: str | None
    #: How ``partnerBillingKey`` decoded: ``"ok"``, ``"missing"``, ``"mismatch"`` or ``"not_required"``.
    key_check: str
    #: ``"ok"``, ``"missing"`` or ``"invalid"``.
    recipe_check: str
    #: The :class:`FaultKind` value injected, or ``None``.
    fault: str | None
    #: Whether a status change was applied to the store.
    applied: bool
    #: ``"updated"``, ``"ineligible"``, ``"unknown_order"``, ``"bad_status"``, ``"invalid_recipe"``,
    #: ``"bad_key"``, ``"bad_request"``, ``"read"``, ``"search"``, ``"admin_page"``, ``"admin_status"``,
    #: ``"admin_journal"``,
    #: ``"not_found"``, ``"throttled"`` (answered 429 by the rate limit; :attr:`fault` is ``None``), or the
    #: fault name when a fault replaced the reply (``slow`` and ``lost_response`` keep the real outcome).
    outcome: str
    #: Increments per accepted TCP connection (keeps increasing across restarts).
    connection_id: int
    #: ``time.monotonic()`` when the request had been read.
    started: float
    #: ``time.monotonic()`` when the reply was written, or when a fault ended the request.
    finished: float
    #: The ``page`` asked for (``GET /api/ordersearch`` only; 1 when not given), else ``None``.
    page: int | None = None

    @property
    def duration(self) -> float:
        """Seconds between :attr:`started` and :attr:`finished`."""
        return self.finished - self.started

    @property
    def throttled(self) -> bool:
        """Whether the rate limit answered this request 429 (nothing was applied; no fault was drawn)."""
        return self.outcome == "throttled"


@dataclass(frozen=True, slots=True)
class _Reply:
    """An HTTP reply, written in one ``sendall``."""

    status: int
    body: bytes
    content_type: str = _JSON
    headers: tuple[tuple[str, str], ...] = ()
    #: Bytes of the body held back although ``Content-Length`` counts them; the connection then closes.
    cut: int = 0


@dataclass(frozen=True, slots=True)
class _Result:
    """What processing a request produced."""

    reply: _Reply
    outcome: str
    applied: bool = False


@dataclass(slots=True)
class _Request:
    """The parts of a request the API looks at (the query is parsed; the raw string is dropped)."""

    method: str
    path: str
    route: str | None
    params: dict[str, str]
    connection_id: int
    started: float
    order_id: str | None = None
    target_status: str | None = None
    key_check: str = "not_required"
    recipe_check: str = "missing"
    page: int | None = None


def _parse_query(query: str) -> dict[str, str]:
    """Form-decode a query string (``+`` is a space) into a dict keyed by case-folded name.

    The first occurrence of a name wins.
    """
    params: dict[str, str] = {}
    for name, value in parse_qsl(query, keep_blank_values=True):
        params.setdefault(name.casefold(), value)
    return params


def _origin_path(raw_path: str) -> str:
    """Return the path of a request target, also for an absolute-form target (``http://host/path``)."""
    if "://" in raw_path:
        return "/" + raw_path.split("://", 1)[1].partition("/")[2]
    return raw_path


def _admin_order_id(raw_path: str) -> str | None:
    """Return the (percent-decoded) order id of a ``/admin/orders/{order_id}`` path, else ``None``."""
    match = _ADMIN_ORDER_PATH.match(_origin_path(raw_path))
    return unquote(match.group(1)) if match else None


def admin_order_path(order_id: str) -> str:
    """Return the path of an order's read-only admin page: ``/admin/orders/{order_id}`` (quoted)."""
    return ADMIN_ORDER_PATH + quote(order_id, safe="")


def _route_for(method: str, raw_path: str) -> str | None:
    """Return the route a request addresses, or ``None`` for a 404."""
    path = _origin_path(raw_path)
    if method == "GET" and _ADMIN_ORDER_PATH.match(path):
        return _ROUTE_ADMIN
    if method == "POST" and _ADMIN_STATUS_PATH.match(path):
        return _ROUTE_ADMIN_STATUS
    if method == "GET" and path.rstrip("/") == ADMIN_JOURNAL_PATH:
        return _ROUTE_ADMIN_JOURNAL
    path = path.casefold().rstrip("/") or "/"
    if path == ORDER_STATUS_PATH and method == "POST":
        return _ROUTE_STATUS
    if method == "GET" and path == ORDER_SEARCH_PATH:
        return _ROUTE_SEARCH
    if method == "GET" and _GET_ORDER_PATH.match(path):
        return _ROUTE_ORDER
    return None


#: Routes of the local stand-in only (not Gooten's): never throttled, never faulted, not in /admin/journal.
_LOCAL_ROUTES = frozenset({None, _ROUTE_ADMIN, _ROUTE_ADMIN_STATUS, _ROUTE_ADMIN_JOURNAL})


def _json_bytes(payload: object) -> bytes:
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


def _admin_page(order: Mapping[str, Any]) -> bytes:
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


def _format_seconds(seconds: float) -> str:
    """Format a ``Retry-After`` value as given: ``1.0`` -> ``"1"``, ``0.05`` -> ``"0.05"``."""
    value = float(seconds)
    return str(int(value)) if value.is_integer() else repr(value)


class _Handler(BaseHTTPRequestHandler):
    """Handles one TCP connection (HTTP/1.1 keep-alive) for :class:`GootenApiServer`."""

    protocol_version = "HTTP/1.1"
    server_version = "LocalGootenAPI/1.0"
    sys_version = ""
    server: _HttpServer

    def setup(self) -> None:
        """Prepare per-connection state (request count, connection id)."""
        super().setup()
        self._requests_on_connection = 0
        self._connection_id = self.server.connection_id(self.request)

    def log_message(self, format: str, *args: Any) -> None:
        """Stay silent: the journal records every request."""

    def do_GET(self) -> None:
        """Handle a GET request."""
        self._handle()

    def do_POST(self) -> None:
        """Handle a POST request."""
        self._handle()

    def do_PUT(self) -> None:
        """Handle a PUT request (no PUT route exists: HTML 404)."""
        self._handle()

    def do_DELETE(self) -> None:
        """Handle a DELETE request (HTML 404)."""
        self._handle()

    def do_PATCH(self) -> None:
        """Handle a PATCH request (HTML 404)."""
        self._handle()

    def _handle(self) -> None:
        api = self.server.api
        started = time.monotonic()
        first_on_connection = self._requests_on_connection == 0
        self._requests_on_connection += 1
        try:
            self._discard_body()
        except (OSError, ValueError):
            self.close_connection = True
            return
        raw_path, _, query = self.path.partition("?")
        request = api._parse_request(self.command, raw_path, query, self._connection_id, started)
        throttle_wait = api._throttle_wait(request)  # the token is taken on arrival, before the latency
        api._pause(api.latency + (api.connect_latency if first_on_connection else 0.0))
        if throttle_wait:
            self._finish(
                request, api._too_many_requests(retry_after_seconds(throttle_wait)), "throttled", None
            )
            return
        fault = api._draw_fault(request)
        if fault in _REPLY_FAULTS:
            self._finish(request, api._fault_reply(fault), fault.value, fault)
            return
        writes_late = (
            fault in (FaultKind.LOST_RESPONSE, FaultKind.LATE_APPLY) and request.route == _ROUTE_STATUS
        )
        if fault is FaultKind.RESET or (fault is not None and fault in CONNECTION_FAULTS and not writes_late):
            api._record(request, fault, fault.value, applied=False)
            self._abort()
            return
        if fault is FaultKind.LATE_APPLY:
            self._abort()
            api._pause(api.slow_seconds)
            result = api._process(request)
            api._record(request, fault, result.outcome, applied=result.applied)
            return
        result = api._process(request)
        if fault is FaultKind.LOST_RESPONSE:
            api._record(request, fault, result.outcome, applied=result.applied)
            self._abort()
            return
        if fault is FaultKind.SLOW:
            api._pause(api.slow_seconds)
        self._finish(request, result.reply, result.outcome, fault, applied=result.applied)

    def _discard_body(self) -> None:
        """Read and drop any request body so the next request on the connection stays in sync."""
        if self.headers.get("Transfer-Encoding", "").strip().lower() == "chunked":
            while True:
                line = self.rfile.readline(65537)
                if not line:
                    raise ValueError("connection closed inside a chunked body")
                size = int(line.split(b";", 1)[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline(65537) not in (b"\r\n", b"\n", b""):
                        pass
                    return
                self.rfile.read(size + 2)
        length = int(self.headers.get("Content-Length") or 0)
        if length < 0:
            raise ValueError("negative Content-Length")
        while length > 0:
            chunk = self.rfile.read(min(length, 65536))
            if not chunk:
                raise ValueError("connection closed inside the body")
            length -= len(chunk)

    def _finish(
        self, request: _Request, reply: _Reply, outcome: str, fault: FaultKind | None, applied: bool = False
    ) -> None:
        """Journal the request, then write the reply (so a client never sees a reply before its entry)."""
        self.server.api._record(request, fault, outcome, applied=applied)
        self._send(reply)

    def _send(self, reply: _Reply) -> None:
        """Write status line, headers and body in one ``sendall``."""
        try:
            phrase = HTTPStatus(reply.status).phrase
        except ValueError:
            phrase = ""
        lines = [
            f"HTTP/1.1 {reply.status} {phrase}",
            f"Server: {self.server_version}",
            f"Date: {formatdate(usegmt=True)}",
            f"Content-Type: {reply.content_type}",
            f"Content-Length: {len(reply.body) + reply.cut}",
        ]
        lines.extend(f"{name}: {value}" for name, value in reply.headers)
        self.close_connection = self.close_connection or reply.cut > 0  # the rest of the body never comes
        if self.close_connection:
            lines.append("Connection: close")
        data = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + reply.body
        try:
            self.connection.sendall(data)
        except OSError:
            self.close_connection = True

    def _abort(self) -> None:
        """Drop the connection with a TCP RST (SO_LINGER on, linger 0, then close), sending no reply."""
        self.close_connection = True
        sock = self.connection
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        except OSError:
            pass
        # The socket really closes once the buffered reader lets go of it; no FIN is ever sent.
        for close in (self.rfile.close, sock.close):
            try:
                close()
            except OSError:
                pass


class _HttpServer(ThreadingHTTPServer):
    """The listening socket: one daemon thread per connection, each connection tracked for stop()."""

    daemon_threads = True
    block_on_close = False
    allow_reuse_address = True
    request_queue_size = 128

    def __init__(self, address: tuple[str, int], api: GootenApiServer) -> None:
        self.api = api
        self._connections_lock = threading.Lock()
        self._connections: dict[socket.socket, tuple[int, threading.Thread]] = {}
        super().__init__(address, _Handler)

    def server_bind(self) -> None:
        """Bind without the reverse-DNS lookup ``HTTPServer.server_bind`` does (it can be slow)."""
        socketserver.TCPServer.server_bind(self)
        host, port = self.server_address[:2]
        self.server_name = str(host)
        self.server_port = int(port)

    def get_request(self) -> tuple[socket.socket, Any]:
        """Accept a connection and turn off Nagle's algorithm on it."""
        sock, address = super().get_request()
        try:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        except OSError:
            pass
        return sock, address

    def process_request(self, request: Any, client_address: Any) -> None:
        """Serve the connection in a new daemon thread, registered so stop() can close it."""
        connection_id = self.api._next_connection_id()
        thread = threading.Thread(
            target=self.process_request_thread,
            args=(request, client_address),
            name=f"local-gooten-api-connection-{connection_id}",
            daemon=True,
        )
        with self._connections_lock:
            self._connections[request] = (connection_id, thread)
        thread.start()

    def connection_id(self, request: Any) -> int:
        """Return the id given to a connection when it was accepted."""
        with self._connections_lock:
            entry = self._connections.get(request)
        return entry[0] if entry else 0

    def shutdown_request(self, request: Any) -> None:
        """Forget the connection, then close it."""
        with self._connections_lock:
            self._connections.pop(request, None)
        super().shutdown_request(request)

    def close_connections(self) -> list[threading.Thread]:
        """Shut down every open connection; return the threads serving them."""
        with self._connections_lock:
            entries = list(self._connections.items())
        for sock, _ in entries:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        return [thread for _, (_, thread) in entries]

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Ignore clients that went away; report anything else on stderr."""
        if isinstance(sys.exc_info()[1], OSError):
            return
        super().handle_error(request, client_address)


def _loopback_host(host: str) -> str:
    """Return ``host`` if it is an IPv4 loopback address (``localhost`` -> ``127.0.0.1``)."""
    if host == "localhost":
        return "127.0.0.1"
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        address = None
    if address is None or address.version != 4 or not address.is_loopback:
        raise ValueError(f"The local Gooten API only binds IPv4 loopback addresses, not {host!r}.")
    return host


class GootenApiServer:
    """A local Gooten API on 127.0.0.1 for tests, demos and benchmarks.

    Use it as a context manager (or call :meth:`start` and :meth:`stop`)::

        with GootenApiServer() as api:
            order_id = api.add_order(statuses="New")["Id"]
            # point the client at api.base_url with api.recipe_id / api.billing_key ...
            assert api.item_statuses(order_id) == ["New"]

    :param recipe_id: the ``recipeid`` the server accepts (compared case-insensitively, like a GUID).
    :param billing_key: the ``partnerBillingKey`` the server accepts, compared after form decoding.
    :param host: an IPv4 loopback address; the server never binds anything else.
    :param port: the port to bind; ``0`` picks a free one (see :attr:`port` once started).
    :param latency: seconds added to every request.
    :param connect_latency: seconds added to the first request of each new TCP connection (models a
        TLS handshake).
    :param error_status: HTTP status of ``HadError`` and invalid-recipe replies (Gooten appears to use 200).
    :param fault_rate: probability that a request gets a random fault from ``fault_kinds``.
    :param fault_kinds: the kinds random faults are drawn from (default: all).
    :param seed: seed of the random generator for faults, for reproducible runs.
    :param retry_after: ``Retry-After`` seconds sent with injected 429 replies (fractions are sent as given);
        ``False`` sends no ``Retry-After`` with any 429, injected or throttled (``True`` is 1 second).
    :param fault_headers: ``(name, value)`` headers added to every injected HTTP fault reply, replacing any
        of the same name (a ``Retry-After`` on a 503, or one no client can read), sent as given.
    :param slow_seconds: how long a ``slow`` fault waits before replying.
    :param orders: order specs ``{"id", "statuses", ...fields}`` to seed the store with.
    :param rate_limit: requests per second each Recipe ID sustains before it is answered 429, like an API
        gateway would (not Gooten-documented; see :mod:`~gooten_provider.testing.throttling`); ``None``
        (the default) throttles nothing.
    :param rate_burst: requests each Recipe ID may send at once (the token bucket's size); ``None`` is one
        second's worth. Only with ``rate_limit``.
    :param rate_clock: the clock of the token buckets (default :func:`time.monotonic`), for tests.
    :param webhook_url: where to send Gooten's webhooks after every item status change, as registered in
        the Gooten Admin (``.../gooten/webhook/<token>?orderid=``); ``None`` sends none.
    :param webhook_drop_rate: the probability that a webhook is lost and never sent (0 to 1, with
        ``webhook_url``), drawn with ``seed``; lost ones are in ``webhooks.deliveries`` with ``dropped`` set.
    """

    def __init__(
        self,
        *,
        recipe_id: str = DEFAULT_RECIPE_ID,
        billing_key: str = DEFAULT_BILLING_KEY,
        host: str = "127.0.0.1",
        port: int = 0,
        latency: float = 0.0,
        connect_latency: float = 0.0,
        error_status: int = 200,
        fault_rate: float = 0.0,
        fault_kinds: Iterable[FaultKind | str] | str = ALL_FAULT_KINDS,
        seed: int | None = None,
        retry_after: float | bool = 1.0,
        fault_headers: Iterable[tuple[str, str]] = (),
        slow_seconds: float = 2.0,
        orders: Iterable[Mapping[str, Any]] | None = None,
        rate_limit: float | None = None,
        rate_burst: int | None = None,
        rate_clock: Callable[[], float] = time.monotonic,
        webhook_url: str | None = None,
        webhook_drop_rate: float = 0.0,
    ) -> None:
        if not recipe_id or not billing_key:
            raise ValueError("recipe_id and billing_key must not be empty.")
        if not 100 <= int(error_status) <= 599:
            raise ValueError(f"error_status must be an HTTP status code, got {error_status!r}.")
        for name, value in (
            ("latency", latency),
            ("connect_latency", connect_latency),
            ("retry_after", retry_after),
            ("slow_seconds", slow_seconds),
        ):
            if float(value) < 0 or math.isnan(float(value)):
                raise ValueError(f"{name} must be zero or more seconds, got {value!r}.")
        if not 0 <= int(port) <= 65535:
            raise ValueError(f"port must be between 0 and 65535, got {port!r}.")
        self.recipe_id = recipe_id
        self.billing_key = billing_key
        self.host = _loopback_host(host)
        #: Seconds added to every request; may be changed while the server runs.
        self.latency = float(latency)
        #: Seconds added to the first request of each TCP connection; may be changed while running.
        self.connect_latency = float(connect_latency)
        #: HTTP status of ``HadError`` and invalid-recipe replies; may be changed while running.
        self.error_status = int(error_status)
        #: ``Retry-After`` seconds of injected 429 replies, or ``False`` for no ``Retry-After`` on any 429
        #: (injected or throttled); may be changed while running.
        self.retry_after: float | bool = False if retry_after is False else float(retry_after)
        #: Seconds a ``slow`` fault waits; may be changed while running.
        self.slow_seconds = float(slow_seconds)
        #: Headers added to every injected HTTP fault reply (replacing any of the same name), such as the
        #: ``Retry-After`` a gateway puts on its 503s, in any form (``"120s"``, a date); may be changed while
        #: running.
        self.fault_headers: tuple[tuple[str, str], ...] = tuple(fault_headers)
        self._requested_port = int(port)
        self._bound_port: int | None = None
        self._lock = threading.RLock()
        #: Sends Gooten's webhooks (``webhook_url`` set), see :attr:`WebhookSender.deliveries`; else ``None``.
        if webhook_drop_rate and not webhook_url:
            raise ValueError("webhook_drop_rate needs a webhook_url: without one no webhook is sent at all.")
        self.webhooks = (
            WebhookSender(webhook_url, drop_rate=webhook_drop_rate, seed=seed) if webhook_url else None
        )
        self._store = OrderStore() if self.webhooks is None else WebhookOrderStore(self.webhooks)
        self._faults = FaultPlan(fault_rate, fault_kinds, seed)
        self._search_cache = SearchCache()
        self._journal: list[JournalEntry] = []
        self._connection_ids = itertools.count(1)
        self._state_lock = threading.Lock()
        self._httpd: _HttpServer | None = None
        self._thread: threading.Thread | None = None
        self._stopping = threading.Event()
        self._rate_clock = rate_clock
        #: The rate limit's token buckets, or ``None`` when nothing is throttled; see :meth:`set_rate_limit`.
        self.throttle: RequestThrottle | None = None
        self.set_rate_limit(rate_limit, rate_burst)
        if orders is not None:
            with self._lock:
                add_specs(self._store, orders)

    # -- lifecycle -----------------------------------------------------------------------------

    def start(self) -> GootenApiServer:
        """Bind and start serving in a background daemon thread; a no-op when already running.

        After :meth:`stop`, starting again rebinds the same port, so :attr:`base_url` stays valid.
        """
        with self._state_lock:
            if self._httpd is not None:
                return self
            port = self._bound_port if self._bound_port is not None else self._requested_port
            self._stopping.clear()
            try:
                httpd = _HttpServer((self.host, port), self)
            except OSError as exc:
                raise PortUnavailableError.explain(self.host, port, exc) from None
            self._bound_port = int(httpd.server_address[1])
            thread = threading.Thread(
                target=httpd.serve_forever,
                kwargs={"poll_interval": 0.05},
                name=f"local-gooten-api-{self._bound_port}",
                daemon=True,
            )
            self._httpd, self._thread = httpd, thread
            thread.start()
        return self

    def stop(self, timeout: float = 2.0) -> None:
        """Stop serving: close the listening socket and every open connection; a no-op when stopped.

        Requests still sleeping (latency, ``slow`` faults) wake up at once and are journaled before
        this returns (waiting at most ``timeout`` seconds for them).
        """
        with self._state_lock:
            httpd, thread = self._httpd, self._thread
            self._httpd = self._thread = None
        if httpd is None:
            return
        self._stopping.set()
        if self.webhooks is not None:
            self.webhooks.stop()
        httpd.shutdown()
        httpd.server_close()
        handlers = httpd.close_connections()
        if thread is not None:
            thread.join(timeout)
        deadline = time.monotonic() + timeout
        for handler in handlers:
            handler.join(max(0.0, deadline - time.monotonic()))

    def __enter__(self) -> GootenApiServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    def __repr__(self) -> str:
        where = self.base_url if self.running else "not running"
        return f"<GootenApiServer {where} recipe_id={self.recipe_id!r} orders={len(self._store)}>"

    @property
    def running(self) -> bool:
        """Whether the server is serving."""
        return self._httpd is not None

    @property
    def port(self) -> int:
        """The bound port once started (before that, the port asked for, maybe ``0``)."""
        return self._bound_port if self._bound_port is not None else self._requested_port

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:<port>``.

        :raises RuntimeError: the server has never been started, so no port is known yet.
        """
        if self._bound_port is None:
            raise RuntimeError("GootenApiServer has not been started: call start() or use a with-block.")
        return f"http://{self.host}:{self._bound_port}"

    @property
    def admin_order_url(self) -> str:
        """The link template of the read-only order pages, ``<base_url>/admin/orders/{order_id}``.

        Set it as the connection extra ``admin_order_url`` so that the "Gooten order" extra link of a task
        opens the order on this server (``{order_id}`` is left in for the link to fill).
        """
        return f"{self.base_url}{ADMIN_ORDER_PATH}{{order_id}}"

    # -- orders --------------------------------------------------------------------------------

    def add_order(
        self, order_id: str | None = None, statuses: str | Sequence[str] = "New", **fields: Any
    ) -> dict[str, Any]:
        """Add an order with one item per status and return its full JSON (a copy).

        :param order_id: a Safe ID; ``None`` generates ``"{int}-{uuid4}"``.
        :param fields: top-level fields to override (``ShippingAddress``, ``Total``, ``SourceId``,
            ``CreatedAt``, ``NiceId``, ...), and ``items=[{...}]`` for full item dicts.
        :raises ValueError: the id is already used, or no item would exist.
        """
        with self._lock:
            return copy.deepcopy(self._store.add(order_id, statuses, **fields))

    def add_orders(self, count: int, statuses: str | Sequence[str] = "New") -> list[str]:
        """Add ``count`` orders with generated ids and return the ids (for benchmarks)."""
        with self._lock:
            return [self._store.add(None, statuses)["Id"] for _ in range(int(count))]

    def add_orders_over_days(
        self, count: int, first_day: date, days: int = 1, *, seed: int | None = None
    ) -> list[str]:
        """Add ``count`` realistic orders created over ``days`` days from ``first_day``; return their ids.

        See :func:`~gooten_provider.testing.orders_over_days.orders_over_days` (products, a status mix,
        tracking, customers); the same ``seed`` gives the same orders (their ids aside).
        """
        specs = orders_over_days(count, first_day, days, seed=seed)
        with self._lock:
            return add_specs(self._store, specs)

    def order(self, order_id: str) -> dict[str, Any]:
        """Return a copy of an order's JSON.

        :raises KeyError: no such order.
        """
        with self._lock:
            return copy.deepcopy(self._store.require(order_id))

    def order_ids(self) -> list[str]:
        """Return every order id, in creation order."""
        with self._lock:
            return self._store.ids()

    def item_statuses(self, order_id: str) -> list[str]:
        """Return the status of each item of an order.

        :raises KeyError: no such order.
        """
        with self._lock:
            return self._store.item_statuses(order_id)

    def set_item_statuses(self, order_id: str, statuses: str | Sequence[str]) -> None:
        """Set every item to one status, or give one status per item (e.g. to simulate production).

        :raises KeyError: no such order.
        :raises ValueError: the number of statuses differs from the number of items.
        """
        with self._lock:
            self._store.set_item_statuses(order_id, statuses)

    def set_item_statuses_once_read(
        self, order_id: str, statuses: str | Sequence[str], *, timeout: float = 30.0
    ) -> threading.Thread:
        """Change an order, from a background thread, as soon as it has been requested once.

        For tests of a waiting sensor: Gooten moves the order while the sensor waits (after its first read,
        so the sensor has to poll to see it). Join the returned thread after the run. After ``timeout``
        seconds with no request the order is changed anyway.
        """

        def change() -> None:
            deadline = time.monotonic() + timeout
            while not any(e.order_id == order_id for e in self.journal) and time.monotonic() < deadline:
                time.sleep(0.02)
            self.set_item_statuses(order_id, statuses)

        thread = threading.Thread(target=change, name=f"gooten-api-change-{order_id}", daemon=True)
        thread.start()
        return thread

    # -- faults --------------------------------------------------------------------------------

    def inject_faults(self, order_id: str, *faults: FaultKind | str, method: str | None = None) -> None:
        """Queue faults for an order: each matching request carrying this ``id`` consumes the next one.

        :param method: ``None`` for any request; ``"GET"`` (reads) or ``"POST"`` (status changes).
        :raises ValueError: an unknown fault kind or method.
        """
        with self._lock:
            self._faults.queue(order_id, faults, method)

    def inject_search_faults(self, page: int, *faults: FaultKind | str) -> None:
        """Queue faults for the order search's page ``page``: each request of it consumes the next one.

        :raises ValueError: an unknown fault kind.
        """
        with self._lock:
            self._faults.queue(search_fault_key(page), faults)

    def pending_faults(self, order_id: str | None = None) -> int:
        """Count queued faults not consumed yet, for one order or all of them."""
        with self._lock:
            return self._faults.pending(order_id)

    def clear_faults(self, order_id: str | None = None) -> None:
        """Drop queued faults, for one order or all of them (the random fault rate is kept)."""
        with self._lock:
            self._faults.clear(order_id)

    def set_fault_rate(
        self,
        rate: float,
        kinds: Iterable[FaultKind | str] | str = ALL_FAULT_KINDS,
        seed: int | None = None,
    ) -> None:
        """Set the probability of a random fault on each request, and the kinds to draw from.

        :param seed: reseed the generator; ``None`` keeps the current sequence going.
        :raises ValueError: ``rate`` outside ``[0, 1]`` or bad kinds.
        """
        with self._lock:
            self._faults.set_rate(rate, kinds, seed)

    def set_rate_limit(self, rate_limit: float | None, rate_burst: int | None = None) -> None:
        """Throttle each Recipe ID to ``rate_limit`` requests per second with bursts of ``rate_burst``.

        Every bucket starts full again; ``None`` ends throttling. May be called while the server runs.

        :raises ValueError: ``rate_limit`` is not above 0, ``rate_burst`` is not 1 or more, or a burst is
            given without a rate.
        """
        if rate_limit is None and rate_burst is not None:
            raise ValueError(
                f"rate_burst={rate_burst!r} needs a rate_limit (requests per second); rate_limit is None."
            )
        # One assignment, so a request sees the old throttle or the new one, never a mix.
        self.throttle = (
            None if rate_limit is None else RequestThrottle(rate_limit, rate_burst, self._rate_clock)
        )

    # -- journal -------------------------------------------------------------------------------

    @property
    def journal(self) -> list[JournalEntry]:
        """A snapshot of every request handled, in the order they finished."""
        with self._lock:
            return list(self._journal)

    def clear_journal(self) -> None:
        """Forget every journaled request."""
        with self._lock:
            self._journal.clear()

    def writes(self, order_id: str | None = None) -> list[JournalEntry]:
        """Return the ``POST /api/orderstatus`` entries, optionally only those for one order."""
        return [
            entry
            for entry in self.journal
            if entry.method == "POST"
            and _route_for("POST", entry.path) == _ROUTE_STATUS
            and (order_id is None or entry.order_id == order_id)
        ]

    def applied_writes(self, order_id: str | None = None) -> list[JournalEntry]:
        """Return the entries whose status change was applied to the store (optionally for one order).

        A ``slow`` request changes the store at once but is journaled only when it replies (or when
        :meth:`stop` wakes it), so check :meth:`item_statuses` to see the store itself.
        """
        return [entry for entry in self.writes(order_id) if entry.applied]

    # -- Airflow connection --------------------------------------------------------------------

    def connection_config(self, conn_id: str = "gooten_default") -> dict[str, Any]:
        """Return the Airflow connection (JSON form) that points at this server.

        ``conn_id`` is not part of the JSON form; it is accepted for symmetry with :meth:`connection_env`.
        """
        del conn_id
        return {
            "conn_type": "gooten",
            "login": self.recipe_id,
            "password": self.billing_key,
            "host": self.base_url,
            "extra": {"timeout": 5, "max_retries": 3},
        }

    def connection_env(self, conn_id: str = "gooten_default") -> dict[str, str]:
        """Return ``{"AIRFLOW_CONN_<CONN_ID>": <connection JSON>}`` for this server."""
        return {f"AIRFLOW_CONN_{conn_id.upper()}": json.dumps(self.connection_config(conn_id))}

    # -- request handling (called by the handler threads) --------------------------------------

    def _next_connection_id(self) -> int:
        return next(self._connection_ids)

    def _pause(self, seconds: float) -> None:
        """Sleep, but wake at once when the server stops."""
        if seconds > 0:
            self._stopping.wait(seconds)

    def _parse_request(
        self, method: str, raw_path: str, query: str, connection_id: int, started: float
    ) -> _Request:
        params = _parse_query(query)
        route = _route_for(method, raw_path)
        request = _Request(
            method=method,
            path=raw_path,
            route=route,
            params=params,
            connection_id=connection_id,
            started=started,
            order_id=params.get("id"),
            target_status=params.get("orderstatusname") if route == _ROUTE_STATUS else None,
        )
        recipe = params.get("recipeid", "")
        if not recipe:
            request.recipe_check = "missing"
        elif recipe.strip().casefold() == self.recipe_id.casefold():
            request.recipe_check = "ok"
        else:
            request.recipe_check = "invalid"
        if route in (_ROUTE_STATUS, _ROUTE_SEARCH):
            key = params.get("partnerbillingkey", "")
            if not key:
                request.key_check = "missing"
            elif hmac.compare_digest(key.encode("utf-8"), self.billing_key.encode("utf-8")):
                request.key_check = "ok"
            else:
                request.key_check = "mismatch"
        if route == _ROUTE_SEARCH:
            request.order_id = None
            request.page = search_page_number(params)
        elif route == _ROUTE_ADMIN:
            request.order_id = _admin_order_id(raw_path)
        elif route == _ROUTE_ADMIN_STATUS:
            match = _ADMIN_STATUS_PATH.match(_origin_path(raw_path))
            request.order_id = unquote(match.group(1)) if match else None
        return request

    def _throttle_wait(self, request: _Request) -> float:
        """Take a token for an API call: ``0.0`` lets it on, else the seconds until a token is due."""
        throttle = self.throttle
        if throttle is None or request.route in _LOCAL_ROUTES:
            return 0.0
        return throttle.take(request.params.get("recipeid", ""))

    def _too_many_requests(self, retry_after: float) -> _Reply:
        send_retry_after = self.retry_after is not False
        headers = (("Retry-After", _format_seconds(retry_after)),) if send_retry_after else ()
        return _Reply(429, _json_bytes({"Message": "Too many requests"}), headers=headers)

    def _draw_fault(self, request: _Request) -> FaultKind | None:
        if request.route in _LOCAL_ROUTES:  # faults are for API calls only
            return None
        with self._lock:
            key = search_fault_key(request.page) if request.page is not None else request.order_id
            return self._faults.draw(key, request.method)

    def _record(self, request: _Request, fault: FaultKind | None, outcome: str, *, applied: bool) -> None:
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
        )
        with self._lock:
            self._journal.append(entry)

    def _fault_reply(self, fault: FaultKind) -> _Reply:
        reply = self._plain_fault_reply(fault)
        if not self.fault_headers:
            return reply
        replaced = {name.lower() for name, _ in self.fault_headers}
        kept = tuple(header for header in reply.headers if header[0].lower() not in replaced)
        return replace(reply, headers=kept + tuple(self.fault_headers))

    def _plain_fault_reply(self, fault: FaultKind) -> _Reply:
        if fault is FaultKind.CUT:
            return _Reply(200, b'{"Id": "cut-off', cut=64)
        if fault is FaultKind.HTTP_429:
            return self._too_many_requests(float(self.retry_after))
        if fault is FaultKind.HTML:
            return _Reply(200, _MAINTENANCE_PAGE, _HTML)
        if fault is FaultKind.REFUSED:
            refusal = had_error(("id", "The order could not be updated at this time.", ""))
            return _Reply(self.error_status, _json_bytes(refusal))
        status = HTTPStatus(int(fault.value))
        body = (
            f"<!DOCTYPE html>\r\n<html><head><title>{status.value} {status.phrase}</title></head>"
            f"<body><h1>{status.value} {status.phrase}</h1></body></html>"
        )
        return _Reply(status.value, body.encode("utf-8"), _HTML)

    def _error(self, outcome: str, *errors: tuple[str, str, str]) -> _Result:
        return _Result(_Reply(self.error_status, _json_bytes(had_error(*errors))), outcome)

    def _process(self, request: _Request) -> _Result:
        if request.route is None:
            return _Result(_Reply(404, _NOT_FOUND_PAGE, _HTML), "not_found")
        if request.route == _ROUTE_ADMIN:
            return self._admin_order(request)
        if request.route == _ROUTE_ADMIN_STATUS:
            with self._lock:
                status, body = move_order_items(self._store, request.order_id, request.params.get("status"))
            return _Result(_Reply(status, _json_bytes(body)), "admin_status", applied=status == 200)
        if request.route == _ROUTE_ADMIN_JOURNAL:
            api_calls = [asdict(e) for e in self.journal if _route_for(e.method, e.path) not in _LOCAL_ROUTES]
            return _Result(_Reply(200, _json_bytes(api_calls)), "admin_journal")
        if request.recipe_check != "ok":
            return _Result(
                _Reply(self.error_status, _json_bytes({"Message": "Invalid recipeId"})), "invalid_recipe"
            )
        if request.key_check == "missing":
            return self._error("bad_key", ("partnerBillingKey", "'partnerBillingKey' must not be empty.", ""))
        if request.key_check == "mismatch":
            return self._error("bad_key", ("partnerBillingKey", "Invalid partnerBillingKey.", ""))
        if request.route == _ROUTE_STATUS:
            return self._update_status(request)
        if request.route == _ROUTE_ORDER:
            return self._read_order(request)
        return self._search(request)

    def _update_status(self, request: _Request) -> _Result:
        order_id = request.order_id or ""
        target = request.target_status or ""
        errors: list[tuple[str, str, str]] = []
        if not order_id:
            errors.append(("id", "'id' must not be empty.", ""))
        if not target:
            errors.append(("orderStatusName", "'orderStatusName' must not be empty.", ""))
        elif target not in TARGET_STATUSES:
            allowed = ", ".join(TARGET_STATUSES)
            message = f"'{target}' is not a valid order status. Valid values: {allowed}."
            errors.append(("orderStatusName", message, target))
        if errors:
            bad_status = any(name == "orderStatusName" for name, _, _ in errors)
            outcome = "bad_status" if bad_status else "unknown_order"
            return self._error(outcome, *errors)
        with self._lock:
            if order_id not in self._store:
                change = None
            else:
                change = self._store.change_status(order_id, target)
        if change is None:
            return self._error("unknown_order", ("id", "Order not found.", order_id))
        if not change.applied:
            current = change.blocking_status or "unknown"
            return self._error(
                "ineligible",
                ("orderStatusName", f"Order status cannot be updated from '{current}'.", target),
            )
        return _Result(_Reply(200, _json_bytes({"HadError": False})), "updated", applied=True)

    def _read_order(self, request: _Request) -> _Result:
        with self._lock:
            order = self._store.get(request.order_id)
            body = _json_bytes(order) if order is not None else None
        if body is None:
            return self._error("unknown_order", ("id", "Order not found.", request.order_id or ""))
        return _Result(_Reply(200, body), "read")

    def _admin_order(self, request: _Request) -> _Result:
        with self._lock:
            order = self._store.get(request.order_id)
            page = _admin_page(order) if order is not None else None
        if page is None:
            return _Result(_Reply(404, _NOT_FOUND_PAGE, _HTML), "not_found")
        return _Result(_Reply(200, page, _HTML), "admin_page")

    def _search(self, request: _Request) -> _Result:
        query = parse_search(request.params)
        if isinstance(query, list):
            return self._error("bad_request", *query)
        with self._lock:
            found = self._search_cache.matching(self._store, query.search_filter)
            body = _json_bytes(search_page(found, query))
        return _Result(_Reply(200, body), "search")
