"""Realistic orders spread over days, for exports, sweeps and benchmarks of the local Gooten API.

:func:`orders_over_days` makes order specs (see :func:`~gooten_provider.testing.orders.spec_arguments`)
created at random times over a run of days, oldest first, each with one to three items of a few products
(SKU, product id and name, quantity, price), all of an order's items in one status drawn from a mix of what
a live account holds (mostly shipped or in production; some new, on hold, with an issue, cancelled), shipped
items with a tracking number and a shipment, and a distinct customer (name, address, e-mail, phone).
The same ``seed`` gives the same orders.
"""

from __future__ import annotations

import datetime as dt
import random
from collections.abc import Iterator
from typing import Any

#: ``(Sku, ProductId, Product, unit price)`` of the products ordered.
PRODUCTS: tuple[tuple[str, int, str, float], ...] = (
    ("CanvsWrp-BlkWrp-12x12", 57, "Canvas Wrap", 24.5),
    ("Mug-11oz-White", 81, "Mug", 9.95),
    ("TShirt-Unisex-M-Black", 112, "T-Shirt", 12.0),
    ("Poster-18x24-Matte", 33, "Poster", 11.5),
    ("PhoneCase-iPhone15-Gloss", 205, "Phone Case", 14.0),
)

#: Item statuses with their weights: what the orders of a live account are in, roughly.
STATUS_MIX: tuple[tuple[str, int], ...] = (
    ("Shipped", 35),
    ("Delivered", 15),
    ("InProduction", 15),
    ("New", 10),
    ("Pending", 8),
    ("Cancelled", 5),
    ("AddressIssue", 4),
    ("Hold", 3),
    ("ImageIssue", 2),
    ("Test", 3),
)

_FIRST_NAMES = ("Ada", "Grace", "Alan", "Edsger", "Barbara", "Donald", "Ken", "Frances", "John", "Radia")
_LAST_NAMES = ("Lovelace", "Hopper", "Turing", "Dijkstra", "Liskov", "Knuth", "Thompson", "Allen", "Backus")
_CITIES = (("Springfield", "IL", "62701"), ("Portland", "OR", "97201"), ("Austin", "TX", "73301"))


def _customer(rng: random.Random, number: int) -> dict[str, Any]:
    first, last = rng.choice(_FIRST_NAMES), rng.choice(_LAST_NAMES)
    city, state, postal_code = rng.choice(_CITIES)
    return {
        "FirstName": first,
        "LastName": last,
        "Line1": f"{rng.randint(1, 9999)} {rng.choice(('Oak', 'Elm', 'Main', 'Pine'))} Street",
        "Line2": "",
        "City": city,
        "State": state,
        "CountryCode": "US",
        "PostalCode": postal_code,
        "Email": f"{first.lower()}.{last.lower()}.{number}@example.com",
        "Phone": f"555-{rng.randint(0, 9999):04d}",
    }


def _items(rng: random.Random, status: str) -> list[dict[str, Any]]:
    items = []
    for sku, product_id, product, unit_price in rng.sample(PRODUCTS, rng.randint(1, 3)):
        quantity = rng.choice((1, 1, 1, 2, 3))
        items.append(
            {
                "Sku": sku,
                "ProductId": product_id,
                "Product": product,
                "Quantity": quantity,
                "Status": status,
                "Price": {
                    "Price": unit_price,
                    "CurrencyCode": "USD",
                    "FormattedPrice": f"${unit_price:,.2f}",
                    "CurrencyFormat": "${1}",
                    "CurrencyDigits": 2,
                },
            }
        )
    return items


def orders_over_days(
    count: int, first_day: dt.date, days: int = 1, *, seed: int | None = None
) -> Iterator[dict[str, Any]]:
    """Yield ``count`` order specs created over ``days`` days from ``first_day``, oldest first.

    Each spec holds ``statuses``, ``CreatedAt`` (``yyyy-mm-ddThh:mm:ss``, UTC), ``SourceId``, ``items``,
    ``ShippingAddress`` and ``BillingAddress`` (the same customer); the store gives the ids.

    :raises ValueError: a negative count or fewer than one day.
    """
    if count < 0 or days < 1:
        raise ValueError(f"count must be 0 or more and days 1 or more, got count={count!r}, days={days!r}.")
    rng = random.Random(seed)  # noqa: S311 - test data, not security
    names, weights = zip(*STATUS_MIX, strict=True)
    start = dt.datetime.combine(first_day, dt.time(0))
    seconds = sorted(rng.randrange(days * 86_400) for _ in range(count))
    for number, offset in enumerate(seconds, start=1):
        status = rng.choices(names, weights)[0]
        customer = _customer(rng, number)
        yield {
            "statuses": [status],
            "CreatedAt": (start + dt.timedelta(seconds=offset)).strftime("%Y-%m-%dT%H:%M:%S"),
            "SourceId": f"shop-{first_day:%Y%m%d}-{number:06d}",
            "items": _items(rng, status),
            "ShippingAddress": customer,
            "BillingAddress": dict(customer),
        }
