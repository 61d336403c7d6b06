"""Batches interrupted for real: SIGKILL mid-batch then a retry, SIGTERM through Airflow's task runner, and an
``execution_timeout``. The local Gooten API runs in this process, so its journal outlives the killed task.
"""

import json
import signal
import threading
import time
from datetime import timedelta

import pendulum
import pytest
from airflow.providers.common.compat.sdk import AirflowException
from airflow.sdk import DAG

from gooten_provider.batch.results_reader import attempts, iter_records
from gooten_provider.batch.stop import DEFAULT_STOP_GRACE
from gooten_provider.operators.gooten import GootenOrderStatusOperator
from gooten_provider.operators.order_results import read_order_results
from tests.integration.dag_runs import run_dag, run_xcoms, task_states
from tests.interruption.conftest import child, one_record_per_order, start_batch_child
from tests.operators.conftest import RecordingTaskInstance

START = pendulum.datetime(2026, 1, 1, tz="UTC")


def wait_for_applied_writes(api, count, process, timeout=60.0):
    deadline = time.monotonic() + timeout
    while len(api.applied_writes()) < count:
        assert process.poll() is None, process.stdout.read()
        assert time.monotonic() < deadline, "the batch did not get going"
        time.sleep(0.01)


@pytest.mark.parametrize("kill_after", [3, 45], ids=["early", "mid-batch"])
def test_sigkill_then_the_retry_rereads_only_the_writes_in_flight(slow_api, tmp_path, kill_after):
    ids = slow_api.add_orders(120, statuses="New")
    workers = 4
    results_uri = (tmp_path / "results").as_uri()
    first = start_batch_child(ids, "Hold", results_uri, max_workers=workers)
    wait_for_applied_writes(slow_api, kill_after, first)
    first.send_signal(signal.SIGKILL)
    first.wait(10)
    assert first.returncode == -signal.SIGKILL
    time.sleep(0.2)  # the requests the killed try had sent are answered and journaled
    changed_by_first = {entry.order_id for entry in slow_api.applied_writes()}
    assert kill_after <= len(changed_by_first) < len(ids)
    (first_folder,) = attempts(tmp_path / "results")
    recorded_by_first = {r["order_id"]: r for r in iter_records(first_folder)}
    in_flight = changed_by_first - set(recorded_by_first)
    assert len(in_flight) <= workers, "a change whose order had ended had no record: it was not written"
    slow_api.clear_journal()

    ti = RecordingTaskInstance()
    ti.try_number = 2
    summary = GootenOrderStatusOperator(
        task_id="hold", order_ids=ids, status="Hold", results_path=results_uri, max_workers=4
    ).execute({"ti": ti})

    assert summary["total"] == len(ids)
    assert summary["counts"]["updated"] == len(ids)  # not 'unchanged from Hold' for what the first try did
    records = one_record_per_order(read_order_results(summary), ids)
    assert all(r["outcome"] == "updated" and r["previous_statuses"] == ["New"] for r in records.values())
    touched = {entry.order_id for entry in slow_api.journal if entry.order_id}
    written = {entry.order_id for entry in slow_api.writes()}
    assert not touched & set(recorded_by_first), "an order the first try finished was read or written again"
    assert touched & changed_by_first == in_flight, "only the orders whose write was in flight are read again"
    assert not written & changed_by_first, "a change of the first try was sent again"
    assert written == set(ids) - changed_by_first
    assert all(len(slow_api.applied_writes(i)) <= 1 for i in ids)
    assert all(slow_api.item_statuses(i) == ["Hold"] for i in ids)


