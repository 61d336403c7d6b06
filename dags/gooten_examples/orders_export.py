"""The warehouse side of ``gooten_orders_export``: the ``gooten_orders`` table, and the missed-webhook sweep.

``gooten_orders`` holds one row per Gooten order, as the export read it: ids, creation time, each item's
status in item order, tracking numbers, total. A load replaces the rows of its window in one transaction,
so a retry or a backfill of the same window never doubles them.

The sweep compares each order's item statuses with the last ones ``gooten_order_status_history`` recorded
from Gooten's webhooks. An order that moved without the history knowing (its webhook was lost) is recorded
in ``gooten_missed_webhooks``:

* an order with history whose statuses differ from the last recorded ones moved without a webhook;
* an order without history moved without a webhook if an item is past the status an order is created in
  (``New``, or ``Test`` for a test order): creation sends no webhook, every later item update does.

A change younger than the relay and history DAG's delay may be reported too (its webhook is on its way);
the row shows both statuses, and the next day's sweep of the same window clears it. This module needs no
Airflow at import time.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import closing
from typing import TYPE_CHECKING, Any

from gooten_examples.status_history import last_recorded_statuses, statuses_text
from gooten_examples.warehouse import sql_timestamp

if TYPE_CHECKING:
    from airflow.providers.common.sql.hooks.sql import DbApiHook

ORDERS_TABLE = "gooten_orders"
MISSED_TABLE = "gooten_missed_webhooks"

#: The item statuses an order is created in: no webhook is sent for them.
CREATION_STATUSES: frozenset[str] = frozenset({"New", "Test"})

GOOTEN_ORDERS_DDL = f"""
CREATE TABLE IF NOT EXISTS {ORDERS_TABLE} (
    order_id VARCHAR(64) NOT NULL,
    nice_id VARCHAR(64),
    gooten_id BIGINT,
    source_id VARCHAR(128),
    created_at TIMESTAMP NOT NULL,
    item_count INTEGER NOT NULL,
    item_statuses VARCHAR(2000) NOT NULL,
    tracking_numbers VARCHAR(2000),
    total NUMERIC(12, 2),
    currency CHAR(3),
    export_id VARCHAR(32) NOT NULL,
    run_id VARCHAR(250) NOT NULL,
    loaded_at TIMESTAMP NOT NULL
)
"""

MISSED_DDL = f"""
CREATE TABLE IF NOT EXISTS {MISSED_TABLE} (
    order_id VARCHAR(64) NOT NULL,
    nice_id VARCHAR(64),
    created_at TIMESTAMP NOT NULL,
    recorded_statuses VARCHAR(2000),
    current_statuses VARCHAR(2000) NOT NULL,
    window_from DATE NOT NULL,
    window_to DATE NOT NULL,
    run_id VARCHAR(250) NOT NULL,
    detected_at TIMESTAMP NOT NULL
)
"""

#: The ``CREATE TABLE IF NOT EXISTS`` statements of this pipeline, for ``SQLExecuteQueryOperator``.
EXPORT_SCHEMA: tuple[str, ...] = (GOOTEN_ORDERS_DDL, MISSED_DDL)

ORDER_COLUMNS: tuple[str, ...] = (
    "order_id",
    "nice_id",
    "gooten_id",
    "source_id",
    "created_at",
    "item_count",
    "item_statuses",
    "tracking_numbers",
    "total",
    "currency",
    "export_id",
    "run_id",
    "loaded_at",
)
MISSED_COLUMNS: tuple[str, ...] = (
    "order_id",
    "nice_id",
    "created_at",
    "recorded_statuses",
    "current_statuses",
    "window_from",
    "window_to",
    "run_id",
    "detected_at",
)

# Rows sent to the database per executemany, and order ids per history lookup.
_BATCH = 1000


def _created_at(order: Mapping[str, Any]) -> str:
    return sql_timestamp(dt.datetime.fromisoformat(str(order["CreatedAt"])))


def order_row(order: Mapping[str, Any], *, export_id: str, run_id: str, loaded_at: str) -> tuple[Any, ...]:
    """One ``gooten_orders`` row (in :data:`ORDER_COLUMNS` order) from an exported order."""
    items = [item for item in order.get("Items") or [] if isinstance(item, dict)]
    tracking = [str(item["TrackingNumber"]) for item in items if item.get("TrackingNumber")]
    total = order.get("Total") or {}
    return (
        order["Id"],
        order.get("NiceId"),
        order.get("GootenId"),
        order.get("SourceId"),
        _created_at(order),
        len(items),
        statuses_text([str(item.get("Status")) for item in items]) or "",
        ",".join(dict.fromkeys(tracking)) or None,
        total.get("Price"),
        total.get("CurrencyCode"),
        export_id,
        run_id,
        loaded_at,
    )


def _window_bounds(window_from: str, window_to: str) -> tuple[str, str]:
    """``created_at`` from the first day's midnight to the midnight after the last day (excluded)."""
    last = dt.date.fromisoformat(window_to) + dt.timedelta(days=1)
    return f"{window_from} 00:00:00", f"{last.isoformat()} 00:00:00"


