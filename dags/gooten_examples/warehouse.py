"""The example warehouse: its tables, the connection the DAGs read it through, and timestamp helpers.

The DDL is portable: the same statements run on SQLite (the default, ``make demo``) and PostgreSQL.
Order ids are not declared ``PRIMARY KEY`` on purpose: most warehouses do not enforce keys, which is why
``gooten_dq_hold_cancel`` checks uniqueness with ``SQLColumnCheckOperator`` before acting on anything.

Timestamps are UTC. SQLite stores them as ``YYYY-MM-DD HH:MM:SS`` text (which sorts like time);
PostgreSQL as ``TIMESTAMP`` (which accepts that text). Flags are ``BOOLEAN`` (``0``/``1`` in SQLite).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from airflow.providers.common.sql.hooks.sql import DbApiHook

#: The Airflow connection of the warehouse: ``sqlite`` by default, any common-sql database works.
WAREHOUSE_CONN_ID = "gooten_warehouse"

#: Format of every timestamp the examples write or compare (UTC, no zone suffix).
TIMESTAMP_FORMAT = "%Y-%m-%d %H:%M:%S"

ORDERS_DDL = """
CREATE TABLE IF NOT EXISTS orders (
    order_id VARCHAR(64) NOT NULL,
    customer_id VARCHAR(64) NOT NULL,
    source_id VARCHAR(64),
    total NUMERIC(12, 2) NOT NULL,
    currency CHAR(3) NOT NULL,
    flagged_test BOOLEAN NOT NULL,
    flagged_fraud BOOLEAN NOT NULL,
    created_at TIMESTAMP NOT NULL,
    loaded_at TIMESTAMP NOT NULL,
    intended_gooten_status VARCHAR(32)
)
"""

ORDER_ITEMS_DDL = """
CREATE TABLE IF NOT EXISTS order_items (
    order_id VARCHAR(64) NOT NULL,
    line_number INTEGER NOT NULL,
    sku VARCHAR(64) NOT NULL,
    quantity INTEGER NOT NULL,
    unit_price NUMERIC(12, 2) NOT NULL,
    image_url VARCHAR(2048)
)
"""

SHIPPING_ADDRESSES_DDL = """
CREATE TABLE IF NOT EXISTS shipping_addresses (
    order_id VARCHAR(64) NOT NULL,
    recipient_name VARCHAR(200),
    line1 VARCHAR(200),
    line2 VARCHAR(200),
    city VARCHAR(100),
    region VARCHAR(100),
    postal_code VARCHAR(20),
    country_code VARCHAR(8)
)
"""

#: Every ``CREATE TABLE`` of the warehouse, one statement each, in creation order.
SCHEMA_STATEMENTS: tuple[str, ...] = (ORDERS_DDL, ORDER_ITEMS_DDL, SHIPPING_ADDRESSES_DDL)


def sql_timestamp(moment: dt.datetime) -> str:
    """Return ``moment`` in UTC as ``YYYY-MM-DD HH:MM:SS``, the form the warehouse stores and compares.

    A naive datetime is taken to be UTC already.
    """
    if moment.tzinfo is not None:
        moment = moment.astimezone(dt.UTC)
    return moment.strftime(TIMESTAMP_FORMAT)


def batch_start(run_after: dt.datetime, hours: int | str) -> str:
    """Return the start of the batch a run looks at: ``hours`` before the run, as a SQL timestamp literal.

    Used in templates as ``{{ batch_start(dag_run.run_after, params.batch_hours) }}``.

    :raises ValueError: ``hours`` is not a positive whole number (it is pasted into SQL, so it is checked).
    """
    count = int(hours)
    if count < 1:
        raise ValueError(f"batch_hours must be at least 1, got {hours!r}.")
    return sql_timestamp(run_after - dt.timedelta(hours=count))


def warehouse_hook(conn_id: str = WAREHOUSE_CONN_ID) -> DbApiHook:
    """Return the common-sql hook of the warehouse connection (``SqliteHook``, ``PostgresHook``, ...).

    :raises TypeError: the connection's type has no common-sql hook (e.g. an HTTP connection).
    """
    from airflow.providers.common.compat.sdk import BaseHook
    from airflow.providers.common.sql.hooks.sql import DbApiHook

    hook = BaseHook.get_connection(conn_id).get_hook()
    if not isinstance(hook, DbApiHook):
        raise TypeError(
            f"Connection {conn_id!r} gives a {type(hook).__name__}, not a SQL database hook: point it at "
            "SQLite, PostgreSQL or another database with a common-sql provider."
        )
    return hook


def insert_records(
    hook: DbApiHook, table: str, columns: Sequence[str], records: Sequence[Mapping[str, Any]]
) -> int:
    """Insert one row per record into ``table`` (the record's ``columns``, in order); return how many.

    The examples' tables of their own (the audit, the status history) are written this way, in commits of
    1,000 rows; no statement is run for no records.
    """
    if not records:
        return 0
    rows = [tuple(record[column] for column in columns) for record in records]
    hook.insert_rows(table, rows, target_fields=list(columns), commit_every=1000)
    return len(rows)
