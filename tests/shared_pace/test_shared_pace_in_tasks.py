"""The shared pace from the hook, operator and clients: wired from ``rate_limit_conn_id``, one pause for every
client of the account, and a batch that completes when Redis dies under it."""

from __future__ import annotations

import asyncio
import json
import logging
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import pytest
import redis

from gooten_provider.client import GootenClient
from gooten_provider.client.redis_store import RedisPaceStore, pace_key
from gooten_provider.client.shared_store import RETRY_SHARED_AFTER_SECONDS, FallbackPaceStore
from gooten_provider.exceptions import GootenConfigurationError
from gooten_provider.hooks.gooten import GootenHook
from gooten_provider.operators.gooten import GootenOrderStatusOperator
from gooten_provider.testing import DEFAULT_RECIPE_ID, GootenApiServer

PACE_CONN_ID = "gooten_pace"


class RecordingTaskInstance:
    def __init__(self) -> None:
        self.xcoms: dict[str, object] = {}

    def xcom_push(self, key: str, value: object) -> None:
        self.xcoms[key] = value


def set_connections(monkeypatch, api, redis_server, **extra):
    config = api.connection_config()
    config["extra"].update({"backoff_factor": 0.01, **extra})
    monkeypatch.setenv("AIRFLOW_CONN_GOOTEN_DEFAULT", json.dumps(config))
    pace_conn = redis_server.connection_config(db=2)
    monkeypatch.setenv(f"AIRFLOW_CONN_{PACE_CONN_ID.upper()}", json.dumps(pace_conn))


def test_the_hook_builds_the_shared_pace_from_the_connection_extra(monkeypatch, gooten_api, redis_server):
    set_connections(monkeypatch, gooten_api, redis_server, rate_limit_conn_id=PACE_CONN_ID)
    client = GootenHook().client
    shared = client.pacer.store.primary
    assert isinstance(shared, RedisPaceStore)
    assert shared.description == f"redis://127.0.0.1:{redis_server.port}/2"

    order_id = gooten_api.add_order(statuses="New")["Id"]
    assert client.get_order_status(order_id) == ["New"]
    # the request took its slot in the account's pace, in the connection's database
    assert redis.Redis(**redis_server.client_kwargs(db=2)).exists(pace_key(DEFAULT_RECIPE_ID))


def test_the_hook_argument_overrides_the_extra_and_empty_turns_it_off(monkeypatch, gooten_api, redis_server):
    set_connections(monkeypatch, gooten_api, redis_server, rate_limit_conn_id="no_such_connection")
    assert not isinstance(GootenHook(rate_limit_conn_id="").client.pacer.store, FallbackPaceStore)
    assert isinstance(GootenHook(rate_limit_conn_id=PACE_CONN_ID).client.pacer.store, FallbackPaceStore)


def test_a_missing_redis_connection_fails_naming_it_and_what_to_do(monkeypatch, gooten_api, redis_server):
    set_connections(monkeypatch, gooten_api, redis_server, rate_limit_conn_id="no_such_connection")
    with pytest.raises(Exception, match=r"no_such_connection.*rate_limit_conn_id.*type redis"):
        GootenHook().client  # noqa: B018


@pytest.mark.parametrize(
    ("redis_conn", "message"),
    [
        ({"conn_type": "http", "host": "127.0.0.1"}, "of type 'http'; it must be of type 'redis'"),
        ({"conn_type": "redis"}, "has no host"),
        ({"conn_type": "redis", "host": "h", "extra": {"db": "one"}}, "'db' must be a whole number"),
        ({"conn_type": "redis", "host": "h", "extra": {"ssl": "maybe"}}, "'ssl' must be true or false"),
    ],
)
def test_a_bad_redis_connection_says_what_is_wrong(
    monkeypatch, gooten_api, redis_server, redis_conn, message
):
    set_connections(monkeypatch, gooten_api, redis_server, rate_limit_conn_id=PACE_CONN_ID)
    monkeypatch.setenv(f"AIRFLOW_CONN_{PACE_CONN_ID.upper()}", json.dumps(redis_conn))
    with pytest.raises(GootenConfigurationError, match=message):
        GootenHook().client  # noqa: B018


