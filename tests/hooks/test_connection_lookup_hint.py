"""The hint added to Airflow's "isn't defined" depends on where the code runs (a script: the catalogue)."""

from __future__ import annotations

import pendulum
import pytest
from airflow.providers.common.compat.sdk import AirflowNotFoundException

from gooten_provider.hooks.gooten import GootenHook
from tests.airflow_compat import dag_test_runs_the_task_sdk


@pytest.mark.usefixtures("airflow_db")
def test_inside_a_task_the_hint_names_both_places_a_connection_can_come_from():
    from airflow.sdk import DAG, task

    from tests.integration.dag_runs import run_dag, xcom_values

    with DAG(
        "gooten_test_missing_connection", schedule=None, start_date=pendulum.datetime(2026, 1, 1)
    ) as dag:

        @task
        def look_up() -> str:
            try:
                GootenHook("gooten_nowhere").get_order_status("1-a")
            except AirflowNotFoundException as exc:
                return str(exc)
            return "found"

        look_up()

    (message,) = xcom_values(run_dag(dag), "look_up")
    if dag_test_runs_the_task_sdk():  # a task runner, as in a deployment
        assert message.endswith(
            "isn't defined. Add it in Admin > Connections, or set AIRFLOW_CONN_GOOTEN_NOWHERE."
        )
    else:  # early 3.0's dag.test() runs the task in this process, with no task runner
        assert "Outside a running Airflow task" in message


def test_in_an_airflow_server_process_there_is_no_outside_a_task_hint(monkeypatch):
    monkeypatch.setenv("_AIRFLOW_PROCESS_CONTEXT", "server")  # the API server reads the database
    with pytest.raises(AirflowNotFoundException) as info:
        GootenHook("gooten_nowhere").get_order_status("1-a")
    assert str(info.value).endswith("Add it in Admin > Connections, or set AIRFLOW_CONN_GOOTEN_NOWHERE.")
