"""Keep a history of Gooten order statuses, and flag orders that run into an issue, as Gooten reports changes.

Shows: a DAG scheduled on the provider's asset ``gooten_orders_asset`` (``gooten://orders``), whose events
the webhook relay (``python -m gooten_provider.webhooks``, ``docs/webhooks.md``) creates from Gooten's
webhooks; reading every triggering event (one run may consume many); re-reading each order from Gooten
with ``GootenHook().get_conn().get_order`` instead of trusting the webhook; appending to a warehouse table.

Connections:
    ``gooten_default``: the Gooten API (orders are only read).
    ``gooten_warehouse``: where the ``gooten_order_status_history`` table is written.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import pendulum
from airflow.providers.common.compat.sdk import AirflowFailException
from airflow.sdk import dag, get_current_context, task
from gooten_examples.audit import format_table
from gooten_examples.params import order_ids_param
from gooten_examples.status_history import (
    append_history,
    changes_from_events,
    changes_from_order_ids,
    ensure_history_table,
    events_on_asset,
    history_row,
    last_recorded_statuses,
)
from gooten_examples.warehouse import warehouse_hook

from gooten_provider.assets import gooten_orders_asset
from gooten_provider.exceptions import GootenApiError
from gooten_provider.hooks.gooten import GootenHook

DOC_MD = """
### Order status history, driven by Gooten's webhooks

Runs **whenever Gooten reports an order change**: the webhook relay turns each of Gooten's webhooks into an
event on the asset `gooten_orders` (`gooten://orders`). Several events may be consumed by one run.

1. `changed_orders`: one entry per order from the triggering events (a change delivered twice counts
   once). Triggered by hand, it takes the **Order ids** of the form instead.
2. `read_from_gooten`: re-reads each order from Gooten: the webhook only says *that* it changed; the
   order's state is Gooten's.
3. `record_history`: appends a row per order to `gooten_order_status_history` in the warehouse and flags
   the orders that **moved into an issue status** (`AddressIssue`, `ImageIssue`, `PaymentIssue`, ...).
   It fails the run, after writing the other rows, if an order could not be read.

**Connections**: `gooten_default`, `gooten_warehouse`. See `docs/webhooks.md` to run the relay.
"""


@dag(
    dag_id="gooten_order_status_history",
    schedule=[gooten_orders_asset],
    start_date=pendulum.datetime(2025, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,
    doc_md=DOC_MD,
    tags=["gooten", "example", "webhooks"],
    default_args={"retries": 1, "retry_delay": dt.timedelta(seconds=30)},
    params={
        "order_ids": order_ids_param(
            "For a run by hand: Gooten order ids to record now (runs on events ignore this).", required=False
        ),
    },
)
def gooten_order_status_history() -> None:
    """Collect the changed orders, read each from Gooten, append the history and flag issues."""

    @task
    def changed_orders() -> list[dict[str, Any]]:
        """One entry per order from the triggering events, or from the form's order ids."""
        context = get_current_context()
        events = events_on_asset(context["triggering_asset_events"], gooten_orders_asset.uri)
        if events:
            changes = changes_from_events(event.extra or {} for event in events)
        else:
            changes = changes_from_order_ids(context["params"]["order_ids"])
        print(f"{len(events)} event(s) -> {len(changes)} order(s) changed")
        return changes

    @task
    def read_from_gooten(changes: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Read each order from Gooten (its statuses now); a failed read is kept with its error."""
        client = GootenHook().get_conn()
        readings = []
        for change in changes:
            reading = dict(change, nice_id=None, item_statuses=[], error=None)
            try:
                order = client.get_order(change["order_id"])
            except (GootenApiError, ValueError) as error:  # kept per order; record_history fails the run
                reading["error"] = str(error)
            else:
                reading["nice_id"] = order.get("NiceId")
                reading["item_statuses"] = [str(item.get("Status")) for item in order.get("Items") or []]
            readings.append(reading)
        return readings

    @task
    def record_history(readings: list[dict[str, Any]]) -> dict[str, Any]:
        """Append one row per order read, flag those that moved into an issue status, fail on failed reads."""
        run_id = get_current_context()["run_id"]
        hook = warehouse_hook()
        ensure_history_table(hook)
        read = [reading for reading in readings if not reading["error"]]
        previous = last_recorded_statuses(hook, [reading["order_id"] for reading in read])
        now = dt.datetime.now(dt.UTC)
        rows = [history_row(r, previous.get(r["order_id"]), run_id=run_id, recorded_at=now) for r in read]
        append_history(hook, rows)
        if rows:
            print(format_table(rows, ["order_id", "previous_statuses", "item_statuses", "moved_into_issue"]))
        flagged = [row["order_id"] for row in rows if row["moved_into_issue"]]
        for row in rows:
            if row["moved_into_issue"]:
                print(
                    f"ISSUE: order {row['order_id']} moved into {row['issue_statuses']}: someone has to act."
                )
        failed = [reading for reading in readings if reading["error"]]
        if failed:
            raise AirflowFailException(
                f"{len(failed)} order(s) could not be read from Gooten (the others are recorded): "
                + "; ".join(f"{r['order_id']}: {r['error']}" for r in failed)
            )
        return {"recorded": len(rows), "moved_into_issue": flagged}

    record_history(read_from_gooten(changed_orders()))


history_dag = gooten_order_status_history()

if __name__ == "__main__":
    history_dag.test()
