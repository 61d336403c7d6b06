"""The relay over real HTTP, delivering to Airflow's real REST API: events, duplicates, outages, restarts.

Every refusal (wrong token, bad body, stall, ...) is a case of ``tests/errors/test_webhook_catalogue.py``,
which also generates its section of ``docs/errors.md``.
"""

from __future__ import annotations

import json
import logging
import sqlite3
import time
import uuid
from pathlib import Path
from typing import Any

import requests

from gooten_provider.testing import GootenApiServer
from gooten_provider.webhooks.airflow_client import AirflowCredentials
from gooten_provider.webhooks.outbox import Outbox

from .conftest import PASSWORD, USERNAME, AirflowApi
from .harness import PII, RelayProcess, ServedApp, free_port, order_json, wait_for


def unique_order() -> str:
    """An order id no other test uses (events of the session's Airflow accumulate)."""
    return f"3001-{uuid.uuid4()}"


def test_a_webhook_becomes_one_event_with_only_what_a_pipeline_needs(
    start_relay: Any, airflow_api: AirflowApi
):
    relay = start_relay()
    order_id = unique_order()
    order = order_json(order_id, ["Shipped", "InProduction"], NiceId="Richa7-5f3")

    reply = relay.post(order)

    assert reply.status_code == 200
    assert reply.json() == {"accepted": True, "duplicate": False}
    relay.wait_delivered()
    [event] = airflow_api.events(order_id)
    assert set(event) == {"change_id", "order_id", "nice_id", "item_statuses", "received_at", "from_rest_api"}
    assert event["order_id"] == order_id
    assert event["nice_id"] == "Richa7-5f3"
    assert event["item_statuses"] == ["Shipped", "InProduction"]
    assert event["from_rest_api"] is True
    assert len(event["change_id"]) == 32
    received = event["received_at"]
    assert received.endswith("+00:00") and abs(time.time() - _timestamp(received)) < 60
    assert not [value for value in PII if value in json.dumps(event)]


def test_the_nice_id_can_be_left_out(start_relay: Any, airflow_api: AirflowApi):
    relay = start_relay(include_nice_id=False)
    order_id = unique_order()

    relay.post(order_json(order_id, ["Shipped"], NiceId="Richa7-5f3"))

    relay.wait_delivered()
    [event] = airflow_api.events(order_id)
    assert event["nice_id"] is None
    assert "Richa" not in json.dumps(event)


def _timestamp(iso: str) -> float:
    import datetime as dt

    return dt.datetime.fromisoformat(iso).timestamp()


def test_the_change_is_on_disk_before_the_answer(start_relay: Any, tmp_path: Path):
    relay = start_relay(airflow_url=f"http://127.0.0.1:{free_port()}")  # Airflow down: it stays pending
    order_id = unique_order()

    assert relay.post(order_json(order_id, ["Hold"])).status_code == 200

    # another connection, as a restarted relay would open it, sees the committed row
    with sqlite3.connect(tmp_path / "outbox.sqlite3") as db:
        rows = db.execute("SELECT order_id, item_statuses, delivered_at FROM changes").fetchall()
    assert rows == [(order_id, '["Hold"]', None)]
    # and nothing of the order JSON but the change: no address, name or e-mail on disk
    dump = "\n".join(sqlite3.connect(tmp_path / "outbox.sqlite3").iterdump())
    assert not [value for value in PII if value in dump]


def test_exact_duplicates_collapse_and_real_changes_do_not(start_relay: Any, airflow_api: AirflowApi):
    relay = start_relay()
    order_id = unique_order()
    shipped, produced = order_json(order_id, ["Shipped"]), order_json(order_id, ["InProduction"])

    answers = [
        relay.post(order).json()["duplicate"] for order in (produced, produced, shipped, shipped, produced)
    ]

    assert answers == [False, True, False, True, False]  # New -> Shipped -> back is three changes
    relay.wait_delivered()
    assert [e["item_statuses"] for e in airflow_api.events(order_id)] == [
        ["InProduction"],
        ["Shipped"],
        ["InProduction"],
    ]
    assert relay.outbox.stats().duplicates == 2


def test_a_repeat_after_the_dedupe_window_is_a_change_again(start_relay: Any, airflow_api: AirflowApi):
    relay = start_relay(dedupe_window=0.2)
    order_id = unique_order()
    order = order_json(order_id, ["Shipped"])

    first = relay.post(order).json()["duplicate"]
    time.sleep(0.4)
    second = relay.post(order).json()["duplicate"]

    assert (first, second) == (False, False)
    relay.wait_delivered()
    assert len(airflow_api.events(order_id)) == 2


