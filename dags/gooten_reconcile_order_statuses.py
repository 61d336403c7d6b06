"""Bring Gooten order statuses in line with what the warehouse intends, hourly and on every load.

Shows: an ``AssetOrTimeSchedule`` (every hour, and whenever the warehouse's orders Asset is updated),
reading Gooten with ``GootenHook.get_order_status``, and ``GootenOrderStatusOperator`` mapped over one
batch per target status with ``fail_on_ineligible=False``: orders Gooten can no longer change (already
in production or shipped, or on Hold) are reported and audited, and do not fail the run.

Connections:
    ``gooten_warehouse``: the warehouse; its ``orders.intended_gooten_status`` column says what each
    open order should be in Gooten (``Cancelled``, ``Hold``, ``New`` or ``Test``; empty for no opinion).
    ``gooten_default``: the Gooten API.
"""

from __future__ import annotations

from typing import Any

import pendulum
from airflow.providers.common.compat.sdk import (  # the same names on every Airflow 3 line
    AirflowFailException,
    TriggerRule,
    dag,
    get_current_context,
    task,
)
from airflow.providers.common.sql.operators.sql import SQLExecuteQueryOperator
from gooten_examples.assets import WAREHOUSE_ORDERS
from gooten_examples.audit import (
    FAILING_OUTCOMES,
    audit_record,
    format_table,
    missing_results,
    status_text,
    write_audit,
)
from gooten_examples.reconcile import (
    AUDIT_RULE,
    IN_SYNC,
    OPEN_ORDERS_SQL,
    TO_CHANGE,
    change_batches,
    compare_orders,
    reported_results,
)
from gooten_examples.warehouse import WAREHOUSE_CONN_ID, warehouse_hook

from gooten_provider.hooks.gooten import GootenHook
from gooten_provider.operators.gooten import GootenOrderStatusOperator

try:  # Airflow 3.2+
    from airflow.sdk import AssetOrTimeSchedule, CronTriggerTimetable
except ImportError:  # Airflow 3.0 and 3.1 (common-compat does not map these two)
    from airflow.timetables.assets import AssetOrTimeSchedule
    from airflow.timetables.trigger import CronTriggerTimetable

DOC_MD = """
### Reconcile Gooten order statuses with the warehouse

Runs **every hour** and **whenever the warehouse's orders are updated** (Asset `gooten_warehouse_orders`).

1. `open_orders`: the orders whose `intended_gooten_status` is set in the warehouse.
2. `compare_with_gooten`: reads each order's item statuses from Gooten and sorts it into
   *in sync*, *to change*, *cannot change* (Gooten no longer allows it: in production, shipped, on Hold),
   *invalid intent* (a status Gooten cannot set) or *lookup failed*.
3. `plan_changes` groups the orders to change by target status, and `apply_changes` runs
   `GootenOrderStatusOperator` once per target status (dynamic task mapping), with `fail_on_ineligible=False`.
4. `report`: logs every open order with its verdict, writes the changes and refusals to
   `gooten_status_audit`, and fails the run only if an order could not be read or a change failed.
   Orders that *cannot change* are reported, never failed on: someone has to decide about them.

**Connections**: `gooten_warehouse`, `gooten_default`.
"""