@pytest.mark.usefixtures("airflow_db")
def test_sigterm_through_the_task_runner_calls_on_kill_and_every_order_gets_a_record(slow_api):
    ids = slow_api.add_orders(150, statuses="New")
    process = child(
        "dag_child", {"dag_id": "gooten_sigterm", "order_ids": ids, "status": "Hold", "max_workers": 2}
    )
    wait_for_applied_writes(slow_api, 20, process)
    process.send_signal(signal.SIGTERM)
    stopped = time.monotonic()
    output, _ = process.communicate(timeout=60)
    assert process.returncode == 0, output  # dag.test() itself ended normally, with the task failed
    run = json.loads(output.strip().splitlines()[-1])
    assert "A retry of the task is safe" in output
    assert "stopped by on_kill()" in output

    xcoms = run_xcoms("gooten_sigterm", run["run_id"])
    records = one_record_per_order(xcoms[("hold", "return_value", -1)], ids)
    late = [entry for entry in slow_api.writes() if entry.started > stopped + DEFAULT_STOP_GRACE]
    assert not late, "a change was sent after the stop's grace"
    applied = {entry.order_id for entry in slow_api.applied_writes()}
    assert {i for i, r in records.items() if r["outcome"] == "updated"} == applied
    stopped_before = [records[i] for i in ids if i not in applied]
    assert all(r["outcome"] == "failed" and "stopped by on_kill()" in r["error"] for r in stopped_before)
    assert sum(r["error"].startswith("not attempted: the task was stopped") for r in stopped_before) > 100
    assert all(slow_api.item_statuses(i) == ["New"] for i in ids if i not in applied)


@pytest.mark.usefixtures("airflow_db")
def test_an_execution_timeout_stops_the_batch_and_pushes_the_summary(slow_api, tmp_path):
    ids = slow_api.add_orders(300, statuses="New")
    results_uri = (tmp_path / "results").as_uri()
    with DAG("gooten_timeout", schedule=None, start_date=START) as dag:
        GootenOrderStatusOperator(
            task_id="hold",
            order_ids=ids,
            status="Hold",
            max_workers=2,
            results_path=results_uri,
            execution_timeout=timedelta(seconds=2),
        )
    dag_run = run_dag(dag)
    ended = time.monotonic()

    assert task_states(dag_run)[("hold", -1)] in ("failed", "up_for_retry")
    summary = run_xcoms("gooten_timeout", dag_run.run_id)[("hold", "return_value", -1)]
    assert summary["total"] == len(ids)
    records = one_record_per_order(read_order_results(summary), ids)
    applied = {entry.order_id for entry in slow_api.applied_writes()}
    assert 0 < len(applied) < len(ids)
    assert {i for i, r in records.items() if r["outcome"] == "updated"} == applied
    assert summary["counts"]["failed"] == len(ids) - len(applied)
    assert all("AirflowTaskTimeout" in r["error"] for r in records.values() if r["outcome"] == "failed")
    executing = min(e.started for e in slow_api.journal)  # the credentials check, as execute() begins
    late = [e for e in slow_api.writes() if e.started > executing + 2 + DEFAULT_STOP_GRACE]
    assert not late, "a change was sent after the stop's grace"
    assert ended - executing < 2 + DEFAULT_STOP_GRACE + 5

    # the retry resumes: only the orders the first try did not change are read and written
    slow_api.clear_journal()
    ti = RecordingTaskInstance()
    ti.try_number = 2
    retry = GootenOrderStatusOperator(
        task_id="hold", order_ids=ids, status="Hold", results_path=results_uri
    ).execute({"ti": ti})
    assert retry["counts"]["updated"] == len(ids)
    assert {e.order_id for e in slow_api.journal if e.order_id} == set(ids) - applied


def test_a_stopped_batch_without_results_path_fails_saying_a_retry_is_safe(slow_api, monkeypatch):
    ids = slow_api.add_orders(40, statuses="New")
    operator = GootenOrderStatusOperator(task_id="hold", order_ids=ids, status="Hold", max_workers=2)
    ti = RecordingTaskInstance()

    def stop_soon():
        while len(slow_api.applied_writes()) < 5:
            time.sleep(0.005)
        operator.on_kill()

    stopper = threading.Thread(target=stop_soon)
    stopper.start()
    with pytest.raises(AirflowException, match=r"(?s)stopped by on_kill\(\).*A retry of the task is safe"):
        operator.execute({"ti": ti})
    stopper.join()
    records = one_record_per_order(ti.xcoms["return_value"], ids)
    assert [r["order_id"] for r in ti.xcoms["return_value"]] == ids  # input order, as without a stop
    applied = {entry.order_id for entry in slow_api.applied_writes()}
    assert {i for i, r in records.items() if r["outcome"] == "updated"} == applied
