"""No personal data and no secret leaves the relay: not in events, logs, answers, or the outbox.

The relay is driven through everything it does, failures included (refusals, Airflow down, Airflow
refusing a password, Airflow back), with every logger at DEBUG (uvicorn and urllib3 too), then
everything readable is searched for the order JSON's personal data (names, street, e-mail, phone), the
webhook token, the Airflow password and the Airflow JWTs the relay used.
"""

from __future__ import annotations

import json
import logging
import sqlite3
from pathlib import Path
from typing import Any

import pytest
import requests

from gooten_provider.webhooks.airflow_client import AirflowCredentials

from .conftest import PASSWORD, USERNAME, AirflowApi
from .harness import PII, ServedApp, free_port, order_json, wait_for

ORDER_ID = "4242-0c6f1f5e-8d0b-4f43-9a55-3b1d6f0b9e21"


def test_nothing_personal_or_secret_is_logged_stored_answered_or_sent(
    start_relay: Any, airflow_api: AirflowApi, tmp_path: Path, caplog: pytest.LogCaptureFixture, capfd: Any
) -> None:
    port = free_port()
    texts: dict[str, str] = {}
    with caplog.at_level(logging.DEBUG):
        relay = start_relay(
            airflow_url=f"http://127.0.0.1:{port}",
            airflow_credentials=AirflowCredentials(username=USERNAME, password=PASSWORD),
        )
        token = relay.settings.token
        order = order_json(ORDER_ID, ["AddressIssue", "New"])
        answers = [relay.post(order), relay.post(order)]
        # refusals, one with a token that differs from the real one by its last character
        near_miss = token[:-1] + ("A" if token[-1] != "A" else "B")
        for url, body in [
            (relay.webhook_url(ORDER_ID, token=near_miss), json.dumps(order)),
            (relay.webhook_url("other-id"), json.dumps(order)),
            (relay.webhook_url(ORDER_ID), "not json " + json.dumps(order)),
        ]:
            answers.append(requests.post(url, data=body, timeout=10))
        answers.append(requests.get(relay.webhook_url(ORDER_ID), timeout=10))
        # Airflow down: delivery errors
        wait_for(lambda: relay.deliverer.failures >= 2, 30, "failed deliveries")
        relay.stop()
        # Airflow refusing the password
        wrong = start_relay(
            airflow_url=airflow_api.url,
            airflow_credentials=AirflowCredentials(username=USERNAME, password=PASSWORD[::-1]),
        )
        wait_for(lambda: wrong.deliverer.failures >= 1, 30, "a refused login")
        wrong.stop()
        # Airflow back, right password: delivered
        good = start_relay(airflow_url=f"http://127.0.0.1:{port}")
        back = ServedApp(airflow_api.served.app, port).start()
        try:
            good.wait_delivered()
        finally:
            back.stop()
        jwt = good.app.state.airflow_client._token  # the token the relay used, to look for it
        errors = good.outbox.errors()
        good.stop()

    captured = capfd.readouterr()
    # urllib3 logs the test's own requests, playing Gooten, to /gooten/webhook/...: those are left out;
    # the relay's own requests (to Airflow) go through urllib3 too, and are kept
    texts["log records"] = "\n".join(
        f"{r.name} {r.levelname} {r.getMessage()}"
        for r in caplog.records
        if not (r.name.startswith("urllib3") and "/gooten/webhook/" in r.getMessage())
    )
    texts["stdout and stderr"] = captured.out + captured.err
    texts["answers"] = "\n".join(f"{a.status_code} {a.headers} {a.text}" for a in answers)
    texts["outbox errors"] = "\n".join(errors)
    with sqlite3.connect(tmp_path / "outbox.sqlite3") as db:
        texts["outbox file"] = "\n".join(db.iterdump())
    texts["events in Airflow"] = json.dumps(airflow_api.events(ORDER_ID))

    # the runs did what they should, or this proves nothing
    assert [a.status_code for a in answers] == [200, 200, 403, 422, 400, 405]
    assert [e["item_statuses"] for e in airflow_api.events(ORDER_ID)] == [["AddressIssue", "New"]]
    assert "Airflow is unreachable" in texts["outbox errors"]
    assert "refused the username" in texts["log records"]
    assert "/gooten/webhook/<token>" in texts["log records"]
    assert "POST /api/v2/assets/events" in texts["log records"]  # urllib3's lines of the relay's requests
    assert jwt and len(jwt) > 50

    secrets = {"webhook token": token, "near-miss token": near_miss, "Airflow password": PASSWORD, "JWT": jwt}
    secrets.update({f"personal data {value!r}": value for value in PII})
    leaks = [
        f"{name} in {where}"
        for where, text in texts.items()
        for name, value in secrets.items()
        if value in text
    ]
    assert leaks == []
