"""A demo batch of orders, written to a SQLite warehouse and to the local Gooten API so that both agree.

``make demo``, ``make airflow`` and the tests build their warehouse here::

    from gooten_examples.seed import build_sqlite_warehouse, demo_orders, gooten_order_specs

    orders = demo_orders()
    build_sqlite_warehouse("/tmp/warehouse.db", orders)
    api = GootenApiServer(orders=gooten_order_specs(orders))

Each :class:`SeedOrder` says what the warehouse holds (items, address, flags, intended status) and what
Gooten shows (the item statuses in the local API). ``note`` tells what the example DAGs should make of it.
This module needs no Airflow.
"""

from __future__ import annotations

import datetime as dt
import sqlite3
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from gooten_examples.warehouse import SCHEMA_STATEMENTS, sql_timestamp

IMAGE_HOST = "https://images.example.com"


@dataclass(frozen=True)
class SeedItem:
    """One order line: SKU, quantity, unit price and the print image URL (``None`` when missing)."""

    sku: str
    quantity: int
    unit_price: float
    image_url: str | None


@dataclass(frozen=True)
class SeedAddress:
    """A shipping address, as the warehouse's ``shipping_addresses`` row holds it."""

    recipient_name: str
    line1: str
    city: str
    region: str
    postal_code: str
    country_code: str
    line2: str = ""


@dataclass(frozen=True)
class SeedOrder:
    """An order in the warehouse and, with ``gooten_statuses``, in the local Gooten API."""

    order_id: str
    source_id: str
    customer_id: str
    items: tuple[SeedItem, ...]
    address: SeedAddress | None
    created_minutes_ago: float
    loaded_minutes_ago: float = 5.0
    total: float | None = None
    currency: str = "USD"
    flagged_test: bool = False
    flagged_fraud: bool = False
    intended_gooten_status: str | None = None
    gooten_statuses: tuple[str, ...] = ("New",)
    note: str = field(default="", compare=False)

    @property
    def order_total(self) -> float:
        """The order total: ``total`` if given, else the sum of the items."""
        if self.total is not None:
            return self.total
        return round(sum(item.quantity * item.unit_price for item in self.items), 2)


def safe_id(number: int, label: str) -> str:
    """Return a stable Gooten Safe ID, ``"{number}-{uuid5(label)}"``."""
    return f"{number}-{uuid.uuid5(uuid.NAMESPACE_URL, f'https://local.gooten.test/warehouse/{label}')}"


def short_id(order_id: str) -> str:
    """Shorten a Safe ID for display: ``3001-5f3c9a2b``."""
    return order_id[: order_id.find("-") + 9] if "-" in order_id else order_id


GOOD_ADDRESS = SeedAddress("Ada Lovelace", "12 Analytical Way", "Springfield", "IL", "62701", "US")

_CANVAS = "CanvsWrp-BlkWrp-12x12"
_MUG = "Mug-11oz-White"
_POSTER = "Poster-18x24-Matte"


def _image(name: str) -> str:
    return f"{IMAGE_HOST}/{name}.png"


