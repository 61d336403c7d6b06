"""The bad-input catalogue: every bad input a user can give, the error it gets, and what was sent.

This module is the single source of ``docs/errors.md``: :data:`CASES` holds each row, the parametrised
test checks each one through the public surface (``GootenHook``, ``GootenOrderStatusOperator``,
``GootenOrderStatusSensor``) against a local Gooten API, and :func:`test_docs_table_is_generated_from_cases`
checks that the tables in ``docs/errors.md`` are exactly what :func:`render_catalogue` makes of them.
After changing a case, rewrite the doc with::

    UPDATE_ERRORS_DOC=1 .venv/bin/pytest tests/errors -k docs

A message template is matched against ``str(exception)``: ``{order_id}``, ``{base_url}`` and ``{conn_id}``
are filled in, and ``…`` stands for any text (an ErrorReferenceCode, a body excerpt, the rest of a list).
``requests`` is the number of requests the server received, checked after it stopped: ``0`` means the
input was rejected before any request was made.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import logging
import os
import re
import socket
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

import jinja2
import pytest
from airflow.providers.common.compat.sdk import (
    AirflowException,
    AirflowFailException,
    AirflowNotFoundException,
    AirflowSkipException,
)

from gooten_provider.batch import results
from gooten_provider.client.billing_key import billing_key_forms
from gooten_provider.exceptions import (
    GootenApiError,
    GootenAuthenticationError,
    GootenConfigurationError,
    GootenConnectionError,
    GootenHttpError,
    GootenIncompleteAnswerError,
    GootenItemsNotCancellableError,
    GootenOrderItemsError,
    GootenOutcomeUnknownError,
    GootenRateLimitError,
)
from gooten_provider.hooks.connection_lookup import JSON_FORM
from gooten_provider.hooks.gooten import GootenHook
from gooten_provider.operators.gooten import GootenOrderStatusOperator
from gooten_provider.operators.item_cancel import GootenCancelOrderItemsOperator
from gooten_provider.operators.order_results import read_order_results
from gooten_provider.project_urls import doc_url
from gooten_provider.sensors.gooten import GootenOrderStatusSensor
from gooten_provider.testing import GootenApiServer, PortUnavailableError
from gooten_provider.transfers.orders_to_object_storage import (
    GootenExportInputError,
    GootenOrdersToObjectStorageOperator,
)
from gooten_provider.triggers.gooten import GootenOrderStatusTrigger
from tests.airflow_compat import airflow_at_least
from tests.failing_storage import small_disk

DOC = Path(__file__).resolve().parents[2] / "docs" / "errors.md"
BEGIN = "<!-- catalogue: generated from tests/errors/test_error_catalogue.py; do not edit by hand -->"
END = "<!-- end of catalogue -->"

#: A password planted in URLs given as the host, to catch messages that echo it.
URL_PASSWORD = "s3cret-url-pw"
#: The connection's extras unless a case says otherwise: fast retries, so storms and timeouts are quick.
FAST_EXTRAS = {"timeout": 5, "max_retries": 3, "backoff_factor": 0.01}
TARGETS = "Cancelled, New, Test, Hold"
GET_ORDER = "GET /api/v/5/source/api/orders (order {order_id})"
POST_STATUS = "POST /api/orderstatus (order {order_id} -> Hold)"
KEY_ECHO = (
    "Gooten answered HTTP 400 to " + POST_STATUS + ": "
    '\'{"Message": "The request is invalid.", "Request": {"partnerBillingKey": "***"}}\''
)
UNKNOWN_ORDER = "999-00000000-0000-0000-0000-000000000000"
#: Well-formed Safe IDs, for inputs refused before any request.
SAFE_A = "115557-b5c97bb2-934d-48aa-9ad2-a565154b5cd4"
SAFE_B = "115558-0f1e2d3c-4b5a-4978-8695-a4b3c2d1e0ff"
#: The placeholders of a message template; any other brace is literal.
PLACEHOLDER = re.compile(r"\{(order_id|base_url|conn_id)\}")


# -- the environment each case runs in -----------------------------------------------------------------


class RecordingTaskInstance:
    """The one part of a task instance the operator uses outside a DAG run: ``xcom_push``."""

    def __init__(self) -> None:
        self.xcoms: dict[str, object] = {}

    def xcom_push(self, key: str, value: object) -> None:
        self.xcoms[key] = value


class RawReplyServer:
    """A loopback server that answers every request with the same raw bytes, then closes the connection.

    For answers the local Gooten API cannot give: a truncated JSON body, a body cut off mid-way.
    """

    def __init__(self, reply: bytes) -> None:
        self.reply = reply
        self.requests = 0
        self._socket = socket.create_server(("127.0.0.1", 0))
        self._socket.settimeout(0.05)  # so that the loop sees stop() soon
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self._socket.getsockname()[1]}"

    def _serve(self) -> None:
        while not self._stopping.is_set():
            try:
                connection, _ = self._socket.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            with connection:
                connection.settimeout(5)
                received = b""
                while b"\r\n\r\n" not in received:
                    chunk = connection.recv(65536)
                    if not chunk:
                        break
                    received += chunk
                self.requests += 1
                connection.sendall(self.reply)

    def stop(self) -> None:
        self._stopping.set()
        self._thread.join(2)
        self._socket.close()


class Env:
    """What a case runs against: a local Gooten API, the ``gooten_default`` connection, a task instance."""

    def __init__(self, api: GootenApiServer, monkeypatch: pytest.MonkeyPatch) -> None:
        self.api = api
        self.monkeypatch = monkeypatch
        self.ti = RecordingTaskInstance()
        self.raw_servers: list[RawReplyServer] = []
        #: Values for the message template's placeholders.
        self.values: dict[str, str] = {"conn_id": "gooten_default", "base_url": api.base_url}
        self.connect()

    def connect(
        self, *, extra: dict[str, Any] | str | None = None, only_extra: bool = False, **fields: Any
    ) -> None:
        """Point ``gooten_default`` at the local API, with ``fields`` changed and ``extra`` added.

        :param only_extra: use ``extra`` alone instead of adding it to :data:`FAST_EXTRAS`.
        """
        config = self.api.connection_config()
        if isinstance(extra, str) or only_extra:
            config["extra"] = extra
        else:
            config["extra"] = {**FAST_EXTRAS, **(extra or {})}
        config.update(fields)
        self.monkeypatch.setenv("AIRFLOW_CONN_GOOTEN_DEFAULT", json.dumps(config))

    def order(self, statuses: str | list[str] = "New") -> str:
        """Add an order to the local API; its id fills ``{order_id}``."""
        order_id = self.api.add_order(statuses=statuses)["Id"]
        self.values["order_id"] = order_id
        return order_id

    def no_such_order(self) -> str:
        self.values["order_id"] = UNKNOWN_ORDER
        return UNKNOWN_ORDER

    def raw_server(self, reply: bytes) -> str:
        """Start a :class:`RawReplyServer`, point the connection at it, return an order id to ask for."""
        server = RawReplyServer(reply)
        self.raw_servers.append(server)
        self.connect(host=server.base_url)
        self.values["order_id"] = "1-a"
        return "1-a"

    def closed_port_url(self) -> str:
        """A loopback URL where nothing listens (connections are refused)."""
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            url = f"http://127.0.0.1:{probe.getsockname()[1]}"
        self.values["base_url"] = url
        return url

    def requests(self) -> int:
        """Requests received by every server of this case (stop them first, so slow ones are counted)."""
        return len(self.api.journal) + sum(server.requests for server in self.raw_servers)

    def stop(self) -> None:
        self.api.stop()
        for server in self.raw_servers:
            server.stop()


def operator(**kwargs: Any) -> GootenOrderStatusOperator:
    kwargs.setdefault("task_id", "set_status")
    kwargs.setdefault("status", "Hold")
    return GootenOrderStatusOperator(**kwargs)


def execute(env: Env, **kwargs: Any) -> list[dict[str, Any]]:
    return operator(**kwargs).execute({"ti": env.ti})


def execute_with_ids(env: Env, order_ids: object) -> list[dict[str, Any]]:
    """Execute with ``order_ids`` set after construction, as an ``XComArg`` resolving to it would."""
    op = operator(order_ids=env.order())
    op.order_ids = order_ids
    return op.execute({"ti": env.ti})


def execute_rendered(env: Env, params: dict[str, Any], **kwargs: Any) -> list[dict[str, Any]]:
    """Render the operator's templates with ``params`` (as a DAG run does), then execute it."""
    op = operator(**kwargs)
    op.render_template_fields({"params": params}, jinja_env=jinja2.Environment())
    return op.execute({"ti": env.ti})


def sensor(**kwargs: Any) -> GootenOrderStatusSensor:
    kwargs.setdefault("task_id", "wait")
    kwargs.setdefault("target_statuses", ["Shipped"])
    return GootenOrderStatusSensor(**kwargs)


def http_reply(body: bytes, *, content_length: int | None = None) -> bytes:
    """A raw HTTP 200 JSON reply; a ``content_length`` above ``len(body)`` cuts the body off."""
    length = len(body) if content_length is None else content_length
    head = (
        "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
        f"Content-Length: {length}\r\nConnection: close\r\n\r\n"
    )
    return head.encode() + body


def http_error_reply(status: int, body: str, content_type: str = "application/json") -> bytes:
    """A raw HTTP error reply with ``body``."""
    data = body.encode()
    head = (
        f"HTTP/1.1 {status} Error\r\nContent-Type: {content_type}\r\n"
        f"Content-Length: {len(data)}\r\nConnection: close\r\n\r\n"
    )
    return head.encode() + data


def _key_echo(escape: Callable[[str], str], content_type: str = "application/json") -> Callable[[Env], Any]:
    """An answer 400 that echoes the request's parameters, the key escaped by ``escape``."""

    def run(env: Env) -> Any:
        key = escape(env.api.billing_key)
        body = '{"Message": "The request is invalid.", "Request": {"partnerBillingKey": "KEY"}}'.replace(
            "KEY", key
        )
        order_id = env.raw_server(http_error_reply(400, body, content_type))
        return GootenHook().update_order_status(order_id, "Hold")

    return run


def _latin1_key_echo(env: Env) -> Any:
    """A non-ASCII key, echoed by a gateway's validation message percent-encoded from its Latin-1 bytes."""
    key = "Zx+9/aé=B/ü+cD=="
    echoed = quote(key, safe="", encoding="latin-1")
    body = json.dumps(
        {
            "Message": "The request is invalid.",
            "ModelState": {"partnerBillingKey": [f"The value {echoed} is not valid."]},
        }
    )
    order_id = env.raw_server(http_error_reply(400, body))
    env.connect(host=env.raw_servers[-1].base_url, password=key)
    return GootenHook().update_order_status(order_id, "Hold")


def _dotnet_json_escape(key: str) -> str:
    return key.replace("+", "\\u002B")


def _html_entities(key: str) -> str:
    return "".join(f"&#{ord(char)};" if char in "+/=" else char for char in key)


TRUNCATED_JSON = b'{"Id": "1-a", "Items": [{"Sta'


# -- checks for inputs that are accepted ---------------------------------------------------------------


def sent_as_hold(env: Env, _: object) -> None:
    (write,) = env.api.writes()
    assert write.target_status == "Hold"


def applied(env: Env, _: object) -> None:
    assert env.api.item_statuses(env.values["order_id"]) == ["Hold"]


def one_result_one_write(env: Env, results: Any) -> None:
    assert [r["outcome"] for r in results] == ["updated"]
    assert len(env.api.writes()) == 1


def key_accepted(env: Env, _: object) -> None:
    assert [entry.key_check for entry in env.api.journal] == ["ok"]


def outcome_is(outcome: str) -> Callable[[Env, Any], None]:
    def check(env: Env, results: Any) -> None:
        assert [r["outcome"] for r in results] == [outcome]
        assert env.api.writes() == []

    return check


def client_setting(name: str, value: object) -> Callable[[Env, Any], None]:
    def check(env: Env, _: object) -> None:
        assert getattr(GootenHook().client, name) == value

    return check


def sensor_waits_for(*statuses: str) -> Callable[[Env, Any], None]:
    def check(env: Env, waiting: Any) -> None:
        assert waiting.target_statuses == statuses

    return check


def pushed_results(outcome: str) -> Callable[[Env, Any], None]:
    def check(env: Env, _: object) -> None:
        assert [r["outcome"] for r in env.ti.xcoms["return_value"]] == [outcome]

    return check


# -- the catalogue -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Case:
    """One bad input and what it gets.

    :param id: stable id, shown in the doc.
    :param section: the doc section the row is in.
    :param given: the bad input, in Markdown.
    :param where: the public call it is given to, and when it is checked.
    :param run: gives the input; returns what the call returned.
    :param error: the exception class raised (exactly), or ``None`` when the input is accepted.
    :param message: the message template (see the module docstring); for accepted input, a warning or "".
    :param requests: requests the server received; ``None`` when there is no server to count them.
    :param note: what else a user should know.
    :param check: further assertions for accepted input: ``check(env, returned)``.
    :param leaks: what the current message leaks, if anything (a finding, reported for a fix).
    """

    id: str
    section: str
    given: str
    where: str
    run: Callable[[Env], Any]
    error: type[BaseException] | None
    message: str
    requests: int | None
    note: str = ""
    check: Callable[[Env, Any], None] | None = None
    leaks: str = ""