def test_two_items_shipping_together_send_two_identical_webhooks_and_make_one_event(
    start_relay: Any, airflow_api: AirflowApi
):
    relay = start_relay()
    with GootenApiServer(webhook_url=relay.webhook_url(None) + "?orderid=") as api:
        order_id = api.add_order(statuses=["InProduction", "InProduction"])["Id"]
        moved = requests.post(
            f"{api.base_url}/admin/orders/{order_id}/status", params={"status": "Shipped"}, timeout=5
        )
        assert moved.status_code == 200
        assert api.webhooks is not None and api.webhooks.wait_idle(30)
        deliveries = api.webhooks.deliveries

    assert [(d.item_statuses, d.delivered) for d in deliveries] == [(("Shipped", "Shipped"), True)] * 2
    relay.wait_delivered()
    assert [e["item_statuses"] for e in airflow_api.events(order_id)] == [["Shipped", "Shipped"]]
    assert relay.outbox.stats().duplicates == 1


def test_changes_wait_while_airflow_is_down_and_arrive_in_order_once_it_is_back(
    start_relay: Any, airflow_api: AirflowApi
):
    port = free_port()
    relay = start_relay(airflow_url=f"http://127.0.0.1:{port}")
    order_ids = [unique_order() for _ in range(3)]
    for n, order_id in enumerate(order_ids):
        assert relay.post(order_json(order_id, ["New"] * (n + 1))).status_code == 200
    wait_for(lambda: relay.deliverer.failures >= 3, 30, "failed deliveries")
    assert relay.outbox.stats().pending == 3
    assert [e for order_id in order_ids for e in airflow_api.events(order_id)] == []
    assert set(relay.outbox.errors()) == {
        f"Airflow is unreachable at http://127.0.0.1:{port} for POST /auth/token (ConnectionRefusedError)."
    }

    airflow_back = ServedApp(airflow_api.served.app, port).start()
    try:
        relay.wait_delivered()
    finally:
        airflow_back.stop()

    events = [e for e in airflow_api.events() if e["order_id"] in order_ids]
    assert [e["order_id"] for e in events] == order_ids
    assert relay.deliverer.failures == 0 and relay.deliverer.last_error is None


def test_a_restarted_relay_delivers_what_was_left_in_its_outbox(tmp_path: Path, airflow_api: AirflowApi):
    outbox, log, token = tmp_path / "outbox.sqlite3", tmp_path / "relay.log", "t" * 40
    env = {
        "GOOTEN_RELAY_TOKEN": token,
        "GOOTEN_RELAY_AIRFLOW_USERNAME": USERNAME,
        "GOOTEN_RELAY_AIRFLOW_PASSWORD": PASSWORD,
    }
    port = free_port()
    order_ids = [unique_order(), unique_order()]
    down = RelayProcess(port, outbox, f"http://127.0.0.1:{free_port()}", env, log)
    try:
        for order_id in order_ids:
            url = f"http://127.0.0.1:{port}/gooten/webhook/{token}?orderid={order_id}"
            assert requests.post(url, json=order_json(order_id, ["Printing"]), timeout=10).status_code == 200
    finally:
        down.kill()  # a crash: nothing is flushed or closed on the way out
    left = Outbox(outbox).pending()
    assert [p.change.order_id for p in left] == order_ids

    up = RelayProcess(port, outbox, airflow_api.url, env, log)
    try:
        wait_for(lambda: up.health()["pending"] == 0, 30, "the restarted relay to deliver")
    finally:
        assert up.stop() in (0, -15)  # SIGTERM, as systemd stops it (uvicorn re-raises it once shut down)

    events = [e for e in airflow_api.events() if e["order_id"] in order_ids]
    assert [(e["order_id"], e["change_id"]) for e in events] == [
        (p.change.order_id, p.change.change_id) for p in left
    ]
    output = log.read_text(encoding="utf-8")
    assert "Delivered change 2" in output
    assert output.rstrip().endswith(f"Finished server process [{up.process.pid}]")  # a clean stop
    assert token not in output and PASSWORD not in output
    assert not [value for value in PII if value in output]


def test_an_expired_airflow_token_is_renewed_with_the_username_and_password(
    start_relay: Any, airflow_api: AirflowApi
):
    relay = start_relay()
    order_id = unique_order()
    relay.post(order_json(order_id, ["New"]))
    relay.wait_delivered()
    relay.app.state.airflow_client._token = "expired.jwt.token"  # what a token 24 h old amounts to

    relay.post(order_json(order_id, ["Hold"]))

    relay.wait_delivered()
    assert [e["item_statuses"] for e in airflow_api.events(order_id)] == [["New"], ["Hold"]]
    assert relay.deliverer.failures == 0


