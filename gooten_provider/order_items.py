"""Order-item ids: how Gooten's order JSON shows them, and how a caller gives them. No I/O, no Airflow.

Gooten's GET order shows no id field on an item; its one item id is the ``OrderItemId`` of the item's
``Images`` (:func:`item_order_ids`), and ``PUT /api/orderCancel`` names items by it. Used by the clients'
cancellation (:mod:`gooten_provider.order_cancel_decision`) and by the local Gooten API, which must start
without Airflow.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

#: At most this many item ids are named in one message (an order rarely has more; logs stay bounded).
MAX_IDS_SHOWN = 10


def name_ids(ids: Iterable[object]) -> str:
    """``"1, 2, 3"``, at most :data:`MAX_IDS_SHOWN` of them, then how many more."""
    shown = [str(value) for value in ids]
    if len(shown) <= MAX_IDS_SHOWN:
        return ", ".join(shown)
    return f"{', '.join(shown[:MAX_IDS_SHOWN])} and {len(shown) - MAX_IDS_SHOWN} more"


def as_id(value: object) -> int | None:
    """A positive whole number, given as an int or as digits; else ``None`` (``True`` is not an id)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        number = value
    elif isinstance(value, str) and value.strip().isascii() and value.strip().isdecimal():
        number = int(value.strip())
    else:
        return None
    return number if number > 0 else None


def normalize_item_ids(item_ids: Iterable[object] | None) -> tuple[int, ...] | None:
    """The order-item ids to cancel, as whole numbers, each once, in the order given; ``None`` is every item.

    :raises ValueError: not a list of positive whole numbers (ints or digits), or an empty one.
    """
    if item_ids is None:
        return None
    if isinstance(item_ids, (str, bytes, Mapping)) or not isinstance(item_ids, Iterable):
        raise ValueError(
            f"item_ids must be a list of order-item ids (whole numbers such as 200101), or None for every "
            f"item of the order; got {type(item_ids).__name__} {item_ids!r}."
        )
    given = list(item_ids)
    bad = [value for value in given if as_id(value) is None]
    if bad:
        raise ValueError(
            f"Invalid order-item id(s) {name_ids(repr(value) for value in bad)}: an order-item id is a "
            "positive whole number (the OrderItemId of the item's images in GET order), such as 200101."
        )
    if not given:
        raise ValueError("item_ids is empty: give the order-item ids to cancel, or None for every item.")
    return tuple(dict.fromkeys(number for value in given if (number := as_id(value)) is not None))


def item_order_ids(item: Mapping[str, Any]) -> set[int]:
    """The ``OrderItemId`` values of an item's ``Images``: one for a well-formed item, none without images."""
    images = [image for image in item.get("Images") or [] if isinstance(image, Mapping)]
    return {number for image in images if (number := as_id(image.get("OrderItemId"))) is not None}
