"""The local Gooten API's webhooks and its admin status route, against a real HTTP receiver on loopback.

The receiver records every POST and answers with the statuses a test queues (default 200), or stalls,
so that retries (and the duplicates they cause) are observable.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import requests

from gooten_provider.testing import GootenApiServer
from gooten_provider.testing.orders import demo_order_specs
from gooten_provider.testing.webhooks import webhook_url_for


class Receiver:
    """A webhook receiver on 127.0.0.1: records ``(path, orderid, order JSON)`` of each POST."""

    def __init__(self) -> None:
        self.received: list[tuple[str, str, dict[str, Any]]] = []
        self.answers: list[int | str] = []  # an HTTP status, or "stall" (answer after the sender's timeout)
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                url = urlsplit(self.path)
                receiver.received.append((url.path, parse_qs(url.query)["orderid"][0], body))
                answer = receiver.answers.pop(0) if receiver.answers else 200
                if answer == "stall":
                    time.sleep(1.0)
                    answer = 200
                self.send_response(int(answer))
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_port}/gooten/webhook/s3cret-token?orderid="


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    server = Receiver()
    yield server
    server.server.shutdown()


def move(api: GootenApiServer, order_id: str, status: str | None) -> requests.Response:
    params = {} if status is None else {"status": status}
    return requests.post(f"{api.base_url}/admin/orders/{order_id}/status", params=params, timeout=5)


def test_every_item_status_change_posts_the_order_json_once_per_item_changed(receiver: Receiver) -> None:
    with GootenApiServer(webhook_url=receiver.url) as api:
        order_id = api.add_order(statuses=["InProduction", "InProduction", "Shipped"])["Id"]
        assert api.webhooks is not None

        reply = move(api, order_id, "shipped")

        assert reply.status_code == 200
        assert reply.json() == {"Id": order_id, "Statuses": ["Shipped", "Shipped", "Shipped"]}
        assert api.webhooks.wait_idle(10)
        # two items changed (the third was already Shipped): two webhooks, identical, as Gooten sends them
        assert [(path, oid) for path, oid, _ in receiver.received] == [
            ("/gooten/webhook/s3cret-token", order_id)
        ] * 2
        bodies = [body for _, _, body in receiver.received]
        assert bodies[0] == bodies[1] == api.order(order_id)
        assert bodies[0]["ShippingAddress"]["Email"]  # the whole order JSON, as Gooten posts it
        assert [(d.order_id, d.item_statuses, d.attempts, d.delivered) for d in api.webhooks.deliveries] == [
            (order_id, ("Shipped", "Shipped", "Shipped"), 1, True)
        ] * 2


def test_status_changes_through_the_api_and_in_code_send_webhooks_too(receiver: Receiver) -> None:
    with GootenApiServer(webhook_url=receiver.url) as api:
        order_id = api.add_order(statuses="New")["Id"]
        changed = requests.post(
            f"{api.base_url}/api/orderstatus",
            params={
                "recipeid": api.recipe_id,
                "partnerBillingKey": api.billing_key,
                "id": order_id,
                "orderStatusName": "Hold",
            },
            timeout=5,
        )
        assert changed.json() == {"HadError": False}
        api.set_item_statuses(order_id, "Hold")  # no change: no webhook
        api.set_item_statuses(order_id, "Cancelled")
        assert api.webhooks is not None and api.webhooks.wait_idle(10)

    assert [body["Items"][0]["Status"] for _, _, body in receiver.received] == ["Hold", "Cancelled"]


def test_a_failed_webhook_is_sent_again_so_the_receiver_may_get_it_twice(receiver: Receiver) -> None:
    receiver.answers = [503, "stall"]  # an error, then an answer that comes after the sender gave up waiting
    with GootenApiServer(webhook_url=receiver.url) as api:
        assert api.webhooks is not None
        api.webhooks.timeout = 0.3
        order_id = api.add_order(statuses="New")["Id"]
        api.set_item_statuses(order_id, "Shipped")
        assert api.webhooks.wait_idle(20)
        [delivery] = api.webhooks.deliveries

    assert (delivery.attempts, delivery.status, delivery.delivered) == (3, 200, True)
    # the stalled attempt was received too: the receiver got the same webhook three times
    assert [oid for _, oid, _ in receiver.received] == [order_id] * 3


def test_a_webhook_nobody_answers_is_given_up_after_its_attempts_and_says_why() -> None:
    with GootenApiServer(webhook_url="http://127.0.0.1:9/gooten/webhook/s3cret-token?orderid=") as api:
        assert api.webhooks is not None
        api.webhooks.max_attempts, api.webhooks.retry_initial = 3, 0.01
        order_id = api.add_order(statuses="New")["Id"]
        api.set_item_statuses(order_id, "Shipped")
        assert api.webhooks.wait_idle(20)
        [delivery] = api.webhooks.deliveries

    assert (delivery.attempts, delivery.delivered, delivery.status) == (3, False, None)
    assert delivery.error == "ConnectionRefusedError"
    assert "s3cret-token" not in repr(delivery) + repr(api.webhooks) + repr(api)


def test_the_admin_route_refuses_an_unknown_order_or_status_and_sends_nothing(receiver: Receiver) -> None:
    with GootenApiServer(webhook_url=receiver.url) as api:
        order_id = api.add_order(statuses="New")["Id"]

        unknown_status = move(api, order_id, "Shiped")
        no_status = move(api, order_id, None)
        unknown_order = move(api, "999-nope", "Shipped")

        assert (unknown_status.status_code, no_status.status_code, unknown_order.status_code) == (
            400,
            400,
            404,
        )
        assert unknown_status.json()["Message"].startswith(
            "Give a known item status as ?status= (got 'Shiped')"
        )
        assert unknown_order.json() == {"Message": "No order '999-nope' in the local Gooten API."}
        assert api.item_statuses(order_id) == ["New"]
        assert api.webhooks is not None and api.webhooks.wait_idle(5)
    assert receiver.received == []


def test_without_a_webhook_url_the_admin_route_works_and_nothing_is_sent() -> None:
    with GootenApiServer() as api:
        order_id = api.add_order(statuses="New")["Id"]
        assert move(api, order_id, "Printing").status_code == 200
        assert api.item_statuses(order_id) == ["Printing"]
        assert api.webhooks is None
        assert [e.outcome for e in api.journal] == ["admin_status"]
        assert api.writes() == []  # not a Gooten status change through the API


@pytest.mark.parametrize(
    ("registered", "sent_to"),
    [
        ("http://h/w/t?orderid=", "http://h/w/t?orderid=1%2Fa"),
        ("http://h/w/t?x=1&OrderId=", "http://h/w/t?x=1&OrderId=1%2Fa"),
        ("http://h/w/t", "http://h/w/t?orderid=1%2Fa"),
        ("http://h/w/t?x=1", "http://h/w/t?x=1&orderid=1%2Fa"),
    ],
)
def test_the_order_id_is_appended_to_the_registered_url(registered: str, sent_to: str) -> None:
    assert webhook_url_for(registered, "1/a") == sent_to


def test_a_webhook_url_that_is_not_http_is_refused_without_echoing_it() -> None:
    with pytest.raises(ValueError, match=r"^webhook_url must be an http:// or https:// URL\.$"):
        GootenApiServer(webhook_url="ftp://h/gooten/webhook/s3cret-token?orderid=")


def test_the_command_line_takes_the_webhook_url_from_an_environment_variable(receiver: Receiver) -> None:
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "gooten_provider.testing",
            "--port",
            "0",
            "--demo-orders",
            "--webhook-url-env",
            "HOOK",
        ],
        env={**os.environ, "HOOK": receiver.url},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        line = process.stdout.readline() if process.stdout else ""
        base_url = re.search(r"listening on (\S+) ", line)
        assert base_url, line
        order_id = demo_order_specs()[0]["id"]
        moved = requests.post(
            f"{base_url.group(1)}/admin/orders/{order_id}/status", params={"status": "Shipped"}, timeout=5
        )
        assert moved.status_code == 200
        deadline = time.monotonic() + 10
        while not receiver.received and time.monotonic() < deadline:
            time.sleep(0.05)
        process.send_signal(signal.SIGTERM)
        out, err = process.communicate(timeout=10)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    assert [(oid, body["Items"][0]["Status"]) for _, oid, body in receiver.received] == [
        (order_id, "Shipped")
    ]
    assert "s3cret-token" not in line + out + err