def demo_orders() -> list[SeedOrder]:
    """Return the demo batch: clean orders, one or two rule failures each, and reconcile cases."""
    canvas = SeedItem(_CANVAS, 1, 24.50, _image("sunset"))
    mugs = SeedItem(_MUG, 2, 12.50, _image("cat"))
    poster = SeedItem(_POSTER, 1, 9.99, _image("map"))
    plan: list[dict[str, Any]] = [
        {"label": "clean", "customer": "cust-ada", "items": (canvas,), "created": 420, "note": "no rule hit"},
        {
            "label": "repeat-order",
            "customer": "cust-ada",
            "items": (canvas,),
            "created": 60,
            "note": "same items as 'clean' but 6 hours later: not a duplicate",
        },
        {
            "label": "missing-postal-code",
            "customer": "cust-alan",
            "items": (poster,),
            "address": replace(GOOD_ADDRESS, recipient_name="Alan Turing", postal_code=""),
            "created": 200,
            "note": "Hold",
        },
        {
            "label": "http-image",
            "customer": "cust-grace",
            "items": (replace(canvas, image_url="http://images.example.com/sunset.png"),),
            "created": 190,
            "note": "Hold",
        },
        {
            "label": "missing-image",
            "customer": "cust-edsger",
            "items": (poster, replace(mugs, image_url=None)),
            "created": 180,
            "note": "Hold",
        },
        {
            "label": "total-mismatch",
            "customer": "cust-barbara",
            "items": (mugs, poster),
            "total": 39.99,
            "created": 170,
            "note": "Hold",
        },
        {"label": "first-submission", "customer": "cust-ken", "items": (mugs, poster), "created": 42},
        {
            "label": "double-submission",
            "customer": "cust-ken",
            "items": (poster, mugs),
            "created": 38,
            "note": "Cancel: 'first-submission' again, 4 minutes later",
        },
        {
            "label": "test-order",
            "customer": "cust-qa",
            "items": (canvas,),
            "flagged_test": True,
            "created": 30,
            "note": "Cancel",
        },
        {
            "label": "fraud-bad-address",
            "customer": "cust-mallory",
            "items": (canvas, mugs),
            "address": replace(GOOD_ADDRESS, recipient_name="M. Allory", city=""),
            "flagged_fraud": True,
            "created": 25,
            "note": "Cancel wins over Hold",
        },
        {
            "label": "fraud-in-production",
            "customer": "cust-trudy",
            "items": (poster,),
            "flagged_fraud": True,
            "gooten": ("InProduction",),
            "created": 120,
            "note": "Cancel, but Gooten can no longer change it: ineligible",
        },
        {
            "label": "already-held",
            "customer": "cust-frances",
            "items": (canvas,),
            "address": replace(GOOD_ADDRESS, recipient_name="Frances Allen", line1=" "),
            "gooten": ("Hold",),
            "created": 100,
            "note": "Hold, and Gooten already holds it: unchanged",
        },
        {
            "label": "customer-cancelled",
            "customer": "cust-donald",
            "items": (mugs,),
            "intended": "Cancelled",
            "created": 90,
            "note": "reconcile: the shop wants it Cancelled",
        },
        {
            "label": "cancel-too-late",
            "customer": "cust-john",
            "items": (poster,),
            "intended": "Cancelled",
            "gooten": ("Shipped",),
            "created": 80,
            "note": "reconcile: already shipped, cannot be cancelled",
        },
        {
            "label": "held-on-purpose",
            "customer": "cust-leslie",
            "items": (canvas,),
            "intended": "Hold",
            "gooten": ("Hold",),
            "created": 70,
            "note": "reconcile: already in sync",
        },
    ]
    return [
        SeedOrder(
            order_id=safe_id(3001 + number, spec["label"]),
            source_id=spec["label"],
            customer_id=spec["customer"],
            items=spec["items"],
            address=spec.get("address", GOOD_ADDRESS),
            created_minutes_ago=spec["created"],
            total=spec.get("total"),
            flagged_test=spec.get("flagged_test", False),
            flagged_fraud=spec.get("flagged_fraud", False),
            intended_gooten_status=spec.get("intended"),
            gooten_statuses=spec.get("gooten", ("New",)),
            note=spec.get("note", ""),
        )
        for number, spec in enumerate(plan)
    ]


