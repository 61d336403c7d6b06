"""The hint added to Airflow's "isn't defined" depends on where the code runs (a script: the catalogue)."""

from __future__ import annotations

import os
import subprocess
import sys

import pendulum
import pytest
from airflow.providers.common.compat.sdk import AirflowNotFoundException

from gooten_provider.hooks.gooten import GootenHook
from tests.airflow_compat import airflow_at_least, dag_test_runs_the_task_sdk


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


# -- a connection Airflow skips: the user's fault (JSON, shape) or Airflow's (a dependency) ------------------

AIRFLOW_V_3_1_PLUS = airflow_at_least("3.1")
# Airflow 3.1+ drops fields it does not know; 3.0 refuses the connection.
ONLY_3_0 = pytest.mark.skipif(AIRFLOW_V_3_1_PLUS, reason="Airflow 3.1+ ignores unknown fields")
LOOKUP = """
import sys
from airflow.providers.common.compat.sdk import AirflowNotFoundException
from gooten_provider.hooks.gooten import GootenHook
try:
    GootenHook(max_retries=0).get_order_status("1-a")
except AirflowNotFoundException as exc:
    print("HINT", exc)
"""


def hint_in_a_fresh_process(tmp_path, value: str, **env: str) -> str:
    """The hook's not-found message in a new process (Airflow reads its settings once, at import)."""
    environment = {
        **os.environ,
        "AIRFLOW_HOME": str(tmp_path),
        "AIRFLOW_CONN_GOOTEN_DEFAULT": value,
        **env,
    }
    done = subprocess.run(
        [sys.executable, "-c", LOOKUP], env=environment, capture_output=True, text=True, timeout=180
    )
    hints = [line for line in done.stdout.splitlines() if line.startswith("HINT ")]
    assert hints, f"the connection was found, or the process failed:\n{done.stdout}\n{done.stderr}"
    return hints[-1]


WELL_FORMED = (
    '{"conn_type": "gooten", "host": "http://127.0.0.1:9", "login": "r", "password": "q+Zb/7Kx9Lm="}'
)


@pytest.mark.skipif(
    AIRFLOW_V_3_1_PLUS,
    reason="Airflow 3.1+ builds a connection from an environment variable without Fernet: no such failure",
)
@pytest.mark.parametrize("value", [WELL_FORMED, "gooten://r:q%2BZb%2F7Kx9Lm%3D@127.0.0.1:9"])
def test_a_connection_airflow_fails_to_build_is_not_blamed_on_the_user(tmp_path, value):
    # Airflow 3.0 encrypts a connection's password with Fernet while building it, from the variable too. A
    # Fernet that fails there (cryptography 51's, on Airflow 3.0.0; here a key Fernet refuses) fails every
    # connection with a password, and Airflow skips it as if it were not there.
    hint = hint_in_a_fresh_process(tmp_path, value, AIRFLOW__CORE__FERNET_KEY="not-a-fernet-key")
    assert (
        "isn't defined. AIRFLOW_CONN_GOOTEN_DEFAULT is set and well-formed, but Airflow failed building"
        in hint
    )
    assert "(AirflowException)" in hint
    assert "cryptography<51 on Airflow 3.0" in hint
    assert "docs/installation.md" in hint
    assert "JSON object" not in hint and "percent-encoded" not in hint
    assert "q+Zb" not in hint and "q%2BZb" not in hint


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        ('{"conn_type": "gooten", "login": "r",', "it is not valid JSON (Expecting property name"),
        pytest.param(
            '{"conn_type": "gooten", "pasword": "k"}',
            "it has field(s) Airflow does not know, pasword: the",
            marks=ONLY_3_0,
        ),
        pytest.param(
            '{"conn_type": "gooten", "q+Zb/7Kx9Lm=": "k"}',
            "it has field(s) Airflow does not know, (a name not shown): the fields",
            marks=ONLY_3_0,
        ),
        ('{"conn_type": "gooten", "port": "eighty"}', "its port is a string that is not a whole number"),
    ],
)
def test_a_json_or_shape_error_is_blamed_on_the_json_naming_what_is_wrong(tmp_path, value, problem):
    hint = hint_in_a_fresh_process(tmp_path, value)
    assert "AIRFLOW_CONN_GOOTEN_DEFAULT is set, but Airflow could not read it (" in hint
    assert f"so it skipped it: {problem}" in hint
    assert "It must be one JSON object" in hint
    assert "failed building" not in hint
    assert "q+Zb" not in hint
