"""Change the status of a large batch of Gooten orders, split into chunks that run on every worker.

Shows: a batch split into chunks by a task, ``GootenOrderStatusOperator`` mapped over the chunks
(``partial().expand()``), so that a Celery deployment runs them on several workers at once, and all of them
sharing one pace for the Gooten account when the connection names a Redis (``rate_limit_conn_id``): the
chunks together stay under the account's rate limit instead of each finding it alone.

Connections:
    ``gooten_default``: the Gooten API (Recipe ID and Partner Billing Key), with the extra
    ``rate_limit_conn_id`` naming a Redis connection for the shared pace (optional).
"""

from __future__ import annotations

from typing import Any

import pendulum
from airflow.providers.common.compat.sdk import Param, dag, task
from gooten_examples.params import order_ids_param

from gooten_provider.operators.gooten import GootenOrderStatusOperator

DOC_MD = """
### Change a large batch of Gooten orders

Trigger it with the order ids, the target status and the chunk size. Each chunk is one mapped
`change_status` task: on Celery, the chunks run on every worker at once. With `rate_limit_conn_id` set on
`gooten_default` (as `make airflow EXECUTOR=celery` does), they share one pace for the account, kept in
Redis: one rate learnt from every 429, one pause for every `Retry-After`.

Each order ends `updated`, `unchanged`, `ineligible` or `failed`, in its chunk's XCom; a chunk with a
failed order fails (and may be retried: orders already changed come back `unchanged`).

**Connection**: `gooten_default`.
"""


@dag(
    dag_id="gooten_bulk_order_status",
    schedule=None,
    start_date=pendulum.datetime(2025, 1, 1, tz="UTC"),
    catchup=False,
    doc_md=DOC_MD,
    tags=["gooten", "example", "bulk"],
    default_args={"retries": 0},
    render_template_as_native_obj=True,
    params={
        "order_ids": order_ids_param(),
        "status": Param("Hold", type="string", enum=["Hold", "Cancelled", "New", "Test"], title="Status"),
        "chunk_size": Param(
            100, type="integer", minimum=1, maximum=10_000, title="Orders per chunk (one task each)"
        ),
    },
)
def gooten_bulk_order_status() -> None:
    """Split the batch into chunks, then change each chunk in its own mapped task."""

    @task
    def chunks(params: dict[str, Any] | None = None) -> list[list[str]]:
        """The order ids in chunks of ``chunk_size`` (in order)."""
        assert params is not None  # Airflow passes the run's params
        order_ids, size = list(params["order_ids"]), int(params["chunk_size"])
        return [order_ids[start : start + size] for start in range(0, len(order_ids), size)]

    GootenOrderStatusOperator.partial(
        task_id="change_status", status="{{ params.status }}", max_workers=4
    ).expand(order_ids=chunks())


gooten_bulk_order_status()
