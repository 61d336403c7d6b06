"""Proof on the production-shaped stack: PostgreSQL, Redis, two Celery workers (``make test-stack``).

* a batch split into mapped chunks runs on both workers against a throttled local Gooten API, every
  chunk sharing one pace for the account through Redis: every order changed once, none failed;
* the deferrable sensor waits in the triggerer (the browser suite's test, run here on this stack);
* a webhook becomes an asset event that runs ``gooten_order_status_history`` (likewise).
"""

from __future__ import annotations

import re
from collections import Counter
from urllib.parse import quote

import requests

from tests.ui.conftest import RUN_TIMEOUT, AirflowStack
from tests.ui.test_deferred_sensor import (
    test_a_held_order_released_while_the_sensor_waits_in_the_triggerer,  # noqa: F401 - run here too
)
from tests.ui.test_webhook_events import (
    test_an_order_moved_in_gooten_is_recorded_by_a_run_on_its_asset_event,  # noqa: F401 - run here too
)

from .conftest import BATCH_ORDERS, RATE_LIMIT

BULK_DAG_ID = "gooten_bulk_order_status"
CHUNK_SIZE = 30
WORKERS = ("celery-worker-1", "celery-worker-2")


def test_a_batch_in_mapped_chunks_runs_on_both_workers_sharing_one_pace(airflow_stack: AirflowStack) -> None:
    stack = airflow_stack
    assert stack.executor == "celery" and len(stack.batch_order_ids) == BATCH_ORDERS
    stack.wait_for_dag(BULK_DAG_ID)
    order_ids = stack.batch_order_ids
    reply = stack.api(
        "POST",
        f"/api/v2/dags/{BULK_DAG_ID}/dagRuns",
        json={
            "logical_date": None,
            "conf": {"order_ids": order_ids, "status": "Hold", "chunk_size": CHUNK_SIZE},
        },
    )
    assert reply.status_code == 200, reply.text
    run_id = reply.json()["dag_run_id"]
    run = stack.wait_for_run(BULK_DAG_ID, run_id, timeout=2 * RUN_TIMEOUT)
    assert run["state"] == "success", stack.log_tails()

    # one mapped task per chunk, each ended well, each order in exactly one of them, changed
    chunks = BATCH_ORDERS // CHUNK_SIZE
    run_path = f"/api/v2/dags/{BULK_DAG_ID}/dagRuns/{quote(run_id, safe='')}"
    outcomes: Counter[str] = Counter()
    seen: list[str] = []
    for index in range(chunks):
        xcom = stack.api(
            "GET",
            f"{run_path}/taskInstances/change_status/xcomEntries/return_value",
            params={"map_index": index},
        )
        assert xcom.status_code == 200, xcom.text
        records = xcom.json()["value"]
        outcomes.update(record["outcome"] for record in records)
        seen += [record["order_id"] for record in records]
    assert outcomes == {"updated": BATCH_ORDERS}
    assert sorted(seen) == sorted(order_ids)

    # Gooten's side (the API's journal): every order of the batch written once past the gateway, and
    # applied; a write answered 429 was not applied, and was sent again
    journal = requests.get(f"{stack.gooten_api_url}/admin/journal", timeout=30).json()
    batch = set(order_ids)
    writes = Counter(
        e["order_id"]
        for e in journal
        if e["method"] == "POST" and e["order_id"] in batch and e["outcome"] != "throttled"
    )
    applied = Counter(e["order_id"] for e in journal if e["applied"] and e["order_id"] in batch)
    assert writes == applied == dict.fromkeys(order_ids, 1)
    throttled = sum(e["outcome"] == "throttled" for e in journal)
    print(f"\n[stack] {len(journal)} requests to the local API ({RATE_LIMIT:g}/s), {throttled} answered 429")

    # the chunks ran on both Celery workers, and each shared the account's pace through Redis
    ran_on = {
        worker: len(re.findall(rf"dag_id={BULK_DAG_ID}/run_id=[^/]+/task_id=change_status/map_index=", log))
        for worker in WORKERS
        for log in [(stack.logs / f"{worker}.log").read_text(encoding="utf-8", errors="replace")]
    }
    assert sum(ran_on.values()) == chunks and all(ran_on.values()), ran_on
    task_logs = sorted(
        stack.logs.glob(f"dag_id={BULK_DAG_ID}/run_id=*/task_id=change_status/map_index=*/*.log")
    )
    assert len(task_logs) == chunks
    for log in task_logs:
        assert "share one pace with every task of this account, through redis://127.0.0.1:" in log.read_text(
            encoding="utf-8", errors="replace"
        ), log