def test_a_token_given_by_the_user_is_used_as_it_is(start_relay: Any, airflow_api: AirflowApi):
    token = requests.post(
        f"{airflow_api.url}/auth/token", json={"username": USERNAME, "password": PASSWORD}, timeout=30
    ).json()["access_token"]
    relay = start_relay(airflow_credentials=AirflowCredentials(token=token))
    order_id = unique_order()

    relay.post(order_json(order_id, ["New"]))

    relay.wait_delivered()
    assert len(airflow_api.events(order_id)) == 1


def test_refused_credentials_keep_the_change_and_say_why(start_relay: Any, airflow_api: AirflowApi):
    relay = start_relay(airflow_credentials=AirflowCredentials(token="not-a-jwt-" + "x" * 20))
    order_id = unique_order()

    relay.post(order_json(order_id, ["New"]))

    wait_for(lambda: relay.deliverer.failures >= 2, 30, "failed deliveries")
    assert relay.outbox.stats().pending == 1
    assert relay.outbox.errors() == [
        "Airflow answered 403 Forbidden to GET /api/v2/assets (Invalid JWT token): the token is not valid "
        "for this Airflow (signed with another jwt_secret, or revoked), or the relay's Airflow user may not "
        "read assets or create asset events."
    ]
    assert airflow_api.events(order_id) == []


def test_a_wrong_password_is_reported_without_the_password(start_relay: Any, airflow_api: AirflowApi):
    relay = start_relay(
        airflow_credentials=AirflowCredentials(username=USERNAME, password="wrong-" + PASSWORD)
    )
    relay.post(order_json(unique_order(), ["New"]))

    wait_for(lambda: relay.deliverer.failures >= 1, 30, "a failed delivery")
    [error] = relay.outbox.errors()
    assert (
        error
        == f"Airflow answered 401 to POST /auth/token: it refused the username '{USERNAME}' and its password."
    )


def test_without_the_asset_in_airflow_changes_wait_for_a_dag_to_use_it(
    start_relay: Any, airflow_api: AirflowApi
):
    relay = start_relay(asset_uri="gooten://orders-of-nobody")
    relay.post(order_json(unique_order(), ["New"]))

    wait_for(lambda: relay.deliverer.failures >= 1, 30, "a failed delivery")
    assert relay.outbox.stats().pending == 1
    [error] = relay.outbox.errors()
    assert error.startswith("Airflow has no asset gooten://orders-of-nobody: no DAG schedules on it yet.")


def test_health_reports_counts_only(start_relay: Any):
    relay = start_relay(airflow_url=f"http://127.0.0.1:{free_port()}")
    order = order_json(unique_order(), ["New"])
    relay.post(order)
    relay.post(order)

    health = requests.get(f"{relay.url}/healthz", timeout=5).json()

    assert health["status"] == "ok"
    assert (health["pending"], health["delivered"], health["duplicates"]) == (1, 0, 1)
    assert health["oldest_pending_age_seconds"] >= 0
    assert "Airflow" not in json.dumps(health)  # no error text for anyone who can reach it


def test_values_from_the_request_cannot_forge_log_lines(start_relay: Any, caplog: Any):
    relay = start_relay(airflow_url=f"http://127.0.0.1:{free_port()}")
    forged = "\n2026-01-01 00:00:00 INFO relay: all good"
    order_id = unique_order()
    with caplog.at_level(logging.INFO, logger="gooten_provider.webhooks"):
        answers = [
            requests.post(relay.webhook_url(None), params={"orderid": bad_id}, json=order, timeout=10)
            for bad_id, order in [
                (order_id + forged, order_json(order_id + forged, ["Shipped"])),
                (order_id, order_json(order_id, ["Shipped" + forged])),
                (order_id, order_json(order_id, ["Shipped"], NiceId="Richa7" + forged)),
            ]
        ]
        accepted = relay.post(order_json(order_id, ["Shipped\r\n"]))  # blanks around a status are dropped

    assert [answer.status_code for answer in answers] == [422, 422, 422]
    assert accepted.status_code == 200
    assert [p.change.item_statuses for p in relay.outbox.pending()] == [("Shipped",)]
    messages = [record.getMessage() for record in caplog.records if record.name.startswith("gooten_provider")]
    assert len([message for message in messages if "/gooten/webhook/<token>" in message]) == 4
    assert not [message for message in messages if "\n" in message or "\r" in message]