@dag(
    dag_id="gooten_reconcile_order_statuses",
    schedule=AssetOrTimeSchedule(
        timetable=CronTriggerTimetable("0 * * * *", timezone="UTC"),
        assets=WAREHOUSE_ORDERS,
    ),
    start_date=pendulum.datetime(2025, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,
    doc_md=DOC_MD,
    tags=["gooten", "example", "reconcile"],
    default_args={"retries": 0},
)
def gooten_reconcile_order_statuses() -> None:
    """Read intended statuses, compare with Gooten, change what is still allowed, report the rest."""
    open_orders = SQLExecuteQueryOperator(
        task_id="open_orders",
        conn_id=WAREHOUSE_CONN_ID,
        sql=OPEN_ORDERS_SQL,
        doc_md="Orders the warehouse wants in a given Gooten status: `(order_id, intended_gooten_status)`.",
    )

    @task
    def compare_with_gooten(rows: list[list[str]] | None) -> list[dict[str, Any]]:
        """Read each open order's item statuses from Gooten and give it a verdict."""
        comparisons = compare_orders(rows or [], GootenHook(pool_maxsize=4).get_order_status)
        for row in comparisons:
            gooten = status_text(row["gooten_statuses"]) or "?"
            print(f"{row['order_id']}: wants {row['intended']}, Gooten shows {gooten} -> {row['verdict']}")
        return comparisons

    @task
    def plan_changes(comparisons: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Group the orders to change by target status: one ``apply_changes`` task each."""
        return change_batches(comparisons)

    comparisons = compare_with_gooten(open_orders.output)

    apply_changes = GootenOrderStatusOperator.partial(
        task_id="apply_changes",
        fail_on_ineligible=False,
        reason="gooten_reconcile_order_statuses run {{ run_id }}: the warehouse intends this status",
    ).expand_kwargs(plan_changes(comparisons))

    @task(trigger_rule=TriggerRule.ALL_DONE)
    def report() -> dict[str, int]:
        """Log every open order's verdict and outcome, audit changes and refusals, fail on errors only.

        Runs whatever happened upstream (trigger rule ``all_done``), so a failed change is still audited.
        """
        from gooten_provider.operators.order_results import read_order_results

        context = get_current_context()
        ti, dag_run = context["ti"], context["dag_run"]
        comparisons: list[dict[str, Any]] | None = ti.xcom_pull(task_ids="compare_with_gooten")
        if comparisons is None:
            raise AirflowFailException(
                "The open orders could not be read or compared (see open_orders and compare_with_gooten): "
                "no Gooten order was touched."
            )
        changed = [row for row in comparisons if row["verdict"] == TO_CHANGE]
        # A list of task ids returns one value per mapped task instance (None where nothing was pushed).
        batches = ti.xcom_pull(task_ids=["apply_changes"]) or []
        results = [result for batch in batches for result in read_order_results(batch or [])]
        reported = {result["order_id"] for result in results}
        for row in changed:
            if row["order_id"] not in reported:
                results.extend(missing_results([row["order_id"]], row["intended"], "apply_changes"))
        results.extend(reported_results(comparisons))
        records = [
            audit_record(result, dag_id=dag_run.dag_id, run_id=dag_run.run_id, rules=AUDIT_RULE)
            for result in results
        ]
        write_audit(warehouse_hook(), records)

        outcome_of = {record["order_id"]: record["outcome"] for record in records}
        table = [
            {
                "order_id": row["order_id"],
                "intended": row["intended"],
                "gooten_before": status_text(row["gooten_statuses"]),
                "verdict": row["verdict"],
                "outcome": outcome_of.get(row["order_id"], "-" if row["verdict"] == IN_SYNC else None),
                "detail": row["detail"],
            }
            for row in comparisons
        ]
        counts: dict[str, int] = {}
        for row in table:
            key = row["outcome"] if row["outcome"] not in (None, "-") else row["verdict"]
            counts[key] = counts.get(key, 0) + 1
        print(
            f"{len(comparisons)} open order(s): " + ", ".join(f"{n} {k}" for k, n in sorted(counts.items()))
        )
        if table:
            print(
                format_table(table, ["order_id", "intended", "gooten_before", "verdict", "outcome", "detail"])
            )
        failed = [record for record in records if record["outcome"] in FAILING_OUTCOMES]
        if failed:
            raise AirflowFailException(
                f"{len(failed)} order(s) could not be read or changed: "
                + ", ".join(f"{r['order_id']} ({r['detail']})" for r in failed)
            )
        return dict(sorted(counts.items()))

    [comparisons, apply_changes] >> report()


reconcile_dag = gooten_reconcile_order_statuses()

if __name__ == "__main__":
    reconcile_dag.test()