SECTIONS = {
    "status": "Target status",
    "ids": "Order ids",
    "lookup": "Connection: found, and readable",
    "credentials": "Connection: Recipe ID and billing key",
    "host": "Connection: host and port",
    "extras": "Connection: extras",
    "arguments": "Hook and operator arguments",
    "results": "Results files (`results_path`, `read_order_results`)",
    "sensor": "Sensor arguments",
    "gooten": "Gooten's answers",
    "network": "Network",
    "local-api": "The local Gooten API (`gooten_provider.testing`)",
    "export": "Orders export (`GootenOrdersToObjectStorageOperator`)",
    "cancel": "Item cancellation (`GootenHook.cancel_order_items`)",
    "cancel-operator": "Item cancellation operator (`GootenCancelOrderItemsOperator`)",
}

HOOK_UPDATE = "`GootenHook.update_order_status`, before any request"
OPERATOR_PARSE = "`GootenOrderStatusOperator(...)`, when the DAG is parsed"
OPERATOR_RUN = "`GootenOrderStatusOperator.execute`, before any request"
ANY_HOOK_CALL = "any `GootenHook` call (the client is built on first use)"
SENSOR_PARSE = "`GootenOrderStatusSensor(...)`, when the DAG is parsed"
INVALID_STATUS = "Invalid Gooten target status {status}: a status can only be changed to one of " + (
    f"{TARGETS} (matched case-insensitively)."
)
SAFE_ID = (
    "an order id must be a non-empty string, Gooten's Safe ID such as "
    "'115557-b5c97bb2-934d-48aa-9ad2-a565154b5cd4'."
)
CONN_FIELDS = "set both in the connection (Admin > Connections, or AIRFLOW_CONN_GOOTEN_DEFAULT)."
DRY_RUN_WORDS = "Invalid dry_run 'maybe': use true or false (a boolean, or text such as 'true' or 'false')."
OUTCOME_UNKNOWN = (
    "the change may or may not have been applied. Read the order to find out before sending it again."
)


def _results_on_a_full_disk(env: Env) -> Any:
    env.monkeypatch.setattr(results, "WRITE_RETRY_SECONDS", 0.2)
    with small_disk(Path(tempfile.mkdtemp(prefix="gooten-errors-")) / "disk") as disk:
        disk.fill()
        return execute(env, order_ids=env.order(), results_path=disk.path.as_uri())


def _retry_over_a_damaged_line(env: Env) -> Any:
    folder = Path(tempfile.mkdtemp(prefix="gooten-errors-")) / "results" / "attempt-001-20260101T000000Z"
    folder.mkdir(parents=True)
    (folder / "records.jsonl").write_bytes(b'{"order_id": "1-a", "outc{"order_id": "1-b"}\n')
    return execute(env, order_ids=env.order("Hold"), results_path=folder.parent.as_uri())


def _read_incomplete_results(env: Env) -> Any:
    root = Path(tempfile.mkdtemp(prefix="gooten-errors-")) / "results"
    (root / "attempt-001-20260101T000000Z").mkdir(parents=True)
    summary = {"total": 1, "results_path": root.as_uri(), "attempt": "attempt-001-20260101T000000Z"}
    return list(read_order_results(summary))


def outcome_in_summary(outcome: str) -> Callable[[Env, Any], None]:
    def check(env: Env, summary: Any) -> None:
        assert [r["outcome"] for r in read_order_results(summary)] == [outcome]
        assert env.api.writes() == []

    return check


def _connection_variable(env: Env, value: str) -> None:
    """Set ``AIRFLOW_CONN_GOOTEN_DEFAULT`` to ``value`` as given (not through :meth:`Env.connect`)."""
    env.monkeypatch.setenv("AIRFLOW_CONN_GOOTEN_DEFAULT", value)


def _airflow_fails_building(env: Env) -> Any:
    """A well-formed connection that Airflow 3.0 fails to build: its Fernet fails (as cryptography 51's)."""
    if airflow_at_least("3.1"):
        pytest.skip("Airflow 3.1+ builds a connection from an environment variable without Fernet")
    from airflow.models import crypto

    env.monkeypatch.setattr(crypto, "_fernet", None)  # Airflow caches its Fernet: built again, with this key
    env.monkeypatch.setenv("AIRFLOW__CORE__FERNET_KEY", "not-a-fernet-key")
    return GootenHook().get_order_status(env.order())


def _local_api_on_a_busy_port(env: Env) -> Any:
    with socket.create_server(("127.0.0.1", 0)) as taken:
        return GootenApiServer(port=taken.getsockname()[1]).start()


def _bad_port_with_key(env: Env) -> Any:
    env.connect(host=f"https://api.print.io:443x/api/orderstatus?partnerBillingKey={env.api.billing_key}")
    return GootenHook().get_order_status(env.order())


def _had_error(env: Env) -> Any:
    order_id = env.order()
    env.api.inject_faults(order_id, "refused", method="POST")
    return GootenHook().update_order_status(order_id, "Hold")


def _with_extra_text(env: Env, extra: str) -> Any:
    env.connect(extra=extra)
    try:
        hook = GootenHook()
        hook._connection  # noqa: B018 (look the connection up)
    except AirflowNotFoundException:  # Airflow 3.0 refuses such a connection itself, before the hook
        pytest.skip("this Airflow does not load a connection whose extra is not a JSON object")
    return hook.get_order_status(env.order())


def _with_extra(extra: dict[str, Any], run: Callable[[Env], Any]) -> Callable[[Env], Any]:
    def with_extra(env: Env) -> Any:
        env.connect(extra=extra)
        return run(env)

    return with_extra


def _faulty_read(*faults: str) -> Callable[[Env], Any]:
    def run(env: Env) -> Any:
        order_id = env.order()
        env.api.inject_faults(order_id, *faults, method="GET")
        return GootenHook().get_order_status(order_id)

    return run


def _faulty_write(*faults: str) -> Callable[[Env], Any]:
    def run(env: Env) -> Any:
        order_id = env.order()
        env.api.inject_faults(order_id, *faults, method="POST")
        return GootenHook().update_order_status(order_id, "Hold")

    return run


def _tampered_trigger(env: Env) -> Any:
    """Run the sensor's trigger from kwargs edited in Airflow's database; resume the sensor with its event."""
    order_id = env.order()
    waiting = sensor(order_id=order_id, deferrable=True)
    _, kwargs = GootenOrderStatusTrigger(
        order_ids=[order_id], target_statuses=["Shipped"], end_time=time.time() + 60
    ).serialize()
    tampered = GootenOrderStatusTrigger(**{**kwargs, "end_time": float("nan")})
    event = asyncio.run(asyncio.wait_for(tampered.run().asend(None), 30))
    return waiting.execute_complete({}, event.payload)


def _timeout(run: Callable[[Env], Any]) -> Callable[[Env], Any]:
    def with_short_timeout(env: Env) -> Any:
        env.connect(extra={"timeout": 0.2})
        return run(env)

    return with_short_timeout


EXPORT_PARSE = "`GootenOrdersToObjectStorageOperator(...)`, when the DAG is parsed"
EXPORT_RUN = "`GootenOrdersToObjectStorageOperator.execute`, before any request"
#: A day of orders, for export cases whose bad input is elsewhere.
EXPORT_DAY = {"created_from": "2025-03-01", "created_to": "2025-03-01"}
_MIDNIGHT = dt.datetime(2025, 3, 1, tzinfo=dt.UTC)


def export_operator(**kwargs: Any) -> GootenOrdersToObjectStorageOperator:
    kwargs.setdefault("output_path", "file:///tmp/gooten-catalogue-export/")
    return GootenOrdersToObjectStorageOperator(task_id="export", **kwargs)


def run_export(context: dict[str, Any] | None = None, **kwargs: Any) -> dict[str, Any]:
    return export_operator(**kwargs).execute(context or {})  # type: ignore[arg-type]


EXPORT_CASES: tuple[Case, ...] = (
    Case(
        "export-window-backwards",
        "export",
        '`created_from="2025-03-05", created_to="2025-03-01"`',
        EXPORT_RUN,
        lambda env: run_export(created_from="2025-03-05", created_to="2025-03-01"),
        GootenExportInputError,
        "Invalid window: created_to 2025-03-01 is before created_from 2025-03-05 (both dates are included; "
        "one day is from D to D).",
        0,
        "every export input error is a `GootenExportInputError` (an `AirflowFailException` and a "
        "`ValueError`): the task fails without retries, since a retry would render the same arguments",
    ),
    Case(
        "export-date-format",
        "export",
        '`created_from="03/01/2025"`',
        EXPORT_RUN,
        lambda env: run_export(created_from="03/01/2025", created_to="2025-03-02"),
        GootenExportInputError,
        "Invalid created_from '03/01/2025': give a date as yyyy-mm-dd (such as '2025-03-01').",
        0,
        "a date that does not exist (`2025-02-30`) gets the same message",
    ),
    Case(
        "export-window-too-wide",
        "export",
        '`created_from="2025-01-01", created_to="2025-12-31"`',
        EXPORT_RUN,
        lambda env: run_export(created_from="2025-01-01", created_to="2025-12-31"),
        GootenExportInputError,
        "Window too wide: 2025-01-01 to 2025-12-31 is 365 days, more than max_window_days=92; export it in "
        "smaller windows, or raise max_window_days.",
        0,
    ),
    Case(
        "export-one-date",
        "export",
        '`created_from="2025-03-01"` alone',
        EXPORT_RUN,
        lambda env: run_export(created_from="2025-03-01"),
        GootenExportInputError,
        "created_to is missing: give both created_from and created_to (inclusive dates, yyyy-mm-dd), or "
        "neither to export the run's data interval.",
        0,
    ),
    Case(
        "export-no-data-interval",
        "export",
        "no dates, and a run without a data interval",
        EXPORT_RUN,
        lambda env: run_export(),
        GootenExportInputError,
        "No window: give created_from and created_to (yyyy-mm-dd), since this run has no data interval to "
        "take them from (a manual or asset-triggered run of a DAG without a data-interval schedule).",
        0,
    ),
    Case(
        "export-empty-data-interval",
        "export",
        "no dates, and a run whose data interval is empty (`CronTriggerTimetable`, `@daily` on Airflow 3)",
        EXPORT_RUN,
        lambda env: run_export({"data_interval_start": _MIDNIGHT, "data_interval_end": _MIDNIGHT}),
        GootenExportInputError,
        "No window: this run's data interval is empty (2025-03-01T00:00:00+00:00 to "
        "2025-03-01T00:00:00+00:00), as with a CronTriggerTimetable or an '@daily' schedule on Airflow 3's "
        "defaults: give created_from and created_to (yyyy-mm-dd), or schedule with "
        "CronDataIntervalTimetable('@daily', timezone='UTC').",
        0,
    ),
    Case(
        "export-interval-not-whole-days",
        "export",
        "no dates, and an hourly data interval",
        EXPORT_RUN,
        lambda env: run_export(
            {
                "data_interval_start": _MIDNIGHT + dt.timedelta(hours=6),
                "data_interval_end": _MIDNIGHT + dt.timedelta(hours=7),
            }
        ),
        GootenExportInputError,
        "The run's data_interval_start 2025-03-01T06:00:00+00:00 is not at midnight UTC, and Gooten's "
        "search filters whole dates: give created_from and created_to, or schedule the DAG daily with a "
        "data interval (CronDataIntervalTimetable('@daily', timezone='UTC')).",
        0,
    ),
    Case(
        "export-personal-field",
        "export",
        '`fields=["Id", "ShippingAddress.Email"]`',
        EXPORT_RUN,
        lambda env: run_export(fields=["Id", "ShippingAddress.Email"], **EXPORT_DAY),
        GootenExportInputError,
        "Personal data in fields: 'ShippingAddress.Email' (addresses, e-mail, phone, free-form Meta, artwork "
        "URLs): set include_personal_data=True to export them, knowing that they then land in the lake, or "
        "remove them.",
        0,
        "a path containing personal data (`Items`, which holds `Items.Meta`) is refused the same way",
    ),
    Case(
        "export-unknown-field",
        "export",
        '`fields=["items.status"]`',
        EXPORT_RUN,
        lambda env: run_export(fields=["items.status"], **EXPORT_DAY),
        GootenExportInputError,
        "Unknown field 'items.status': an order has no 'items' (did you mean 'Items'? names are "
        "case-sensitive); it has Id, NiceId, GootenId, SourceId, SouceId, CreatedAt, Items, …",
        0,
    ),
    Case(
        "export-window-as-filter",
        "export",
        '`filters={"start_date": "2025-03-01"}`',
        EXPORT_RUN,
        lambda env: run_export(filters={"start_date": "2025-03-01"}, **EXPORT_DAY),
        GootenExportInputError,
        "filters start_date: give the window as created_from and created_to instead.",
        0,
    ),
    Case(
        "export-unknown-filter",
        "export",
        '`filters={"status": "Shipped"}`',
        EXPORT_RUN,
        lambda env: run_export(filters={"status": "Shipped"}, **EXPORT_DAY),
        GootenExportInputError,
        "Unknown search filter(s) status; allowed: email, last_name, postal_code, unique_user_id, "
        "generic_values, partner_id.",
        0,
        "Gooten's search has no status filter: export, then filter `Items.Status`",
    ),
    Case(
        "export-output-path-no-scheme",
        "export",
        '`output_path="/data/gooten"`',
        EXPORT_RUN,
        lambda env: run_export(output_path="/data/gooten", **EXPORT_DAY),
        GootenExportInputError,
        "Invalid output_path '/data/gooten': use an ObjectStoragePath or a URI with a scheme, such as "
        "'s3://aws_default@lake/gooten/orders/{{ ds }}/' or 'file:///data/gooten/orders/{{ ds }}/'.",
        0,
    ),
    Case(
        "export-output-path-unknown-scheme",
        "export",
        '`output_path="nosuch://lake/gooten/"`',
        EXPORT_RUN,
        lambda env: run_export(output_path="nosuch://lake/gooten/", **EXPORT_DAY),
        GootenExportInputError,
        "Invalid output_path 'nosuch://lake/gooten/': Airflow has no filesystem for its scheme 'nosuch'; "
        "install the provider that registers it (s3: apache-airflow-providers-amazon; gs, gcs: "
        "apache-airflow-providers-google; abfs: apache-airflow-providers-microsoft-azure), or use "
        "file:// (…).",
        0,
        "the cause, Airflow's or fsspec's own words, is in the parentheses",
    ),
    Case(
        "export-page-size",
        "export",
        "`page_size=101`",
        EXPORT_PARSE,
        lambda env: export_operator(page_size=101),
        ValueError,
        "Invalid page_size 101: use a whole number from 1 to 100.",
        0,
        "`orders_per_part` and `max_window_days` take a whole number of at least 1, checked the same way",
    ),
    Case(
        "export-personal-data-flag",
        "export",
        '`include_personal_data="yes"`',
        EXPORT_PARSE,
        lambda env: export_operator(include_personal_data="yes"),
        ValueError,
        "include_personal_data must be True or False, got 'yes'.",
        0,
        "not templated on purpose: exporting personal data is decided in code, not in a trigger form",
    ),
)


