"""GootenOrderStatusTrigger, as the triggerer runs it: from its serialized kwargs, against the local API."""

from __future__ import annotations

import asyncio
import itertools
import json
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from gooten_provider.client.billing_key import billing_key_forms
from gooten_provider.testing import GootenApiServer
from gooten_provider.triggers.gooten import GootenOrderStatusTrigger

CLASSPATH = "gooten_provider.triggers.gooten.GootenOrderStatusTrigger"


@pytest.fixture
def start_api(monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[..., GootenApiServer]]:
    """Start a local API (settings as ``GootenApiServer``'s) and point ``gooten_default`` at it."""
    servers: list[GootenApiServer] = []

    def start(**kwargs: Any) -> GootenApiServer:
        server = GootenApiServer(**kwargs).start()
        servers.append(server)
        config = server.connection_config()
        config["extra"].update({"backoff_factor": 0.01, "throttle_timeout": 30})
        monkeypatch.setenv("AIRFLOW_CONN_GOOTEN_DEFAULT", json.dumps(config))
        return server

    yield start
    for server in servers:
        server.stop()


def trigger(order_ids: list[str], **kwargs: Any) -> GootenOrderStatusTrigger:
    kwargs.setdefault("target_statuses", ["Shipped", "Delivered"])
    kwargs.setdefault("failure_statuses", ["Cancelled"])
    kwargs.setdefault("poke_interval", 0.2)
    kwargs.setdefault("end_time", time.time() + 30)
    return GootenOrderStatusTrigger(order_ids=order_ids, **kwargs)


def restarted(original: GootenOrderStatusTrigger) -> GootenOrderStatusTrigger:
    """The trigger as a triggerer rebuilds it: from JSON of its serialized kwargs."""
    classpath, kwargs = original.serialize()
    assert classpath == CLASSPATH
    return GootenOrderStatusTrigger(**json.loads(json.dumps(kwargs)))


def first_event(the_trigger: GootenOrderStatusTrigger, during: Callable[[], None] | None = None) -> Any:
    """Run the trigger until its first event; ``during`` runs in a thread meanwhile (Gooten moving)."""

    async def main() -> Any:
        side = asyncio.create_task(asyncio.to_thread(during)) if during else None
        event = await the_trigger.run().asend(None)
        if side:
            await side
        return event.payload

    return asyncio.run(main())


def reads(api: GootenApiServer, order_id: str) -> list[Any]:
    return [e for e in api.journal if e.order_id == order_id and e.method == "GET"]


def test_serialize_round_trip_holds_ids_and_no_credential(start_api):
    api = start_api()
    original = trigger(
        ["1-a", "2-b"], known_statuses={"1-a": ["Shipped"]}, max_concurrency=3, not_before=time.time()
    )
    classpath, kwargs = original.serialize()
    assert classpath == CLASSPATH
    assert GootenOrderStatusTrigger(**kwargs).serialize() == (classpath, kwargs)
    assert kwargs["order_ids"] == ["1-a", "2-b"]
    assert kwargs["gooten_conn_id"] == "gooten_default"
    assert kwargs["known_statuses"] == {"1-a": ["Shipped"]}
    text = json.dumps(kwargs)  # JSON-safe, as the triggerer stores it
    assert not any(form in text for form in billing_key_forms(api.billing_key))
    assert api.recipe_id not in text


def test_succeeds_once_gooten_moves_every_order_and_reads_done_orders_no_more(start_api):
    api = start_api()
    shipped = api.add_order(statuses=["Shipped", "Delivered"])["Id"]
    held = api.add_order(statuses=["Hold", "Hold"])["Id"]

    def release() -> None:  # Gooten ships the held order once the trigger has read it twice
        while len(reads(api, held)) < 2:
            time.sleep(0.02)
        api.set_item_statuses(held, "Shipped")

    payload = first_event(restarted(trigger([shipped, held], poke_interval=0.3)), during=release)
    assert payload["status"] == "success"
    assert payload["statuses"] == {shipped: ["Shipped", "Delivered"], held: ["Shipped", "Shipped"]}
    assert len(reads(api, shipped)) == 1  # done at the first round: never read again
    assert len(reads(api, held)) == 3
    assert api.writes() == []


def test_orders_already_known_done_are_not_read(start_api):
    api = start_api()
    done = api.add_order(statuses="Shipped")["Id"]
    other = api.add_order(statuses="Delivered")["Id"]
    payload = first_event(trigger([done, other], known_statuses={done: ["Shipped"]}))
    assert payload["status"] == "success"
    assert payload["statuses"] == {done: ["Shipped"], other: ["Delivered"]}
    assert reads(api, done) == []


def test_a_failure_status_ends_the_wait_naming_each_order(start_api):
    api = start_api()
    ok = api.add_order(statuses="New")["Id"]
    cancelled = [api.add_order(statuses=["New", "Cancelled"])["Id"] for _ in range(2)]
    payload = first_event(trigger([ok, *cancelled]))
    assert payload["status"] == "failure"
    for order_id in cancelled:
        assert f"Gooten order {order_id} reached Cancelled (items: New, Cancelled)" in payload["message"]
    assert ok not in payload["message"]
    assert payload["statuses"][ok] == ["New"]