def warehouse_rows(orders: Iterable[SeedOrder], now: dt.datetime | None = None) -> dict[str, list[tuple]]:
    """Return the rows of each warehouse table for these orders: ``{"orders": [...], ...}``."""
    now = now or dt.datetime.now(dt.UTC)
    rows: dict[str, list[tuple]] = {"orders": [], "order_items": [], "shipping_addresses": []}
    for order in orders:
        rows["orders"].append(
            (
                order.order_id,
                order.customer_id,
                order.source_id,
                order.order_total,
                order.currency,
                order.flagged_test,
                order.flagged_fraud,
                sql_timestamp(now - dt.timedelta(minutes=order.created_minutes_ago)),
                sql_timestamp(now - dt.timedelta(minutes=order.loaded_minutes_ago)),
                order.intended_gooten_status,
            )
        )
        for line_number, item in enumerate(order.items, start=1):
            rows["order_items"].append(
                (order.order_id, line_number, item.sku, item.quantity, item.unit_price, item.image_url)
            )
        if order.address is not None:
            a = order.address
            rows["shipping_addresses"].append(
                (
                    order.order_id,
                    a.recipient_name,
                    a.line1,
                    a.line2,
                    a.city,
                    a.region,
                    a.postal_code,
                    a.country_code,
                )
            )
    return rows


_INSERTS = {
    "orders": "INSERT INTO orders (order_id, customer_id, source_id, total, currency, flagged_test, "
    "flagged_fraud, created_at, loaded_at, intended_gooten_status) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
    "order_items": "INSERT INTO order_items (order_id, line_number, sku, quantity, unit_price, image_url) "
    "VALUES (?, ?, ?, ?, ?, ?)",
    "shipping_addresses": "INSERT INTO shipping_addresses (order_id, recipient_name, line1, line2, city, "
    "region, postal_code, country_code) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
}


def build_sqlite_warehouse(
    path: str | Path, orders: Sequence[SeedOrder] | None = None, now: dt.datetime | None = None
) -> Path:
    """Create the warehouse tables in a SQLite file and load the orders (the demo batch by default).

    Tables that exist already are kept and appended to.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    rows = warehouse_rows(demo_orders() if orders is None else orders, now)
    with sqlite3.connect(path) as connection:
        for statement in SCHEMA_STATEMENTS:
            connection.execute(statement)
        for table, insert in _INSERTS.items():
            connection.executemany(insert, rows[table])
    connection.close()
    return path


def warehouse_connection(path: str | Path) -> dict[str, str]:
    """Return the ``gooten_warehouse`` Airflow connection (JSON form) for a SQLite file."""
    return {"conn_type": "sqlite", "host": str(Path(path).resolve())}


def _gooten_address(address: SeedAddress | None) -> dict[str, str]:
    if address is None:
        return {}
    first, _, last = address.recipient_name.partition(" ")
    return {
        "FirstName": first,
        "LastName": last,
        "Line1": address.line1,
        "Line2": address.line2,
        "City": address.city,
        "State": address.region,
        "CountryCode": address.country_code,
        "PostalCode": address.postal_code,
    }


def _gooten_price(amount: float, currency: str) -> dict[str, Any]:
    return {
        "Price": round(float(amount), 2),
        "CurrencyCode": currency,
        "FormattedPrice": f"{amount:,.2f} {currency}",
        "CurrencyFormat": "{1} " + currency,
        "CurrencyDigits": 2,
    }


def gooten_order_specs(orders: Iterable[SeedOrder], now: dt.datetime | None = None) -> list[dict[str, Any]]:
    """Return the local Gooten API's order specs (``GootenApiServer(orders=...)``) for these orders."""
    now = now or dt.datetime.now(dt.UTC)
    specs = []
    for order in orders:
        created = now - dt.timedelta(minutes=order.created_minutes_ago)
        specs.append(
            {
                "id": order.order_id,
                "statuses": list(order.gooten_statuses),
                "SourceId": order.source_id,
                "CreatedAt": created.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S"),
                "Total": _gooten_price(order.order_total, order.currency),
                "ShippingAddress": _gooten_address(order.address),
                "items": [
                    {
                        "Sku": item.sku,
                        "Quantity": item.quantity,
                        "Price": _gooten_price(item.unit_price, order.currency),
                        "Images": [{"SourceUrl": item.image_url}] if item.image_url else [],
                    }
                    for item in order.items
                ],
            }
        )
    return specs
