"""Which parts of a Gooten order an export writes: an allowlist of field paths, and the personal ones.

A field path names a key of Gooten's order JSON, with dots going into nested objects; lists are gone into
transparently, so ``Items.Status`` is the ``Status`` of every item and ``Items.Images.OrderItemId`` the
``OrderItemId`` of every image of every item. :func:`project` keeps only the listed paths of an order.

The default, :data:`DEFAULT_FIELDS`, is what operations and finance need and **no personal data**: the order's
ids, its creation time, each item's id, SKU, quantity, status, tracking and shipments, and the totals.
:data:`PERSONAL_DATA_FIELDS` lists the paths that hold or may hold personal data; a path inside, or
containing, one of them is refused unless the export says ``include_personal_data=True``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

#: A stand-in for a free-form object (``Meta``): any path below it is accepted.
ANY: Mapping[str, Any] = {}

_PRICE: Mapping[str, Any] = dict.fromkeys(
    ("Price", "CurrencyCode", "FormattedPrice", "CurrencyFormat", "CurrencyDigits")
)
_ADDRESS: Mapping[str, Any] = dict.fromkeys(
    (
        "FirstName",
        "LastName",
        "Line1",
        "Line2",
        "City",
        "State",
        "CountryCode",
        "PostalCode",
        "Email",
        "Phone",
    )
)
_SHIPMENT: Mapping[str, Any] = dict.fromkeys(("TrackingNumber", "TrackingUrl", "ShipCarrierName"))

#: The order JSON as Gooten documents it (GET order, ordersearch): each key, with its nested keys when it is
#: an object or a list of objects (``None`` for a plain value). ``CreatedAt`` is inferred: Gooten's search
#: filters on a creation date, but no Gooten page names the field that holds it.
ORDER_SCHEMA: Mapping[str, Any] = {
    "Id": None,
    "NiceId": None,
    "GootenId": None,
    "SourceId": None,
    "SouceId": None,  # the misspelling of Gooten's older doc and swagger model
    "CreatedAt": None,
    "Items": {
        "Sku": None,
        "ProductId": None,
        "Product": None,
        "Quantity": None,
        "Status": None,
        "TrackingNumber": None,
        "TrackingUrl": None,
        "ShipCarrierName": None,
        "Price": _PRICE,
        "DiscountAmount": _PRICE,
        "SourceId": None,
        "Meta": ANY,
        "Shipments": _SHIPMENT,
        "Images": dict.fromkeys(("SourceUrl", "SpaceId", "ThumbnailUrl", "OrderItemId")),
    },
    "Total": _PRICE,
    "ShippingTotal": _PRICE,
    "DiscountAmount": _PRICE,
    "DiscountCode": None,
    "ShippingAddress": _ADDRESS,
    "BillingAddress": _ADDRESS,
    "Meta": ANY,
}

#: The operational fields, exported by default: no personal data.
DEFAULT_FIELDS: tuple[str, ...] = (
    "Id",
    "NiceId",
    "GootenId",
    "SourceId",
    "CreatedAt",
    "Items.Images.OrderItemId",  # the item's id: the only one Gooten's order JSON shows
    "Items.SourceId",
    "Items.Sku",
    "Items.ProductId",
    "Items.Product",
    "Items.Quantity",
    "Items.Status",
    "Items.TrackingNumber",
    "Items.TrackingUrl",
    "Items.ShipCarrierName",
    "Items.Shipments",
    "Items.Price",
    "Items.DiscountAmount",
    "Total",
    "ShippingTotal",
    "DiscountAmount",
)

#: Paths that hold personal data, or may: the addresses (names, street, city, postal code, e-mail, phone),
#: the free-form ``Meta`` objects (partners put customer notes and gift messages there) and the artwork's
#: URLs (customers' uploads, often photos of people).
PERSONAL_DATA_FIELDS: tuple[str, ...] = (
    "ShippingAddress",
    "BillingAddress",
    "Meta",
    "Items.Meta",
    "Items.Images.SourceUrl",
    "Items.Images.ThumbnailUrl",
)

_SEGMENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")

#: A compiled allowlist: each kept key, with the allowlist of its nested keys (``None``: all of it).
FieldTree = dict[str, Any]


def _known_keys(schema: Mapping[str, Any] | None) -> str:
    return ", ".join(schema or ()) or "none (a plain value)"


def _check_path(path: str) -> list[str]:
    """The segments of a field path, checked against :data:`ORDER_SCHEMA`.

    :raises ValueError: not a dotted path of names, or a name Gooten's order JSON does not have there.
    """
    segments = path.split(".")
    if not all(_SEGMENT.match(segment) for segment in segments):
        raise ValueError(
            f"Invalid field {path!r}: use names of Gooten's order JSON joined by dots, such as 'Id' or "
            "'Items.Status'."
        )
    schema: Mapping[str, Any] | None = ORDER_SCHEMA
    for depth, segment in enumerate(segments):
        if schema is ANY:
            break
        if schema is None or segment not in schema:
            where = ".".join(segments[:depth]) or "an order"
            close = [key for key in schema or () if key.casefold() == segment.casefold()]
            hint = f" (did you mean {close[0]!r}? names are case-sensitive)" if close else ""
            raise ValueError(
                f"Unknown field {path!r}: {where} has no {segment!r}{hint}; it has {_known_keys(schema)}."
            )
        schema = schema[segment]
    return segments


def personal_fields_in(paths: Iterable[str]) -> list[str]:
    """The paths that are, contain or lie inside one of :data:`PERSONAL_DATA_FIELDS`."""

    def personal(path: str) -> bool:
        return any(
            path == field or path.startswith(field + ".") or field.startswith(path + ".")
            for field in PERSONAL_DATA_FIELDS
        )

    return [path for path in paths if personal(path)]


def compile_fields(fields: Sequence[str], *, include_personal_data: bool) -> FieldTree:
    """Check an allowlist of field paths and compile it for :func:`project`.

    :raises ValueError: an empty list, a path that is not a field of Gooten's order JSON, or a path with
        personal data without ``include_personal_data``; the message names each one.
    """
    if isinstance(fields, str) or not isinstance(fields, Sequence):
        raise ValueError(
            f"fields must be a list of field paths such as ['Id', 'Items.Status'], got {fields!r}."
        )
    paths = [str(field).strip() for field in fields]
    if not paths:
        raise ValueError("fields is empty: list at least one field path, or leave it unset for the defaults.")
    tree: FieldTree = {}
    for path in paths:
        node = tree
        segments = _check_path(path)
        for segment in segments[:-1]:
            child = node.setdefault(segment, {})
            if child is None:  # a shorter path already keeps all of it
                break
            node = child
        else:
            node[segments[-1]] = None
    personal = personal_fields_in(paths)
    if personal and not include_personal_data:
        raise ValueError(
            f"Personal data in fields: {', '.join(map(repr, personal))} (addresses, e-mail, phone, free-form "
            "Meta, artwork URLs): set include_personal_data=True to export them, knowing that they then land "
            "in the lake, or remove them."
        )
    return tree


def project(value: Any, tree: FieldTree | None) -> Any:
    """Keep only the allowlisted paths of ``value`` (an order, or a part of one); lists are gone into.

    Keys come in the allowlist's order; a key the order lacks is left out (not written as ``null``).
    """
    if tree is None:
        return value
    if isinstance(value, list):
        return [project(element, tree) for element in value]
    if not isinstance(value, dict):
        return value  # a null (or a plain value) where Gooten usually puts an object: kept as it is
    return {key: project(value[key], sub) for key, sub in tree.items() if key in value}
