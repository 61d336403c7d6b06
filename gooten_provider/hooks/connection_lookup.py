"""What to add when Airflow reports that the Gooten connection "isn't defined".

Airflow's message names the connection and nothing else, and it says the same in two cases that are easy
to fix once named:

* ``AIRFLOW_CONN_<ID>`` is set but Airflow could not read it (an unencoded key in a connection URI, broken
  JSON): Airflow skips it silently. The value is checked here too, because Airflow also skips a value that
  is right when it fails inside (Airflow 3.0.0 with cryptography 51 fails building every connection with a
  password): the user is told which of the two it is, and only the first is theirs to fix;
* the code runs outside an Airflow task (a plain script, a notebook): there the Task SDK (Airflow 3.1+)
  reads connections from environment variables and secrets backends only, never from the connections
  saved in Airflow's database. (Airflow 3.0's hook still reads the database there; the hint names 3.1.)

The hint reads the same on every Airflow line, so the error catalogue holds one message.
"""

from __future__ import annotations

import json
import os
import re
from urllib.parse import urlsplit

from gooten_provider.project_urls import doc_url

JSON_FORM = '{"conn_type": "gooten", "login": "<recipe id>", "password": "<billing key>"}'
#: The fields of a connection in the JSON form (anything else makes Airflow refuse it).
JSON_FIELDS = ("conn_type", "description", "host", "login", "password", "schema", "port", "extra")
_FIELD_NAME = re.compile(r"[A-Za-z_]{1,20}")
_JSON_TYPES = {dict: "an object", list: "an array", str: "a string", bool: "a boolean", type(None): "null"}


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


def _json_type(value: object) -> str:
    return _JSON_TYPES.get(type(value), "a number")


def _json_problem(value: str) -> str | None:
    """What keeps Airflow from reading ``value`` as a JSON connection, or ``None`` if nothing does.

    Never quotes the value (it holds the billing key): only positions, field names and JSON types.
    """
    try:
        fields = json.loads(value)
    except json.JSONDecodeError as exc:  # its message is a position, never the text
        return f"it is not valid JSON ({exc.msg} at line {exc.lineno}, column {exc.colno})"
    if not isinstance(fields, dict):
        return f"it is {_json_type(fields)}, not a JSON object"
    return _unknown_fields(fields) or _extra_problem(fields.get("extra")) or _port_problem(fields.get("port"))


def _unknown_fields(fields: dict[str, object]) -> str | None:
    unknown = sorted(name for name in fields if name not in JSON_FIELDS)
    if not unknown:
        return None
    # A name is shown only if it looks like a misspelt field, never what could be a pasted key.
    shown = [name if _FIELD_NAME.fullmatch(name) else "(a name not shown)" for name in unknown]
    known = ", ".join(JSON_FIELDS)
    return f"it has field(s) Airflow does not know, {', '.join(shown)}: the fields are {known}"


def _extra_problem(extra: object) -> str | None:
    if isinstance(extra, str):
        try:
            extra = json.loads(extra) if extra.strip() else {}
        except ValueError:
            return "its extra is a string that is not JSON"
    if extra is not None and not isinstance(extra, dict):
        return f"its extra is {_json_type(extra)}, not an object"
    return None


def _port_problem(port: object) -> str | None:
    if port not in (None, "") and (isinstance(port, bool) or not str(port).strip().isdigit()):
        return f"its port is {_json_type(port)} that is not a whole number"
    return None


def _uri_problem(value: str) -> str | None:
    """What keeps Airflow from reading ``value`` as a connection URI, or ``None`` if nothing does."""
    if value.count("://") != 1:
        return "it is not one URI of the form gooten://<recipe id>:<billing key>@<host>"
    try:
        urlsplit(value).port  # noqa: B018 (the port is parsed on access)
    except ValueError:
        return "its host part ends in a port that is not a number (an unencoded '/' in the key ends it there)"
    return None


def _airflow_failed(variable: str, problem: str) -> str:
    """Airflow skipped a value that is right: say that the fault is Airflow's, and what usually causes it."""
    return (
        f"{variable} is set and well-formed, but Airflow failed building the connection from it ({problem}), "
        "so it skipped it. That is a fault inside Airflow, not in the connection: usually a dependency at a "
        "version this Airflow was not tested with (Airflow 3.0.0 with cryptography 51 fails so for every "
        "connection with a password). Install Airflow with its constraints file, or pin the dependency "
        f"(cryptography<51 on Airflow 3.0): see 'Which Airflow versions' in {doc_url('installation.md')}."
    )


def not_found_hint(conn_id: str) -> str:
    """One or two sentences to append to Airflow's "isn't defined" for ``conn_id``."""
    variable = f"AIRFLOW_CONN_{conn_id.upper()}"
    problem = _unreadable_because(conn_id) if variable in os.environ else None
    if problem is not None:
        value = os.environ[variable].strip()
        if value.startswith("{"):
            json_problem = _json_problem(value)
            if json_problem is None:
                return _airflow_failed(variable, problem)
            return (
                f"{variable} is set, but Airflow could not read it ({problem}), so it skipped it: "
                f"{json_problem}. It must be one JSON object, with extra (if any) an object too, e.g. "
                f"{JSON_FORM}."
            )
        uri_problem = _uri_problem(value)
        if uri_problem is None:
            return _airflow_failed(variable, problem)
        return (
            f"{variable} is set, but Airflow could not read it ({problem}), so it skipped it: {uri_problem}. "
            "In a connection URI every special character of the billing key must be percent-encoded "
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
