"""The fake order store behind the local Gooten API, and helpers to seed it.

Orders are kept as the JSON Gooten returns from ``GET /api/v/{n}/source/{src}/orders?id=``: status
lives on each item (``Items[].Status``), never on the order. The store is not thread-safe on its own;
:class:`~gooten_provider.testing.server.GootenApiServer` serialises every access with one lock.
"""

from __future__ import annotations

import copy
import json
import re
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from gooten_provider.statuses import CHANGEABLE_FROM_STATUSES

#: Item statuses that get a tracking number and a shipment when an order is built or changed.
SHIPPED_STATUSES: frozenset[str] = frozenset({"OutForDelivery", "Shipped", "Delivered"})

#: First Gooten id handed out to orders whose id does not start with one.
FIRST_GOOTEN_ID = 1001

_SAFE_ID = re.compile(r"^(\d+)-")


def price(amount: float, currency: str = "USD") -> dict[str, Any]:
    """Return a Gooten price object, e.g. ``{"Price": 24.5, "CurrencyCode": "USD", ...}``."""
    amount = round(float(amount), 2)
    return {
        "Price": amount,
        "CurrencyCode": currency,
        "FormattedPrice": f"${amount:,.2f}" if currency == "USD" else f"{amount:,.2f} {currency}",
        "CurrencyFormat": "${1}" if currency == "USD" else "{1} " + currency,
        "CurrencyDigits": 2,
    }


def default_address() -> dict[str, Any]:
    """Return the address used for ``ShippingAddress`` and ``BillingAddress`` unless overridden."""
    return {
        "FirstName": "Richard",
        "LastName": "Roe",
        "Line1": "1 Test Street",
        "Line2": "",
        "City": "Springfield",
        "State": "IL",
        "CountryCode": "US",
        "PostalCode": "62701",
        "Email": "richard.roe@example.com",
        "Phone": "555-0100",
    }


def normalize_statuses(statuses: str | Sequence[str]) -> list[str]:
    """Return a list of item statuses from one status or a sequence of them.

    :raises ValueError: a status is not a non-empty string.
    """
    names = [statuses] if isinstance(statuses, str) else list(statuses)
    for name in names:
        if not isinstance(name, str) or not name.strip():
            raise ValueError(f"Item statuses must be non-empty strings, got {name!r}.")
    return names


def new_order_id(gooten_id: int) -> str:
    """Return a Gooten Safe ID, ``"{gooten_id}-{uuid4}"``."""
    return f"{gooten_id}-{uuid.uuid4()}"


def _track(item: dict[str, Any], gooten_id: int, index: int) -> None:
    """Give a shipped item a tracking number and a shipment, unless it already has one."""
    if item.get("TrackingNumber"):
        return
    number = f"1Z999AA1{gooten_id:08d}{index:02d}"
    item["TrackingNumber"] = number
    item["TrackingUrl"] = f"https://tracking.example.com/{number}"
    item["ShipCarrierName"] = "UPS"
    item["Shipments"] = [
        {"TrackingNumber": number, "TrackingUrl": item["TrackingUrl"], "ShipCarrierName": "UPS"}
    ]


def build_item(status: str, gooten_id: int, index: int, source_id: str) -> dict[str, Any]:
    """Return one order item in Gooten's GET-order shape, with the given status."""
    order_item_id = gooten_id * 100 + index + 1
    item: dict[str, Any] = {
        "Sku": "CanvsWrp-BlkWrp-12x12",
        "ProductId": 57,
        "Product": "Canvas Wrap",
        "Quantity": 1,
        "Status": status,
        "TrackingNumber": None,
        "TrackingUrl": None,
        "ShipCarrierName": None,
        "Price": price(24.5),
        "DiscountAmount": price(0),
        "SourceId": f"{source_id}-{index + 1}",
        "Meta": {},
        "Shipments": [],
        "Images": [
            {
                "SourceUrl": f"https://images.example.com/{order_item_id}.png",
                "SpaceId": "1",
                "ThumbnailUrl": f"https://images.example.com/{order_item_id}-thumb.png",
                "OrderItemId": order_item_id,
            }
        ],
    }
    if status in SHIPPED_STATUSES:
        _track(item, gooten_id, index)
    return item


