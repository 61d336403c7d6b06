"""``PUT /api/orderCancel`` of the local Gooten API: cancelling items of an order, as Gooten documents it.

Gooten's page (orders-cancel-an-order-item-in-your-order) gives the request: ``PUT
/api/orderCancel?orderId=<GootenId>&recipeid=&partnerBillingKey=`` with the body ``{"Ids": [order-item
ids]}``, allowed while the items are in :data:`~gooten_provider.statuses.ITEM_CANCELLABLE_FROM_STATUSES`
(``Hold`` among them). What it does not document is inferred here, and listed in ``docs/testing.md``:

* ``orderId`` is the numeric ``GootenId`` only (a Safe ID is refused as not a number);
* an item is named by the ``OrderItemId`` of its ``Images`` (the only item id the order JSON shows), as
  a JSON number or digits;
* all or nothing: an unknown item, or one in a status no cancellation is allowed from (``Cancelled``
  included: a cancelled item cannot be cancelled again), refuses the whole request, and nothing changes;
* success is ``{"HadError": false}``, each item named then has the status ``Cancelled``; refusals are
  Gooten's ``HadError`` envelope (HTTP 200 unless ``error_status`` says otherwise).

The billing key, the rate limit and the faults apply as for ``orderstatus``: the server resolves the
``GootenId`` to the order's Safe ID, so a fault queued for an order (``inject_faults(order_id, ...,
method="PUT")``) hits its cancellations, and the journal names the order by Safe ID. Each journal entry
records the items it cancelled (:attr:`JournalEntry.cancelled_items
<gooten_provider.testing.journal.JournalEntry.cancelled_items>`), so a test can count every cancellation
applied to an item (:func:`cancellation_counts`).
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from gooten_provider.order_items import item_order_ids, normalize_item_ids
from gooten_provider.statuses import ITEM_CANCELLABLE_FROM_STATUSES, canonical_status

if TYPE_CHECKING:
    from gooten_provider.testing.journal import JournalEntry
    from gooten_provider.testing.orders import OrderStore

#: The path, matched case-insensitively, with or without a trailing slash, for ``PUT`` only.
ORDER_CANCEL_PATH = "/api/orderCancel"
#: The status an item has once cancelled.
CANCELLED = "Cancelled"

#: ``(PropertyName, ErrorMessage, AttemptedValue)``, as :func:`~gooten_provider.testing.routes.had_error`
#: takes them.
Error = tuple[str, str, str]


@dataclass(frozen=True, slots=True)
class CancelAnswer:
    """What the route answers: the journal's outcome, Gooten's errors (none: success), the items cancelled."""

    outcome: str
    errors: tuple[Error, ...] = ()
    cancelled_items: tuple[int, ...] = ()


def is_cancel_route(method: str, folded_path: str) -> bool:
    """Whether a request (its path case-folded, no trailing slash) is ``PUT /api/orderCancel``."""
    return method == "PUT" and folded_path == ORDER_CANCEL_PATH.casefold()


def _gooten_id(params: Mapping[str, str]) -> int | None:
    value = params.get("orderid", "").strip()
    return int(value) if value.isascii() and value.isdecimal() else None


def order_of_request(store: OrderStore, params: Mapping[str, str]) -> str | None:
    """The Safe ID of the one order whose GootenId is ``orderId``; else ``orderId`` as sent (or ``None``).

    The caller holds the store's lock.
    """
    gooten_id = _gooten_id(params)
    ids = store.ids_with_gooten_id(gooten_id) if gooten_id is not None else []
    return ids[0] if len(ids) == 1 else params.get("orderid")


def _item_ids(body: bytes) -> tuple[int, ...] | None:
    """The body's ``Ids`` (any case) as whole numbers; ``None`` when missing, empty or not order-item ids."""
    try:
        payload = json.loads(body.decode("utf-8")) if body else None
    except (UnicodeDecodeError, ValueError):
        return None
    if not isinstance(payload, dict):
        return None
    ids = next((value for name, value in payload.items() if name.casefold() == "ids"), None)
    if not isinstance(ids, list):
        return None
    try:
        return normalize_item_ids(ids)
    except ValueError:
        return None


