"""Export the day's Gooten orders to object storage, load them into the warehouse, catch missed webhooks.

Shows: ``GootenOrdersToObjectStorageOperator`` on a daily data interval (a custom window from the trigger
form for backfills), loading its export into a warehouse table with a common-sql hook, and a reconciliation
sweep: Gooten's webhooks carry no id and no delivery promise, so every day the orders' statuses are compared
with what the webhooks told ``gooten_order_status_history``, and each order that moved without a webhook
is recorded.

Connections:
    ``gooten_default``: the Gooten API (orders are only read).
    ``gooten_warehouse``: where ``gooten_orders`` and ``gooten_missed_webhooks`` are written, and
    ``gooten_order_status_history`` is read.
Variable:
    ``gooten_results_root``: the root URI of the exports (``file:///tmp/gooten-results`` when unset).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import pendulum
from airflow.providers.common.compat.sdk import dag, get_current_context, task
from airflow.providers.common.sql.operators.sql import SQLExecuteQueryOperator
from airflow.sdk import Param
from gooten_examples.audit import format_table
from gooten_examples.orders_export import (
    EXPORT_SCHEMA,
    find_missed,
    order_row,
    record_missed,
    replace_window,
    window_orders,
)
from gooten_examples.results import DEFAULT_RESULTS_ROOT
from gooten_examples.status_history import ensure_history_table
from gooten_examples.warehouse import WAREHOUSE_CONN_ID, sql_timestamp, warehouse_hook

from gooten_provider.transfers.orders_to_object_storage import GootenOrdersToObjectStorageOperator

try:  # Airflow 3.2+
    from airflow.sdk import CronDataIntervalTimetable
except ImportError:  # Airflow 3.0 and 3.1
    from airflow.timetables.interval import CronDataIntervalTimetable

#: The window's first and last creation dates: the trigger form's, else the run's data interval (its end
#: excluded), as the operator would take them; rendered once here so the output path names the window.
CREATED_FROM = "{{ params.created_from or data_interval_start | ds }}"
CREATED_TO = "{{ params.created_to or macros.ds_add(data_interval_end | ds, -1) }}"
OUTPUT_PATH = (
    "{{ var.value.get('gooten_results_root', '" + DEFAULT_RESULTS_ROOT + "') }}"
    "/gooten_orders_export/created-" + CREATED_FROM + "-to-" + CREATED_TO + "/"
)
#: Orders listed one per line in the sweep's log; past this many they are counted (all are in the table).
LOGGED_MISSED = 100

DOC_MD = """
### Gooten orders to the lake and the warehouse, and a sweep for missed webhooks

Runs **daily** on the previous day's orders (its data interval); trigger it with **Created from** and
**Created to** to export another window (a backfill; both dates included, at most 92 days).

1. `create_tables`: `gooten_orders` and `gooten_missed_webhooks`, if missing (common-sql).
2. `export_orders`: `GootenOrdersToObjectStorageOperator` writes the window's orders as JSON Lines parts
   and a manifest under `<gooten_results_root>/gooten_orders_export/created-<from>-to-<to>/`: operational
   fields only, **no personal data**. A rerun replaces the export; a retry resumes it.
3. `load_orders`: replaces the window's rows of `gooten_orders` with the export, in one transaction.
4. `find_missed_webhooks`: compares each order's item statuses with the last ones
   `gooten_order_status_history` recorded from webhooks, and records every order that **moved without a
   webhook** in `gooten_missed_webhooks` (replacing this run's rows: a retry is safe).

**Connections**: `gooten_default`, `gooten_warehouse`. **Variable**: `gooten_results_root`.
"""


@dag(
    dag_id="gooten_orders_export",
    schedule=CronDataIntervalTimetable("0 2 * * *", timezone="UTC"),
    start_date=pendulum.datetime(2025, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,
    doc_md=DOC_MD,
    tags=["gooten", "example", "export", "webhooks"],
    default_args={"retries": 2, "retry_delay": dt.timedelta(minutes=1)},
    params={
        "created_from": Param(
            "",
            type="string",
            pattern=r"^(\d{4}-\d{2}-\d{2})?$",
            title="Created from",
            description="For a backfill: the first creation date (yyyy-mm-dd). Empty: the run's interval.",
        ),
        "created_to": Param(
            "",
            type="string",
            pattern=r"^(\d{4}-\d{2}-\d{2})?$",
            title="Created to",
            description="For a backfill: the last creation date, included (yyyy-mm-dd).",
        ),
    },
)
def gooten_orders_export() -> None:
    """Export the window's orders, load them, and record the orders that moved without a webhook."""
    create_tables = SQLExecuteQueryOperator(
        task_id="create_tables", conn_id=WAREHOUSE_CONN_ID, sql=list(EXPORT_SCHEMA)
    )
    export_orders = GootenOrdersToObjectStorageOperator(
        task_id="export_orders",
        output_path=OUTPUT_PATH,
        created_from=CREATED_FROM,
        created_to=CREATED_TO,
        # a daily window rarely nears this; 50,000 orders per part keeps parts a few MB gzipped
        orders_per_part=50_000,
    )

    @task
    def load_orders(export: dict[str, Any]) -> dict[str, Any]:
        """Replace the window's rows of ``gooten_orders`` with the exported orders (one transaction)."""
        from gooten_provider.transfers.export_reader import read_exported_orders

        run_id = get_current_context()["run_id"]
        loaded_at = sql_timestamp(dt.datetime.now(dt.UTC))
        rows = (
            order_row(order, export_id=export["export_id"], run_id=run_id, loaded_at=loaded_at)
            for order in read_exported_orders(export["output_path"])
        )
        loaded = replace_window(warehouse_hook(), export["created_from"], export["created_to"], rows)
        print(f"Loaded {loaded} order(s) created {export['created_from']} to {export['created_to']}.")
        return {"created_from": export["created_from"], "created_to": export["created_to"], "loaded": loaded}

    @task
    def find_missed_webhooks(load: dict[str, Any]) -> dict[str, Any]:
        """Record every order of the window that moved without a webhook; log a summary."""
        run_id = get_current_context()["run_id"]
        hook = warehouse_hook()
        ensure_history_table(hook)
        orders = window_orders(hook, load["created_from"], load["created_to"])
        missed = find_missed(hook, orders)
        record_missed(
            hook, missed, window_from=load["created_from"], window_to=load["created_to"], run_id=run_id
        )
        print(
            f"{len(orders)} order(s) created {load['created_from']} to {load['created_to']}: "
            f"{len(missed)} moved without a webhook (recorded in gooten_missed_webhooks)."
        )
        if missed:
            columns = ["order_id", "recorded_statuses", "current_statuses"]
            print(format_table(missed[:LOGGED_MISSED], columns))
            if len(missed) > LOGGED_MISSED:
                print(f"... and {len(missed) - LOGGED_MISSED} more (see gooten_missed_webhooks).")
        return {
            "orders": len(orders),
            "missed": len(missed),
            "missed_order_ids": [row["order_id"] for row in missed[:LOGGED_MISSED]],
        }

    create_tables >> export_orders
    find_missed_webhooks(load_orders(export_orders.output))


export_dag = gooten_orders_export()

if __name__ == "__main__":
    export_dag.test()