CANCEL_BEFORE_REQUEST = "`GootenHook.cancel_order_items`, before any request"
CANCEL_BEFORE_WRITE = "`GootenHook.cancel_order_items`, after reading the order, before any write"
#: The action of the one order's cancellation (the first order of a fresh local API: GootenId 1001).
PUT_CANCEL = "PUT /api/orderCancel (order {order_id}, GootenId 1001: cancel items 100101)"


def _cancel(statuses: str | list[str], item_ids: Any = None, *faults: str) -> Callable[[Env], Any]:
    def run(env: Env) -> Any:
        order_id = env.order(statuses)
        env.api.inject_faults(order_id, *faults, method="PUT")
        return GootenHook().cancel_order_items(order_id, item_ids)

    return run


def cancelled(env: Env, _: object) -> None:
    assert env.api.item_statuses(env.values["order_id"]) == ["Cancelled"]


def nothing_sent(env: Env, plan: Any) -> None:
    assert plan.to_send == () and plan.already_cancelled == (100101,)
    assert [entry.method for entry in env.api.journal] == ["GET"]


CANCEL_CASES: tuple[Case, ...] = (
    Case(
        "cancel-item-ids-not-a-list",
        "cancel",
        '`item_ids="100101"` (one id as text)',
        CANCEL_BEFORE_REQUEST,
        _cancel("Hold", "100101"),
        ValueError,
        "item_ids must be a list of order-item ids (whole numbers such as 200101), or None for every item of "
        "the order; got str '100101'.",
        0,
        "`item_ids=None` cancels every item of the order",
    ),
    Case(
        "cancel-item-ids-empty",
        "cancel",
        "`item_ids=[]`",
        CANCEL_BEFORE_REQUEST,
        _cancel("Hold", []),
        ValueError,
        "item_ids is empty: give the order-item ids to cancel, or None for every item.",
        0,
    ),
    Case(
        "cancel-item-ids-invalid",
        "cancel",
        '`item_ids=[0, "x"]`',
        CANCEL_BEFORE_REQUEST,
        _cancel("Hold", [0, "x"]),
        ValueError,
        "Invalid order-item id(s) 0, 'x': an order-item id is a positive whole number (the OrderItemId of "
        "the item's images in GET order), such as 200101.",
        0,
        'ids given as digits (`"100101"`) are read as numbers',
    ),
    Case(
        "cancel-item-unknown",
        "cancel",
        "an item id the order does not have, `item_ids=[42]`",
        CANCEL_BEFORE_WRITE,
        _cancel("Hold", [42]),
        GootenOrderItemsError,
        "Order {order_id} has no item(s) 42; its order-item ids are 100101. Nothing was cancelled.",
        1,
        "also a `ValueError`; an item's id is the `OrderItemId` of its `Images` in GET order (the only item "
        "id Gooten's order JSON shows)",
    ),
    Case(
        "cancel-items-ineligible",
        "cancel",
        "an item in a status no cancellation is allowed from (`InProduction`)",
        CANCEL_BEFORE_WRITE,
        _cancel(["Hold", "InProduction"]),
        GootenItemsNotCancellableError,
        "Cannot cancel: order {order_id}: item(s) 100102 (InProduction) are in a status Gooten allows no "
        "item cancellation from; it allows one only from AccountingIssue, AddressIssue, Hold, "
        "HoldByCIImageIssue, ImageIssue, NeedsManualApproval, NeedsPersonalization, New, Pending, "
        "ReadyForAccounting, ReadyForImageDl. Nothing was sent.",
        1,
        "nothing is sent, not even for the items that could be cancelled: name those in `item_ids`",
    ),
    Case(
        "cancel-already-cancelled",
        "cancel",
        "an order whose items are all cancelled already",
        "`GootenHook.cancel_order_items`",
        _cancel("Cancelled"),
        None,
        "",
        1,
        "not an error: the order is read and nothing is sent (`to_send` is empty, `already_cancelled` names "
        "the items); Gooten would refuse to cancel a cancelled item",
        check=nothing_sent,
    ),
    Case(
        "cancel-had-error",
        "cancel",
        'Gooten refuses the cancellation (`"HadError": true`)',
        "`GootenHook.cancel_order_items`",
        _cancel("Hold", None, "refused"),
        GootenApiError,
        f"Gooten refused {PUT_CANCEL}: id: The order could not be updated at this time. "
        "(ErrorReferenceCode …)",
        2,
        "one read, one write, not sent again; Gooten's `Errors` follow the colon",
    ),
    Case(
        "cancel-5xx",
        "cancel",
        "HTTP 500 to the cancellation",
        "`GootenHook.cancel_order_items`",
        _cancel("Hold", None, "500"),
        GootenOutcomeUnknownError,
        f"Gooten answered HTTP 500 to {PUT_CANCEL}; {OUTCOME_UNKNOWN}",
        2,
        "never re-sent blindly: read the order (`items_cancelled`, `gooten_provider.order_cancel_decision`)",
    ),
    Case(
        "cancel-response-lost",
        "cancel",
        "the connection reset after the cancellation was applied",
        "`GootenHook.cancel_order_items`",
        _cancel("Hold", None, "lost_response"),
        GootenOutcomeUnknownError,
        f"{PUT_CANCEL}: the connection broke before an answer (ConnectionResetError); {OUTCOME_UNKNOWN}",
        2,
        "here it was applied; calling `cancel_order_items` again reads the order and sends nothing for items "
        "already cancelled",
        check=cancelled,
    ),
)


CANCEL_OPERATOR_PARSE = "`GootenCancelOrderItemsOperator(...)`, when the DAG is parsed"
CANCEL_OPERATOR_RUN = "`GootenCancelOrderItemsOperator.execute`, before any request"


def cancel_operator(**kwargs: Any) -> GootenCancelOrderItemsOperator:
    kwargs.setdefault("task_id", "cancel_items")
    return GootenCancelOrderItemsOperator(**kwargs)


def execute_cancel(env: Env, item_ids: Any = None, statuses: str | list[str] = "Hold", **kwargs: Any) -> Any:
    """Cancel the items of one order; ``item_ids`` given as rendered (``"{order_id}"`` keys filled in)."""
    order_id = env.order(statuses)
    op = cancel_operator(order_ids=[order_id], **kwargs)
    if isinstance(item_ids, dict):
        item_ids = {key.format(order_id=order_id): value for key, value in item_ids.items()}
    op.item_ids = item_ids  # as a template or an XComArg would give it
    return op.execute({"ti": env.ti})


CANCEL_OPERATOR_CASES: tuple[Case, ...] = (
    Case(
        "cancel-operator-item-ids-not-a-mapping",
        "cancel-operator",
        "`item_ids=[100101]` (a list, not a mapping per order)",
        CANCEL_OPERATOR_PARSE,
        lambda env: cancel_operator(order_ids=env.order(), item_ids=[100101]),
        ValueError,
        "cancel_items: item_ids must map each order id (Safe ID) to the order-item ids to cancel (a list, or "
        "None for every item of that order), or be None for every item of every order; got list [100101].",
        0,
        "the same at run time for a template or an `XComArg` that renders to it; text is read as JSON or "
        "a dict literal (what Jinja renders of a dict)",
    ),
    Case(
        "cancel-operator-item-ids-stranger",
        "cancel-operator",
        "`item_ids` naming an order that is not in `order_ids`",
        CANCEL_OPERATOR_RUN,
        lambda env: execute_cancel(env, {"{order_id}": None, SAFE_A.upper(): [100101]}),
        ValueError,
        f"cancel_items: item_ids names order(s) not in order_ids: {SAFE_A.upper()}. Give item ids only "
        "for the orders to cancel, or add these orders to order_ids.",
        0,
        "order ids are matched ignoring letter case",
    ),
    Case(
        "cancel-operator-item-ids-missing-order",
        "cancel-operator",
        "`item_ids` with no entry for an order of `order_ids`",
        CANCEL_OPERATOR_RUN,
        lambda env: _cancel_naming_one_of_two(env),
        ValueError,
        "cancel_items: item_ids has no entry for order(s) {order_id}. Name every order of order_ids in "
        "item_ids, with None to cancel every item of an order (nothing is cancelled by default).",
        0,
        "a cancellation cannot be undone, so an order left out is not taken to mean all its items",
    ),
    Case(
        "cancel-operator-item-ids-invalid",
        "cancel-operator",
        "`item_ids={order: []}` (no ids for an order)",
        CANCEL_OPERATOR_RUN,
        lambda env: execute_cancel(env, {"{order_id}": []}),
        ValueError,
        "cancel_items: item_ids of order {order_id}: item_ids is empty: give the order-item ids to cancel, "
        "or None for every item.",
        0,
        "`None` for an order cancels every item of it",
    ),
    Case(
        "cancel-operator-item-unknown",
        "cancel-operator",
        "an item id the order does not have",
        "`GootenCancelOrderItemsOperator.execute`",
        lambda env: execute_cancel(env, {"{order_id}": [42]}),
        AirflowException,
        "1 of 1 Gooten order(s) could not have their items cancelled:\n  {order_id} (failed): could not "
        "read the order: Order {order_id} has no item(s) 42; its order-item ids are 100101. Nothing was "
        "cancelled.",
        2,
        "the order ends `failed` after one read (and the credentials check); nothing is sent",
    ),
    Case(
        "cancel-operator-ineligible-strict",
        "cancel-operator",
        "an item past cancelling (`Shipped`), with `fail_on_ineligible=True`",
        "`GootenCancelOrderItemsOperator.execute`",
        lambda env: execute_cancel(env, None, ["Hold", "Shipped"], fail_on_ineligible=True),
        AirflowFailException,
        "1 of 1 Gooten order(s) could not have their items cancelled:\n  {order_id} (ineligible): order "
        "{order_id}: item(s) 100102 (Shipped) are in a status Gooten allows no item cancellation from; it "
        "allows one only from AccountingIssue, …",
        2,
        "without `fail_on_ineligible` the order ends `ineligible` and the task succeeds; nothing is sent, "
        "not even for the held item",
        check=pushed_results("ineligible"),
    ),
)


def _cancel_naming_one_of_two(env: Env) -> Any:
    named = env.api.add_order(statuses="Hold")["Id"]
    op = cancel_operator(order_ids=[named, env.order("Hold")])
    op.item_ids = {named: None}
    return op.execute({"ti": env.ti})