def test_times_out_at_the_absolute_deadline_reading_each_order_at_most_once_per_interval(start_api):
    api = start_api()
    order_id = api.add_order(statuses="Hold")["Id"]
    interval, span = 0.2, 0.9
    started = time.monotonic()
    payload = first_event(restarted(trigger([order_id], poke_interval=interval, end_time=time.time() + span)))
    elapsed = time.monotonic() - started
    assert payload["status"] == "timeout"
    assert order_id in payload["message"]
    assert payload["statuses"] == {order_id: ["Hold"]}
    starts = [e.started for e in reads(api, order_id)]
    assert 1 <= len(starts) <= int(elapsed / interval) + 1
    # request latency moves each read a little within its round; rounds themselves start an interval apart
    assert all(later - earlier >= interval * 0.75 for earlier, later in itertools.pairwise(starts))


def test_the_first_round_waits_for_the_next_poke_due_after_the_workers(start_api):
    api = start_api()
    order_id = api.add_order(statuses="Shipped")["Id"]
    # the worker read it just now: the next read is due after the deadline, so none is made
    payload = first_event(trigger([order_id], not_before=time.time() + 60, end_time=time.time() + 0.2))
    assert payload["status"] == "timeout"
    assert reads(api, order_id) == []
    # due already (a triggerer restart, later): read at once
    assert first_event(trigger([order_id], not_before=time.time() - 1))["status"] == "success"


def test_a_deadline_already_passed_times_out_without_a_read(start_api):
    api = start_api()
    order_id = api.add_order(statuses="Hold")["Id"]
    payload = first_event(trigger([order_id], end_time=time.time() - 1))
    assert payload["status"] == "timeout"
    assert f"still waiting for: {order_id}." in payload["message"]
    assert reads(api, order_id) == []


def test_the_deadline_cuts_a_round_of_10000_reads(start_api):
    # A round of 10,000 reads lasts far longer than the deadline (about 12 s here, more on a slow
    # machine; latency makes sure of it): the timeout must come within a poke interval of the deadline,
    # not after the round, and no read may start after it.
    api = start_api(latency=0.002)
    order_ids = api.add_orders(10_000, statuses="Hold")
    interval, span = 1.0, 5.0
    started = time.monotonic()
    deadline = started + span
    payload = first_event(trigger(order_ids, poke_interval=interval, end_time=time.time() + span))
    elapsed = time.monotonic() - started
    assert payload["status"] == "timeout"
    assert payload["message"].startswith("10000 of 10000 order(s) had not reached Shipped, Delivered")
    assert 0 < len(payload["statuses"]) < len(order_ids)  # read up to the deadline, then cut
    last_read = max(entry.started for entry in api.journal)  # when the server had read the request
    assert last_read < deadline + 0.5, (
        f"a read reached the server {last_read - deadline:.2f} s after the deadline"
    )
    assert elapsed < span + interval, f"timed out {elapsed - span:.1f} s after the deadline"


def test_throttled_reads_are_paced_and_retried_until_every_order_is_read(start_api):
    api = start_api(rate_limit=40, rate_burst=5)
    order_ids = api.add_orders(40, statuses="Shipped")
    payload = first_event(trigger(order_ids, max_concurrency=16))
    assert payload["status"] == "success"
    assert set(payload["statuses"]) == set(order_ids)
    throttled = [e for e in api.journal if e.throttled]
    assert throttled, "the local API's rate limit never answered 429: the test proves nothing"
    served = [e for e in api.journal if e.outcome == "read"]
    assert sorted(e.order_id for e in served) == sorted(order_ids)  # each order read once, 429s retried


def test_a_transient_5xx_is_retried_within_the_round(start_api):
    api = start_api()
    order_id = api.add_order(statuses="Delivered")["Id"]
    api.inject_faults(order_id, "503", "502")
    payload = first_event(trigger([order_id]))
    assert payload["status"] == "success"
    assert [e.outcome for e in reads(api, order_id)] == ["503", "502", "read"]


def test_an_order_unreadable_for_a_whole_round_is_read_again_next_round(start_api):
    api = start_api()
    order_id = api.add_order(statuses="Delivered")["Id"]
    api.inject_faults(order_id, *["500"] * 4)  # the first try and max_retries=3
    payload = first_event(trigger([order_id]))
    assert payload["status"] == "success"
    assert [e.outcome for e in reads(api, order_id)] == ["500"] * 4 + ["read"]