def test_a_shared_pace_needs_the_adaptive_rate(monkeypatch, gooten_api, redis_server):
    set_connections(monkeypatch, gooten_api, redis_server, rate_limit_conn_id=PACE_CONN_ID)
    with pytest.raises(GootenConfigurationError, match="needs adaptive_rate"):
        GootenHook(adaptive_rate=False).client  # noqa: B018


def test_a_retry_after_seen_by_one_client_holds_every_client_of_the_account(gooten_api_factory, redis_server):
    """Two clients (two tasks) over HTTP: after the first 429, neither sends anything until it has passed."""
    api: GootenApiServer = gooten_api_factory(rate_limit=8.0, rate_burst=1, retry_after=1.0)
    order_ids = api.add_orders(20)
    clients = [
        GootenClient(
            api.recipe_id,
            api.billing_key,
            base_url=api.base_url,
            backoff_factor=0.01,
            pace_store=FallbackPaceStore(
                RedisPaceStore.connect(
                    api.recipe_id, host="127.0.0.1", port=redis_server.port, password=redis_server.password
                )
            ),
        )
        for _ in range(2)
    ]
    with ThreadPoolExecutor(8) as pool:
        statuses = list(pool.map(lambda i: clients[i % 2].get_order_status(order_ids[i]), range(20)))
    assert statuses == [["New"]] * len(order_ids)

    journal = api.journal
    throttled = [entry for entry in journal if entry.throttled]
    assert throttled, "the gateway never said 429: the test proves nothing"
    first = min(throttled, key=lambda entry: entry.finished)
    # Retry-After: 1 from the first 429 on: nothing leaves, from either client, until it has passed
    # (50 ms for the 429 to reach its client and the pause to reach Redis)
    sent_in_pause = [e for e in journal if first.finished + 0.05 < e.started < first.finished + 0.95]
    assert sent_in_pause == []
    assert sum(c.pacer.throttled for c in clients) == len(throttled)


def test_a_batch_completes_when_redis_dies_under_it(monkeypatch, gooten_api_factory, redis_server, caplog):
    api: GootenApiServer = gooten_api_factory(latency=0.002)
    order_ids = api.add_orders(120)
    set_connections(monkeypatch, api, redis_server, rate_limit_conn_id=PACE_CONN_ID)
    pace_db = redis.Redis(**redis_server.client_kwargs(db=2))
    seen_in_redis: list[bool] = []

    def kill_redis_mid_batch() -> None:
        deadline = time.monotonic() + 60
        while len(api.journal) < 60 and time.monotonic() < deadline:  # about a quarter of the requests
            time.sleep(0.01)
        seen_in_redis.append(bool(pace_db.exists(pace_key(api.recipe_id))))
        redis_server.kill()

    killer = threading.Thread(target=kill_redis_mid_batch)
    killer.start()
    ti = RecordingTaskInstance()
    operator = GootenOrderStatusOperator(task_id="hold", order_ids=order_ids, status="Hold", max_workers=8)
    with caplog.at_level(logging.INFO, logger="gooten_provider.client.shared_store"):
        records = operator.execute({"ti": ti})
    killer.join()

    assert seen_in_redis == [True]  # the batch was using the shared pace when Redis died
    assert Counter(record["outcome"] for record in records) == {"updated": len(order_ids)}
    assert [api.item_statuses(order_id) for order_id in order_ids] == [["Hold"]] * len(order_ids)
    writes = Counter(e.order_id for e in api.journal if e.method == "POST" and e.applied)
    assert writes == dict.fromkeys(order_ids, 1)  # every order changed once
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING and "unreachable" in r.message]
    assert len(warnings) == 1, [r.message for r in caplog.records]  # said once, however many requests
    assert f"redis://127.0.0.1:{redis_server.port}/2" in warnings[0].message
    assert redis_server.password not in caplog.text
    assert RETRY_SHARED_AFTER_SECONDS > 0