CASES: tuple[Case, ...] = (
    # -- target status ---------------------------------------------------------------------------------
    Case(
        "status-unknown",
        "status",
        'an unknown status, `"Paused"`',
        HOOK_UPDATE,
        lambda env: GootenHook().update_order_status(env.order(), "Paused"),
        ValueError,
        INVALID_STATUS.format(status="'Paused'"),
        0,
    ),
    Case(
        "status-other-spelling",
        "status",
        '`status="Canceled"` (another spelling, found in some of Gooten\'s documents)',
        OPERATOR_PARSE,
        lambda env: operator(order_ids=env.order(), status="Canceled"),
        ValueError,
        INVALID_STATUS.format(status="'Canceled'") + " Did you mean 'Cancelled'?",
        0,
        "the sensor has the same rule (`sensor-target-canceled`); a close typo gets the suggestion too "
        '(`"Hld"`: `Hold`)',
    ),
    Case(
        "status-unknown-operator",
        "status",
        'an unknown status, `status="Paused"`',
        OPERATOR_PARSE,
        lambda env: operator(order_ids=env.order(), status="Paused"),
        ValueError,
        INVALID_STATUS.format(status="'Paused'"),
        0,
        "a literal status is checked at parse time, so the DAG shows an import error",
    ),
    Case(
        "status-templated-invalid",
        "status",
        '`status="{{ params.status }}"` rendering to `"Paused"`',
        OPERATOR_RUN,
        lambda env: execute_rendered(
            env, {"status": "Paused"}, order_ids=env.order(), status="{{ params.status }}"
        ),
        ValueError,
        INVALID_STATUS.format(status="'Paused'"),
        0,
        "a templated status is checked once rendered, before any order is read",
    ),
    Case(
        "status-wrong-case",
        "status",
        'a wrongly cased status, `"hOLD"`',
        "`GootenHook.update_order_status`",
        lambda env: GootenHook().update_order_status(env.order(), "hOLD"),
        None,
        "",
        1,
        "not an error: matched case-insensitively and sent as `Hold`",
        check=sent_as_hold,
    ),
    Case(
        "status-not-a-target",
        "status",
        'a real status that cannot be set, `"Shipped"`',
        HOOK_UPDATE,
        lambda env: GootenHook().update_order_status(env.order(), "Shipped"),
        ValueError,
        INVALID_STATUS.format(status="'Shipped'"),
        0,
        "Gooten's API sets only Cancelled, New, Test and Hold",
    ),
    Case(
        "status-not-a-target-operator",
        "status",
        '`status="Shipped"`',
        OPERATOR_PARSE,
        lambda env: operator(order_ids=env.order(), status="Shipped"),
        ValueError,
        INVALID_STATUS.format(status="'Shipped'"),
        0,
    ),
    Case(
        "status-empty",
        "status",
        'an empty status, `""`',
        HOOK_UPDATE,
        lambda env: GootenHook().update_order_status(env.order(), ""),
        ValueError,
        INVALID_STATUS.format(status="''"),
        0,
    ),
    Case(
        "status-none",
        "status",
        "`status=None`",
        OPERATOR_PARSE,
        lambda env: operator(order_ids=env.order(), status=None),
        ValueError,
        INVALID_STATUS.format(status="None"),
        0,
    ),
    Case(
        "status-not-a-string",
        "status",
        "a status that is not a string, `1`",
        HOOK_UPDATE,
        lambda env: GootenHook().update_order_status(env.order(), 1),
        ValueError,
        INVALID_STATUS.format(status="1"),
        0,
    ),
    # -- order ids -------------------------------------------------------------------------------------
    Case(
        "order-id-empty",
        "ids",
        'a blank order id, `"  "` (or `""`)',
        "`GootenHook.get_order_status`, before any request",
        lambda env: GootenHook().get_order_status("  "),
        ValueError,
        "Invalid Gooten order id '': an order id must be a non-empty string.",
        0,
    ),
    Case(
        "order-id-none",
        "ids",
        "`None` as an order id",
        "`GootenHook.get_order`, before any request",
        lambda env: GootenHook().get_order(None),
        ValueError,
        f"Invalid Gooten order id None (NoneType): {SAFE_ID}",
        0,
    ),
    Case(
        "order-id-not-a-string",
        "ids",
        "an order id that is not a string, `115557`",
        HOOK_UPDATE,
        lambda env: GootenHook().update_order_status(115557, "Hold"),
        ValueError,
        f"Invalid Gooten order id 115557 (int): {SAFE_ID}",
        0,
    ),
    Case(
        "order-ids-none",
        "ids",
        "`order_ids=None`",
        OPERATOR_PARSE,
        lambda env: operator(order_ids=None),
        ValueError,
        "set_status: order_ids is required: one order id or a list of them.",
        0,
    ),
    Case(
        "order-ids-none-from-xcom",
        "ids",
        "`order_ids` resolving to `None` at run time (an upstream task returned nothing)",
        OPERATOR_RUN,
        lambda env: execute_with_ids(env, None),
        ValueError,
        "set_status: order_ids: No order ids given (None): pass one order id or a list of them.",
        0,
    ),
    Case(
        "order-ids-template-none",
        "ids",
        '`order_ids="{{ params.ids }}"` with `ids` set to `None`',
        "`GootenOrderStatusOperator.execute`",
        lambda env: execute_rendered(env, {"ids": None}, order_ids="{{ params.ids }}"),
        ValueError,
        "set_status: order_ids: "
        "Invalid Gooten order id 'None': it is what a template or a serialiser writes for a missing value.",
        0,
        "Jinja renders `None` as the text `None`; it is refused rather than read from Gooten as an order id; "
        "so are `none`, `null`, `undefined`, `nan` and `nil` in any case, alone or in a list",
    ),
    Case(
        "order-ids-item-not-a-string",
        "ids",
        '`order_ids=["<id>", 42]`',
        OPERATOR_RUN,
        lambda env: execute(env, order_ids=[env.order(), 42]),
        ValueError,
        f"set_status: order_ids: Invalid Gooten order id 42 (int): {SAFE_ID}",
        0,
        "one bad id fails the whole task before any order is read",
    ),
    Case(
        "order-ids-item-empty",
        "ids",
        '`order_ids=["<id>", ""]`',
        OPERATOR_RUN,
        lambda env: execute(env, order_ids=[env.order(), ""]),
        ValueError,
        "set_status: order_ids: Invalid Gooten order id '': an order id must be a non-empty string.",
        0,
    ),
    Case(
        "order-ids-not-a-list",
        "ids",
        '`order_ids={"id": "1-a"}` (neither a string nor a list)',
        OPERATOR_RUN,
        lambda env: execute(env, order_ids={"id": "1-a"}),
        ValueError,
        "set_status: order_ids: "
        "Invalid order ids {'id': '1-a'} (dict): pass one order id (a string) or a list of them.",
        0,
    ),
    Case(
        "order-ids-bad-list-literal",
        "ids",
        "a rendered template that looks like a list but is not one, `\"['1-a', \"`",
        OPERATOR_RUN,
        lambda env: execute(env, order_ids="['1-a', "),
        ValueError,
        "set_status: order_ids: "
        "Invalid order ids \"['1-a', \": it looks like a list but is not a valid list literal.",
        0,
    ),
    Case(
        "order-ids-empty",
        "ids",
        "`order_ids=[]`",
        OPERATOR_RUN,
        lambda env: execute(env, order_ids=[]),
        AirflowSkipException,
        "No order ids given: nothing to change, so the task is skipped.",
        0,
        "the task is skipped, not failed",
    ),
    Case(
        "order-ids-duplicates",
        "ids",
        'duplicate ids, `["<id>", "<id>", " <id> "]`',
        "`GootenOrderStatusOperator.execute`",
        lambda env: execute(env, order_ids=[(order_id := env.order()), order_id, f" {order_id} "]),
        None,
        "",
        3,
        "not an error: duplicates (after stripping blanks) are dropped, first occurrence first; "
        "one record, one read, one write (and the credentials check every real run starts with)",
        check=one_result_one_write,
    ),
    Case(
        "order-ids-duplicates-letter-case",
        "ids",
        'ids that differ only in letter case, `["<id>", "<ID>"]`',
        "`GootenOrderStatusOperator.execute`",
        lambda env: execute(env, order_ids=[(order_id := env.order()), order_id.upper()]),
        None,
        "",
        3,
        "not an error: a Safe ID's GUID is case-insensitive, so they are one order: one record, one write",
        check=one_result_one_write,
    ),
    Case(
        "order-ids-missing-value-in-list",
        "ids",
        '`order_ids=["<id>", "undefined"]` (what a JavaScript or JSON step writes for a missing value)',
        OPERATOR_RUN,
        lambda env: execute(env, order_ids=[env.order(), "undefined"]),
        ValueError,
        "set_status: order_ids: "
        "Invalid Gooten order id 'undefined': it is what a template or a serialiser writes for a missing "
        "value.",
        0,
        "one bad id fails the whole task before any order is read",
    ),
    Case(
        "order-ids-unrendered-template",
        "ids",
        "`order_ids` resolving to an unrendered `\"{{ ti.xcom_pull('ids') }}\"` (e.g. passed through "
        "`params`, which are not rendered)",
        OPERATOR_RUN,
        lambda env: execute_with_ids(env, "{{ ti.xcom_pull('ids') }}"),
        ValueError,
        "set_status: order_ids: "
        "Invalid Gooten order id '{{ ti.xcom_pull('ids') }}': it is an unrendered template: is it in a field "
        "that is not templated, or in params?.",
        0,
    ),
    Case(
        "order-ids-set-literal",
        "ids",
        "a rendered set literal, `\"{'<id>', '<id2>'}\"`",
        OPERATOR_RUN,
        lambda env: execute_with_ids(env, f"{{'{SAFE_A}', '{SAFE_B}'}}"),
        ValueError,
        "set_status: order_ids: "
        "Invalid order ids …: a set literal; pass a list, such as ['1-a', '1-b'] (a set has no order, so "
        "results would not follow the input).",
        0,
        "a Python `set` given directly is refused the same way",
    ),
    Case(
        "order-ids-space-separated",
        "ids",
        'ids in one string separated by spaces, `"<id> <id2>"`',
        OPERATOR_RUN,
        lambda env: execute(env, order_ids=f"{SAFE_A} {SAFE_B}"),
        ValueError,
        "set_status: order_ids: "
        f"Invalid Gooten order id '{SAFE_A} {SAFE_B}': it looks like 2 ids joined by spaces, tabs, ';' or "
        "'|'; separate ids with commas or newlines, or pass a list.",
        0,
        "tabs, `;` and `|` get the same hint; commas and newlines split",
    ),
    Case(
        "order-id-zero-width",
        "ids",
        "an id with an invisible character (a zero-width space copied from a document)",
        OPERATOR_RUN,
        lambda env: execute(env, order_ids=[SAFE_A + "\u200b"]),
        ValueError,
        "set_status: order_ids: "
        f"Invalid Gooten order id '{SAFE_A}\\u200b': it holds U+200B ZERO WIDTH SPACE at position 44; an "
        "order id has no blanks, control or invisible characters (was it copied from a document or a "
        "spreadsheet?).",
        0,
        "control characters, a BOM and lone surrogates are refused the same way; the message shows them "
        "escaped, so logging it cannot fail",
    ),
    Case(
        "order-id-lone-surrogate",
        "ids",
        "an id with a lone surrogate (broken UTF-16 from an upstream system)",
        OPERATOR_RUN,
        lambda env: execute(env, order_ids=[SAFE_A + "\ud800"]),
        ValueError,
        "set_status: order_ids: "
        f"Invalid Gooten order id '{SAFE_A}\\ud800': it holds U+D800 a lone surrogate at position 44; …",
        0,
    ),
    Case(
        "order-id-not-a-safe-id",
        "ids",
        'an id without the Safe ID shape, `"1-a"`',
        OPERATOR_RUN,
        lambda env: execute(env, order_ids=["1-a"]),
        ValueError,
        "set_status: order_ids: "
        "Invalid Gooten order id '1-a': it does not have the shape of a Gooten Safe ID, the order number, a "
        "dash and a GUID, such as '115557-b5c97bb2-934d-48aa-9ad2-a565154b5cd4'. If your account's ids have "
        "another shape, turn this check off (check_order_ids=False).",
        0,
        "with `check_order_ids=False` any id without blanks, control or invisible characters is sent",
    ),
    Case(
        "order-id-unknown",
        "ids",
        "an order id Gooten does not know",
        "`GootenHook.get_order_status`",
        lambda env: GootenHook().get_order_status(env.no_such_order()),
        GootenApiError,
        f"Gooten refused {GET_ORDER}: id: Order not found.…",
        1,
    ),
    Case(
        "order-id-unknown-operator",
        "ids",
        "an order id Gooten does not know",
        "`GootenOrderStatusOperator.execute`",
        lambda env: execute(env, order_ids=env.no_such_order()),
        AirflowException,
        "1 of 1 Gooten order(s) could not be set to Hold:\n  {order_id} (failed): could not read the order: "
        f"Gooten refused {GET_ORDER}: id: Order not found.…",
        2,
        "every order is attempted; the task fails at the end, after pushing one record per order to XCom",
        check=pushed_results("failed"),
    ),
    Case(
        "order-past-changeable",
        "ids",
        "an order Gooten can no longer change (`Shipped`, `InProduction`, `Hold`, ...)",
        "`GootenOrderStatusOperator.execute`",
        lambda env: execute(env, order_ids=env.order("Shipped")),
        None,
        "",
        2,
        "not an error by default: the order ends `ineligible` with a warning and is not written",
        check=outcome_is("ineligible"),
    ),
    Case(
        "order-past-changeable-strict",
        "ids",
        "the same, with `fail_on_ineligible=True`",
        "`GootenOrderStatusOperator.execute`",
        lambda env: execute(env, order_ids=env.order("Shipped"), fail_on_ineligible=True),
        AirflowFailException,
        "1 of 1 Gooten order(s) could not be set to Hold:\n  {order_id} (ineligible): items are Shipped; "
        "Gooten allows a change only from AccountingIssue, …",
        2,
        "`AirflowFailException`: the task is not retried, since a retry cannot make the order eligible",
        check=pushed_results("ineligible"),
    ),
    Case(
        "order-past-changeable-hook",
        "ids",
        "an order Gooten can no longer change",
        "`GootenHook.update_order_status` (no read first)",
        lambda env: GootenHook().update_order_status(env.order("Shipped"), "Hold"),
        GootenApiError,
        f"Gooten refused {POST_STATUS}: orderStatusName: Order status cannot be updated from 'Shipped'.…",
        1,
        "Gooten's `HadError` answer; the message after the colon is Gooten's",
    ),
    # -- connection: credentials -------------------------------------------------------------------------
    # -- connection: lookup ------------------------------------------------------------------------------
    Case(
        "conn-missing",
        "lookup",
        "a connection id that is defined nowhere, in a script or test (not in a task)",
        ANY_HOOK_CALL,
        lambda env: GootenHook("gooten_missing").get_order_status(env.order()),
        AirflowNotFoundException,
        "The conn_id `gooten_missing` isn't defined. Outside a running Airflow task (a plain script, a "
        "notebook), Airflow 3.1+ reads connections only from environment variables and secrets backends, "
        "not from those saved in its database (Admin > Connections): set AIRFLOW_CONN_GOOTEN_MISSING, e.g. "
        f"{JSON_FORM}, or run the code in a task (airflow dags test).",
        0,
        "Airflow's error, with what to check; inside a task the hint is `Add it in Admin > Connections, "
        "or set AIRFLOW_CONN_<ID>.`",
    ),
    Case(
        "conn-uri-key-not-encoded",
        "lookup",
        "a connection URI with the billing key not percent-encoded (`gooten://<recipe>:<key with + / =>@`)",
        ANY_HOOK_CALL,
        lambda env: (
            _connection_variable(env, f"gooten://{env.api.recipe_id}:{env.api.billing_key}@")
            or GootenHook().get_order_status(env.order())
        ),
        AirflowNotFoundException,
        "The conn_id `gooten_default` isn't defined. AIRFLOW_CONN_GOOTEN_DEFAULT is set, but Airflow could "
        "not read it (ValueError), so it skipped it: its host part ends in a port that is not a number (an "
        "unencoded '/' in the key ends it there). In a connection URI every special character of the billing "
        "key must be percent-encoded (+ / = as %2B %2F %3D; urllib.parse.quote(key, safe='')), or use the "
        f"JSON form, which needs no encoding: {JSON_FORM}.",
        0,
        "the `/` in the key ends the URI's host part; Airflow skips the variable without a word",
    ),
    Case(
        "conn-json-broken",
        "lookup",
        "`AIRFLOW_CONN_GOOTEN_DEFAULT` holding JSON that does not parse",
        ANY_HOOK_CALL,
        lambda env: (
            _connection_variable(env, '{"conn_type": "gooten", "login": "r",')
            or GootenHook().get_order_status(env.order())
        ),
        AirflowNotFoundException,
        "The conn_id `gooten_default` isn't defined. AIRFLOW_CONN_GOOTEN_DEFAULT is set, but Airflow could "
        "not read it (JSONDecodeError), so it skipped it: it is not valid JSON (Expecting property name "
        "enclosed in double quotes at line 1, column 38). It must be one JSON object, with extra (if any) an "
        f"object too, e.g. {JSON_FORM}.",
        0,
    ),
    Case(
        "conn-airflow-fails-building",
        "lookup",
        "on Airflow 3.0, a well-formed `AIRFLOW_CONN_GOOTEN_DEFAULT` that Airflow fails to build "
        "(cryptography 51 with Airflow 3.0.0, for every connection with a password; here a Fernet key "
        "Fernet refuses)",
        ANY_HOOK_CALL,
        _airflow_fails_building,
        AirflowNotFoundException,
        "The conn_id `gooten_default` isn't defined. AIRFLOW_CONN_GOOTEN_DEFAULT is set and well-formed, but "
        "Airflow failed building the connection from it (…), so it skipped it. That is a fault inside "
        "Airflow, not in the connection: usually a dependency at a version this Airflow was not tested with "
        "(Airflow 3.0.0 with cryptography 51 fails so for every connection with a password). Install Airflow "
        "with its constraints file, or pin the dependency (cryptography<51 on Airflow 3.0): see 'Which "
        f"Airflow versions' in {doc_url('installation.md')}.",
        0,
        "the error type in brackets is Airflow's (`AttributeError` with cryptography 51); Airflow 3.1+ "
        "builds a connection from a variable without Fernet, so it has no such failure",
    ),
    Case(
        "conn-no-recipe-id",
        "credentials",
        "no Recipe ID (empty `login`)",
        ANY_HOOK_CALL,
        lambda env: env.connect(login=None) or GootenHook().get_order_status(env.order()),
        GootenConfigurationError,
        f"Gooten connection 'gooten_default' has no login (Recipe ID): {CONN_FIELDS}",
        0,
    ),
    Case(
        "conn-no-key",
        "credentials",
        "no Partner Billing Key (empty `password`)",
        ANY_HOOK_CALL,
        lambda env: env.connect(password="  ") or GootenHook().get_order_status(env.order()),
        GootenConfigurationError,
        f"Gooten connection 'gooten_default' has no password (Partner Billing Key): {CONN_FIELDS}",
        0,
    ),
    Case(
        "conn-key-pre-encoded",
        "credentials",
        "the key stored URL-encoded (`%2B` for `+`, ...)",
        ANY_HOOK_CALL,
        lambda env: (
            env.connect(password=quote(env.api.billing_key, safe=""))
            or GootenHook().update_order_status(env.order(), "Hold")
        ),
        None,
        "The Partner Billing Key looks URL-encoded already; it was decoded once so that it is sent encoded "
        "exactly once. Store the key as Gooten shows it (unencoded) to silence this warning.",
        1,
        "works, with this warning logged: the key is decoded once and sent encoded once",
        check=key_accepted,
    ),
    Case(
        "conn-key-double-encoded",
        "credentials",
        "the key stored URL-encoded twice (`%252B`)",
        "`GootenHook.update_order_status`",
        lambda env: (
            env.connect(password=quote(quote(env.api.billing_key, safe=""), safe=""))
            or GootenHook().update_order_status(env.order(), "Hold")
        ),
        GootenAuthenticationError,
        f"Gooten refused {POST_STATUS}: partnerBillingKey: Invalid partnerBillingKey. "
        "(ErrorReferenceCode …). Check the connection's password (Partner Billing Key, unencoded, as the "
        "Gooten Admin shows it).",
        1,
        "decoded once (with the warning above), it still reaches Gooten encoded twice",
    ),
    Case(
        "conn-key-wrong",
        "credentials",
        "a wrong billing key",
        "`GootenHook.update_order_status`",
        lambda env: (
            env.connect(password="not-the-key") or GootenHook().update_order_status(env.order(), "Hold")
        ),
        GootenAuthenticationError,
        f"Gooten refused {POST_STATUS}: partnerBillingKey: Invalid partnerBillingKey. "
        "(ErrorReferenceCode …). Check the connection's password (Partner Billing Key, unencoded, as the "
        "Gooten Admin shows it).",
        1,
        "reads of one order need no key, so only writes, searches and `test_connection` notice it",
    ),
    Case(
        "conn-recipe-id-invalid",
        "credentials",
        "a wrong Recipe ID",
        "`GootenHook.get_order_status`",
        lambda env: env.connect(login="not-a-recipe-id") or GootenHook().get_order_status(env.order()),
        GootenAuthenticationError,
        f"Gooten rejected the Recipe ID for {GET_ORDER} ('Invalid recipeId'): check the connection's "
        "login field (Recipe ID, from the Gooten Admin).",
        1,
    ),
    # -- connection: host and port -----------------------------------------------------------------------
    Case(
        "host-plain-http",
        "host",
        "`host=http://api.print.io` (plain http to a host that is not loopback)",
        ANY_HOOK_CALL,
        lambda env: env.connect(host="http://api.print.io") or GootenHook().get_order_status(env.order()),
        GootenConfigurationError,
        "Refusing plain http:// for api.print.io: the Partner Billing Key would travel unencrypted. "
        "Use https://, or http:// only for a loopback host (127.0.0.1, ::1, localhost).",
        0,
    ),
    Case(
        "host-bad-scheme",
        "host",
        "`host=ftp://api.print.io`",
        ANY_HOOK_CALL,
        lambda env: env.connect(host="ftp://api.print.io") or GootenHook().get_order_status(env.order()),
        GootenConfigurationError,
        "Invalid Gooten API base URL ftp://api.print.io: the scheme must be https "
        "(or http for a loopback host).",
        0,
    ),
    Case(
        "host-with-credentials-or-query",
        "host",
        f"a full URL, `https://user:{URL_PASSWORD}@api.print.io/api?recipeid=...`",
        ANY_HOOK_CALL,
        lambda env: (
            env.connect(host=f"https://user:{URL_PASSWORD}@api.print.io/api?recipeid=x")
            or GootenHook().get_order_status(env.order())
        ),
        GootenConfigurationError,
        "Invalid Gooten API base URL https://api.print.io: give only scheme://host[:port], e.g. "
        "https://api.print.io; credentials belong in the connection's fields.",
        0,
        "the message shows only scheme and host",
    ),
    Case(
        "host-bad-port-in-url",
        "host",
        "a URL with a malformed port and the key in its query, "
        "`https://api.print.io:443x/api/orderstatus?partnerBillingKey=<key>`",
        ANY_HOOK_CALL,
        _bad_port_with_key,
        GootenConfigurationError,
        "Invalid Gooten API base URL https://api.print.io:443x: Port could not be cast to integer value as "
        "'443x'; give scheme://host[:port], e.g. https://api.print.io.",
        0,
        "only scheme, host and port are ever shown, never a path, query or user info",
    ),
    Case(
        "host-port-out-of-range",
        "host",
        "`port=70000` (the connection's port field)",
        ANY_HOOK_CALL,
        lambda env: (
            env.connect(host="http://127.0.0.1", port=70000) or GootenHook().get_order_status(env.order())
        ),
        GootenConfigurationError,
        "Invalid Gooten API port 70000: give a port between 1 and 65535.",
        0,
    ),
    Case(
        "host-wrong-path",
        "host",
        "a base URL with a wrong path, `http://127.0.0.1:<port>/v1`",
        "`GootenHook.get_order_status`",
        lambda env: env.connect(host=f"{env.api.base_url}/v1") or GootenHook().get_order_status(env.order()),
        GootenHttpError,
        f"Gooten answered HTTP 404 to {GET_ORDER}: "
        "'<!DOCTYPE html> <html><head><title>404 - Not Found</title>…",
        1,
        "an HTML error page; the path in the message leaves out the base URL's `/v1`",
    ),
    Case(
        "host-no-scheme-plain-http",
        "host",
        "a host without a scheme, `127.0.0.1` and a port, where a plain-HTTP server listens",
        "`GootenHook.update_order_status`",
        lambda env: (
            env.connect(host="127.0.0.1", port=env.api.port)
            or GootenHook().update_order_status(env.order(), "Hold")
        ),
        GootenConnectionError,
        "Could not connect to https://127.0.0.1:… for " + POST_STATUS + " (SSLError); the "
        "request was never "
        "sent. The TLS handshake failed: the connection's host has no scheme, so https was assumed; if the "
        "server speaks plain HTTP (a local API), write http:// in the host.",
        0,
        "a TLS failure comes before the request, so a write there is known not to have been sent (not "
        "'outcome unknown'); it is not retried (a setting, not the network, is wrong)",
    ),
    # -- connection: extras ------------------------------------------------------------------------------
    Case(
        "extra-timeout-not-a-number",
        "extras",
        '`{"timeout": "soon"}`',
        ANY_HOOK_CALL,
        lambda env: env.connect(extra={"timeout": "soon"}) or GootenHook().get_order_status(env.order()),
        GootenConfigurationError,
        "Gooten connection 'gooten_default': extra 'timeout' must be a number of at least 0.001, got 'soon'.",
        0,
    ),
    Case(
        "extra-timeout-zero",
        "extras",
        '`{"timeout": 0}`',
        ANY_HOOK_CALL,
        lambda env: env.connect(extra={"timeout": 0}) or GootenHook().get_order_status(env.order()),
        GootenConfigurationError,
        "Gooten connection 'gooten_default': extra 'timeout' must be a number of at least 0.001, got 0.",
        0,
    ),
    Case(
        "extra-timeout-nan",
        "extras",
        '`{"timeout": "nan"}`',
        ANY_HOOK_CALL,
        lambda env: env.connect(extra={"timeout": "nan"}) or GootenHook().get_order_status(env.order()),
        GootenConfigurationError,
        "Gooten connection 'gooten_default': extra 'timeout' must be a number of at least 0.001, got 'nan'.",
        0,
        '`"inf"` is refused the same way',
    ),
    Case(
        "extra-max-retries-negative",
        "extras",
        '`{"max_retries": -1}`',
        ANY_HOOK_CALL,
        lambda env: env.connect(extra={"max_retries": -1}) or GootenHook().get_order_status(env.order()),
        GootenConfigurationError,
        "Gooten connection 'gooten_default': extra 'max_retries' must be a whole number from 0 to 10, "
        "got -1.",
        0,
    ),
    Case(
        "extra-max-retries-infinite",
        "extras",
        '`{"max_retries": "inf"}`',
        ANY_HOOK_CALL,
        lambda env: env.connect(extra={"max_retries": "inf"}) or GootenHook().get_order_status(env.order()),
        GootenConfigurationError,
        "Gooten connection 'gooten_default': extra 'max_retries' must be a whole number from 0 to 10, "
        "got 'inf'.",
        0,
    ),
    Case(
        "extra-max-retries-fraction",
        "extras",
        '`{"max_retries": 2.5}`',
        ANY_HOOK_CALL,
        lambda env: env.connect(extra={"max_retries": 2.5}) or GootenHook().get_order_status(env.order()),
        GootenConfigurationError,
        "Gooten connection 'gooten_default': extra 'max_retries' must be a whole number from 0 to 10, "
        "got 2.5.",
        0,
    ),
    Case(
        "extra-max-retries-huge",
        "extras",
        '`{"max_retries": 1e9}`',
        ANY_HOOK_CALL,
        lambda env: env.connect(extra={"max_retries": 1e9}) or GootenHook().get_order_status(env.order()),
        GootenConfigurationError,
        "Gooten connection 'gooten_default': extra 'max_retries' must be a whole number from 0 to 10, "
        "got 1000000000.0.",
        0,
        "more retries only make a dead host take longer to report",
    ),
    Case(
        "extra-not-an-object",
        "extras",
        "an extra that is JSON but not an object, `[30, 3]`",
        ANY_HOOK_CALL,
        lambda env: _with_extra_text(env, "[30, 3]"),
        GootenConfigurationError,
        "Gooten connection 'gooten_default': the extra must be a JSON object such as "
        '{"timeout": 30, "max_retries": 3}, got a JSON list.',
        0,
        "a JSON string or number is refused the same way",
    ),
    Case(
        "extra-backoff-not-a-number",
        "extras",
        '`{"backoff_factor": "x"}`',
        ANY_HOOK_CALL,
        lambda env: env.connect(extra={"backoff_factor": "x"}) or GootenHook().get_order_status(env.order()),
        GootenConfigurationError,
        "Gooten connection 'gooten_default': extra 'backoff_factor' must be a number of at least 0, got 'x'.",
        0,
    ),
    Case(
        "extra-misspelt",
        "extras",
        'a misspelt extra, `{"timout": 3}`',
        ANY_HOOK_CALL,
        lambda env: (
            env.connect(extra={"timout": 3}, only_extra=True) or GootenHook().get_order_status(env.order())
        ),
        None,
        "Gooten connection 'gooten_default': ignoring unknown extra(s) timout; known extras: timeout, "
        "max_retries, backoff_factor, adaptive_rate, throttle_timeout, rate_limit_conn_id, admin_order_url.",
        1,
        "not an error, a warning: the extra is ignored, so the default timeout (30 s) applies",
        check=client_setting("timeout", 30.0),
    ),
    Case(
        "extra-rate-limit-conn-missing",
        "extras",
        '`{"rate_limit_conn_id": "gooten_pace"}` naming a connection defined nowhere',
        ANY_HOOK_CALL,
        lambda env: (
            env.connect(extra={"rate_limit_conn_id": "gooten_pace"})
            or GootenHook().get_order_status(env.order())
        ),
        AirflowNotFoundException,
        "The conn_id `gooten_pace` isn't defined. It is the Redis connection of the shared pace "
        "(rate_limit_conn_id of Gooten connection 'gooten_default'): add a connection of type redis with "
        "that id, or unset rate_limit_conn_id.",
        0,
        "`GootenHook(rate_limit_conn_id=\"\")` (or the operator's) turns the extra's shared pace off",
    ),
    Case(
        "extra-rate-limit-conn-not-redis",
        "extras",
        '`{"rate_limit_conn_id": "gooten_pace"}` naming a connection of another type (`http`)',
        ANY_HOOK_CALL,
        lambda env: (
            env.monkeypatch.setenv(
                "AIRFLOW_CONN_GOOTEN_PACE", json.dumps({"conn_type": "http", "host": "127.0.0.1"})
            )
            or env.connect(extra={"rate_limit_conn_id": "gooten_pace"})
            or GootenHook().get_order_status(env.order())
        ),
        GootenConfigurationError,
        "rate_limit_conn_id 'gooten_pace' is a connection of type 'http'; it must be of type 'redis' (host, "
        "port, password, extra db and ssl).",
        0,
        "a Redis connection with no host, a `db` outside 0-15 or an `ssl` that is not true or false is "
        "refused the same way, naming what is wrong; an unreachable Redis is no error (each task paces "
        "itself)",
    ),
    Case(
        "extra-adaptive-rate-not-a-boolean",
        "extras",
        '`{"adaptive_rate": "maybe"}`',
        ANY_HOOK_CALL,
        lambda env: (
            env.connect(extra={"adaptive_rate": "maybe"}) or GootenHook().get_order_status(env.order())
        ),
        GootenConfigurationError,
        "Gooten connection 'gooten_default': extra 'adaptive_rate' must be true or false, got 'maybe'.",
        0,
        '`true`/`false`, `"true"`/`"false"`, `yes`/`no`, `y`/`n`, `on`/`off` and `1`/`0` are accepted '
        "(the same words as the operator's `dry_run`)",
    ),
    Case(
        "extra-throttle-timeout-negative",
        "extras",
        '`{"throttle_timeout": -5}`',
        ANY_HOOK_CALL,
        lambda env: env.connect(extra={"throttle_timeout": -5}) or GootenHook().get_order_status(env.order()),
        GootenConfigurationError,
        "Gooten connection 'gooten_default': extra 'throttle_timeout' must be a number of at least 0, "
        "got -5.",
        0,
    ),
    # -- hook and operator arguments ---------------------------------------------------------------------
    Case(
        "hook-timeout-negative",
        "arguments",
        "`GootenHook(timeout=-1)`",
        ANY_HOOK_CALL,
        lambda env: GootenHook(timeout=-1).get_order_status(env.order()),
        GootenConfigurationError,
        "timeout must be a number of at least 0.001, got -1.",
        0,
    ),
    Case(
        "operator-rate-limit-conn-id-not-text",
        "arguments",
        "`rate_limit_conn_id=3` (not a connection id)",
        OPERATOR_PARSE,
        lambda env: operator(order_ids=env.order(), rate_limit_conn_id=3),
        ValueError,
        "set_status: rate_limit_conn_id must be a connection id (text) or None, got 3.",
        0,
        "the sensor and the export operator check it the same way",
    ),
    Case(
        "hook-max-retries-negative",
        "arguments",
        "`GootenHook(max_retries=-1)`",
        ANY_HOOK_CALL,
        lambda env: GootenHook(max_retries=-1).get_order_status(env.order()),
        GootenConfigurationError,
        "max_retries must be a whole number from 0 to 10, got -1.",
        0,
    ),
    Case(
        "hook-requests-per-second-negative",
        "arguments",
        "`GootenHook(requests_per_second=-1)`",
        ANY_HOOK_CALL,
        lambda env: GootenHook(requests_per_second=-1).get_order_status(env.order()),
        GootenConfigurationError,
        "requests_per_second must be a number above 0 (or None for no cap), got -1.",
        0,
        "`requests_per_second=0` is refused the same way",
    ),
    Case(
        "hook-requests-per-second-text",
        "arguments",
        '`GootenHook(requests_per_second="5")`',
        ANY_HOOK_CALL,
        lambda env: GootenHook(requests_per_second="5").get_order_status(env.order()),
        GootenConfigurationError,
        "requests_per_second must be a number above 0 (or None for no cap), got '5'.",
        0,
    ),
    Case(
        "hook-search-unknown-filter",
        "arguments",
        '`GootenHook.search_orders(colour="red")`',
        "iterating `search_orders`, before any request",
        lambda env: list(GootenHook().search_orders(colour="red")),
        ValueError,
        "Unknown order search filter(s) colour; allowed: email, last_name, postal_code, start_date, "
        "end_date, unique_user_id, generic_values, partner_id.",
        0,
        "raised when the iteration starts, not at the call",
    ),
    Case(
        "hook-search-page-size",
        "arguments",
        "`GootenHook.search_orders(page_size=0)`",
        "iterating `search_orders`, before any request",
        lambda env: list(GootenHook().search_orders(page_size=0)),
        ValueError,
        "page_size must be between 1 and 100, got 0.",
        0,
    ),
    Case(
        "operator-max-workers",
        "arguments",
        "`max_workers=0`",
        OPERATOR_PARSE,
        lambda env: operator(order_ids=env.order(), max_workers=0),
        ValueError,
        "set_status: max_workers must be a whole number of at least 1, got 0.",
        0,
    ),
    Case(
        "operator-results-path-no-scheme",
        "arguments",
        '`results_path="/data/gooten"`',
        OPERATOR_PARSE,
        lambda env: operator(order_ids=env.order(), results_path="/data/gooten"),
        ValueError,
        "set_status: Invalid results_path '/data/gooten': use an ObjectStoragePath or a URI with a scheme, "
        "such as 'file:///data/gooten/…",
        0,
        note="A rendered value without a scheme (or `None` from a missing template value) fails the same "
        "way when the task runs, before any request.",
    ),
    Case(
        "operator-results-path-host",
        "results",
        '`results_path="file://tmp/x"` (two slashes: `tmp` is read as a host)',
        OPERATOR_PARSE,
        lambda env: operator(order_ids=env.order(), results_path="file://tmp/x"),
        ValueError,
        "set_status: Invalid results_path 'file://tmp/x': 'tmp' stands where a file:// URI has its host, and "
        "a local path takes none. Give the whole path after three slashes, such as 'file:///tmp/x'.",
        0,
        note="Without this check the files would go to `tmp/x` under the worker's working directory. "
        "`local://` is checked the same way; a rendered value fails the same way when the task runs.",
    ),
    Case(
        "results-disk-full",
        "results",
        "a `results_path` whose disk stays full (a tmpfs filled in the test) for longer than 30 s",
        "`GootenOrderStatusOperator.execute`, at the first record or write entry that cannot be written",
        _results_on_a_full_disk,
        AirflowException,
        "The results could not be written under file://… (writing file://…/writes.jsonl failed for … s: "
        "OSError: [Errno 28] No space left on device). 1 of 1 order(s) were handled "
        "(failed 1); 0 were not attempted. The records in attempt-… are incomplete (it has no summary.json, "
        "so read_order_results does not take it for complete); the counts are in the task's XCom. A retry "
        "of the task is safe: it resumes from the records written, and reads the orders whose record is "
        "missing before changing them.",
        2,
        note="the credentials check and the order's read; its change is not sent, since its entry in "
        '`writes.jsonl` could not be written first (record: `failed`, "not changed: the results could not '
        'be written ..."). A failed write is retried for 30 s (`WRITE_RETRY_SECONDS`; 0.2 s in this test) '
        "before the batch stops; a disk full for less loses nothing. Object storage: a failed upload, the "
        "same way.",
    ),
    Case(
        "results-earlier-line-damaged",
        "results",
        "an earlier try's `records.jsonl` with a damaged line (a torn write, a flipped byte, no `order_id`)",
        "`GootenOrderStatusOperator.execute` of a retry, before any request",
        _retry_over_a_damaged_line,
        None,
        "Skipped a damaged line of an earlier try's results, file://…/records.jsonl, line 1: not a JSON line "
        "(…); the order it concerned is read again.",
        2,
        note="the credentials check and the order's read: it was `Hold` already, so `unchanged`; the retry "
        "goes on (`writes.jsonl` is read the same way)",
        check=outcome_in_summary("unchanged"),
    ),
    Case(
        "read-results-incomplete",
        "results",
        "`read_order_results(summary)` of a try whose results could not all be written (or that was killed)",
        "`read_order_results`, when iterated",
        _read_incomplete_results,
        FileNotFoundError,
        "The Gooten results in file://…/attempt-… are incomplete: it has no summary.json, so that try did "
        "not record every order (it was killed, or its results could not be written). Read the results "
        "path above it for the newest complete try, or run the task again: a retry completes them.",
        None,
        note="the same for one try's folder given as a path; a results path gives its newest complete try",
    ),
    Case(
        "read-results-empty",
        "results",
        '`read_order_results("")` (or `None`)',
        "`read_order_results`, when iterated",
        lambda env: list(read_order_results("")),
        ValueError,
        "Invalid Gooten results '': give what the operator returned, a results path (a local path, an "
        "ObjectStoragePath or a URI such as 's3://aws_default@bucket/gooten/run-1'), or one try's folder "
        "under it.",
        None,
        note="a plain local path (`/data/gooten/run-1`, or relative to the working directory) is taken",
    ),
    Case(
        "operator-requests-per-second",
        "arguments",
        "`requests_per_second=0`",
        OPERATOR_PARSE,
        lambda env: operator(order_ids=env.order(), requests_per_second=0),
        ValueError,
        "set_status: requests_per_second must be a number above 0 (or None for no cap), got 0.",
        0,
    ),
    Case(
        "operator-throttle-timeout",
        "arguments",
        "`throttle_timeout=-1`",
        OPERATOR_PARSE,
        lambda env: operator(order_ids=env.order(), throttle_timeout=-1),
        ValueError,
        "set_status: throttle_timeout must be a number of at least 0, got -1.",
        0,
    ),
    Case(
        "hook-adaptive-rate-not-a-boolean",
        "arguments",
        '`GootenHook(adaptive_rate="no")`',
        ANY_HOOK_CALL,
        lambda env: GootenHook(adaptive_rate="no").get_order_status(env.order()),
        GootenConfigurationError,
        "adaptive_rate must be true or false, got 'no'.",
        0,
    ),
    Case(
        "operator-requests-per-second-text",
        "arguments",
        '`requests_per_second="5"`',
        OPERATOR_PARSE,
        lambda env: operator(order_ids=env.order(), requests_per_second="5"),
        ValueError,
        "set_status: requests_per_second must be a number above 0 (or None for no cap), got '5'.",
        0,
    ),
    Case(
        "operator-dry-run",
        "arguments",
        '`dry_run="maybe"`',
        OPERATOR_PARSE,
        lambda env: operator(order_ids=env.order(), dry_run="maybe"),
        ValueError,
        DRY_RUN_WORDS,
        0,
    ),
    Case(
        "operator-dry-run-templated",
        "arguments",
        '`dry_run="{{ params.dry_run }}"` rendering to `"maybe"`',
        OPERATOR_RUN,
        lambda env: execute_rendered(
            env, {"dry_run": "maybe"}, order_ids=env.order(), dry_run="{{ params.dry_run }}"
        ),
        ValueError,
        DRY_RUN_WORDS,
        0,
    ),
    Case(
        "operator-dry-run-none",
        "arguments",
        "`dry_run=None`",
        OPERATOR_PARSE,
        lambda env: operator(order_ids=env.order(), dry_run=None),
        ValueError,
        "Invalid dry_run None (a missing value: did a template or a trigger form leave it empty?): use true "
        "or false (a boolean, or text such as 'true' or 'false').",
        0,
        "a dry run must never become a real one because a value went missing",
    ),
    Case(
        "operator-dry-run-templated-missing",
        "arguments",
        '`dry_run="{{ params.dry_run }}"` rendering to `"None"` (the param is missing or null)',
        OPERATOR_RUN,
        lambda env: execute_rendered(
            env, {"dry_run": None}, order_ids=env.order(), dry_run="{{ params.dry_run }}"
        ),
        ValueError,
        "Invalid dry_run 'None' (a missing value: did a template or a trigger form leave it empty?): use "
        "true or false (a boolean, or text such as 'true' or 'false').",
        0,
        'an empty rendering (`""`) is refused the same way, before any request',
    ),
    # -- sensor arguments --------------------------------------------------------------------------------
    Case(
        "sensor-targets-empty",
        "sensor",
        "`target_statuses=[]`",
        SENSOR_PARSE,
        lambda env: sensor(order_id=env.order(), target_statuses=[]),
        ValueError,
        "target_statuses is empty: give at least one Gooten status, e.g. 'Shipped'.",
        0,
    ),
    Case(
        "sensor-status-not-a-string",
        "sensor",
        '`target_statuses=["Shipped", None]`',
        SENSOR_PARSE,
        lambda env: sensor(order_id=env.order(), target_statuses=["Shipped", None]),
        ValueError,
        "Invalid status None in target_statuses: a status is a non-empty string.",
        0,
    ),
    Case(
        "sensor-status-unknown",
        "sensor",
        'an unknown status, `target_statuses=["Shiped"]`',
        SENSOR_PARSE,
        lambda env: sensor(order_id=env.order(), target_statuses=["Shiped"]),
        ValueError,
        "target_statuses: 'Shiped' is not a Gooten status known to this provider (a typo?). Did you mean "
        "'Shipped'? Known statuses: AccountingIssue, …",
        0,
        "the message ends by naming `allow_unknown_statuses=True`, for a status Gooten has and this "
        "provider does not list",
    ),
    Case(
        "sensor-status-unknown-allowed",
        "sensor",
        'an unknown status with `allow_unknown_statuses=True`, `target_statuses=["Reprinting"]`',
        SENSOR_PARSE,
        lambda env: sensor(order_id=env.order(), target_statuses=["Reprinting"], allow_unknown_statuses=True),
        None,
        "target_statuses: 'Reprinting' is not a Gooten status known to this provider; kept as given "
        "(allow_unknown_statuses=True). Did you mean 'Printing'? Known statuses: AccountingIssue, …",
        0,
        "not an error, a warning: Gooten's list of statuses is not fully documented",
        check=sensor_waits_for("Reprinting"),
    ),
    Case(
        "sensor-status-wrong-case",
        "sensor",
        '`target_statuses=["shipped"]`',
        SENSOR_PARSE,
        lambda env: sensor(order_id=env.order(), target_statuses=["shipped"]),
        None,
        "",
        0,
        "not an error: a known status is matched case-insensitively and waited for as `Shipped`",
        check=sensor_waits_for("Shipped"),
    ),
    Case(
        "sensor-target-is-failure",
        "sensor",
        '`target_statuses=["Cancelled"]` (also the default failure status)',
        SENSOR_PARSE,
        lambda env: sensor(order_id=env.order(), target_statuses=["Cancelled"]),
        ValueError,
        "wait: target_statuses has Cancelled, which the default failure_statuses ('Cancelled',) also holds. "
        "To wait for it, pass failure_statuses= explicitly, e.g. failure_statuses=() (or other statuses "
        "that should end the wait).",
        0,
    ),
    Case(
        "sensor-target-canceled",
        "sensor",
        '`target_statuses=["Canceled"]` (another spelling, found in some of Gooten\'s documents)',
        SENSOR_PARSE,
        lambda env: sensor(order_id=env.order(), target_statuses=["Canceled"], failure_statuses=()),
        ValueError,
        "target_statuses: 'Canceled' is not how Gooten's API spells the status. Did you mean 'Cancelled'?",
        0,
        "the operator's rule (`status-other-spelling`): Gooten's spelling in any letter case; refused even "
        "with `allow_unknown_statuses=True`, since waiting for it would never end",
    ),
    Case(
        "sensor-target-is-explicit-failure",
        "sensor",
        '`target_statuses=["Hold"], failure_statuses=["Hold"]`',
        SENSOR_PARSE,
        lambda env: sensor(order_id=env.order(), target_statuses=["Hold"], failure_statuses=["Hold"]),
        ValueError,
        "wait: Hold cannot be both a target and a failure status.",
        0,
    ),
    Case(
        "sensor-orders-both-spellings",
        "sensor",
        "both `order_id=` and `order_ids=` (or neither)",
        SENSOR_PARSE,
        lambda env: sensor(order_id=env.order(), order_ids=[SAFE_A]),
        ValueError,
        "wait: give the orders to wait for as order_ids (one id or a list) or as order_id (one id), not "
        "both.",
        0,
    ),
    Case(
        "sensor-order-id-empty",
        "sensor",
        '`order_id=""`',
        "`GootenOrderStatusSensor.poke`, before any request",
        lambda env: sensor(order_id="").poke({}),
        ValueError,
        "wait: order_id: Invalid Gooten order id '': an order id must be a non-empty string.",
        0,
        "checked at the first poke, not when the DAG is parsed",
    ),
    Case(
        "sensor-order-unknown",
        "sensor",
        "an order id Gooten does not know",
        "`GootenOrderStatusSensor.poke`",
        lambda env: sensor(order_id=env.no_such_order()).poke({}),
        AirflowFailException,
        f"Order {{order_id}}: Gooten refused {GET_ORDER}: id: Order not found. (ErrorReferenceCode …) "
        "(waiting will not change Gooten's answer).",
        1,
        "fails the task at once, without retries; network errors, 429 and 5xx answers only leave the order "
        "for the next poke",
    ),
    Case(
        "sensor-host-wrong-path",
        "sensor",
        "a base URL with a wrong path, `http://127.0.0.1:<port>/v1`",
        "`GootenOrderStatusSensor.poke`",
        lambda env: env.connect(host=f"{env.api.base_url}/v1") or sensor(order_id=env.order()).poke({}),
        AirflowFailException,
        f"Order {{order_id}}: Gooten answered HTTP 404 to {GET_ORDER}: "
        "'<!DOCTYPE html> <html><head><title>404 - Not Found</title>… (HTTP 404 means no such API path: the "
        "connection's host (API base URL) is probably wrong; Gooten's is https://api.print.io).",
        1,
        "fails at once instead of poking until the timeout; the deferrable sensor's trigger fails the same "
        "way",
    ),
    Case(
        "sensor-trigger-kwargs-tampered",
        "sensor",
        "the deferred sensor's trigger kwargs edited in Airflow's database: `end_time` NaN",
        "`GootenOrderStatusTrigger.run` in the triggerer; the task fails in `execute_complete`",
        _tampered_trigger,
        AirflowFailException,
        "The Gooten order status trigger cannot run with the kwargs it was given (were they changed in "
        "Airflow's database?): end_time must be a finite number of seconds since the epoch, got nan (float).",
        0,
        "every problem is named (a bad order id, a wrong type, a number that is not finite, ...); NaN would "
        "otherwise never end the wait",
    ),
    # -- Gooten's answers --------------------------------------------------------------------------------
    Case(
        "gooten-had-error",
        "gooten",
        'Gooten refuses a change (`"HadError": true`)',
        "`GootenHook.update_order_status`",
        _had_error,
        GootenApiError,
        f"Gooten refused {POST_STATUS}: id: The order could not be updated at this time. "
        "(ErrorReferenceCode …)",
        1,
        "Gooten's `Errors` follow the colon; quote the ErrorReferenceCode to Gooten support",
    ),
    Case(
        "gooten-html-page",
        "gooten",
        "an HTML page with HTTP 200 (a maintenance page) on every try of a read",
        "`GootenHook.get_order_status`",
        _faulty_read("html", "html", "html", "html"),
        GootenHttpError,
        f"Gooten answered HTTP 200 to {GET_ORDER} with a body that is not Gooten's JSON "
        '(text/html; charset=utf-8): "<!DOCTYPE html> <html><head><title>Gooten</title>…',
        4,
        "a read is tried again (max_retries, with backoff); the message holds at most 200 characters of the "
        "body, on one line, with any form of the key masked",
    ),
    Case(
        "gooten-truncated-json",
        "gooten",
        "a truncated JSON body (complete as HTTP, cut as JSON) on every try of a read",
        "`GootenHook.get_order_status`",
        lambda env: GootenHook().get_order_status(env.raw_server(http_reply(TRUNCATED_JSON))),
        GootenHttpError,
        f"Gooten answered HTTP 200 to {GET_ORDER} with a body that is not Gooten's JSON "
        '(application/json): \'{"Id": "1-a", "Items": [{"Sta\'',
        4,
        "a read is tried again (max_retries, with backoff)",
    ),
    Case(
        "gooten-truncated-json-write",
        "gooten",
        "a truncated JSON body answering a status change",
        "`GootenHook.update_order_status`",
        lambda env: GootenHook().update_order_status(env.raw_server(http_reply(TRUNCATED_JSON)), "Hold"),
        GootenOutcomeUnknownError,
        f"Gooten answered HTTP 200 to {POST_STATUS} with a body that is not Gooten's JSON "
        "(application/json): …; the change may or may not have been applied. Read the order to find out "
        "before sending it again.",
        1,
        "the operator settles it by reading the order",
    ),
    Case(
        "gooten-5xx-read",
        "gooten",
        "HTTP 500 to every try of a read",
        "`GootenHook.get_order_status`",
        _faulty_read("500", "500", "500", "500"),
        GootenHttpError,
        f"Gooten answered HTTP 500 to {GET_ORDER}: "
        "'<!DOCTYPE html> <html><head><title>500 Internal Server Error…",
        4,
        "reads are retried `max_retries` times (here 3) on 5xx (on 429, within `throttle_timeout`)",
    ),
    Case(
        "gooten-5xx-write",
        "gooten",
        "HTTP 500 to a status change",
        "`GootenHook.update_order_status`",
        _faulty_write("500"),
        GootenOutcomeUnknownError,
        f"Gooten answered HTTP 500 to {POST_STATUS}; {OUTCOME_UNKNOWN}",
        1,
        "a write is never re-sent blindly; the operator reads the order to settle it",
    ),
    Case(
        "gooten-429-storm",
        "gooten",
        "HTTP 429 to every try (a 429 storm), with `adaptive_rate` off",
        "`GootenHook.update_order_status`",
        _with_extra({"adaptive_rate": False}, _faulty_write("429", "429", "429", "429")),
        GootenRateLimitError,
        f"Gooten answered 429 Too Many Requests to {POST_STATUS} after every retry; nothing was applied. "
        "Lower the request rate (requests_per_second, max_workers) and try again.",
        4,
        "`Retry-After` is honoured (capped at 60 s); a 429 is the one answer after which a write is re-sent",
    ),
    Case(
        "gooten-429-storm-adaptive",
        "gooten",
        "the same storm with `adaptive_rate` on (the default)",
        "`GootenHook.update_order_status`",
        _faulty_write("429", "429", "429", "429"),
        None,
        "",
        5,
        "not an error: a 429 means nothing was applied, so the write is sent again, paced, until accepted "
        "or `throttle_timeout` (300 s) has passed; `max_retries` does not bound it",
        check=applied,
    ),
    Case(
        "gooten-throttled-past-timeout",
        "gooten",
        '429 for longer than `throttle_timeout` (`{"throttle_timeout": 0.2}`)',
        "`GootenHook.update_order_status`",
        _with_extra({"throttle_timeout": 0.2}, _faulty_write(*["429"] * 100)),
        GootenRateLimitError,
        f"Gooten answered 429 Too Many Requests to {POST_STATUS} for … s and asked to wait 0.01 s more, past "
        "throttle_timeout (0.2 s); "
        "nothing was applied. Gooten is throttling this account: lower max_workers, spread the work over "
        "time, or raise throttle_timeout.",
        None,
        "the operator records such an order `failed`, naming throttling; how many requests depends on timing",
    ),
    Case(
        "gooten-error-echoes-key-json-escaped",
        "gooten",
        "an error answer that echoes the request, the key JSON-escaped as .NET writes it (`+` as `\\u002B`)",
        "`GootenHook.update_order_status`",
        _key_echo(_dotnet_json_escape),
        GootenHttpError,
        KEY_ECHO,
        1,
        "every form of the key, raw, URL-encoded and JSON-escaped (PHP's `\\/`, `\\u002F`, `\\u003D`), is "
        "replaced by `***` in the quoted body",
    ),
    Case(
        "gooten-error-echoes-key-latin1",
        "gooten",
        "a key with letters outside ASCII (`é`), which a gateway's validation message echoes percent-encoded "
        "from its Latin-1 bytes (`%E9`, not UTF-8's `%C3%A9`)",
        "`GootenHook.update_order_status`",
        _latin1_key_echo,
        GootenHttpError,
        "Gooten answered HTTP 400 to "
        + POST_STATUS
        + """: '{"Message": "The request is invalid.", "ModelState": {"partnerBillingKey": ["The value *** """
        """is not valid."]}}'""",
        1,
        "the key's percent-encodings from its UTF-8 and its Latin-1 bytes, in either hex case, are all "
        "masked",
    ),
    Case(
        "gooten-error-echoes-key-other-encoding",
        "gooten",
        "an error page that echoes the key in an encoding not foreseen (HTML entities, `&#43;`)",
        "`GootenHook.update_order_status`",
        _key_echo(_html_entities, "text/html"),
        GootenHttpError,
        "Gooten answered HTTP 400 to "
        + POST_STATUS
        + ": '(body withheld: it echoes the Partner Billing Key)'",
        1,
        "a body in which the key can still be read once JSON-, HTML- or URL-decoded is not quoted at all",
    ),
    # -- network -----------------------------------------------------------------------------------------
    Case(
        "network-unreachable",
        "network",
        "an unreachable host (nothing listens at the host and port)",
        "`GootenHook.update_order_status`",
        lambda env: (
            env.connect(host=env.closed_port_url()) or GootenHook().update_order_status(env.order(), "Hold")
        ),
        GootenConnectionError,
        "Could not connect to {base_url} for " + POST_STATUS + " after 4 attempt(s) "
        "(ConnectionRefusedError); the request was never sent.",
        0,
        "connections that were never opened are retried, writes included",
    ),
    Case(
        "network-unreachable-operator",
        "network",
        "an unreachable host, for a batch of orders",
        "`GootenOrderStatusOperator.execute`",
        lambda env: (
            env.connect(host=env.closed_port_url()) or execute(env, order_ids=[SAFE_A, SAFE_B], status="Hold")
        ),
        GootenConnectionError,
        "Could not connect to {base_url} for GET /api/ordersearch (a credentials check) after 4 attempt(s) "
        "(ConnectionRefusedError); the request was never sent.",
        0,
        "every real run starts with one credentials check, so a dead or wrong host fails the task once, "
        "before any order; if Gooten becomes unreachable mid-batch, the batch stops after 5 orders in a row "
        "could not be read, and the rest are recorded `failed` as not attempted, with the cause",
    ),
    Case(
        "network-timeout-read",
        "network",
        "no answer within the timeout, to every try of a read",
        "`GootenHook.get_order_status`",
        _timeout(_faulty_read("slow", "slow", "slow", "slow")),
        GootenConnectionError,
        f"{GET_ORDER}: no answer within 0.2 s, after 4 attempt(s).",
        4,
    ),
    Case(
        "network-timeout-write",
        "network",
        "no answer within the timeout, to a status change",
        "`GootenHook.update_order_status`",
        _timeout(_faulty_write("slow")),
        GootenOutcomeUnknownError,
        f"{POST_STATUS}: no answer within 0.2 s; {OUTCOME_UNKNOWN}",
        1,
        "not re-sent: the change may have landed (here it did)",
        check=applied,
    ),
    Case(
        "network-reset-read",
        "network",
        "the connection reset on every try of a read",
        "`GootenHook.get_order_status`",
        _faulty_read("reset", "reset", "reset", "reset"),
        GootenConnectionError,
        f"{GET_ORDER}: the connection broke before an answer (ConnectionResetError), after 4 attempt(s).",
        4,
    ),
    Case(
        "network-response-lost",
        "network",
        "the connection reset after a status change was applied",
        "`GootenHook.update_order_status`",
        _faulty_write("lost_response"),
        GootenOutcomeUnknownError,
        f"{POST_STATUS}: the connection broke before an answer (ConnectionResetError); {OUTCOME_UNKNOWN}",
        1,
        "here the change was applied; the operator settles such a write by reading the order",
        check=applied,
    ),
    Case(
        "network-body-cut",
        "network",
        "the connection closed mid-body (fewer bytes than `Content-Length`)",
        "`GootenHook.get_order_status`",
        lambda env: GootenHook().get_order_status(
            env.raw_server(http_reply(TRUNCATED_JSON, content_length=500))
        ),
        GootenIncompleteAnswerError,
        f"{GET_ORDER}: the connection broke during the answer (IncompleteRead).",
        4,
        "a read is tried again (max_retries, with backoff); a `GootenConnectionError`",
    ),
    # -- the local Gooten API ------------------------------------------------------------------------
    Case(
        "local-api-port-busy",
        "local-api",
        "a port another program listens on, `python -m gooten_provider.testing --port 8089`",
        "`GootenApiServer.start` (and the command, which prints it after `error: ` and exits with 2)",
        _local_api_on_a_busy_port,
        PortUnavailableError,
        "Port … on 127.0.0.1 is already in use (another local Gooten API, or another program, listens "
        "there): stop that program, choose another port, or pass --port 0 (GootenApiServer(port=0)) to "
        "listen on a free port the system picks.",
        None,
        "an `OSError` whose `errno` is the bind's (`EADDRINUSE`); a port below 1024 without privileges "
        "(`EACCES`) is explained the same way",
    ),
    *EXPORT_CASES,
    *CANCEL_CASES,
    *CANCEL_OPERATOR_CASES,
)