def _the_order(store: OrderStore, params: Mapping[str, str]) -> tuple[str, int] | CancelAnswer:
    """The Safe ID and GootenId of the order ``orderId`` names, or the refusal when it names none."""
    gooten_id = _gooten_id(params)
    sent = params.get("orderid", "")
    if gooten_id is None:
        return CancelAnswer("bad_request", (("orderId", "'orderId' must be a number (the GootenId).", sent),))
    safe_ids = store.ids_with_gooten_id(gooten_id)
    if not safe_ids:
        return CancelAnswer("unknown_order", (("orderId", "Order not found.", sent),))
    if len(safe_ids) > 1:  # local only: Gooten's GootenIds are unique
        message = f"GootenId {gooten_id} names {len(safe_ids)} orders of the local Gooten API; use Safe IDs "
        return CancelAnswer("bad_request", (("orderId", message + "with distinct numbers.", sent),))
    return safe_ids[0], gooten_id


def _items_by_id(store: OrderStore, order_id: str, gooten_id: int) -> dict[int, str] | CancelAnswer:
    """Each item's status by its order-item id, or the refusal when an item cannot be named."""
    items: dict[int, str] = {}
    for item in store.require(order_id)["Items"]:
        ids = item_order_ids(item)
        if len(ids) != 1 or ids & items.keys():  # seeded so: Gooten's items each have one id of their own
            message = f"An item of order {gooten_id} has no OrderItemId of its own: it cannot be named."
            return CancelAnswer("bad_request", (("Ids", message, ""),))
        items[ids.pop()] = canonical_status(str(item.get("Status")))
    return items


def _refusal(wanted: tuple[int, ...], items: Mapping[int, str], gooten_id: int) -> CancelAnswer | None:
    """All or nothing: the refusal when a wanted item is unknown or not cancellable, else ``None``."""
    unknown = [
        ("Ids", f"Order item {item_id} is not part of order {gooten_id}.", str(item_id))
        for item_id in wanted
        if item_id not in items
    ]
    if unknown:
        return CancelAnswer("unknown_item", tuple(unknown))
    ineligible = [
        ("Ids", f"Order item {item_id} cannot be cancelled from '{items[item_id]}'.", str(item_id))
        for item_id in wanted
        if items[item_id] not in ITEM_CANCELLABLE_FROM_STATUSES
    ]
    return CancelAnswer("ineligible", tuple(ineligible)) if ineligible else None


def cancel_items(store: OrderStore, params: Mapping[str, str], body: bytes) -> CancelAnswer:
    """Apply ``PUT /api/orderCancel`` to the store: its query ``params`` (names folded), its raw ``body``.

    The caller holds the store's lock and has checked the Recipe ID and the billing key.
    """
    found = _the_order(store, params)
    if isinstance(found, CancelAnswer):
        return found
    order_id, gooten_id = found
    wanted = _item_ids(body)
    if wanted is None:
        text = body[:200].decode("utf-8", "replace")
        return CancelAnswer(
            "bad_request", (("Ids", "'Ids' must be a non-empty list of order item ids.", text),)
        )
    items = _items_by_id(store, order_id, gooten_id)
    if isinstance(items, CancelAnswer):
        return items
    refusal = _refusal(wanted, items, gooten_id)
    if refusal is not None:
        return refusal
    statuses = [
        CANCELLED if item_id in wanted else status
        for item_id, status in zip(items, store.item_statuses(order_id), strict=True)
    ]
    store.set_item_statuses(order_id, statuses)  # one status per item: a webhook store sends its webhooks
    return CancelAnswer("cancelled", cancelled_items=wanted)


def cancellations(journal: Iterable[JournalEntry], order_id: str | None = None) -> list[JournalEntry]:
    """The journal's ``PUT /api/orderCancel`` entries (applied or not), optionally of one order (Safe ID)."""
    return [
        entry
        for entry in journal
        if entry.method == "PUT"
        and is_cancel_route("PUT", entry.path.casefold().rstrip("/"))
        and (order_id is None or entry.order_id == order_id)
    ]


def cancellation_counts(journal: Iterable[JournalEntry]) -> Counter[int]:
    """How many times each item was cancelled, by order-item id: 1 at most, if every write was settled."""
    return Counter(item_id for entry in journal for item_id in entry.cancelled_items)
