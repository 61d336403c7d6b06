"""``gooten_bulk_order_status`` end to end with ``dag.test(run_conf=...)``: one mapped task per chunk."""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest

from . import load_dag, task_states, xcom_values

pytestmark = pytest.mark.usefixtures("airflow_db")

DAG_ID = "gooten_bulk_order_status"


def test_splits_the_batch_into_chunks_and_changes_each_order_once(gooten_api: Any) -> None:
    order_ids = gooten_api.add_orders(7)

    dag_run = load_dag(DAG_ID).test(run_conf={"order_ids": order_ids, "status": "Hold", "chunk_size": 3})

    assert dag_run.state == "success", task_states(dag_run)
    xcoms = xcom_values(DAG_ID, dag_run.run_id)
    assert xcoms[("chunks", "return_value", -1)] == [order_ids[0:3], order_ids[3:6], order_ids[6:]]
    per_chunk = {index: xcoms[("change_status", "return_value", index)] for index in range(3)}
    assert {i: [r["order_id"] for r in records] for i, records in per_chunk.items()} == {
        0: order_ids[0:3],
        1: order_ids[3:6],
        2: order_ids[6:],
    }
    assert Counter(r["outcome"] for records in per_chunk.values() for r in records) == {"updated": 7}
    assert Counter(entry.order_id for entry in gooten_api.writes()) == dict.fromkeys(order_ids, 1)
    assert all(gooten_api.item_statuses(order_id) == ["Hold"] for order_id in order_ids)
