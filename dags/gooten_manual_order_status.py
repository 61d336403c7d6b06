"""Change the status of Gooten orders by hand, from the Airflow UI's trigger form.

Shows: a trigger form built from ``Param`` s (order ids, a target status with clear labels, a reason, a
dry run on by default), a run-time check the form cannot express (a reason is required to cancel), the
orders handed to ``GootenOrderStatusOperator`` (the four statuses) or to ``GootenCancelOrderItemsOperator``
(cancel the items of held orders), the other one skipping with no orders, and the per-order outcomes shown
as a table.

Connections:
    ``gooten_default``: the Gooten API (Recipe ID and Partner Billing Key).
"""

from __future__ import annotations

from typing import Any

import pendulum
from airflow.providers.common.compat.sdk import (  # the same names on every Airflow 3 line
    AirflowFailException,
    Param,
    TriggerRule,
    dag,
    get_current_context,
    task,
)
from gooten_examples.audit import FAILING_OUTCOMES, format_table, status_text
from gooten_examples.params import order_ids_param

from gooten_provider.operators.gooten import GootenCancelOrderItemsOperator, GootenOrderStatusOperator

#: The form's choice that cancels the items of the orders instead of setting a status.
CANCEL_ITEMS = "CancelItems"
#: The choices that cannot be undone, so need a reason.
NEEDS_A_REASON = frozenset({"Cancelled", CANCEL_ITEMS})

DOC_MD = """
### Change Gooten order statuses by hand

Trigger this DAG from the UI (**Trigger** button): the form asks for

* **Order ids**: Gooten Safe IDs such as `115557-b5c97bb2-934d-48aa-9ad2-a565154b5cd4`, one per line.
* **Target status**: Hold, Cancel (cannot be undone), New (resubmit), Test, or **Cancel the items of
  held orders** (Gooten's item cancellation: the only way to cancel an order Gooten holds; also works on
  New, Pending and issue orders; cannot be undone).
* **Reason**: recorded with each change; **required to cancel** (either way).
* **Dry run**: on by default. The orders are read and the log tells what *would* happen; nothing changes.

Each order ends `updated`, `unchanged` (already there), `ineligible` (Gooten no longer allows a change,
e.g. in production or on Hold: a held order can only be released by Gooten support, or its items
cancelled) or `failed`. `check_request` hands the orders to `change_status` for a status, or to
`cancel_items` for the item cancellation (the other gets none and skips); `show_outcomes` logs the
outcomes as a table; the full records are that task's XCom.
The run fails when an order could not be changed.

**Connection**: `gooten_default`.
"""