# -- the tests -----------------------------------------------------------------------------------------


def message_pattern(template: str, values: dict[str, str]) -> re.Pattern[str]:
    """A regular expression for a message template: placeholders filled in, ``…`` matching anything."""
    pieces = [
        re.escape(PLACEHOLDER.sub(lambda match: values[match[1]], piece)) for piece in template.split("…")
    ]
    return re.compile(".*?".join(pieces), re.DOTALL)


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch) -> Iterator[Env]:
    with GootenApiServer(retry_after=0.01, slow_seconds=1.0) as api:
        environment = Env(api, monkeypatch)
        try:
            yield environment
        finally:
            environment.stop()


@pytest.mark.parametrize("case", CASES, ids=[case.id for case in CASES])
def test_bad_input(
    case: Case, env: Env, caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str]
) -> None:
    with caplog.at_level(logging.WARNING):
        if case.error is None:
            returned = case.run(env)
            message = ""
        else:
            with pytest.raises(case.error) as info:
                case.run(env)
            assert type(info.value) is case.error, f"raised {type(info.value).__name__}, a subclass"
            message = str(info.value)
            returned = info.value
    if case.error is not None:
        pattern = message_pattern(case.message, env.values)
        assert pattern.fullmatch(message) or (case.message.endswith("…") and pattern.match(message)), (
            f"message differs:\n  got:      {message!r}\n  expected: {case.message!r}"
        )
    elif case.message:
        captured = capsys.readouterr()
        logged = "\n".join((caplog.text, captured.out, captured.err))
        assert message_pattern(case.message, env.values).search(logged), f"no warning {case.message!r}"
    if case.check is not None:
        case.check(env, returned)
    env.stop()
    if case.requests is not None:
        assert env.requests() == case.requests
    secrets = {*billing_key_forms(env.api.billing_key), URL_PASSWORD}
    leaked = sorted(secret for secret in secrets if secret in message)
    assert bool(leaked) == bool(case.leaks), (
        f"leaked {len(leaked)} form(s) of a secret; expected: {case.leaks!r}"
    )