def test_a_wrong_base_url_fails_at_once_with_the_reason(start_api, monkeypatch):
    api = start_api()
    order_id = api.add_order(statuses="Hold")["Id"]
    config = api.connection_config()
    config["host"] = f"{api.base_url}/v1"
    monkeypatch.setenv("AIRFLOW_CONN_GOOTEN_DEFAULT", json.dumps(config))
    payload = first_event(trigger([order_id]))
    assert payload["status"] == "error"
    assert "HTTP 404" in payload["message"]
    assert "host (API base URL) is probably wrong" in payload["message"]
    assert len(api.journal) == 1  # not retried, not polled again


def test_an_unknown_order_fails_at_once(start_api):
    api = start_api()
    missing = "999-00000000-0000-0000-0000-000000000000"
    payload = first_event(trigger([missing]))
    assert payload["status"] == "error"
    assert f"Order {missing}: Gooten refused" in payload["message"]
    assert len(api.journal) == 1


def test_a_missing_connection_is_an_error_event(monkeypatch):
    monkeypatch.delenv("AIRFLOW_CONN_GOOTEN_DEFAULT", raising=False)
    payload = first_event(trigger(["1-a"], gooten_conn_id="gooten_nowhere"))
    assert payload["status"] == "error"
    assert "gooten_nowhere" in payload["message"]


def test_running_twice_from_the_same_kwargs_only_reads(start_api):
    api = start_api()
    order_id = api.add_order(statuses="New")["Id"]
    original = trigger([order_id], target_statuses=["New"])
    first = first_event(restarted(original))
    second = first_event(restarted(original))  # a triggerer restart runs it again
    assert first == second
    assert first["status"] == "success"
    assert api.writes() == []
    assert all(e.method == "GET" for e in api.journal)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"order_ids": []}, "order_ids must be a non-empty list of order ids, got [] (list)"),
        ({"order_ids": "1-a"}, "order_ids must be a non-empty list of order ids, got '1-a' (str)"),
        ({"order_ids": ["1-a", None]}, "order_ids: Invalid Gooten order id None (NoneType)"),
        ({"order_ids": ["1-a", "1-b\x00"]}, "order_ids: Invalid Gooten order id '1-b\\x00': it holds U+0000"),
        ({"target_statuses": "Shipped"}, "target_statuses must be a list"),
        ({"end_time": float("nan")}, "end_time must be a finite number of seconds since the epoch, got nan"),
        ({"end_time": float("inf")}, "end_time must be a finite number of seconds since the epoch, got inf"),
        (
            {"end_time": "tomorrow"},
            "end_time must be a finite number of seconds since the epoch, got 'tomorrow'",
        ),
        ({"end_time": None}, "end_time must be a finite number of seconds since the epoch, got None"),
        ({"poke_interval": 0}, "poke_interval must be a positive, finite number of seconds, got 0 (int)"),
        ({"poke_interval": float("nan")}, "poke_interval must be a positive, finite number of seconds"),
        ({"poke_interval": float("inf")}, "poke_interval must be a positive, finite number of seconds"),
        ({"not_before": float("nan")}, "not_before must be a finite number of seconds since the epoch"),
        ({"max_concurrency": 0}, "max_concurrency must be a whole number of at least 1, got 0 (int)"),
        ({"max_concurrency": True}, "max_concurrency must be a whole number of at least 1, got True (bool)"),
        ({"max_concurrency": 2.5}, "max_concurrency must be a whole number of at least 1, got 2.5 (float)"),
        ({"target_statuses": []}, "target_statuses is empty"),
        ({"failure_statuses": [None]}, "failure_statuses must be a list of Gooten status names"),
        ({"gooten_conn_id": 7}, "gooten_conn_id must be a connection id, got 7 (int)"),
        ({"poll_every": 5}, "unknown kwarg(s) 'poll_every'"),
        (
            {"known_statuses": {"1-a": "Shipped"}},
            "known_statuses must map order ids to lists of item statuses",
        ),
    ],
)
def test_tampered_kwargs_end_with_an_error_event_naming_the_problem(kwargs, message):
    # As the triggerer runs it: rebuilt from kwargs (here edited, as in Airflow's database), then run.
    good = trigger(["1-a"], end_time=time.time() + 0.5).serialize()[1]
    tampered = GootenOrderStatusTrigger(**{**good, **kwargs})
    payload = asyncio.run(asyncio.wait_for(tampered.run().asend(None), 5)).payload
    assert payload["status"] == "error"
    assert payload["message"].startswith("The Gooten order status trigger cannot run with the kwargs")
    assert message in payload["message"]
    assert payload["statuses"] == {}
    assert GootenOrderStatusTrigger(**tampered.serialize()[1]).refusal == tampered.refusal  # stays refused


def test_every_problem_is_named_and_thousands_of_bad_ids_stay_one_short_message():
    given = trigger(["1-a"]).serialize()[1]
    tampered = GootenOrderStatusTrigger(**{**given, "order_ids": ["none"] * 10_000, "end_time": float("nan")})
    payload = asyncio.run(tampered.run().asend(None)).payload
    assert payload["status"] == "error"
    assert "and 9996 more problem(s)." in payload["message"]
    assert len(payload["message"]) < 1000