@dag(
    dag_id="gooten_manual_order_status",
    schedule=None,
    start_date=pendulum.datetime(2025, 1, 1, tz="UTC"),
    catchup=False,
    doc_md=DOC_MD,
    tags=["gooten", "example", "manual"],
    default_args={"retries": 0},
    render_template_as_native_obj=True,
    params={
        "order_ids": order_ids_param(),
        "status": Param(
            "Hold",
            type="string",
            enum=["Hold", "Cancelled", "New", "Test", CANCEL_ITEMS],
            values_display={
                "Hold": "Hold: pause before production (only Gooten support can release it)",
                "Cancelled": "Cancel: cannot be undone",
                "New": "New: resubmit an order that had an issue",
                "Test": "Test: mark as a test order, never produced",
                CANCEL_ITEMS: "Cancel the items of held orders (also New, Pending, issues): cannot be undone",
            },
            title="Target status",
        ),
        "reason": Param(
            None,
            type=["null", "string"],
            maxLength=500,
            title="Reason",
            description="Why (kept in the task log and results). Required to cancel.",
        ),
        "dry_run": Param(
            True,
            type="boolean",
            title="Dry run",
            description="Only read the orders and report what would change; make no change in Gooten.",
        ),
    },
)
def gooten_manual_order_status() -> None:
    """Check the request, change the orders (or pretend to), show each order's outcome."""

    @task(multiple_outputs=True)
    def check_request() -> dict[str, list[str]]:
        """Check what the form cannot: a reason to cancel. Return the order ids, trimmed and de-duplicated.

        ``to_change`` and ``to_cancel`` hand them to the one task that acts on them; the other gets none and
        skips. Data rather than a branch: whatever goes wrong upstream, an order meant for a status change
        can never reach the item cancellation, which cannot be undone.
        """
        params = get_current_context()["params"]
        order_ids = list(dict.fromkeys(str(oid).strip() for oid in params["order_ids"] if str(oid).strip()))
        if not order_ids:
            raise AirflowFailException("No order id given: enter at least one Gooten order id.")
        reason = (params.get("reason") or "").strip()
        if params["status"] in NEEDS_A_REASON and not reason:
            raise AirflowFailException(
                "A reason is required to cancel orders (a cancellation cannot be undone): "
                "trigger again with the Reason field filled in."
            )
        mode = "Dry run: would " if params["dry_run"] else ""
        change = "cancel the items of" if params["status"] == CANCEL_ITEMS else "set"
        target = "" if params["status"] == CANCEL_ITEMS else f" to {params['status']}"
        print(f"{mode}{change} {len(order_ids)} order(s){target}" + (f", reason: {reason}" if reason else ""))
        cancel = params["status"] == CANCEL_ITEMS
        return {
            "order_ids": order_ids,
            "to_change": [] if cancel else order_ids,
            "to_cancel": order_ids if cancel else [],
        }

    request = check_request()
    cancel_items = GootenCancelOrderItemsOperator(
        task_id="cancel_items",
        order_ids=request["to_cancel"],
        dry_run="{{ params.dry_run }}",
        reason="{{ params.reason }}",
        fail_on_ineligible=True,
    )
    change_status = GootenOrderStatusOperator(
        task_id="change_status",
        order_ids=request["to_change"],
        # with CancelItems this task gets no orders and skips, but its status must still render to one
        status="{{ 'Hold' if params.status == '" + CANCEL_ITEMS + "' else params.status }}",
        dry_run="{{ params.dry_run }}",
        reason="{{ params.reason }}",
        fail_on_ineligible=True,
    )

    @task(trigger_rule=TriggerRule.ALL_DONE)
    def show_outcomes() -> dict[str, int]:
        """Log one line per order (status before, outcome, why); fail the run if an order was not changed.

        Runs whatever happened upstream (trigger rule ``all_done``): ``change_status`` and ``cancel_items``
        push their results before failing, so the table shows every order either way (the one not chosen is
        skipped, and has none).
        """
        from gooten_provider.operators.order_results import read_order_results

        ti = get_current_context()["ti"]
        if ti.xcom_pull(task_ids="check_request") is None:
            raise AirflowFailException("The request was rejected (see check_request): no order was touched.")
        returned = ti.xcom_pull(task_ids="change_status") or ti.xcom_pull(task_ids="cancel_items") or []
        results: list[dict[str, Any]] = list(read_order_results(returned))
        table = [
            {
                "order_id": r["order_id"],
                "before": status_text(r["previous_statuses"]),
                "target": r["status"],
                "outcome": r["outcome"] + (f" ({r['dry_run_outcome']})" if r.get("dry_run_outcome") else ""),
                "detail": r["error"],
            }
            for r in results
        ]
        counts: dict[str, int] = {}
        for result in results:
            counts[result["outcome"]] = counts.get(result["outcome"], 0) + 1
        if not results:
            raise AirflowFailException("The change reported no result: see its task's log for the error.")
        print(", ".join(f"{n} {outcome}" for outcome, n in sorted(counts.items())))
        print(format_table(table, ["order_id", "before", "target", "outcome", "detail"]))
        not_done = [r for r in results if r["outcome"] in FAILING_OUTCOMES | {"ineligible"}]
        if not_done:
            raise AirflowFailException(
                f"{len(not_done)} of {len(results)} order(s) were not changed: "
                + ", ".join(f"{r['order_id']} ({r['outcome']})" for r in not_done)
            )
        return dict(sorted(counts.items()))

    [request, change_status, cancel_items] >> show_outcomes()


manual_dag = gooten_manual_order_status()

if __name__ == "__main__":
    manual_dag.test()
