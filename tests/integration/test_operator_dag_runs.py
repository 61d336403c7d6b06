"""The operator and the sensor inside real Airflow DAG runs (``dag.test()``, SQLite metadata DB)."""

import pendulum
import pytest
from airflow.sdk import DAG, task

from gooten_provider.links import GootenOrderLink
from gooten_provider.operators.gooten import GootenOrderStatusOperator
from gooten_provider.sensors.gooten import GootenOrderStatusSensor
from gooten_provider.testing import GootenApiServer
from tests.airflow_compat import dag_test_runs_the_task_sdk
from tests.integration.dag_runs import reschedule_count, run_dag, task_states, xcom_values
from tests.operators.conftest import point_connection_at

pytestmark = pytest.mark.usefixtures("airflow_db")
START = pendulum.datetime(2026, 1, 1, tz="UTC")


@pytest.fixture
def api(monkeypatch):
    with GootenApiServer(retry_after=0.05) as server:
        point_connection_at(server, monkeypatch, admin_order_url="https://admin.example/o/{order_id}")
        yield server


def test_batch_run_from_an_upstream_task(api):
    ids = [api.add_order(statuses="New")["Id"] for _ in range(3)]
    shipped = api.add_order(statuses="Shipped")["Id"]

    with DAG("gooten_test_batch", schedule=None, start_date=START) as dag:

        @task
        def orders_failing_checks() -> list[str]:
            return [*ids, shipped]

        GootenOrderStatusOperator(
            task_id="hold",
            order_ids=orders_failing_checks(),
            status="Hold",
            reason="failed the address check",
        )

    dag_run = run_dag(dag)
    assert dag_run.state == "success"
    (results,) = xcom_values(dag_run, "hold")
    assert {r["order_id"]: r["outcome"] for r in results} == {
        **dict.fromkeys(ids, "updated"),
        shipped: "ineligible",
    }
    assert all(api.item_statuses(order_id) == ["Hold"] for order_id in ids)


def test_mapped_run_one_task_instance_per_order(api):
    ids = [api.add_order(statuses="Pending")["Id"] for _ in range(3)]

    with DAG("gooten_test_mapped", schedule=None, start_date=START) as dag:

        @task
        def duplicates() -> list[str]:
            return ids

        GootenOrderStatusOperator.partial(task_id="cancel", status="Cancelled").expand(order_ids=duplicates())

    dag_run = run_dag(dag)
    assert dag_run.state == "success"
    states = task_states(dag_run)
    assert [states[("cancel", i)] for i in range(3)] == ["success"] * 3
    per_instance = xcom_values(dag_run, "cancel")
    assert [[r["order_id"] for r in results] for results in per_instance] == [[i] for i in ids]
    assert all(api.item_statuses(order_id) == ["Cancelled"] for order_id in ids)
    # each single-order instance links to its order: Airflow stored the link for the UI when the task ended
    links = xcom_values(dag_run, "cancel", key=GootenOrderLink().xcom_key)
    stored = dag_test_runs_the_task_sdk()  # early 3.0's dag.test() stores no extra links
    assert links == ([f"https://admin.example/o/{i}" for i in ids] if stored else [])


def test_failed_task_still_hands_its_results_downstream(api):
    ok = api.add_order(statuses="New")["Id"]
    missing = "404-00000000-0000-0000-0000-000000000000"

    with DAG("gooten_test_failure_policy", schedule=None, start_date=START) as dag:
        hold = GootenOrderStatusOperator(task_id="hold", order_ids=[ok, missing], status="Hold")

        @task(trigger_rule="all_done")
        def audit(results: list[dict]) -> dict[str, str]:
            return {r["order_id"]: r["outcome"] for r in results}

        audit(hold.output)

    dag_run = run_dag(dag)
    states = task_states(dag_run)
    assert states[("hold", -1)] == "failed"
    assert states[("audit", -1)] == "success"
    assert xcom_values(dag_run, "audit") == [{ok: "updated", missing: "failed"}]


def test_sensor_succeeds_when_every_item_reaches_a_target(api):
    order_id = api.add_order(statuses=["Shipped", "Delivered"])["Id"]
    with DAG("gooten_test_sensor_ok", schedule=None, start_date=START) as dag:
        GootenOrderStatusSensor(
            task_id="wait",
            order_id=order_id,
            target_statuses=["shipped", "Delivered"],
            poke_interval=0.1,
            timeout=10,
        )
    assert run_dag(dag).state == "success"


def test_sensor_fails_at_once_on_a_failure_status(api):
    order_id = api.add_order(statuses=["New", "Cancelled"])["Id"]
    with DAG("gooten_test_sensor_fail", schedule=None, start_date=START) as dag:
        GootenOrderStatusSensor(
            task_id="wait",
            order_id=order_id,
            target_statuses="Shipped",
            poke_interval=0.1,
            timeout=60,
            retries=2,
        )
    dag_run = run_dag(dag)
    assert dag_run.state == "failed"
    reads = [e for e in api.journal if e.order_id == order_id]
    assert len(reads) == 1  # failed on the first poke, no retry


def test_sensor_in_reschedule_mode_waits_for_the_change(api):
    order_id = api.add_order(statuses="Hold")["Id"]

    with DAG("gooten_test_sensor_reschedule", schedule=None, start_date=START) as dag:
        GootenOrderStatusSensor(
            task_id="wait",
            order_id=order_id,
            target_statuses="New",
            mode="reschedule",
            poke_interval=1,
            timeout=30,
        )

    releaser = api.set_item_statuses_once_read(order_id, "New")  # as Gooten support would, while it waits
    dag_run = run_dag(dag)
    releaser.join()
    assert dag_run.state == "success"
    assert reschedule_count(dag_run, "wait") >= 1
    assert len([e for e in api.journal if e.order_id == order_id]) >= 2


@pytest.mark.xfail(
    not dag_test_runs_the_task_sdk(),
    reason="early Airflow 3.0's dag.test() cannot expand a mapped @task (unexpected expand_input)",
    strict=True,
)
def test_order_ids_from_a_mapped_upstream_task(api):
    ids = [api.add_order(statuses="New")["Id"] for _ in range(3)]

    with DAG("gooten_test_from_mapped_upstream", schedule=None, start_date=START) as dag:

        @task
        def check(order_id: str) -> str:
            return order_id

        # a mapped task's output reaches the operator as Airflow's lazy sequence, not a list
        GootenOrderStatusOperator(task_id="hold", order_ids=check.expand(order_id=ids), status="Hold")

    dag_run = run_dag(dag)
    assert dag_run.state == "success"
    assert all(api.item_statuses(order_id) == ["Hold"] for order_id in ids)
