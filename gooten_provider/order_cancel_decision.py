"""Deciding an item cancellation from a read order, and telling from a re-read whether it landed. No I/O.

``PUT /api/orderCancel`` names an order by its numeric ``GootenId`` and its items by their order-item ids,
both read from GET order (an item's id is the ``OrderItemId`` of its ``Images``: the only item id Gooten's
order JSON shows). Gooten allows it only from
:data:`~gooten_provider.statuses.ITEM_CANCELLABLE_FROM_STATUSES`, and a cancelled item cannot be cancelled
again. So a cancellation goes:

1. :func:`normalize_item_ids` checks the ids a caller gives, before any request;
2. :func:`plan_item_cancellation` decides from the read order: which wanted items are cancelled already,
   which are in a status no cancellation is allowed from (then nothing is sent), which to send;
3. the write (:mod:`gooten_provider.client.order_cancel`) sends :attr:`CancelPlan.to_send`, once;
4. :func:`uncancelled_items` (or :func:`items_cancelled`) reads a re-read order to tell whether the wanted
   items are now cancelled: how a write whose answer was lost is settled.

These are the steps the clients' ``cancel_order_items`` takes, and the ones a batch engine reuses.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from gooten_provider.exceptions import GootenApiError, GootenItemsNotCancellableError, GootenOrderItemsError
from gooten_provider.order_items import as_id, item_order_ids, name_ids, normalize_item_ids
from gooten_provider.statuses import (
    CANCELLED_ITEM_STATUSES,
    ITEM_CANCELLABLE_FROM_STATUSES,
    canonical_status,
)


class CancelDecision(enum.StrEnum):
    """What a read order says to do about the wanted items."""

    #: Every wanted item is cancelled already: nothing to send.
    UNCHANGED = "unchanged"
    #: A wanted item, not cancelled, is in a status Gooten allows no cancellation from: nothing is sent.
    INELIGIBLE = "ineligible"
    #: Send the cancellation of :attr:`CancelPlan.to_send`.
    CANCEL = "cancel"


@dataclass(frozen=True, slots=True)
class OrderItem:
    """One item of an order as read: its order-item id and its status (Gooten's spelling)."""

    item_id: int
    status: str

    def __str__(self) -> str:
        return f"{self.item_id} ({self.status})"


def gooten_id_of(order_id: str, order: Mapping[str, Any]) -> int:
    """The order's numeric ``GootenId``, which ``orderCancel`` takes instead of the Safe ID.

    :raises GootenApiError: Gooten's order has no usable ``GootenId``.
    """
    gooten_id = as_id(order.get("GootenId"))
    if gooten_id is None:
        raise GootenApiError(
            f"Gooten's order {order_id} has no GootenId (got {order.get('GootenId')!r}), so its items cannot "
            "be cancelled: orderCancel takes the numeric GootenId of GET order."
        )
    return gooten_id


def order_items(order_id: str, order: Mapping[str, Any]) -> list[OrderItem]:
    """Each item of an order with its order-item id (its images' ``OrderItemId``) and status, in item order.

    :raises GootenApiError: the order has no items, or an item has no ``OrderItemId`` of its own.
    """
    items = [item for item in order.get("Items") or [] if isinstance(item, Mapping)]
    if not items:
        raise GootenApiError(f"Gooten's order {order_id} has no items to cancel.")
    read: list[OrderItem] = []
    for position, item in enumerate(items, start=1):
        ids = item_order_ids(item)
        if len(ids) != 1:
            found = f"several ({name_ids(sorted(ids))})" if ids else "none"
            raise GootenApiError(
                f"Gooten's order {order_id}: item {position} (Sku {item.get('Sku')!r}) has no single "
                f"OrderItemId in its Images ({found}), so it cannot be named to orderCancel."
            )
        read.append(OrderItem(ids.pop(), canonical_status(str(item.get("Status")))))
    shared = sorted(
        {item.item_id for item in read if sum(other.item_id == item.item_id for other in read) > 1}
    )
    if shared:  # one id naming two items: a cancellation of it could not say which one is meant
        raise GootenApiError(
            f"Gooten's order {order_id}: several items have the OrderItemId {name_ids(shared)}, so they "
            "cannot be named to orderCancel one by one."
        )
    return read


def _wanted(order_id: str, items: Sequence[OrderItem], item_ids: Sequence[int] | None) -> list[OrderItem]:
    by_id = {item.item_id: item for item in items}
    if item_ids is None:
        return list(items)
    unknown = [item_id for item_id in item_ids if item_id not in by_id]
    if unknown:
        raise GootenOrderItemsError(
            f"Order {order_id} has no item(s) {name_ids(unknown)}; its order-item ids are "
            f"{name_ids(by_id)}. Nothing was cancelled."
        )
    return [by_id[item_id] for item_id in item_ids]


@dataclass(frozen=True, slots=True)
class CancelPlan:
    """What a read order says about cancelling some of its items; see :attr:`decision`."""

    #: The order's Safe ID.
    order_id: str
    #: The order's numeric id, the one ``orderCancel`` takes.
    gooten_id: int
    #: The wanted items as read, in the order asked for (every item, in item order, when none was named).
    items: tuple[OrderItem, ...]

    @property
    def already_cancelled(self) -> tuple[int, ...]:
        """The wanted items that are cancelled already (never sent again)."""
        return tuple(item.item_id for item in self.items if item.status in CANCELLED_ITEM_STATUSES)

    @property
    def ineligible(self) -> tuple[OrderItem, ...]:
        """The wanted items, not cancelled, in a status Gooten allows no item cancellation from."""
        return tuple(
            item
            for item in self.items
            if item.status not in CANCELLED_ITEM_STATUSES
            and item.status not in ITEM_CANCELLABLE_FROM_STATUSES
        )

    @property
    def to_send(self) -> tuple[int, ...]:
        """The item ids to send: the wanted ones not cancelled yet; none when any of them is ineligible."""
        if self.ineligible:
            return ()
        return tuple(item.item_id for item in self.items if item.status not in CANCELLED_ITEM_STATUSES)

    @property
    def decision(self) -> CancelDecision:
        """``unchanged`` (all cancelled), ``ineligible`` (nothing may be sent) or ``cancel`` (send)."""
        if self.ineligible:
            return CancelDecision.INELIGIBLE
        return CancelDecision.CANCEL if self.to_send else CancelDecision.UNCHANGED

    def ineligible_message(self) -> str:
        """Why nothing may be sent, naming the items and what Gooten allows; ``""`` when it may be."""
        if not self.ineligible:
            return ""
        allowed = ", ".join(sorted(ITEM_CANCELLABLE_FROM_STATUSES))
        return (
            f"order {self.order_id}: item(s) {name_ids(self.ineligible)} are in a status Gooten allows no "
            f"item cancellation from; it allows one only from {allowed}"
        )

    def require_eligible(self) -> CancelPlan:
        """Return the plan, if nothing wanted is ineligible.

        :raises GootenItemsNotCancellableError: an item is in a status no cancellation is allowed from.
        """
        if self.ineligible:
            raise GootenItemsNotCancellableError(
                f"Cannot cancel: {self.ineligible_message()}. Nothing was sent."
            )
        return self


def plan_item_cancellation(
    order_id: str, order: Mapping[str, Any], item_ids: Iterable[object] | None = None
) -> CancelPlan:
    """Decide, from an order as GET order returned it, what cancelling ``item_ids`` (``None``: all) takes.

    :raises ValueError: ``item_ids`` is not a list of order-item ids (see :func:`normalize_item_ids`).
    :raises GootenOrderItemsError: an item id is not one of the order's (the message lists the order's).
    :raises GootenApiError: the order has no ``GootenId``, no items, or an item without an ``OrderItemId``.
    """
    wanted_ids = normalize_item_ids(item_ids)
    gooten_id = gooten_id_of(order_id, order)
    wanted = _wanted(order_id, order_items(order_id, order), wanted_ids)
    return CancelPlan(order_id, gooten_id, tuple(wanted))


def uncancelled_items(
    order_id: str, order: Mapping[str, Any], item_ids: Iterable[object]
) -> tuple[OrderItem, ...]:
    """The wanted items a re-read order shows not cancelled (empty once the cancellation has landed).

    :raises GootenOrderItemsError: an item id is no longer one of the order's.
    :raises GootenApiError: the order's items cannot be read (see :func:`order_items`).
    """
    wanted_ids = normalize_item_ids(item_ids)
    wanted = _wanted(order_id, order_items(order_id, order), wanted_ids)
    return tuple(item for item in wanted if item.status not in CANCELLED_ITEM_STATUSES)


def items_cancelled(order_id: str, order: Mapping[str, Any], item_ids: Iterable[object]) -> bool:
    """Whether a re-read order shows every wanted item cancelled: the settle check of an unknown write."""
    return not uncancelled_items(order_id, order, item_ids)
