"""Gooten order ids (Safe IDs such as ``115557-b5c97bb2-934d-48aa-9ad2-a565154b5cd4``)."""

from __future__ import annotations


def normalize_order_id(order_id: object) -> str:
    """Return the order id stripped of surrounding blanks.

    :raises ValueError: the id is not a string, or is empty.
    """
    if not isinstance(order_id, str):
        raise ValueError(
            f"Invalid Gooten order id {order_id!r} ({type(order_id).__name__}): an order id must be a "
            "non-empty string, Gooten's Safe ID such as '115557-b5c97bb2-934d-48aa-9ad2-a565154b5cd4'."
        )
    stripped = order_id.strip()
    if not stripped:
        raise ValueError("Invalid Gooten order id '': an order id must be a non-empty string.")
    return stripped
