"""What to add when Airflow reports that the Gooten connection "isn't defined".

Airflow's message names the connection and nothing else, and it says the same in two cases that are easy
to fix once named:

* ``AIRFLOW_CONN_<ID>`` is set but Airflow could not read it (an unencoded key in a connection URI, broken
  JSON): Airflow skips it silently;
* the code runs outside an Airflow task (a plain script, a notebook): there the Task SDK (Airflow 3.1+)
  reads connections from environment variables and secrets backends only, never from the connections
  saved in Airflow's database. (Airflow 3.0's hook still reads the database there; the hint names 3.1.)

The hint reads the same on every Airflow line, so the error catalogue holds one message.
"""

from __future__ import annotations

import os

JSON_FORM = '{"conn_type": "gooten", "login": "<recipe id>", "password": "<billing key>"}'


def _unreadable_because(conn_id: str) -> str | None:
    """The error type Airflow's environment-variable backend raises reading the connection, if any.

    Only the type: the error text may quote part of the value, and the value holds the billing key.
    """
    from airflow.secrets.environment_variables import EnvironmentVariablesBackend

    try:
        EnvironmentVariablesBackend().get_connection(conn_id)
    except Exception as exc:
        return type(exc).__name__
    return None


def _outside_a_task() -> bool:
    """Whether this process is neither a task runner nor an Airflow server (as the Task SDK decides)."""
    if os.environ.get("_AIRFLOW_PROCESS_CONTEXT") == "server":
        return False
    from airflow.sdk.execution_time import task_runner

    return getattr(task_runner, "SUPERVISOR_COMMS", None) is None


def not_found_hint(conn_id: str) -> str:
    """One or two sentences to append to Airflow's "isn't defined" for ``conn_id``."""
    variable = f"AIRFLOW_CONN_{conn_id.upper()}"
    problem = _unreadable_because(conn_id) if variable in os.environ else None
    if problem is not None and os.environ[variable].lstrip().startswith("{"):
        return (
            f"{variable} is set, but Airflow could not read it ({problem}), so it skipped it: it must be "
            f"one JSON object, with extra (if any) an object too, e.g. {JSON_FORM}."
        )
    if problem is not None:
        return (
            f"{variable} is set, but Airflow could not read it ({problem}), so it skipped it: in a "
            "connection URI every special character of the billing key must be percent-encoded "
            "(+ / = as %2B %2F %3D; urllib.parse.quote(key, safe='')), or use the JSON form, which "
            f"needs no encoding: {JSON_FORM}."
        )
    if _outside_a_task():
        return (
            "Outside a running Airflow task (a plain script, a notebook), Airflow 3.1+ reads connections "
            "only from environment variables and secrets backends, not from those saved in its database "
            f"(Admin > Connections): set {variable}, e.g. {JSON_FORM}, or run the code in a task "
            "(airflow dags test)."
        )
    return f"Add it in Admin > Connections, or set {variable}."
