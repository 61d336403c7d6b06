"""Gooten order ids (Safe IDs such as ``115557-b5c97bb2-934d-48aa-9ad2-a565154b5cd4``)."""

from __future__ import annotations

import ast
import re
from collections.abc import Iterable, Mapping


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


def parse_order_ids(value: object) -> list[str]:
    """Turn what a user or a template gives into a list of unique order ids, first occurrence first.

    Accepts one id, a list or tuple of ids, or a string holding a list literal (``"['1-a', '1-b']"``, as a
    rendered template gives) or ids separated by commas or newlines.

    :raises ValueError: an id is not a non-empty string, or the value is ``None``; the message names it.
    """
    if value is None:
        raise ValueError("No order ids given (None): pass one order id or a list of them.")
    if isinstance(value, str):
        items: list[object] = _split_order_id_text(value)
    elif isinstance(value, Iterable) and not isinstance(value, (bytes, Mapping)):
        items = list(value)  # a list, a tuple, or Airflow's lazy sequence of a mapped task's XComs
    else:
        raise ValueError(
            f"Invalid order ids {value!r} ({type(value).__name__}): pass one order id (a string) or a list "
            "of them."
        )
    return list(dict.fromkeys(normalize_order_id(item) for item in items))


def _split_order_id_text(text: str) -> list[object]:
    stripped = text.strip()
    if stripped in ("None", "null"):  # what a template gives for a missing value, never a Gooten order id
        raise ValueError(
            f"Invalid order ids {text!r}: the template rendered nothing (None); pass one order id or a list."
        )
    if stripped.startswith(("[", "(")):
        try:
            parsed = ast.literal_eval(stripped)
        except (ValueError, SyntaxError):
            raise ValueError(
                f"Invalid order ids {text!r}: it looks like a list but is not a valid list literal."
            ) from None
        return list(parsed) if isinstance(parsed, (list, tuple)) else [parsed]
    return [part for part in re.split(r"[,\n\r]+", stripped) if part.strip()]
