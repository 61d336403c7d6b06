"""Gooten order status names, and which changes ``POST /api/orderstatus`` and ``orderCancel`` allow.

Gooten keeps status on each order item (``Items[].Status``); an order has no status of its own.
"""

from __future__ import annotations

import difflib
from collections.abc import Collection, Iterable

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

#: The item statuses Gooten allows ``PUT /api/orderCancel`` (item cancellation) from, as its page lists
#: them. ``Hold`` is one of them: item cancellation is the API's one way to cancel a held order.
ITEM_CANCELLABLE_FROM_STATUSES: frozenset[str] = frozenset(
    {
        "New",
        "Hold",
        "Pending",
        "ReadyForAccounting",
        "ReadyForImageDl",
        "NeedsManualApproval",
        "NeedsPersonalization",
        "AccountingIssue",
        "AddressIssue",
        "ImageIssue",
        "HoldByCIImageIssue",
    }
)

#: The item statuses of a cancelled item (refunded or not): an item in one of them is not sent to
#: ``orderCancel`` again (Gooten would refuse it: neither is a status cancellation is allowed from).
CANCELLED_ITEM_STATUSES: frozenset[str] = frozenset({"Cancelled", "CancelledRefunded"})

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

_ALIASES_BY_FOLDED_NAME = {alias.casefold(): name for alias, name in STATUS_ALIASES.items()}
# ReadyForImageDI and ReadyForImageDl fold apart (I vs l): aliases are listed on their own.
_KNOWN_BY_FOLDED_NAME = {**_ALIASES_BY_FOLDED_NAME, **{name.casefold(): name for name in KNOWN_STATUSES}}
# How alike a name must be to one allowed to be suggested (difflib's ratio): "Shiped" is, "Paused" is not.
_SUGGESTION_CUTOFF = 0.8


def match_status(name: str, allowed: Collection[str]) -> str | None:
    """Gooten's spelling of a status name given by a user, if ``allowed`` has it; matched case-insensitively.

    The one rule for names a user gives (the operator's ``status``, the sensor's statuses): Gooten's
    spelling in any letter case. Another spelling, even one from Gooten's own documents (``Canceled``), is
    not read as Gooten's: :func:`did_you_mean` names the status it stands for, so the user writes it.
    """
    return {known.casefold(): known for known in allowed}.get(name.strip().casefold())


def did_you_mean(name: str, allowed: Collection[str]) -> str:
    """`` Did you mean 'X'?`` for a name not allowed: another spelling of X, or close to X; else ``""``."""
    folded = name.strip().casefold()
    meant = _ALIASES_BY_FOLDED_NAME.get(folded)
    if meant not in allowed:
        by_folded = {known.casefold(): known for known in allowed}
        close = difflib.get_close_matches(folded, by_folded, n=1, cutoff=_SUGGESTION_CUTOFF)
        meant = by_folded[close[0]] if close else None
    return f" Did you mean {meant!r}?" if meant else ""


def is_other_spelling(name: str) -> bool:
    """Whether ``name`` is another spelling of a status (``Canceled``), found in Gooten's documents only."""
    return name.strip().casefold() in _ALIASES_BY_FOLDED_NAME


def normalize_target_status(status: object) -> str:
    """Return Gooten's spelling of a target status, matched case-insensitively (``"hold"`` -> ``Hold``).

    :raises ValueError: the value is not one of :data:`TARGET_STATUSES`; the message lists them, and
        suggests the one meant (``"Canceled"``: ``Cancelled``).
    """
    name = match_status(status, TARGET_STATUSES) if isinstance(status, str) else None
    if name is None:
        suggestion = did_you_mean(status, TARGET_STATUSES) if isinstance(status, str) else ""
        raise ValueError(
            f"Invalid Gooten target status {status!r}: a status can only be changed to one of "
            f"{', '.join(TARGET_STATUSES)} (matched case-insensitively).{suggestion}"
        )
    return name


def normalize_known_status(status: str) -> str | None:
    """Return Gooten's spelling of a known item status as Gooten wrote it (aliases read), else ``None``.

    For statuses Gooten sends (a webhook's); names a user gives go through :func:`match_status`.
    """
    return _KNOWN_BY_FOLDED_NAME.get(status.strip().casefold())


def canonical_status(status: str) -> str:
    """Gooten's API spelling of an item status as read from an order (known aliases resolved)."""
    return STATUS_ALIASES.get(status, status)


def can_change_from(item_statuses: Iterable[str]) -> bool:
    """Tell whether Gooten allows a status change for an order whose items have these statuses."""
    statuses = list(item_statuses)
    return bool(statuses) and all(status in CHANGEABLE_FROM_STATUSES for status in statuses)
