"""The warehouse table ``gooten_order_status_history``, and what ``gooten_order_status_history`` puts in it.

Each run appends one row per order that changed: its item statuses as Gooten shows them when the run
reads the order (never the webhook's word for it), the statuses recorded last time, and whether the order
moved into an issue status (``AddressIssue``, ``ImageIssue``, ...) that it was not in before.

The events come from the webhook relay (``docs/webhooks.md``); their ``extra`` holds ``change_id``,
``order_id``, ``nice_id``, ``item_statuses`` and ``received_at``. One run may consume many events, and
an event may be delivered twice: :func:`changes_from_events` keeps one entry per order.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from gooten_examples.warehouse import insert_records, sql_timestamp

if TYPE_CHECKING:
    from airflow.providers.common.sql.hooks.sql import DbApiHook

HISTORY_TABLE = "gooten_order_status_history"

#: Item statuses that need someone to act (Gooten holds the order until the issue is solved).
ISSUE_STATUSES: frozenset[str] = frozenset(
    {
        "AccountingIssue",
        "AddressIssue",
        "DiscontinuedItem",
        "HoldByCIImageIssue",
        "ImageIssue",
        "OutOfStockItem",
        "PaymentIssue",
        "VendorAPIIssue",
    }
)

HISTORY_DDL = f"""
CREATE TABLE IF NOT EXISTS {HISTORY_TABLE} (
    order_id VARCHAR(64) NOT NULL,
    nice_id VARCHAR(64),
    item_statuses VARCHAR(2000) NOT NULL,
    previous_statuses VARCHAR(2000),
    issue_statuses VARCHAR(500),
    moved_into_issue SMALLINT NOT NULL,
    webhook_statuses VARCHAR(2000),
    webhook_received_at TIMESTAMP,
    events INTEGER NOT NULL,
    run_id VARCHAR(250) NOT NULL,
    recorded_at TIMESTAMP NOT NULL
)
"""

#: The columns, in insert order.
HISTORY_COLUMNS: tuple[str, ...] = (
    "order_id",
    "nice_id",
    "item_statuses",
    "previous_statuses",
    "issue_statuses",
    "moved_into_issue",
    "webhook_statuses",
    "webhook_received_at",
    "events",
    "run_id",
    "recorded_at",
)


def statuses_text(statuses: Sequence[str] | None) -> str | None:
    """Item statuses in item order, comma-separated (``"Shipped,InProduction"``); ``None`` for none."""
    return ",".join(statuses) if statuses else None


def events_on_asset(triggering_asset_events: Mapping[Any, Sequence[Any]], uri: str) -> list[Any]:
    """The run's triggering events on the asset ``uri``.

    Matched by URI rather than looked up by the asset: Airflow 3.0's ``dag.test()`` keys the events by URI
    string (an ``Asset`` is not hashable there), the Task SDK's runner by asset.
    """
    events: list[Any] = []
    for key, key_events in triggering_asset_events.items():
        if getattr(key, "uri", key) == uri:
            events.extend(key_events)
    return events


def changes_from_events(extras: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """One entry per order from the events' ``extra``: the latest webhook's statuses, and how many events.

    Events delivered twice (same ``change_id``) count once; events without an ``order_id`` (created by
    hand in the UI, say) are skipped. Orders come in the order of their first event.
    """
    seen: set[str] = set()
    by_order: dict[str, dict[str, Any]] = {}
    for extra in extras:
        order_id = extra.get("order_id")
        change_id = str(extra.get("change_id") or "")
        if not isinstance(order_id, str) or not order_id or (change_id and change_id in seen):
            continue
        seen.add(change_id)
        entry = by_order.setdefault(
            order_id, {"order_id": order_id, "events": 0, "webhook_statuses": None, "received_at": None}
        )
        entry["events"] += 1
        received = extra.get("received_at")
        if entry["received_at"] is None or (received and str(received) >= entry["received_at"]):
            entry["received_at"] = str(received) if received else None
            entry["webhook_statuses"] = list(extra.get("item_statuses") or [])
    return list(by_order.values())


def changes_from_order_ids(order_ids: Iterable[object]) -> list[dict[str, Any]]:
    """Entries like :func:`changes_from_events` gives, for order ids given by hand (no event, no webhook)."""
    ids = dict.fromkeys(str(order_id).strip() for order_id in order_ids)
    return [
        {"order_id": order_id, "events": 0, "webhook_statuses": None, "received_at": None}
        for order_id in ids
        if order_id
    ]


def ensure_history_table(hook: DbApiHook) -> None:
    """Create the history table if it does not exist yet."""
    hook.run(HISTORY_DDL)


def last_recorded_statuses(hook: DbApiHook, order_ids: Sequence[str]) -> dict[str, str]:
    """The statuses recorded last for each of these orders (orders never recorded are absent)."""
    if not order_ids:
        return {}
    marks = ", ".join([hook.placeholder] * len(order_ids))
    rows = hook.get_records(
        f"SELECT order_id, item_statuses, recorded_at FROM {HISTORY_TABLE} "  # noqa: S608 - placeholders only
        f"WHERE order_id IN ({marks}) ORDER BY recorded_at",
        parameters=list(order_ids),
    )
    return {str(order_id): str(statuses) for order_id, statuses, _ in rows}


def history_row(
    reading: Mapping[str, Any], previous: str | None, *, run_id: str, recorded_at: dt.datetime
) -> dict[str, Any]:
    """One history row (keyed by :data:`HISTORY_COLUMNS`) for an order read from Gooten.

    ``moved_into_issue`` is 1 when the order now has an issue status it did not have when last
    recorded (or has one and was never recorded), else 0.
    """
    statuses: list[str] = list(reading["item_statuses"])
    issues = [status for status in dict.fromkeys(statuses) if status in ISSUE_STATUSES]
    before = set(previous.split(",")) if previous else set()
    received = reading.get("received_at")
    return {
        "order_id": reading["order_id"],
        "nice_id": reading.get("nice_id"),
        "item_statuses": statuses_text(statuses),
        "previous_statuses": previous,
        "issue_statuses": statuses_text(issues),
        "moved_into_issue": int(
            any(issue not in before for issue in issues)
        ),  # 0/1: portable, unlike BOOLEAN
        "webhook_statuses": statuses_text(reading.get("webhook_statuses")),
        "webhook_received_at": sql_timestamp(dt.datetime.fromisoformat(received)) if received else None,
        "events": int(reading.get("events") or 0),
        "run_id": run_id,
        # to the microsecond: two runs within a second must still sort in order
        "recorded_at": recorded_at.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M:%S.%f"),
    }


def append_history(hook: DbApiHook, rows: Sequence[Mapping[str, Any]]) -> int:
    """Create the table if needed and append the rows; return how many were written."""
    ensure_history_table(hook)
    return insert_records(hook, HISTORY_TABLE, HISTORY_COLUMNS, rows)
