"""Secrets audit: run every example DAG and every hook and operator path, failures included, with a billing
key full of ``+``, ``/`` and ``=`` (and once stored pre-encoded), then look for the key in everything a user
or an attacker could read.

Where it looks: stdout and stderr at the file-descriptor level (``dags test`` and ``dag.test()`` write task
logs there; a deployed Airflow writes the same records to task log files), Python log records, every XCom
value and every rendered template field of the runs (from the metadata DB), exception messages and reprs,
and the local API's journal. The key may not appear raw, URL-encoded (``quote``, ``quote_plus``) or
encoded twice. A key with letters outside ASCII, echoed by a gateway percent-encoded from its Latin-1 bytes
(``%E9``), may not appear in any of its percent-encodings either.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import logging
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote, quote_plus

import pytest

from gooten_provider.exceptions import GootenApiError
from gooten_provider.hooks.gooten import GootenHook
from gooten_provider.operators.gooten import GootenCancelOrderItemsOperator, GootenOrderStatusOperator
from gooten_provider.sensors.gooten import GootenOrderStatusSensor
from gooten_provider.testing import GootenApiServer
from tests.dags import load_dag  # also puts dags/ on sys.path, as Airflow does for the DAG bundle
from tests.errors.test_error_catalogue import RawReplyServer, http_error_reply
from tests.integration.dag_runs import run_dag, run_xcoms

pytestmark = pytest.mark.usefixtures("airflow_db")

KEY = "Zx+9/aB=c+D/eF==g+h/I+j/K=lM+n/O=pQ+r/sT=="
FORMS = {
    "raw": KEY,
    "quote": quote(KEY, safe=""),
    "quote, '/' kept": quote(KEY),
    "quote_plus": quote_plus(KEY),
    "quote twice": quote(quote(KEY, safe=""), safe=""),
    "quote_plus twice": quote_plus(quote_plus(KEY)),
}


class Evidence:
    """Everything readable that the runs produced, by where it came from."""

    def __init__(self) -> None:
        self.texts: dict[str, list[str]] = {}
        self.run_ids: list[tuple[str, str]] = []

    def add(self, where: str, text: object) -> None:
        self.texts.setdefault(where, []).append(text if isinstance(text, str) else repr(text))

    def leaks(self) -> list[str]:
        return [
            f"{form_name} form of the key in {where}"
            for where, texts in self.texts.items()
            for text in texts
            for form_name, form in FORMS.items()
            if form in text
        ]


def _metadata_texts(evidence: Evidence) -> None:
    """XCom values and rendered template fields of every run, as stored in the metadata DB."""
    from airflow.models.renderedtifields import RenderedTaskInstanceFields
    from airflow.utils.session import create_session

    with create_session() as session:
        for dag_id, run_id in evidence.run_ids:
            for (task_id, key, _), value in run_xcoms(dag_id, run_id).items():
                evidence.add(f"XCom {dag_id}.{task_id}[{key}]", json.dumps(value, default=str))
            for row in session.query(RenderedTaskInstanceFields).filter_by(dag_id=dag_id, run_id=run_id):
                evidence.add(
                    f"rendered fields {dag_id}.{row.task_id}", json.dumps(row.rendered_fields, default=str)
                )


def _connect(monkeypatch: pytest.MonkeyPatch, api: GootenApiServer, password: str) -> None:
    config = api.connection_config()
    config["password"] = password
    config["extra"]["backoff_factor"] = 0.01
    monkeypatch.setenv("AIRFLOW_CONN_GOOTEN_DEFAULT", json.dumps(config))


@pytest.fixture
def world(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[tuple[GootenApiServer, list[Any]]]:
    from gooten_examples.seed import (
        build_sqlite_warehouse,
        demo_orders,
        gooten_order_specs,
        warehouse_connection,
    )

    orders = demo_orders()
    warehouse = build_sqlite_warehouse(tmp_path / "warehouse.db", orders)
    monkeypatch.setenv("AIRFLOW_CONN_GOOTEN_WAREHOUSE", json.dumps(warehouse_connection(warehouse)))
    with GootenApiServer(billing_key=KEY, orders=gooten_order_specs(orders), retry_after=0.01) as api:
        yield api, orders


def _run_example_dags(api: GootenApiServer, orders: list[Any], evidence: Evidence) -> None:
    by_label = {order.source_id: order.order_id for order in orders}
    # failure paths inside the runs: lost answers, server errors, resets, a refusal
    api.inject_faults(by_label["missing-postal-code"], "lost_response", method="POST")
    api.inject_faults(by_label["http-image"], "500", "reset", method="GET")
    # the cancellations go through orderCancel: a refusal, and a lost answer settled by reading
    api.inject_faults(by_label["double-submission"], "refused", method="PUT")
    api.inject_faults(by_label["test-order"], "lost_response", method="PUT")
    api.inject_search_faults(1, "500", "reset")  # the next searches of page 1: retried, and logged
    today = dt.datetime.now(dt.UTC).date()
    window = {"created_from": (today - dt.timedelta(days=2)).isoformat(), "created_to": today.isoformat()}
    runs = [
        ("gooten_dq_hold_cancel", {}),
        ("gooten_reconcile_order_statuses", {}),
        (
            "gooten_manual_order_status",
            {"order_ids": [by_label["clean"]], "status": "Hold", "dry_run": False, "reason": "audit"},
        ),
        (
            "gooten_manual_order_status",
            {
                "order_ids": ["404-missing"],
                "status": "Cancelled",
                "dry_run": False,
                "reason": "audit: unknown order",
            },
        ),
        (
            "gooten_manual_order_status",
            {"order_ids": [by_label["repeat-order"]], "status": "Test", "dry_run": True, "reason": None},
        ),
        (
            "gooten_manual_order_status",
            {
                "order_ids": [by_label["held-on-purpose"], by_label["cancel-too-late"], "404-missing"],
                "status": "CancelItems",
                "dry_run": False,
                "reason": "audit: cancel items",
            },
        ),
        ("gooten_order_status_history", {"order_ids": [by_label["clean"], "404-missing"]}),
        ("gooten_orders_export", window),
    ]
    for dag_id, conf in runs:
        dag_run = load_dag(dag_id).test(run_conf=conf)
        evidence.run_ids.append((dag_id, dag_run.run_id))
    # the deferrable sensor: dag.test() runs its trigger inline, which reads through the async client and
    # meets a 500 that outlasts the client's retries (logged, read again next round) before the release
    held = api.add_order(statuses="Hold")["Id"]
    api.inject_faults(held, *["500"] * 5, method="GET")
    release = api.set_item_statuses_once_read(held, "New")
    wait_dag = load_dag("gooten_wait_for_release")
    sensor = wait_dag.get_task("wait_for_release")
    sensor.poke_interval, sensor.timeout = 0.2, 60
    released = api.add_order(statuses="New")["Id"]
    dag_run = wait_dag.test(run_conf={"order_ids": [held, released]})
    assert dag_run.state == "success"
    release.join()
    evidence.run_ids.append((wait_dag.dag_id, dag_run.run_id))


def _run_hook_operator_and_sensor_paths(api: GootenApiServer, evidence: Evidence) -> None:
    from airflow.sdk import DAG

    ok = api.add_order(statuses="New")["Id"]
    lost = api.add_order(statuses="New")["Id"]
    api.inject_faults(lost, "lost_response", method="POST")
    hook = GootenHook()
    hook.get_order(ok)
    hook.get_order_status(ok)
    list(hook.search_orders(page_size=2))
    evidence.add("test_connection message", hook.test_connection()[1])
    # item cancellation (PUT /api/orderCancel): applied, lost, refused in a 200 body, refused before a write
    held, lost_cancel, refused_cancel, shipped = (
        api.add_order(statuses=statuses)["Id"] for statuses in (["Hold", "Hold"], "Hold", "Hold", "Shipped")
    )
    api.inject_faults(lost_cancel, "lost_response", method="PUT")
    api.inject_faults(refused_cancel, "refused", method="PUT")
    evidence.add("cancel plan", hook.cancel_order_items(held))
    for call in (
        lambda: hook.cancel_order_items(lost_cancel),
        lambda: hook.cancel_order_items(refused_cancel),
        lambda: hook.cancel_order_items(shipped),
        lambda: hook.cancel_order_items(ok, [1]),
        lambda: hook.client.send_item_cancellation(1, [1], order_id="404-missing"),
        lambda: hook.update_order_status(lost, "Hold"),
        lambda: hook.update_order_status(ok, "Shipped"),
        lambda: hook.get_order("404-missing"),
        lambda: GootenOrderStatusOperator(task_id="o", order_ids=[ok, "404-x"], status="Hold").execute({}),
        lambda: GootenCancelOrderItemsOperator(task_id="c", order_ids=[ok, "404-x"]).execute({}),
    ):
        with pytest.raises((GootenApiError, ValueError, Exception)) as info:
            call()
        evidence.add("exception message", str(info.value))
        evidence.add("exception repr", repr(info.value))

    async def async_reads() -> None:
        async with await GootenHook().get_async_client() as client:
            evidence.add("async client repr", repr(client))
            await client.get_order_status(ok)
            with pytest.raises(GootenApiError) as info:
                await client.get_order("404-missing")
            evidence.add("async exception message", str(info.value))
            evidence.add("async exception repr", repr(info.value))
            evidence.add(
                "async cancel plan", await client.cancel_order_items(api.add_order(statuses="Hold")["Id"])
            )
            with pytest.raises(GootenApiError) as info:
                await client.cancel_order_items(shipped)
            evidence.add("async cancel exception", repr(info.value))

    asyncio.run(async_reads())
    with DAG("gooten_secrets_audit_sensor", schedule=None) as dag:
        GootenOrderStatusSensor(
            task_id="wait", order_id=ok, target_statuses="Shipped", timeout=1, poke_interval=0.2
        )
    evidence.run_ids.append((dag.dag_id, run_dag(dag).run_id))


@pytest.mark.parametrize("stored", ["raw", "pre-encoded"])
def test_the_billing_key_never_shows(world, monkeypatch, capfd, caplog, stored):
    api, orders = world
    _connect(monkeypatch, api, KEY if stored == "raw" else quote(KEY, safe=""))
    evidence = Evidence()
    with caplog.at_level(logging.DEBUG):
        _run_example_dags(api, orders, evidence)
        _run_hook_operator_and_sensor_paths(api, evidence)
        # and a wrong key, so that Gooten's refusals are part of what is read
        _connect(monkeypatch, api, KEY[::-1])
        evidence.add("test_connection message (wrong key)", GootenHook().test_connection()[1])
        with pytest.raises(GootenApiError) as refused:
            GootenHook().cancel_order_items(api.add_order(statuses="Hold")["Id"])
        evidence.add("cancellation refused (wrong key)", repr(refused.value))
    captured = capfd.readouterr()
    evidence.add("stdout", captured.out)
    evidence.add("stderr", captured.err)
    evidence.add("log records", caplog.text)
    evidence.add("local API journal", api.journal)
    _metadata_texts(evidence)

    # the audit saw real traffic and real output, or it proves nothing
    assert sum(1 for e in api.journal if e.key_check == "ok") > 20
    cancel_outcomes = {e.outcome for e in api.journal if e.method == "PUT"}
    assert {"cancelled", "refused", "bad_key", "unknown_order"} <= cancel_outcomes  # orderCancel was audited
    assert len(evidence.run_ids) == 10
    assert any(where.startswith("XCom gooten_orders_export.export_orders") for where in evidence.texts)
    assert any(where.startswith("XCom gooten_dq_hold_cancel.hold_orders") for where in evidence.texts)
    assert any(where.startswith("XCom gooten_dq_hold_cancel.cancel_orders") for where in evidence.texts)
    assert any(where.startswith("XCom gooten_manual_order_status.cancel_items") for where in evidence.texts)
    assert "Gooten refused PUT /api/orderCancel" in captured.out  # the operator's log of a refusal
    assert any(where.startswith("rendered fields gooten_manual_order_status") for where in evidence.texts)
    assert any(where.startswith("XCom gooten_wait_for_release.wait_for_release") for where in evidence.texts)
    assert "partnerBillingKey=***" in caplog.text + captured.out  # urllib3's request lines, redacted
    assert "will try again" in caplog.text + captured.out  # the sensor logged a failed read
    assert evidence.leaks() == []


# -- a non-ASCII key echoed by a gateway in Latin-1 ----------------------------------------------------------

#: A key with letters outside ASCII that Latin-1 has a byte for (``é``, ``ü``), besides ``+``, ``/``, ``=``.
LATIN1_KEY = "Zx+9/aé=B/ü+cD=="


def _percent_forms(key: str) -> dict[str, str]:
    """The key percent-encoded from its UTF-8 and its Latin-1 bytes, upper- and lower-case hex."""
    forms = {}
    for encoding in ("utf-8", "latin-1"):
        upper = quote(key, safe="", encoding=encoding)
        forms[f"{encoding} percent-encoded"] = upper
        forms[f"{encoding} percent-encoded, lower-case hex"] = re.sub(
            r"%[0-9A-F]{2}", lambda m: m[0].lower(), upper
        )
        forms[f"{encoding} quote_plus"] = quote_plus(key, encoding=encoding)
    return {"raw": key, **forms}


@pytest.mark.parametrize("hex_case", ["upper", "lower"])
def test_a_gateway_echoing_a_latin1_encoded_key_in_a_validation_message_shows_it_nowhere(
    monkeypatch, capfd, caplog, hex_case
):
    forms = _percent_forms(LATIN1_KEY)
    echoed = forms["latin-1 percent-encoded" + (", lower-case hex" if hex_case == "lower" else "")]
    assert "%E9" in echoed.upper()  # the Latin-1 byte of "é", not UTF-8's %C3%A9
    # An API gateway that validates the query before Gooten sees it, and names the value it refused.
    refused = {"partnerBillingKey": [f"'{echoed}' is not valid."]}
    body = json.dumps({"Message": "The request is invalid.", "ModelState": refused})
    gateway = RawReplyServer(http_error_reply(400, body))
    order_id = "115557-b5c97bb2-934d-48aa-9ad2-a565154b5cd4"
    monkeypatch.setenv(
        "AIRFLOW_CONN_GOOTEN_DEFAULT",
        json.dumps(
            {
                "conn_type": "gooten",
                "host": gateway.base_url,
                "login": "a2b7c1d4-5e6f-4a8b-9c0d-1e2f3a4b5c6d",
                "password": LATIN1_KEY,
                "extra": {"max_retries": 0},
            }
        ),
    )
    evidence = Evidence()
    try:
        with caplog.at_level(logging.DEBUG):
            hook = GootenHook()
            operator = GootenOrderStatusOperator(task_id="o", order_ids=order_id, status="Hold")
            canceller = GootenCancelOrderItemsOperator(task_id="c", order_ids=order_id)
            sensor = GootenOrderStatusSensor(task_id="w", order_id=order_id, target_statuses="New")
            evidence.add("test_connection message", hook.test_connection()[1])
            for call in (
                lambda: hook.update_order_status(order_id, "Hold"),
                lambda: hook.get_order(order_id),
                lambda: operator.execute({}),
                lambda: canceller.execute({}),
                lambda: sensor.poke({}),
            ):
                with pytest.raises(Exception) as info:
                    call()
                evidence.add("exception message", str(info.value))
                evidence.add("exception repr", repr(info.value))

            async def async_read() -> None:
                async with await GootenHook().get_async_client() as client:
                    with pytest.raises(GootenApiError) as info:
                        await client.get_order(order_id)
                    evidence.add("async exception message", str(info.value))

            asyncio.run(async_read())
    finally:
        gateway.stop()
    captured = capfd.readouterr()
    evidence.add("stdout", captured.out)
    evidence.add("stderr", captured.err)
    evidence.add("log records", caplog.text)
    assert gateway.requests >= 5  # the gateway answered every call: the audit read real answers
    assert "is not valid" in "".join(evidence.texts["exception message"])  # the message itself is shown
    leaks = [
        f"{name} form of the key in {where}"
        for where, texts in evidence.texts.items()
        for text in texts
        for name, form in forms.items()
        if form in text
    ]
    assert leaks == []
