"""Hold or cancel Gooten orders that fail data-quality checks in the warehouse.

Shows: common-sql table checks (``SQLTableCheckOperator``, ``SQLColumnCheckOperator``) guarding a batch,
row-level rules as SQL queries (one task each), ``GootenOrderStatusOperator`` holding and
``GootenCancelOrderItemsOperator`` cancelling in bulk (held orders included) with a ``dry_run`` param, and an
audit task that records every outcome, even when a change failed.

Connections:
    ``gooten_warehouse``: the warehouse (SQLite by default; any common-sql database, e.g. PostgreSQL).
    ``gooten_default``: the Gooten API (Recipe ID and Partner Billing Key).
"""

from __future__ import annotations

from typing import Any

import pendulum
from airflow.providers.common.compat.sdk import (  # the same names on every Airflow 3 line
    AirflowFailException,
    Param,
    TaskGroup,
    TriggerRule,
    dag,
    get_current_context,
    task,
)
from airflow.providers.common.sql.operators.sql import (
    SQLColumnCheckOperator,
    SQLExecuteQueryOperator,
    SQLTableCheckOperator,
)
from gooten_examples.assets import WAREHOUSE_ORDERS
from gooten_examples.audit import (
    FAILING_OUTCOMES,
    audit_record,
    count_outcomes,
    format_table,
    missing_results,
    write_audit,
)
from gooten_examples.results import RESULTS_PATH
from gooten_examples.rules import CANCEL, HOLD, RULES, decide_actions, seconds_between
from gooten_examples.warehouse import WAREHOUSE_CONN_ID, batch_start, warehouse_hook

from gooten_provider.operators.gooten import GootenCancelOrderItemsOperator, GootenOrderStatusOperator

#: The batch a run looks at: orders loaded in the ``batch_hours`` before the run (a SQL literal).
BATCH_START = "{{ batch_start(dag_run.run_after, params.batch_hours) }}"
BATCH = f"loaded_at >= '{BATCH_START}'"

DOC_MD = """
### Hold or cancel Gooten orders that fail data-quality checks

Runs each time the warehouse's orders are updated (Asset `gooten_warehouse_orders`), or when triggered.

1. **Table checks** (`table_checks`): the batch is fresh and not empty, order ids are present and unique.
   If any fails, the run stops there, loudly: **no order is touched**.
2. **Row rules** (`row_rules`): one SQL query per rule (`dags/gooten_examples/sql/`), each returning the
   failing orders of the batch with a reason.
   * Hold: invalid shipping address, missing or non-https image URL, prices not adding up to the total.
   * Cancel: same customer and items submitted twice within `duplicate_window_minutes` (the later one),
     orders flagged as test or fraud.
   * **Cancel wins over Hold** for the same order.
3. `hold_orders`: `GootenOrderStatusOperator` sets `Hold`. `cancel_orders`:
   `GootenCancelOrderItemsOperator` cancels every item of the orders to cancel (Gooten's `orderCancel`),
   which also cancels an order Gooten **holds already** (held by an earlier run, when a later rule marks it
   as fraud or a duplicate): a held order can no longer be changed by a status change. Orders Gooten cannot
   change or cancel any more (already in production) are reported as `ineligible`, not failed. Every order's
   record goes to a results file under the Variable `gooten_results_root` (a retry resumes from it).
4. `audit_outcomes` writes one row per order to `gooten_status_audit` in the warehouse (rules, action,
   status before and after, outcome) and logs a summary. It runs whatever happened before it (trigger
   rule `all_done`), and fails the run when a change failed or when nothing could be decided.

**Params**: `dry_run` (read Gooten only, change nothing), `batch_hours`, `duplicate_window_minutes`.

**Connections**: `gooten_warehouse` (SQLite, PostgreSQL, ...), `gooten_default` (Gooten API).
"""


