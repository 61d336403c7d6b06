"""Gooten order status names, and which changes ``POST /api/orderstatus`` allows.

Gooten keeps status on each order item (``Items[].Status``); an order has no status of its own.
"""

from __future__ import annotations

from collections.abc import Iterable

#: The statuses ``POST /api/orderstatus`` can set (Gooten's ``orderStatusName``).
TARGET_STATUSES: tuple[str, ...] = ("Cancelled", "New", "Test", "Hold")

#: The only statuses Gooten allows a change from. ``Hold`` is not one of them, so a held order
#: cannot be released or cancelled through the API (Gooten support or the Admin must do it).
CHANGEABLE_FROM_STATUSES: frozenset[str] = frozenset(
    {
        "AccountingIssue",
        "AddressIssue",
        "HoldByCIImageIssue",
        "ImageIssue",
        "NeedsManualApproval",
        "New",
        "ReadyForAccounting",
        "ReadyForImageDl",
        "Pending",
    }
)

#: Every item status known from Gooten's documentation. Gooten's list is not fully documented,
#: so an unknown name is a warning where statuses are only read (sensors), never an error.
KNOWN_STATUSES: frozenset[str] = CHANGEABLE_FROM_STATUSES | frozenset(
    {
        "Cancelled",
        "Hold",
        "Test",
        "NeedsCustomization",
        "NeedsPersonalization",
        "PaymentIssue",
        "PaymentProcessing",
        "PrePayment",
        "OutOfStockItem",
        "DiscontinuedItem",
        "VendorAPIIssue",
        "InProduction",
        "ManuallyInProduction",
        "Printing",
        "OutForDelivery",
        "Shipped",
        "Delivered",
        "CancelledRefunded",
        "BilledRefunded",
    }
)

#: Other spellings found in Gooten's own documents, read as the API's.
STATUS_ALIASES: dict[str, str] = {
    "ReadyForImageDI": "ReadyForImageDl",
    "Canceled": "Cancelled",
    "CanceledRefunded": "CancelledRefunded",
}

_TARGETS_BY_FOLDED_NAME = {name.casefold(): name for name in TARGET_STATUSES}
# ReadyForImageDI and ReadyForImageDl fold apart (I vs l): aliases are listed on their own.
_KNOWN_BY_FOLDED_NAME = {
    **{alias.casefold(): name for alias, name in STATUS_ALIASES.items()},
    **{name.casefold(): name for name in KNOWN_STATUSES},
}


def normalize_target_status(status: object) -> str:
    """Return Gooten's spelling of a target status, matched case-insensitively (``"hold"`` -> ``Hold``).

    :raises ValueError: the value is not one of :data:`TARGET_STATUSES`; the message lists them.
    """
    name = _TARGETS_BY_FOLDED_NAME.get(str(status).strip().casefold()) if isinstance(status, str) else None
    if name is None:
        raise ValueError(
            f"Invalid Gooten target status {status!r}: a status can only be changed to one of "
            f"{', '.join(TARGET_STATUSES)} (matched case-insensitively)."
        )
    return name


def normalize_known_status(status: str) -> str | None:
    """Return Gooten's spelling of a known item status, or ``None`` when the name is not known."""
    return _KNOWN_BY_FOLDED_NAME.get(status.strip().casefold())


def canonical_status(status: str) -> str:
    """Gooten's API spelling of an item status as read from an order (known aliases resolved)."""
    return STATUS_ALIASES.get(status, status)


def can_change_from(item_statuses: Iterable[str]) -> bool:
    """Tell whether Gooten allows a status change for an order whose items have these statuses."""
    statuses = list(item_statuses)
    return bool(statuses) and all(status in CHANGEABLE_FROM_STATUSES for status in statuses)
