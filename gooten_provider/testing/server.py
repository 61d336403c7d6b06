"""A local stand-in of the Gooten order API: a real HTTP server on 127.0.0.1.

It mimics what is known of Gooten's ``https://api.print.io``:

* ``POST /api/orderstatus?recipeid=&partnerBillingKey=&id=&orderStatusName=`` changes the status of
  every item of an order, only while every item is in a status Gooten allows a change from;
* ``PUT /api/orderCancel?recipeid=&partnerBillingKey=&orderId=<GootenId>`` with ``{"Ids": [...]}`` cancels
  items of an order (see :mod:`gooten_provider.testing.order_cancel`);
* ``GET /api/v/{n}/source/{api|ios|android}/orders?id=`` returns one order (no billing key needed);
* ``GET /api/ordersearch?recipeid=&partnerBillingKey=&page=&pageSize=...`` pages through orders;
* ``GET /admin/orders/{order_id}`` is a read-only HTML page of one order, a stand-in for the order's page
  in the Gooten Admin (the target of the "Gooten order" extra link in demos; no credentials, no faults);
* ``POST /admin/orders/{order_id}/status?status=Shipped`` (local only, not Gooten's) moves every item of
  an order to a status, playing Gooten's production; with ``webhook_url`` set, every item status change
  sends Gooten's webhooks (see :mod:`gooten_provider.testing.webhooks`);
* ``GET /admin/journal`` (local only) is the journal as JSON, one object per API request (method, path,
  order id, target status, outcome, applied, started and finished in the server's monotonic clock; no
  query string, so no key), for scripts that drive a server in another process;
* anything else is an HTML 404 page.

Faults (HTTP 5xx/429, TCP resets, lost or slow responses, HTML pages) can be queued per order or drawn at
random, and ``rate_limit`` throttles each Recipe ID like an API gateway (see
:mod:`gooten_provider.testing.throttling`); every request is recorded in :attr:`GootenApiServer.journal`.

The parts: the socket layer (:mod:`~gooten_provider.testing.http_layer`), the routes
(:mod:`~gooten_provider.testing.routes`), Gooten's behaviour (:mod:`~gooten_provider.testing.gooten_api`),
and here the public server: its settings, lifecycle, orders, faults and journal.
"""

from __future__ import annotations

import copy
import itertools
import json
import math
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import date
from types import TracebackType
from typing import Any

from gooten_provider.testing.faults import ALL_FAULT_KINDS, FaultKind, FaultPlan
from gooten_provider.testing.gooten_api import GootenApi
from gooten_provider.testing.http_layer import HttpServer, PortUnavailableError, loopback_host
from gooten_provider.testing.journal import JournalEntry
from gooten_provider.testing.order_search import SearchCache, search_fault_key
from gooten_provider.testing.orders import OrderStore, add_specs
from gooten_provider.testing.orders_over_days import orders_over_days
from gooten_provider.testing.routes import (
    ADMIN_ORDER_PATH,
    ORDER_SEARCH_PATH,
    ORDER_STATUS_PATH,
    Route,
    admin_order_path,
    had_error,
    route_for,
)
from gooten_provider.testing.throttling import RequestThrottle
from gooten_provider.testing.webhooks import WebhookOrderStore, WebhookSender

__all__ = [
    "ADMIN_ORDER_PATH",
    "DEFAULT_BILLING_KEY",
    "DEFAULT_RECIPE_ID",
    "ORDER_SEARCH_PATH",
    "ORDER_STATUS_PATH",
    "GootenApiServer",
    "JournalEntry",
    "PortUnavailableError",
    "admin_order_path",
    "had_error",
]

#: Recipe id the local API accepts unless told otherwise. Fake, for tests only.
DEFAULT_RECIPE_ID = "a2b7c1d4-5e6f-4a8b-9c0d-1e2f3a4b5c6d"
#: Partner billing key the local API accepts unless told otherwise. Fake, for tests only; like real
#: keys it is base64-style, with ``+``, ``/`` and ``=``, so it must be URL-encoded exactly once.
DEFAULT_BILLING_KEY = "q+Zb/7Kx9Lm2Pw+Yr4Tn8Vc1Ds6Fg0Hj3Ak5Ml7No9="


class GootenApiServer(GootenApi):
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
        self.host = loopback_host(host)
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
        self._httpd: HttpServer | None = None
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
                httpd = HttpServer((self.host, port), self)
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

        :param method: ``None`` for any request; ``"GET"`` (reads), ``"POST"`` (status changes) or ``"PUT"``
            (item cancellations).
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
            and route_for("POST", entry.path) is Route.STATUS
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
