"""The sensor over many orders in real ``dag.test()`` runs: deferred (the trigger runs inline) and not."""

from __future__ import annotations

import pendulum
import pytest
from airflow.sdk import DAG

from gooten_provider.sensors.gooten import GootenOrderStatusSensor
from gooten_provider.testing import GootenApiServer
from tests.integration.dag_runs import run_dag, task_states, xcom_values
from tests.operators.conftest import point_connection_at

pytestmark = pytest.mark.usefixtures("airflow_db")
START = pendulum.datetime(2026, 1, 1, tz="UTC")


@pytest.fixture
def api(monkeypatch):
    with GootenApiServer(retry_after=0.05) as server:
        point_connection_at(server, monkeypatch)
        yield server


@pytest.mark.parametrize("deferrable", [True, False], ids=["deferred", "poke"])
def test_waits_for_held_orders_to_be_released_and_returns_every_orders_statuses(api, deferrable):
    released = api.add_orders(4, statuses="New")
    held = api.add_order(statuses="Hold")["Id"]
    with DAG(f"gooten_test_sensor_release_{deferrable}", schedule=None, start_date=START) as dag:
        GootenOrderStatusSensor(
            task_id="wait",
            order_ids=[*released, held],
            target_statuses="New",
            failure_statuses=["Cancelled"],
            deferrable=deferrable,
            poke_interval=0.2,
            timeout=60,
        )
    releaser = api.set_item_statuses_once_read(held, "New")
    dag_run = run_dag(dag)
    releaser.join()
    assert task_states(dag_run) == {("wait", -1): "success"}
    assert xcom_values(dag_run, "wait") == [{**{o: ["New"] for o in released}, held: ["New"]}]
    assert len([e for e in api.journal if e.order_id == released[0]]) == 1  # done: never read again
    assert api.writes() == []


def test_deferred_sensor_fails_on_a_failure_status_reached_while_deferred(api):
    order_id = api.add_order(statuses="Hold")["Id"]

    with DAG("gooten_test_sensor_deferred_fail", schedule=None, start_date=START) as dag:
        GootenOrderStatusSensor(
            task_id="wait",
            order_id=order_id,
            target_statuses="New",
            deferrable=True,
            poke_interval=0.2,
            timeout=60,
        )
    thread = api.set_item_statuses_once_read(order_id, "Cancelled")
    dag_run = run_dag(dag)
    thread.join()
    assert task_states(dag_run) == {("wait", -1): "failed"}