def _batches(rows: Iterable[tuple[Any, ...]]) -> Iterator[list[tuple[Any, ...]]]:
    batch: list[tuple[Any, ...]] = []
    for row in rows:
        batch.append(row)
        if len(batch) == _BATCH:
            yield batch
            batch = []
    if batch:
        yield batch


def replace_window(hook: DbApiHook, window_from: str, window_to: str, rows: Iterable[tuple[Any, ...]]) -> int:
    """Replace the window's rows of ``gooten_orders`` with ``rows``, in one transaction; return the count."""
    start, end = _window_bounds(window_from, window_to)
    marks = ", ".join([hook.placeholder] * len(ORDER_COLUMNS))
    insert = f"INSERT INTO {ORDERS_TABLE} ({', '.join(ORDER_COLUMNS)}) VALUES ({marks})"  # noqa: S608
    delete = f"DELETE FROM {ORDERS_TABLE} WHERE created_at >= {hook.placeholder} AND created_at < {hook.placeholder}"  # noqa: S608, E501
    loaded = 0
    with closing(hook.get_conn()) as connection:
        cursor = connection.cursor()
        cursor.execute(delete, (start, end))
        for batch in _batches(rows):
            cursor.executemany(insert, batch)
            loaded += len(batch)
        connection.commit()
    return loaded


def window_orders(
    hook: DbApiHook, window_from: str, window_to: str
) -> list[tuple[str, str | None, str, str]]:
    """``(order_id, nice_id, created_at, item_statuses)`` of the window's orders in ``gooten_orders``."""
    start, end = _window_bounds(window_from, window_to)
    rows = hook.get_records(
        f"SELECT order_id, nice_id, created_at, item_statuses FROM {ORDERS_TABLE} "  # noqa: S608
        f"WHERE created_at >= {hook.placeholder} AND created_at < {hook.placeholder} ORDER BY created_at",
        parameters=(start, end),
    )
    return [(str(r[0]), r[1], str(r[2]), str(r[3])) for r in rows]


def moved_without_webhook(current: str, recorded: str | None) -> bool:
    """Whether an order's item statuses moved since the last ones recorded from webhooks (see the module)."""
    if recorded is not None:
        return current != recorded
    return any(status not in CREATION_STATUSES for status in current.split(","))


def find_missed(hook: DbApiHook, orders: Sequence[tuple[str, str | None, str, str]]) -> list[dict[str, Any]]:
    """The orders that moved without a webhook: ``{"order_id", "nice_id", "created_at", ...statuses}``."""
    missed = []
    for start in range(0, len(orders), _BATCH):
        chunk = orders[start : start + _BATCH]
        recorded = last_recorded_statuses(hook, [order_id for order_id, *_ in chunk])
        for order_id, nice_id, created_at, current in chunk:
            if moved_without_webhook(current, recorded.get(order_id)):
                missed.append(
                    {
                        "order_id": order_id,
                        "nice_id": nice_id,
                        "created_at": created_at,
                        "recorded_statuses": recorded.get(order_id),
                        "current_statuses": current,
                    }
                )
    return missed


def record_missed(
    hook: DbApiHook, missed: Sequence[Mapping[str, Any]], *, window_from: str, window_to: str, run_id: str
) -> None:
    """Replace this run's rows of ``gooten_missed_webhooks`` with ``missed``, in one transaction."""
    detected_at = sql_timestamp(dt.datetime.now(dt.UTC))
    values = [
        (*(row[c] for c in MISSED_COLUMNS[:5]), window_from, window_to, run_id, detected_at) for row in missed
    ]
    marks = ", ".join([hook.placeholder] * len(MISSED_COLUMNS))
    with closing(hook.get_conn()) as connection:
        cursor = connection.cursor()
        cursor.execute(f"DELETE FROM {MISSED_TABLE} WHERE run_id = {hook.placeholder}", (run_id,))  # noqa: S608
        for batch in _batches(values):
            cursor.executemany(
                f"INSERT INTO {MISSED_TABLE} ({', '.join(MISSED_COLUMNS)}) VALUES ({marks})",  # noqa: S608
                batch,
            )
        connection.commit()