def _nice_id(order_id: str, gooten_id: int, statuses: Sequence[str], first_name: object) -> str:
    """Return a NiceId like Gooten's: ``Test7-73f`` for a test order, else ``Richa13-cd4``."""
    if statuses and all(status == "Test" for status in statuses):
        prefix = "Test"
    else:
        prefix = "".join(ch for ch in str(first_name or "") if ch.isalpha())[:5] or "Order"
    tail = order_id.split("-", 1)[1] if _SAFE_ID.match(order_id) else order_id
    return f"{prefix}{gooten_id}-{tail[:3]}"


def build_order(
    order_id: str,
    statuses: str | Sequence[str],
    gooten_id: int,
    fields: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Return an order in Gooten's GET-order shape.

    :param statuses: one item per status; with ``items`` in ``fields``, the status of each given item
        that has no ``Status`` of its own (the last status repeats when there are more items).
    :param fields: top-level fields to override (``ShippingAddress``, ``Total``, ``SourceId``,
        ``CreatedAt``, ...), plus ``items`` (or ``Items``): a list of item dicts merged over the
        default item.
    :raises ValueError: the order would have no item, or ``fields`` tries to set ``Id``.
    """
    extra = dict(fields or {})
    if "Id" in extra or "id" in extra:
        raise ValueError("Pass the order id as order_id, not as a field.")
    given_items = extra.pop("items", None)
    given_items = extra.pop("Items", given_items)
    names = normalize_statuses(statuses)
    if not names and not given_items:
        raise ValueError("An order needs at least one item status.")
    source_id = str(extra.get("SourceId", f"partner-order-{gooten_id}"))
    items: list[dict[str, Any]] = []
    if given_items:
        for index, given in enumerate(given_items):
            default_status = names[min(index, len(names) - 1)] if names else "New"
            item = build_item(str(given.get("Status", default_status)), gooten_id, index, source_id)
            own_id = item["Images"][0]["OrderItemId"]
            item.update(copy.deepcopy(dict(given)))
            for image in item.get("Images") or []:  # Gooten's images always name their order item
                if isinstance(image, dict):
                    image.setdefault("OrderItemId", own_id)
            items.append(item)
    else:
        items = [build_item(status, gooten_id, index, source_id) for index, status in enumerate(names)]
    subtotal = sum(float(item["Price"]["Price"]) * int(item.get("Quantity") or 1) for item in items)
    shipping = 5.95
    order: dict[str, Any] = {
        "Id": order_id,
        "NiceId": "",
        "SourceId": source_id,
        "GootenId": gooten_id,
        "CreatedAt": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S"),
        "Items": items,
        "Total": price(subtotal + shipping),
        "ShippingTotal": price(shipping),
        "DiscountAmount": price(0),
        "DiscountCode": None,
        "ShippingAddress": default_address(),
        "BillingAddress": default_address(),
        "Meta": {},
    }
    order.update(copy.deepcopy(extra))
    if not order["NiceId"]:
        first_name = (order.get("ShippingAddress") or {}).get("FirstName")
        order["NiceId"] = _nice_id(order_id, gooten_id, [item["Status"] for item in items], first_name)
    return order


def spec_arguments(spec: Mapping[str, Any]) -> tuple[str | None, str | list[str], dict[str, Any]]:
    """Split an order spec ``{"id": ..., "statuses": [...], ...fields}`` into add_order arguments.

    ``status`` is accepted for ``statuses`` and ``Id`` for ``id``. Returns ``(order_id, statuses, fields)``.

    :raises ValueError: the spec is not a JSON object.
    """
    if not isinstance(spec, Mapping):
        raise ValueError(f"An order spec must be a JSON object, got {type(spec).__name__}.")
    fields = dict(spec)
    order_id = fields.pop("id", None)
    order_id = fields.pop("Id", order_id)
    statuses = fields.pop("statuses", None)
    statuses = fields.pop("status", statuses)
    if statuses is None:
        statuses = "New"
    return (None if order_id is None else str(order_id)), statuses, fields


def load_order_specs(path: str | Path) -> list[dict[str, Any]]:
    """Read order specs from a JSON file holding a list of ``{"id", "statuses", ...fields}`` objects.

    :raises ValueError: the file does not hold a JSON list of objects.
    """
    data = json.loads(Path(path).read_text(encoding="utf-8"))
    if not isinstance(data, list) or not all(isinstance(spec, dict) for spec in data):
        raise ValueError(f"{path}: expected a JSON list of order objects.")
    return data


def demo_order_specs() -> list[dict[str, Any]]:
    """Return a handful of order specs in various statuses, with stable ids, for demos.

    Ids are the same on every run: ``"{2001 + n}-{uuid5}"``.
    """
    plan: list[tuple[str, list[str], str]] = [
        ("new", ["New"], "Ada"),
        ("pending-two-items", ["Pending", "Pending"], "Grace"),
        ("address-issue", ["AddressIssue"], "Alan"),
        ("on-hold", ["Hold"], "Edsger"),
        ("in-production", ["InProduction"], "Barbara"),
        ("shipped", ["Shipped", "Shipped"], "Donald"),
        ("test-mode", ["Test"], "Ken"),
        ("partly-produced", ["New", "InProduction"], "Frances"),
        ("cancelled", ["Cancelled"], "John"),
    ]
    specs: list[dict[str, Any]] = []
    for offset, (label, statuses, first_name) in enumerate(plan):
        gooten_id = 2001 + offset
        guid = uuid.uuid5(uuid.NAMESPACE_URL, f"https://local.gooten.test/demo/{label}")
        address = default_address() | {
            "FirstName": first_name,
            "Email": f"{first_name.lower()}@example.com",
        }
        specs.append(
            {
                "id": f"{gooten_id}-{guid}",
                "statuses": statuses,
                "SourceId": f"demo-{label}",
                "CreatedAt": f"2025-01-{offset + 1:02d}T10:00:00",
                "ShippingAddress": address,
                "BillingAddress": dict(address),
            }
        )
    return specs


@dataclass(frozen=True, slots=True)
class SearchFilter:
    """Filters of ``GET /api/ordersearch``; ``None`` means the filter is not used."""

    email: str | None = None
    last_name: str | None = None
    postal_code: str | None = None
    start_date: date | None = None
    end_date: date | None = None

    def matches(self, order: Mapping[str, Any]) -> bool:
        """Tell whether an order passes every filter (addresses compared case-insensitively)."""
        addresses = [order.get("ShippingAddress") or {}, order.get("BillingAddress") or {}]

        def field_matches(name: str, wanted: str | None) -> bool:
            if wanted is None:
                return True
            folded = "".join(wanted.split()).casefold()
            return any("".join(str(a.get(name) or "").split()).casefold() == folded for a in addresses)

        if not (
            field_matches("Email", self.email)
            and field_matches("LastName", self.last_name)
            and field_matches("PostalCode", self.postal_code)
        ):
            return False
        if self.start_date is None and self.end_date is None:
            return True
        try:
            created = date.fromisoformat(str(order.get("CreatedAt", ""))[:10])
        except ValueError:
            return False
        if self.start_date is not None and created < self.start_date:
            return False
        return self.end_date is None or created <= self.end_date


@dataclass(frozen=True, slots=True)
class StatusChange:
    """What :meth:`OrderStore.change_status` did: ``applied``, or the status that blocked the change."""

    applied: bool
    blocking_status: str | None = None


class OrderStore:
    """Orders by Safe ID, in creation order. Not thread-safe: the server holds its lock around it."""

    def __init__(self) -> None:
        self._orders: dict[str, dict[str, Any]] = {}
        self._next_gooten_id = FIRST_GOOTEN_ID
        # GootenId -> Safe IDs: ids given as "{int}-..." may share an int, which Gooten's never do
        self._by_gooten_id: dict[int, list[str]] = {}

    def __len__(self) -> int:
        return len(self._orders)

    def __contains__(self, order_id: object) -> bool:
        return order_id in self._orders

    def ids(self) -> list[str]:
        """Return every order id, in creation order."""
        return list(self._orders)

    def add(
        self, order_id: str | None = None, statuses: str | Sequence[str] = "New", **fields: Any
    ) -> dict[str, Any]:
        """Create an order and return the stored dict (callers copy it before handing it out).

        :param order_id: a Safe ID; ``None`` generates ``"{int}-{uuid4}"``. When it starts with
            ``"{int}-"`` that integer becomes ``GootenId``.
        :raises ValueError: the id is already used, or the order is not valid (see :func:`build_order`).
        """
        if order_id is None:
            gooten_id = self._take_gooten_id()
            order_id = new_order_id(gooten_id)
        else:
            order_id = str(order_id)
            if not order_id:
                raise ValueError("order_id must not be empty.")
            match = _SAFE_ID.match(order_id)
            gooten_id = int(match.group(1)) if match else self._take_gooten_id()
        if order_id in self._orders:
            raise ValueError(f"Order {order_id!r} already exists.")
        order = build_order(order_id, statuses, gooten_id, fields)
        self._orders[order_id] = order
        self._by_gooten_id.setdefault(gooten_id, []).append(order_id)
        return order

    def ids_with_gooten_id(self, gooten_id: int) -> list[str]:
        """Return the Safe IDs of the orders whose ``GootenId`` is ``gooten_id`` (one, unless made up so)."""
        return list(self._by_gooten_id.get(gooten_id, ()))

    def _take_gooten_id(self) -> int:
        gooten_id = self._next_gooten_id
        self._next_gooten_id += 1
        return gooten_id

    def get(self, order_id: str | None) -> dict[str, Any] | None:
        """Return the stored order (not a copy), or ``None``."""
        return self._orders.get(order_id) if order_id is not None else None

    def require(self, order_id: str) -> dict[str, Any]:
        """Return the stored order (not a copy).

        :raises KeyError: no order has this id.
        """
        try:
            return self._orders[order_id]
        except KeyError:
            raise KeyError(f"No order {order_id!r} in the local Gooten API.") from None

    def item_statuses(self, order_id: str) -> list[str]:
        """Return the status of each item of an order.

        :raises KeyError: no order has this id.
        """
        return [str(item.get("Status")) for item in self.require(order_id)["Items"]]

    def set_item_statuses(self, order_id: str, statuses: str | Sequence[str]) -> None:
        """Set every item to one status, or each item to its own status (one status per item).

        :raises KeyError: no order has this id.
        :raises ValueError: a sequence whose length differs from the number of items.
        """
        order = self.require(order_id)
        items = order["Items"]
        names = normalize_statuses(statuses)
        if isinstance(statuses, str):
            names = names * len(items)
        if len(names) != len(items):
            raise ValueError(
                f"Order {order_id!r} has {len(items)} items but {len(names)} statuses were given."
            )
        for index, (item, name) in enumerate(zip(items, names, strict=True)):
            item["Status"] = name
            if name in SHIPPED_STATUSES:
                _track(item, int(order.get("GootenId") or 0), index)

    def change_status(self, order_id: str, target: str) -> StatusChange:
        """Apply Gooten's ``orderstatus`` rule: set every item to ``target`` if every item may change.

        A change is allowed only when every item status is in ``CHANGEABLE_FROM_STATUSES``.

        :raises KeyError: no order has this id.
        """
        items = self.require(order_id)["Items"]
        blocking = next(
            (str(item.get("Status")) for item in items if item.get("Status") not in CHANGEABLE_FROM_STATUSES),
            None,
        )
        if blocking is not None or not items:
            return StatusChange(applied=False, blocking_status=blocking)
        for item in items:
            item["Status"] = target
        return StatusChange(applied=True)

    def search(self, search_filter: SearchFilter) -> list[dict[str, Any]]:
        """Return stored orders (not copies) passing the filter, in creation order."""
        return [order for order in self._orders.values() if search_filter.matches(order)]


def add_specs(store: OrderStore, specs: Iterable[Mapping[str, Any]]) -> list[str]:
    """Add orders described by specs (see :func:`spec_arguments`) and return their ids."""
    ids: list[str] = []
    for spec in specs:
        order_id, statuses, fields = spec_arguments(spec)
        ids.append(store.add(order_id, statuses, **fields)["Id"])
    return ids
