"""Comparing the status the warehouse intends for each order with the one Gooten shows.

Used by ``gooten_reconcile_order_statuses``. Each open order gets one verdict:

``in_sync``
    Every item already shows the intended status: nothing to do.
``to_change``
    Gooten still allows the change: it goes to ``GootenOrderStatusOperator``.
``cannot_change``
    Gooten no longer allows a change (in production, shipped, on ``Hold``...): reported, not failed.
``invalid_intent``
    The warehouse asks for a status Gooten cannot set (only Cancelled, New, Test, Hold): reported.
``lookup_failed``
    Gooten could not be read for the order (unknown id, API down): reported, and the run fails.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from gooten_provider.statuses import CHANGEABLE_FROM_STATUSES, TARGET_STATUSES, can_change_from

IN_SYNC = "in_sync"
TO_CHANGE = "to_change"
CANNOT_CHANGE = "cannot_change"
INVALID_INTENT = "invalid_intent"
LOOKUP_FAILED = "lookup_failed"

#: The ``rules`` value of the audit rows this DAG writes.
AUDIT_RULE = "intended_gooten_status"

#: SQL of the open orders: those the warehouse wants in a given Gooten status.
OPEN_ORDERS_SQL = """
SELECT order_id, intended_gooten_status
FROM orders
WHERE intended_gooten_status IS NOT NULL AND TRIM(intended_gooten_status) <> ''
ORDER BY order_id
"""


def _target(intended: str) -> str | None:
    folded = {status.casefold(): status for status in TARGET_STATUSES}
    return folded.get(intended.strip().casefold())


def classify(intended: str, statuses: Sequence[str]) -> tuple[str, str | None]:
    """Return ``(verdict, detail)`` for one order: intended status vs Gooten's item statuses."""
    target = _target(intended)
    if target is None:
        return INVALID_INTENT, (
            f"the warehouse intends {intended!r}, which Gooten cannot set (only {', '.join(TARGET_STATUSES)})"
        )
    if statuses and all(status == target for status in statuses):
        return IN_SYNC, None
    if can_change_from(statuses):
        return TO_CHANGE, None
    blocking = sorted({s for s in statuses if s not in CHANGEABLE_FROM_STATUSES})
    detail = f"Gooten shows {', '.join(blocking)}; a change to {target} is no longer allowed"
    if "Hold" in blocking:
        detail += " (a held order can only be released by Gooten support or in the Gooten Admin)"
    return CANNOT_CHANGE, detail


def compare_orders(
    open_orders: Iterable[Sequence[Any]],
    read_statuses: Callable[[str], list[str]],
    max_workers: int = 4,
) -> list[dict[str, Any]]:
    """Read each open order's Gooten status and classify it; one dict per order, in input order.

    :param open_orders: ``(order_id, intended_status)`` rows.
    :param read_statuses: e.g. ``GootenHook().get_order_status``; an exception means ``lookup_failed``.
    """
    rows = [(str(row[0]).strip(), str(row[1]).strip()) for row in open_orders]

    def one(row: tuple[str, str]) -> dict[str, Any]:
        order_id, intended = row
        try:
            statuses = list(read_statuses(order_id))
        except Exception as error:
            return {
                "order_id": order_id,
                "intended": intended,
                "gooten_statuses": [],
                "verdict": LOOKUP_FAILED,
                "detail": f"could not read the order from Gooten: {error}",
            }
        verdict, detail = classify(intended, statuses)
        return {
            "order_id": order_id,
            "intended": _target(intended) or intended,
            "gooten_statuses": statuses,
            "verdict": verdict,
            "detail": detail,
        }

    with ThreadPoolExecutor(max_workers=max(1, max_workers)) as pool:
        return list(pool.map(one, rows))


def change_batches(comparisons: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Group the ``to_change`` orders by target status: ``[{"order_ids": [...], "status": "Hold"}, ...]``.

    One dict per status, ready for ``GootenOrderStatusOperator.partial(...).expand_kwargs(...)``.
    """
    batches: dict[str, list[str]] = {}
    for row in comparisons:
        if row["verdict"] == TO_CHANGE:
            batches.setdefault(row["intended"], []).append(row["order_id"])
    return [{"order_ids": ids, "status": status} for status, ids in sorted(batches.items())]


def reported_results(comparisons: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Operator-shaped records for the orders not sent to the operator but worth auditing.

    ``cannot_change`` and ``invalid_intent`` become ``ineligible``; ``lookup_failed`` becomes ``failed``.
    """
    outcomes = {CANNOT_CHANGE: "ineligible", INVALID_INTENT: "ineligible", LOOKUP_FAILED: "failed"}
    return [
        {
            "order_id": row["order_id"],
            "outcome": outcomes[row["verdict"]],
            "previous_statuses": row["gooten_statuses"],
            "status": row["intended"],
            "error": row["detail"],
            "reason": None,
        }
        for row in comparisons
        if row["verdict"] in outcomes
    ]
