"""Gooten's order webhooks, as the local Gooten API sends them.

Gooten POSTs the whole order JSON to the URL a partner registered in the Gooten Admin, with the order id
appended (the URL ends with ``?orderid=``), each time an order item is updated. It documents no signature,
retry policy or ordering. The local API does the same: after every item status change it posts the order
JSON once per item that changed, so an order whose two items ship together sends two identical
webhooks, as Gooten would. It retries on failure (connection error, timeout, non-2xx) with backoff: at
least once, so duplicates happen, as they may in production. With a ``drop_rate`` it also loses
webhooks, each with that probability, as deliveries get lost in production: a lost webhook is never sent,
and is recorded with ``dropped`` set (what a reconciliation sweep has to find).

:class:`WebhookOrderStore` is the order store that notices changes; :class:`WebhookSender` sends them on
a background thread, one at a time, and records each in :attr:`WebhookSender.deliveries` (never the URL,
whose token is a secret). :func:`move_order_items` is the local-only admin route that plays Gooten's
part (``POST /admin/orders/{order_id}/status?status=Shipped``).
"""

from __future__ import annotations

import copy
import json
import queue
import random
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from gooten_provider.statuses import KNOWN_STATUSES, normalize_known_status
from gooten_provider.testing.orders import OrderStore, StatusChange


def webhook_url_for(url: str, order_id: str) -> str:
    """The URL a webhook of ``order_id`` goes to: Gooten appends the id to the registered URL.

    A URL registered as Gooten asks, ending with ``orderid=``, gets the id appended; any other gets
    ``?orderid=<id>`` (or ``&orderid=<id>``) added.
    """
    encoded = quote(order_id, safe="")
    if url.lower().endswith("orderid="):
        return url + encoded
    return f"{url}{'&' if '?' in url else '?'}orderid={encoded}"


@dataclass(frozen=True)
class WebhookDelivery:
    """One webhook the local API sent, or gave up sending.

    :param order_id: the order it was about.
    :param item_statuses: the item statuses of the order JSON it carried.
    :param attempts: POSTs made (more than one: the receiver may have got duplicates).
    :param status: the HTTP status of the last answer, ``None`` when there was none.
    :param delivered: whether an attempt was answered 2xx.
    :param error: why the last attempt failed, if it did (never the URL).
    :param dropped: whether the local API lost it on purpose (``drop_rate``): it was never sent.
    """

    order_id: str
    item_statuses: tuple[str, ...]
    attempts: int
    status: int | None
    delivered: bool
    error: str | None = None
    dropped: bool = False


