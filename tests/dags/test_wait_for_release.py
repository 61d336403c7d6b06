"""``gooten_wait_for_release`` end to end with ``dag.test(run_conf=...)``: the sensor defers, and
``dag.test()`` runs its trigger inline, as the triggerer would."""

from __future__ import annotations

from typing import Any

import pytest

from . import load_dag, task_states, xcom_values

pytestmark = pytest.mark.usefixtures("airflow_db")

DAG_ID = "gooten_wait_for_release"


def fast(dag: Any) -> Any:
    """The DAG with the sensor polling every 0.2 s instead of 10 minutes."""
    dag.get_task("wait_for_release").poke_interval = 0.2
    return dag


def test_trigger_form_and_the_deferrable_sensor() -> None:
    dag = load_dag(DAG_ID)
    schema = dag.params.get_param("order_ids").schema
    assert schema["type"] == "array" and schema["minItems"] == 1
    sensor = dag.get_task("wait_for_release")
    assert sensor.deferrable is True
    assert "Hold" not in sensor.target_statuses
    assert sensor.failure_statuses == ("Cancelled", "CancelledRefunded")


def test_succeeds_once_every_held_order_is_released(gooten_api: Any) -> None:
    held = gooten_api.add_order(statuses=["Hold", "Hold"])["Id"]
    already = gooten_api.add_order(statuses="New")["Id"]
    release = gooten_api.set_item_statuses_once_read(held, "New")
    dag_run = fast(load_dag(DAG_ID)).test(run_conf={"order_ids": [held, already]})
    release.join()
    assert dag_run.state == "success", task_states(dag_run)
    xcoms = xcom_values(DAG_ID, dag_run.run_id)
    assert xcoms[("wait_for_release", "return_value", -1)] == {held: ["New", "New"], already: ["New"]}
    assert xcoms[("report", "return_value", -1)] == 2
    assert gooten_api.writes() == []


def test_fails_naming_an_order_cancelled_while_held(gooten_api: Any) -> None:
    held = gooten_api.add_order(statuses="Hold")["Id"]
    cancel = gooten_api.set_item_statuses_once_read(held, "Cancelled")
    dag_run = fast(load_dag(DAG_ID)).test(run_conf={"order_ids": [held]})
    cancel.join()
    assert task_states(dag_run) == {"wait_for_release": "failed", "report": "upstream_failed"}