def test_the_sensor_and_its_trigger_carry_the_shared_pace(monkeypatch, gooten_api, redis_server):
    from gooten_provider.sensors.gooten import GootenOrderStatusSensor
    from gooten_provider.triggers.gooten import GootenOrderStatusTrigger

    set_connections(monkeypatch, gooten_api, redis_server)  # no rate_limit_conn_id extra
    sensor = GootenOrderStatusSensor(
        task_id="wait", order_ids=["1-a"], target_statuses=["Shipped"], rate_limit_conn_id=PACE_CONN_ID
    )
    assert isinstance(sensor.hook.client.pacer.store.primary, RedisPaceStore)
    assert "rate_limit_conn_id" in sensor.template_fields

    trigger = GootenOrderStatusTrigger(
        order_ids=["1-a"],
        target_statuses=["Shipped"],
        end_time=time.time() + 60,
        rate_limit_conn_id=PACE_CONN_ID,
    )
    _path, kwargs = trigger.serialize()
    assert kwargs["rate_limit_conn_id"] == PACE_CONN_ID
    assert GootenOrderStatusTrigger(**kwargs).settings.rate_limit_conn_id == PACE_CONN_ID
    older = {k: v for k, v in kwargs.items() if k != "rate_limit_conn_id"}  # serialized by 0.1
    assert GootenOrderStatusTrigger(**older).settings.rate_limit_conn_id is None
    edited = GootenOrderStatusTrigger(**{**kwargs, "rate_limit_conn_id": 7})  # a database row changed
    assert edited.refusal is not None and "rate_limit_conn_id must be a connection id" in edited.refusal


def test_the_operator_passes_its_shared_pace_to_the_hook_and_checks_its_type(
    monkeypatch, gooten_api, redis_server
):
    set_connections(monkeypatch, gooten_api, redis_server)
    order_id = gooten_api.add_order(statuses="New")["Id"]
    operator = GootenOrderStatusOperator(
        task_id="hold", order_ids=[order_id], status="Hold", rate_limit_conn_id=PACE_CONN_ID
    )
    operator.execute({"ti": RecordingTaskInstance()})
    assert redis.Redis(**redis_server.client_kwargs(db=2)).exists(pace_key(DEFAULT_RECIPE_ID))
    assert "rate_limit_conn_id" in operator.template_fields
    with pytest.raises(ValueError, match="rate_limit_conn_id must be a connection id"):
        GootenOrderStatusOperator(task_id="x", order_ids=[order_id], status="Hold", rate_limit_conn_id=3)


def test_the_export_operator_passes_its_shared_pace_to_the_hook(
    monkeypatch, gooten_api, redis_server, tmp_path
):
    from gooten_provider.transfers.orders_to_object_storage import GootenOrdersToObjectStorageOperator

    set_connections(monkeypatch, gooten_api, redis_server)  # no rate_limit_conn_id extra
    gooten_api.add_orders(3)
    today = time.strftime("%Y-%m-%d")
    export = GootenOrdersToObjectStorageOperator(
        task_id="export",
        output_path=f"file://{tmp_path}/export",
        created_from=today,
        created_to=today,
        rate_limit_conn_id=PACE_CONN_ID,
    )
    export.execute({"ti": RecordingTaskInstance()})
    assert redis.Redis(**redis_server.client_kwargs(db=2)).exists(pace_key(DEFAULT_RECIPE_ID))
    assert "rate_limit_conn_id" in export.template_fields
    with pytest.raises(ValueError, match="rate_limit_conn_id must be a connection id"):
        GootenOrdersToObjectStorageOperator(task_id="x", output_path="file:///tmp/x", rate_limit_conn_id=3)


def test_the_async_client_of_a_trigger_shares_the_pace_off_the_event_loop(
    monkeypatch, gooten_api, redis_server
):
    """The triggerer's client: its Redis calls run in a thread, so a stalled Redis never blocks the loop."""
    set_connections(monkeypatch, gooten_api, redis_server, rate_limit_conn_id=PACE_CONN_ID)
    order_id = gooten_api.add_order(statuses="New")["Id"]
    on_loop: list[bool] = []
    real_run = RedisPaceStore._run

    def run_noting_the_thread(self, *args):
        on_loop.append(threading.current_thread() is threading.main_thread())
        return real_run(self, *args)

    monkeypatch.setattr(RedisPaceStore, "_run", run_noting_the_thread)

    async def read() -> list[str]:
        client = await GootenHook().get_async_client()
        async with client:
            assert isinstance(client.pacer.store, FallbackPaceStore)
            return await client.get_order_status(order_id)

    assert asyncio.run(read()) == ["New"]
    assert on_loop and not any(on_loop)  # every Redis call of the read ran off the loop's thread
    assert redis.Redis(**redis_server.client_kwargs(db=2)).exists(pace_key(DEFAULT_RECIPE_ID))