class WebhookSender:
    """Posts order JSON to a webhook URL on a background thread, retrying each until it is answered 2xx.

    :param url: the URL as registered in the Gooten Admin, ending with ``?orderid=``.
    :param timeout: seconds to wait for each answer.
    :param max_attempts: POSTs of one webhook before giving up (a test server must not retry forever).
    :param retry_initial: seconds before the first retry, doubling up to ``retry_max``.
    :param drop_rate: the probability that a webhook is lost (never sent), from 0 (the default) to 1.
    :param seed: the seed of the draws that lose webhooks, for reproducible runs.
    """

    def __init__(
        self,
        url: str,
        *,
        timeout: float = 5.0,
        max_attempts: int = 8,
        retry_initial: float = 0.2,
        retry_max: float = 5.0,
        drop_rate: float = 0.0,
        seed: int | None = None,
    ) -> None:
        if not url.startswith(("http://", "https://")):
            raise ValueError("webhook_url must be an http:// or https:// URL.")  # never echo it: a secret
        if not 0.0 <= float(drop_rate) <= 1.0:
            raise ValueError(f"webhook_drop_rate must be between 0 and 1, got {drop_rate!r}.")
        self.drop_rate = float(drop_rate)
        self._drops = random.Random(seed)  # noqa: S311 - test data, not security
        self._url = url
        self.timeout = timeout
        self.max_attempts = max_attempts
        self.retry_initial = retry_initial
        self.retry_max = retry_max
        self._queue: queue.Queue[dict[str, Any] | None] = queue.Queue()
        self._deliveries: list[WebhookDelivery] = []
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self._unfinished = 0

    def __repr__(self) -> str:
        return f"<WebhookSender deliveries={len(self._deliveries)}>"  # not the URL: it holds a token

    @property
    def deliveries(self) -> list[WebhookDelivery]:
        """Every webhook sent or given up on, in the order they finished."""
        with self._lock:
            return list(self._deliveries)

    def notify(self, order: dict[str, Any], webhooks: int = 1) -> None:
        """Queue ``webhooks`` posts of this order JSON (a snapshot: later changes do not alter it)."""
        snapshot = copy.deepcopy(order)
        with self._lock:
            lost = sum(1 for _ in range(webhooks) if self._drops.random() < self.drop_rate)
            statuses = tuple(str(item.get("Status")) for item in snapshot.get("Items") or [])
            self._deliveries.extend(
                WebhookDelivery(str(snapshot.get("Id")), statuses, 0, None, delivered=False, dropped=True)
                for _ in range(lost)
            )
            if self._thread is None or not self._thread.is_alive():
                self._stopping.clear()
                self._thread = threading.Thread(target=self._run, name="local-gooten-webhooks", daemon=True)
                self._thread.start()
            self._unfinished += webhooks - lost
        for _ in range(webhooks - lost):
            self._queue.put(snapshot)

    def wait_idle(self, timeout: float = 30.0) -> bool:
        """Wait until every queued webhook was delivered or given up on; tell whether that happened."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._lock:
                if self._unfinished == 0:
                    return True
            time.sleep(0.01)
        return False

    def stop(self, timeout: float = 2.0) -> None:
        """Stop sending (webhooks still queued are dropped); a no-op when not running."""
        self._stopping.set()
        self._queue.put(None)
        thread = self._thread
        if thread is not None:
            thread.join(timeout)
        with self._lock:
            self._thread = None

    def _run(self) -> None:
        while not self._stopping.is_set():
            order = self._queue.get()
            if order is None:
                continue
            delivery = self._send(order)
            with self._lock:
                self._deliveries.append(delivery)
                self._unfinished -= 1
        with self._lock:  # what was still queued is dropped
            while not self._queue.empty():
                if self._queue.get_nowait() is not None:
                    self._unfinished -= 1

    def _send(self, order: dict[str, Any]) -> WebhookDelivery:
        order_id = str(order.get("Id"))
        statuses = tuple(str(item.get("Status")) for item in order.get("Items") or [])
        body = json.dumps(order).encode("utf-8")
        status: int | None = None
        error: str | None = None
        attempt = 0
        delay = self.retry_initial
        while attempt < self.max_attempts and not self._stopping.is_set():
            attempt += 1
            request = urllib.request.Request(  # noqa: S310 - http(s) only, checked in __init__
                webhook_url_for(self._url, order_id),
                data=body,
                headers={"Content-Type": "application/json"},
                method="POST",
            )
            try:
                with urllib.request.urlopen(request, timeout=self.timeout) as reply:  # noqa: S310
                    status = reply.status
                    reply.read()
                return WebhookDelivery(order_id, statuses, attempt, status, delivered=True)
            except urllib.error.HTTPError as failure:
                status, error = failure.code, f"HTTP {failure.code}"
            except (OSError, urllib.error.URLError) as failure:
                reason = getattr(failure, "reason", failure)
                status, error = None, type(reason).__name__
            self._stopping.wait(delay)
            delay = min(self.retry_max, delay * 2)
        return WebhookDelivery(order_id, statuses, attempt, status, delivered=False, error=error)


def changed_items(before: Sequence[str], after: Sequence[str]) -> int:
    """How many items changed status (Gooten sends one webhook per item updated)."""
    return sum(1 for old, new in zip(before, after, strict=False) if old != new)


class WebhookOrderStore(OrderStore):
    """An :class:`OrderStore` that has Gooten's webhooks sent after every item status change."""

    def __init__(self, sender: WebhookSender) -> None:
        super().__init__()
        self.sender = sender

    def change_status(self, order_id: str, target: str) -> StatusChange:
        """Apply the change (see :meth:`OrderStore.change_status`), then send a webhook per item changed."""
        before = self.item_statuses(order_id)
        change = super().change_status(order_id, target)
        if change.applied:
            self._notify(order_id, before)
        return change

    def set_item_statuses(self, order_id: str, statuses: str | Sequence[str]) -> None:
        """Set statuses (see :meth:`OrderStore.set_item_statuses`), then send a webhook per item changed."""
        before = self.item_statuses(order_id)
        super().set_item_statuses(order_id, statuses)
        self._notify(order_id, before)

    def _notify(self, order_id: str, before: Sequence[str]) -> None:
        count = changed_items(before, self.item_statuses(order_id))
        if count:
            self.sender.notify(self.require(order_id), count)


def move_order_items(
    store: OrderStore, order_id: str | None, status: str | None
) -> tuple[int, dict[str, Any]]:
    """The local-only admin route: set every item of an order to a status, as Gooten's production would.

    Returns ``(HTTP status, JSON body)``: ``200`` with ``{"Id", "Statuses"}``, ``404`` for an unknown order,
    ``400`` for a missing or unknown status. The caller holds the store's lock.
    """
    name = normalize_known_status(status) if status else None
    if name is None:
        known = ", ".join(sorted(KNOWN_STATUSES))
        return 400, {"Message": f"Give a known item status as ?status= (got {status!r}); known: {known}."}
    if not order_id or order_id not in store:
        return 404, {"Message": f"No order {order_id!r} in the local Gooten API."}
    store.set_item_statuses(order_id, name)
    return 200, {"Id": order_id, "Statuses": store.item_statuses(order_id)}
