"""A change Airflow refuses for good is parked after a bounded number of refusals; later changes flow on.

A real relay process delivers to a fake Airflow API on 127.0.0.1 (the three routes the relay uses) that
answers 422 to the events of chosen orders, and 500 to others for a while: a 422 cannot be fixed by
retrying, a 500 can. ``/healthz`` says ``degraded`` while a change is parked; ``python -m
gooten_provider.webhooks parked`` lists it, and queues it again once Airflow takes it.
"""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import threading
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import requests
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from gooten_provider.webhooks.outbox import Outbox

from .harness import RelayProcess, ServedApp, free_port, order_json, wait_for
from .test_refused_alone import TOKEN, safe_id

PARK_AFTER = 3


@dataclass
class FakeAirflow:
    """Airflow's token, asset and event routes; events of ``refused`` orders get that status."""

    refused: dict[str, tuple[int, int]] = field(default_factory=dict)  # order id: (status, how many times)
    accepted: list[str] = field(default_factory=list)
    tries: Counter[str] = field(default_factory=Counter)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def app(self) -> Starlette:
        async def token(request: Request) -> JSONResponse:
            return JSONResponse({"access_token": "fake-jwt"}, status_code=201)

        async def assets(request: Request) -> JSONResponse:
            return JSONResponse({"assets": [{"id": 1, "uri": "gooten://orders"}], "total_entries": 1})

        async def events(request: Request) -> JSONResponse:
            order_id = (await request.json())["extra"]["order_id"]
            with self.lock:
                self.tries[order_id] += 1
                status, times = self.refused.get(order_id, (201, 0))
                if self.tries[order_id] > times:
                    self.accepted.append(order_id)
                    return JSONResponse({"id": len(self.accepted), "asset_id": 1}, status_code=200)
            refusal = {"detail": [{"msg": "Input should be a valid dictionary"}]}
            return JSONResponse(refusal, status_code=status)

        return Starlette(
            routes=[
                Route("/auth/token", token, methods=["POST"]),
                Route("/api/v2/assets", assets, methods=["GET"]),
                Route("/api/v2/assets/events", events, methods=["POST"]),
            ]
        )


@pytest.fixture
def airflow() -> Iterator[tuple[FakeAirflow, ServedApp]]:
    fake = FakeAirflow()
    served = ServedApp(fake.app()).start()
    yield fake, served
    served.stop()


def parked_command(outbox: Path, *args: str) -> str:
    result = subprocess.run(
        [sys.executable, "-m", "gooten_provider.webhooks", "parked", "--outbox", str(outbox), *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return result.stdout


def test_a_change_refused_for_good_is_parked_and_later_changes_flow_on(
    airflow: tuple[FakeAirflow, ServedApp], tmp_path: Path
):
    fake, served = airflow
    outbox = tmp_path / "outbox.sqlite3"
    refused, flaky, later = safe_id(8001), safe_id(8002), [safe_id(8003) for _ in range(3)]
    fake.refused = {refused: (422, 10**6), flaky: (500, PARK_AFTER + 3)}  # 500s outlast the park limit
    env = {"GOOTEN_RELAY_TOKEN": TOKEN, "GOOTEN_RELAY_AIRFLOW_TOKEN": "fake-jwt"}
    relay = RelayProcess(
        free_port(), outbox, served.url, env, tmp_path / "log", "--park-after", str(PARK_AFTER)
    )
    try:
        for order_id in [refused, flaky, *later]:
            url = f"http://127.0.0.1:{relay.port}/gooten/webhook/{TOKEN}?orderid={order_id}"
            assert requests.post(url, json=order_json(order_id, ["New"]), timeout=10).status_code == 200

        wait_for(lambda: fake.accepted == [flaky, *later], 60, "the changes after the refused one")
        health = relay.health()
        assert (health["status"], health["parked"], health["pending"]) == ("degraded", 1, 0)
        assert fake.tries[refused] == PARK_AFTER  # refused a bounded number of times, then left alone
        assert fake.tries[flaky] == PARK_AFTER + 4  # a 500 is never a reason to park

        [parked] = Outbox(outbox).parked()  # kept, not deleted
        assert (parked.change.order_id, parked.refusals) == (refused, PARK_AFTER)
        listing = parked_command(outbox)
        assert listing.startswith(f"1 parked change(s) in {outbox}:\n  change 1: order {refused} (New)")
        assert f"after {PARK_AFTER} refusal(s): Airflow answered 422 to POST /api/v2/assets/events" in listing

        fake.refused.clear()  # the cause is fixed
        assert parked_command(outbox, "--requeue") == "Queued 1 parked change(s) again: 1.\n"
        wait_for(lambda: refused in fake.accepted, 30, "the change queued again")
        wait_for(lambda: relay.health()["status"] == "ok", 10, "the relay to be healthy again")
        assert relay.health()["parked"] == 0
        assert parked_command(outbox) == f"0 parked change(s) in {outbox}.\n"
    finally:
        relay.stop()
    log = (tmp_path / "log").read_text(encoding="utf-8")
    assert f"Parked change 1 (order {refused}): Airflow refused it {PARK_AFTER} times" in log
    assert "fake-jwt" not in log


def test_the_parked_command_refuses_a_missing_outbox(tmp_path: Path):
    result = subprocess.run(
        [sys.executable, "-m", "gooten_provider.webhooks", "parked", "--outbox", str(tmp_path / "none")],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2
    assert result.stderr == f"error: there is no outbox at {tmp_path / 'none'} (give the relay's --outbox).\n"


def test_an_outbox_of_version_1_is_upgraded_with_its_pending_changes(tmp_path: Path):
    path = tmp_path / "outbox.sqlite3"
    with sqlite3.connect(path) as db:  # the schema of the relay's first version
        db.executescript(
            "CREATE TABLE changes (id INTEGER PRIMARY KEY AUTOINCREMENT, change_id TEXT NOT NULL UNIQUE, "
            "order_id TEXT NOT NULL, nice_id TEXT, item_statuses TEXT NOT NULL, received_at REAL NOT NULL, "
            "duplicates INTEGER NOT NULL DEFAULT 0, attempts INTEGER NOT NULL DEFAULT 0, "
            "last_attempt_at REAL, last_error TEXT, delivered_at REAL); PRAGMA user_version = 1;"
        )
        db.execute(
            "INSERT INTO changes (change_id, order_id, item_statuses, received_at, attempts) "
            "VALUES ('c1', ?, '[\"New\"]', 1.0, 2)",
            (safe_id(8101),),
        )

    outbox = Outbox(path)
    [pending] = outbox.pending()
    assert outbox.mark_refused(pending.row_id, "Airflow answered 422", 2.0, park_after=1)
    assert [p.row_id for p in outbox.parked()] == [pending.row_id]
    assert outbox.stats().parked == 1
    assert sqlite3.connect(path).execute("PRAGMA user_version").fetchone()[0] == 2
