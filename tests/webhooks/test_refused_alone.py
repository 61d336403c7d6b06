"""Each bad webhook is refused on its own: concurrent good ones are stored and answered 200 all the same.

A real relay process, 30 good and 30 bad webhooks posted at once over real HTTP on 127.0.0.1, so that
they share the outbox's group commits. Every kind of bad webhook is also a case of
``tests/errors/test_webhook_catalogue.py``, which pins its message.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import requests

from gooten_provider.webhooks.outbox import Outbox

from .harness import RelayProcess, free_port, order_json

TOKEN = "r" * 40
GOOD, BAD = 30, 30


def safe_id(number: int) -> str:
    return f"{number}-{uuid.uuid4()}"


def _body(order_id: str, statuses: list[str] | None = None, **fields: object) -> bytes:
    # json.dumps escapes a lone surrogate as \ud800, as a .NET serialiser would send it
    return json.dumps(order_json(order_id, statuses or ["Shipped"], **fields)).encode()


def _deep(order_id: str, levels: int) -> bytes:
    order = json.loads(_body(order_id))
    return json.dumps(order)[:-1].encode() + b', "Meta": ' + b"[" * levels + b"]" * levels + b"}"


#: Bad webhooks, each of a kind the relay must refuse with a 4xx before storing anything, and its status.
BAD_KINDS: dict[str, tuple[Callable[[str], tuple[str, bytes]], int]] = {
    "lone surrogate in NiceId": (lambda oid: (oid, _body(oid, NiceId="Richa7-\ud800")), 400),
    "lone surrogate as raw UTF-8 bytes": (
        lambda oid: (oid, _body(oid, NiceId="Richa7-@@").replace(b"@@", b"\xed\xa0\x80")),
        400,
    ),
    "NUL in an address": (lambda oid: (oid, _body(oid, ShippingAddress={"Line1": "1 Main\u0000St"})), 400),
    "a NUL in the Id": (lambda oid: (oid + "\u0000", _body(oid + "\u0000")), 400),
    "JSON 5,000 levels deep": (lambda oid: (oid, _deep(oid, 5000)), 400),
    "JSON 40 levels deep": (lambda oid: (oid, _deep(oid, 40)), 400),
    "an e-mail address as Id": (lambda oid: ("jane@example.com", _body("jane@example.com")), 422),
    "a name as an item status": (lambda oid: (oid, _body(oid, ["Jane Doe, 1 Main St"])), 422),
}


@pytest.fixture
def relay(tmp_path: Path) -> Iterator[RelayProcess]:
    env = {
        "GOOTEN_RELAY_TOKEN": TOKEN,
        "GOOTEN_RELAY_AIRFLOW_USERNAME": "relay",
        "GOOTEN_RELAY_AIRFLOW_PASSWORD": "pw",
    }
    # Airflow unreachable: the changes stay in the outbox, where the test counts them
    process = RelayProcess(
        free_port(), tmp_path / "outbox.sqlite3", f"http://127.0.0.1:{free_port()}", env, tmp_path / "log"
    )
    yield process
    process.stop()


def post_all_at_once(port: int, requests_: list[tuple[str, bytes]]) -> list[requests.Response]:
    """POST every ``(orderid, body)`` from its own thread, all released together."""
    start = threading.Barrier(len(requests_))

    def post(item: tuple[str, bytes]) -> requests.Response:
        order_id, body = item
        start.wait()
        return requests.post(
            f"http://127.0.0.1:{port}/gooten/webhook/{TOKEN}",
            params={"orderid": order_id},
            data=body,
            headers={"Content-Type": "application/json"},
            timeout=60,
        )

    with ThreadPoolExecutor(len(requests_)) as pool:
        return list(pool.map(post, requests_))


def test_bad_webhooks_are_refused_alone_and_good_neighbours_are_stored(relay: RelayProcess, tmp_path: Path):
    good = [(oid, _body(oid)) for oid in (safe_id(7001) for _ in range(GOOD))]
    kinds = list(BAD_KINDS.items())
    bad = [kinds[n % len(kinds)][1][0](safe_id(7002)) for n in range(BAD)]
    mixed = [item for pair in zip(good, bad, strict=True) for item in pair]

    answers = post_all_at_once(relay.port, mixed)

    good_answers, bad_answers = answers[0::2], answers[1::2]
    assert [a.status_code for a in good_answers] == [200] * GOOD
    refused = {(kinds[n % len(kinds)][0], a.status_code) for n, a in enumerate(bad_answers)}
    assert refused == {(kind, status) for kind, (_, status) in BAD_KINDS.items()}
    assert all(set(a.json()) == {"error"} for a in bad_answers)
    stored = Outbox(tmp_path / "outbox.sqlite3").pending(1000)
    assert sorted(p.change.order_id for p in stored) == sorted(oid for oid, _ in good)
    assert relay.health()["pending"] == GOOD


def test_a_change_the_outbox_refuses_costs_only_its_own_webhook(tmp_path: Path):
    """The outbox itself refuses some changes (a trigger of the test): the shared commit fails, and is
    committed one by one, so only those are answered 503 and every neighbour is stored."""
    outbox = tmp_path / "outbox.sqlite3"
    Outbox(outbox).close()
    with sqlite3.connect(outbox) as db:
        db.execute(
            "CREATE TRIGGER refuse_some BEFORE INSERT ON changes WHEN NEW.order_id LIKE '9999-%' "
            "BEGIN SELECT RAISE(ABORT, 'refused by the test'); END"
        )
    env = {
        "GOOTEN_RELAY_TOKEN": TOKEN,
        "GOOTEN_RELAY_AIRFLOW_USERNAME": "relay",
        "GOOTEN_RELAY_AIRFLOW_PASSWORD": "pw",
    }
    relay = RelayProcess(free_port(), outbox, f"http://127.0.0.1:{free_port()}", env, tmp_path / "log")
    try:
        good = [(oid, _body(oid)) for oid in (safe_id(7003) for _ in range(GOOD))]
        bad = [(oid, _body(oid)) for oid in (safe_id(9999) for _ in range(BAD))]
        mixed = [item for pair in zip(good, bad, strict=True) for item in pair]
        answers = post_all_at_once(relay.port, mixed)
        health = relay.health()
    finally:
        relay.stop()

    assert [a.status_code for a in answers[0::2]] == [200] * GOOD
    assert [a.status_code for a in answers[1::2]] == [503] * BAD
    assert health["pending"] == GOOD
    log = (tmp_path / "log").read_text(encoding="utf-8")
    assert log.count("Could not store a change of order 9999-") == BAD


def test_the_limits_are_where_the_catalogue_says(relay: RelayProcess):
    limits: dict[str, tuple[Callable[[str], bytes], int]] = {
        "32 levels": (lambda oid: _deep(oid, 31), 200),  # the order object, then 31 nested lists
        "33 levels": (lambda oid: _deep(oid, 32), 400),
        "a status of 64 characters": (lambda oid: _body(oid, ["A" * 64]), 200),
        "a status of 65 characters": (lambda oid: _body(oid, ["A" * 65]), 422),
        "a status with blanks around it": (lambda oid: _body(oid, [" In Production_2-b \t"]), 200),
        "a NiceId of 64 characters": (lambda oid: _body(oid, NiceId="N" * 64), 200),
        "a NiceId of 65 characters": (lambda oid: _body(oid, NiceId="N" * 65), 422),
    }
    answers = {}
    for name, (make, _) in limits.items():
        order_id = safe_id(7201)
        answers[name] = requests.post(
            f"http://127.0.0.1:{relay.port}/gooten/webhook/{TOKEN}",
            params={"orderid": order_id},
            data=make(order_id),
            timeout=10,
        ).status_code

    assert answers == {name: status for name, (_, status) in limits.items()}