@dag(
    dag_id="gooten_dq_hold_cancel",
    schedule=WAREHOUSE_ORDERS,
    start_date=pendulum.datetime(2025, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,
    doc_md=DOC_MD,
    tags=["gooten", "example", "data-quality"],
    default_args={"retries": 0},
    user_defined_macros={"batch_start": batch_start, "seconds_between": seconds_between},
    params={
        "dry_run": Param(
            False,
            type="boolean",
            title="Dry run",
            description="Read every order from Gooten and report what would happen, without changing any.",
        ),
        "batch_hours": Param(
            24,
            type="integer",
            minimum=1,
            maximum=24 * 31,
            title="Batch window (hours)",
            description="The batch: the orders loaded into the warehouse in the N hours before the run.",
        ),
        "duplicate_window_minutes": Param(
            30,
            type="integer",
            minimum=1,
            maximum=24 * 60,
            title="Duplicate window (minutes)",
            description="Same customer and items submitted again within this many minutes: a duplicate.",
        ),
    },
)
def gooten_dq_hold_cancel() -> None:
    """Check the batch, decide holds and cancels, apply them in Gooten, audit every outcome."""
    with TaskGroup("table_checks", tooltip="Batch-level checks: nothing is touched if one fails") as checks:
        batch_check = SQLTableCheckOperator(
            task_id="orders_batch",
            conn_id=WAREHOUSE_CONN_ID,
            table="orders",
            checks={
                "batch_is_fresh": {"check_statement": f"MAX(loaded_at) >= '{BATCH_START}'"},
                "batch_not_empty": {"check_statement": "COUNT(*) > 0", "partition_clause": BATCH},
            },
            retry_on_failure=False,
        )
        column_check = SQLColumnCheckOperator(
            task_id="order_columns",
            conn_id=WAREHOUSE_CONN_ID,
            table="orders",
            partition_clause=BATCH,
            column_mapping={
                "order_id": {"null_check": {"equal_to": 0}, "unique_check": {"equal_to": 0}},
                "customer_id": {"null_check": {"equal_to": 0}},
                "total": {"min": {"geq_to": 0}},
            },
            accept_none=False,
            retry_on_failure=False,
        )
        batch_check >> column_check  # column checks on an empty batch would only fail confusingly

    with TaskGroup("row_rules", tooltip="One SQL query per rule: (order_id, reason) rows") as row_rules:
        rule_rows = {
            rule.name: SQLExecuteQueryOperator(
                task_id=rule.name,
                conn_id=WAREHOUSE_CONN_ID,
                sql=rule.sql_path,
                doc_md=f"**{rule.action}** when {rule.description}.",
            ).output
            for rule in RULES
        }

    checks >> row_rules

    @task(multiple_outputs=True)
    def decide(rows_by_rule: dict[str, Any]) -> dict[str, Any]:
        """Merge the rules' findings: one action per order, Cancel winning over Hold."""
        actions = decide_actions(rows_by_rule)
        print(f"{len(actions['hold'])} order(s) to hold, {len(actions['cancel'])} to cancel.")
        for order_id, hits in actions["findings"].items():
            print(f"  {order_id}: " + "; ".join(f"{h['rule']} ({h['reason']})" for h in hits))
        return actions

    actions = decide(rule_rows)

    reason = "gooten_dq_hold_cancel run {{ run_id }}: failed data-quality rules (see gooten_status_audit)"
    hold = GootenOrderStatusOperator(
        task_id="hold_orders",
        order_ids=actions["hold"],
        status=HOLD,
        dry_run="{{ params.dry_run }}",
        reason=reason,
        results_path=RESULTS_PATH,
    )
    # Item cancellation, not a status change to Cancelled: it also cancels orders Gooten holds already.
    cancel = GootenCancelOrderItemsOperator(
        task_id="cancel_orders",
        order_ids=actions["cancel"],
        dry_run="{{ params.dry_run }}",
        reason=reason,
        results_path=RESULTS_PATH,
    )

    @task(trigger_rule=TriggerRule.ALL_DONE)
    def audit_outcomes() -> dict[str, int]:
        """Write one audit row per order, log a summary; fail the run if anything failed.

        Runs whatever happened upstream (trigger rule ``all_done``): the status tasks push their results
        before failing, and an order a task never reported on is audited as ``not_attempted``. When
        nothing was decided (a table check or a rule failed), nothing was touched: it fails, saying so.
        """
        from gooten_provider.operators.order_results import read_order_results

        context = get_current_context()
        ti, dag_run = context["ti"], context["dag_run"]
        findings: dict[str, list[dict[str, str]]] | None = ti.xcom_pull(task_ids="decide", key="findings")
        if findings is None:
            raise AirflowFailException(
                "Nothing was decided because a table check or a rule failed (see table_checks and "
                "row_rules): no Gooten order was touched and nothing was audited."
            )
        records = []
        for task_id, action, decided in (("hold_orders", HOLD, "hold"), ("cancel_orders", CANCEL, "cancel")):
            planned = ti.xcom_pull(task_ids="decide", key=decided) or []
            # the records, whether the task returned them or a summary of its results files
            results = list(read_order_results(ti.xcom_pull(task_ids=task_id) or []))
            reported = {result["order_id"] for result in results}
            results = [*results, *missing_results(sorted(set(planned) - reported), action, task_id)]
            for result in results:
                hits = findings.get(result["order_id"], [])
                records.append(
                    audit_record(
                        result,
                        dag_id=dag_run.dag_id,
                        run_id=dag_run.run_id,
                        rules=", ".join(hit["rule"] for hit in hits) or None,
                        detail="; ".join(hit["reason"] for hit in hits) or None,
                    )
                )
        written = write_audit(warehouse_hook(), records)
        counts = count_outcomes(records)
        summary = ", ".join(f"{n} {what}" for what, n in counts.items()) or "no order failed a rule"
        print(f"Audit: {written} row(s) written to gooten_status_audit. Summary: {summary}.")
        if records:
            print(format_table(records))
        failed = [r for r in records if r["outcome"] in FAILING_OUTCOMES]
        if failed:
            raise AirflowFailException(
                f"{len(failed)} order(s) could not be changed: "
                + ", ".join(f"{r['order_id']} ({r['action']}: {r['outcome']})" for r in failed)
                + ". Every outcome is in gooten_status_audit; see hold_orders / cancel_orders for errors."
            )
        return counts

    audit = audit_outcomes()
    actions >> audit
    [hold, cancel] >> audit


dq_dag = gooten_dq_hold_cancel()

if __name__ == "__main__":
    dq_dag.test()
