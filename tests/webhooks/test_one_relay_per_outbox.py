"""One outbox, one relay: a second relay on the same outbox refuses to start, naming it.

Two relays on one outbox would each deliver every pending change (39 of 40 changes reached Airflow twice
before the lock). Real relay processes; the lock is released however the first one ends, SIGKILL included.
"""

from __future__ import annotations

from pathlib import Path

import requests

from .harness import RelayProcess, free_port, order_json, wait_for
from .test_refused_alone import TOKEN, safe_id

ENV = {
    "GOOTEN_RELAY_TOKEN": TOKEN,
    "GOOTEN_RELAY_AIRFLOW_USERNAME": "relay",
    "GOOTEN_RELAY_AIRFLOW_PASSWORD": "pw",
}


def test_a_second_relay_on_the_same_outbox_refuses_to_start_until_the_first_is_gone(tmp_path: Path):
    outbox, airflow = tmp_path / "outbox.sqlite3", f"http://127.0.0.1:{free_port()}"
    first = RelayProcess(free_port(), outbox, airflow, ENV, tmp_path / "first.log")
    try:
        second = RelayProcess(free_port(), outbox, airflow, ENV, tmp_path / "second.log", wait=False)
        try:
            assert second.process.wait(30) == 2
        finally:
            second.stop()  # (a relay that started after all: stopped, then the test fails)
        refusal = (tmp_path / "second.log").read_text(encoding="utf-8").strip()
        assert refusal == (
            f"error: Another relay already uses the outbox {outbox} (process {first.process.pid}): one "
            "outbox takes one relay, or every change would be delivered twice. Stop that relay, or give this "
            f"one its own --outbox. (Lock file: {outbox}.lock.)"
        )
        # the first one was not disturbed
        order_id = safe_id(7101)
        url = f"http://127.0.0.1:{first.port}/gooten/webhook/{TOKEN}?orderid={order_id}"
        assert requests.post(url, json=order_json(order_id, ["New"]), timeout=10).status_code == 200
    finally:
        first.kill()  # SIGKILL: the kernel drops the lock with the process

    third = RelayProcess(free_port(), outbox, airflow, ENV, tmp_path / "third.log")
    try:
        wait_for(lambda: third.health()["pending"] == 1, 10, "the change left by the first relay")
    finally:
        assert third.stop() in (0, -15)


def test_another_outbox_beside_it_is_another_relay(tmp_path: Path):
    airflow = f"http://127.0.0.1:{free_port()}"
    relays = [
        RelayProcess(free_port(), tmp_path / name, airflow, ENV, tmp_path / f"{name}.log")
        for name in ("a.sqlite3", "b.sqlite3")
    ]
    try:
        assert [relay.process.poll() for relay in relays] == [None, None]
    finally:
        for relay in relays:
            relay.stop()
