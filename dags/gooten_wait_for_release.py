"""Wait, in the triggerer, until Gooten support releases held orders; then report each order's statuses.

Shows: ``GootenOrderStatusSensor(deferrable=True)`` over many orders at once (the ids from the trigger
form), waiting days without holding a worker slot or starting a task per poke; a failure status
(cancelled while held) failing the run and naming the order; the statuses handed on through XCom.

A held order can only be released by Gooten support or in the Gooten Admin (the API cannot), so this is
the DAG to run after asking them: it ends when every item of every order has left ``Hold``.

Connections:
    ``gooten_default``: the Gooten API (Recipe ID and Partner Billing Key). The triggerer reads it too.
"""

from __future__ import annotations

import os
from datetime import timedelta

import pendulum
from airflow.providers.common.compat.sdk import dag, task
from gooten_examples.params import order_ids_param

from gooten_provider.sensors.gooten import GootenOrderStatusSensor

#: Where an order goes once released from Hold: back into Gooten's pipeline, or further along it.
RELEASED_STATUSES = (
    "New",
    "Pending",
    "ReadyForImageDl",
    "ReadyForAccounting",
    "NeedsManualApproval",
    "InProduction",
    "ManuallyInProduction",
    "Printing",
    "OutForDelivery",
    "Shipped",
    "Delivered",
)
#: Cancelled while held: waiting longer is pointless.
CANCELLED_STATUSES = ("Cancelled", "CancelledRefunded")
#: Seconds between polls: 10 minutes, unless GOOTEN_RELEASE_POKE_INTERVAL says otherwise (``make airflow``
#: sets 5, so that a release in the local API shows within seconds).
POKE_INTERVAL = float(os.environ.get("GOOTEN_RELEASE_POKE_INTERVAL") or 600)

DOC_MD = """
### Wait for held orders to be released

Trigger it from the UI with the **order ids** Gooten support was asked to release. The
`wait_for_release` sensor checks them once on a worker, then **defers**: the triggerer polls Gooten every
10 minutes (`GOOTEN_RELEASE_POKE_INTERVAL` seconds, if set; each order still held, at most once per poll;
orders released are not read again) for up to 7 days, holding no worker slot. The run

* succeeds when every item of every order has left `Hold` (`report` logs each order's item statuses);
* fails at once when an order is cancelled instead, naming it, or when the connection's base URL or
  credentials are wrong;
* fails when 7 days pass (the orders still held are listed).

Needs a running **triggerer** with this provider installed.
"""


@dag(
    dag_id="gooten_wait_for_release",
    schedule=None,
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    tags=["gooten", "example"],
    doc_md=DOC_MD,
    render_template_as_native_obj=True,
    params={
        "order_ids": order_ids_param("Gooten Safe IDs of the held orders, one per line."),
    },
)
def gooten_wait_for_release() -> None:
    """Wait in the triggerer for the given held orders to be released, then report their statuses."""
    released = GootenOrderStatusSensor(
        task_id="wait_for_release",
        order_ids="{{ params.order_ids }}",
        target_statuses=RELEASED_STATUSES,
        failure_statuses=CANCELLED_STATUSES,
        deferrable=True,
        poke_interval=POKE_INTERVAL,
        timeout=7 * 24 * 3600,
        # A retry only reads again. It covers an Airflow race that can fail a deferred task when the trigger
        # fires soon after deferring (docs/troubleshooting.md); a cancelled order or the timeout never retry.
        retries=1,
        retry_delay=timedelta(minutes=1),
    )

    @task
    def report(statuses: dict[str, list[str]]) -> int:
        """Log each order's item statuses once released; return how many orders were waited for."""
        for order_id, items in statuses.items():
            print(f"{order_id}: {', '.join(items)}")
        return len(statuses)

    report(released.output)  # the statuses, from the sensor's XCom


wait_for_release_dag = gooten_wait_for_release()


if __name__ == "__main__":
    wait_for_release_dag.test()