def test_case_ids_are_unique_and_every_section_is_used() -> None:
    ids = [case.id for case in CASES]
    assert len(ids) == len(set(ids))
    assert {case.section for case in CASES} == set(SECTIONS)


# -- the doc -------------------------------------------------------------------------------------------


def _cell(text: str) -> str:
    """A table cell: pipes escaped (in code spans too, as GitHub's tables need), on one line."""
    return text.replace("|", "\\|").replace("\n", " ")


def _code(text: str) -> str:
    """A Markdown code span for a message: newlines shown as ``\\n``, placeholders as ``<name>``."""
    shown = PLACEHOLDER.sub(r"<\1>", text).replace("\n", "\\n")
    fence = "``" if "`" in shown else "`"
    padding = " " if shown.startswith("`") or shown.endswith("`") else ""
    return f"{fence}{padding}{shown}{padding}{fence}"


def _requests(case: Case) -> str:
    if case.requests is None:
        return "n/a"
    return "none" if case.requests == 0 else str(case.requests)


def render_catalogue() -> str:
    """The doc's tables, one section per :data:`SECTIONS` entry, one row per case."""
    lines = [BEGIN]
    for section, title in SECTIONS.items():
        lines += [
            "",
            f"### {title}",
            "",
            "| Id | Bad input | Given to | Error | Message | Requests | Notes |",
            "| --- | --- | --- | --- | --- | --- | --- |",
        ]
        for case in (case for case in CASES if case.section == section):
            if case.error is not None:
                error, message = f"`{case.error.__name__}`", _code(case.message)
            else:
                error = "none"
                message = f"warning: {_code(case.message)}" if case.message else ""
            cells = [
                f"`{case.id}`",
                case.given,
                case.where,
                error,
                message,
                _requests(case),
                case.note,
            ]
            lines.append("| " + " | ".join(_cell(cell) for cell in cells) + " |")
    lines += ["", END]
    return "\n".join(lines)


def test_docs_table_is_generated_from_cases() -> None:
    doc = DOC.read_text(encoding="utf-8")
    start, end = doc.index(BEGIN), doc.index(END) + len(END)
    expected = render_catalogue()
    if os.environ.get("UPDATE_ERRORS_DOC"):
        DOC.write_text(doc[:start] + expected + doc[end:], encoding="utf-8")
        doc = DOC.read_text(encoding="utf-8")
        start, end = doc.index(BEGIN), doc.index(END) + len(END)
    assert doc[start:end] == expected, (
        "docs/errors.md is out of date: run UPDATE_ERRORS_DOC=1 .venv/bin/pytest tests/errors -k docs"
    )
