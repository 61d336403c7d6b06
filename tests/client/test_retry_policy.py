"""One retry policy for both clients: the same answer sequences, the same request count, the same outcome.

Each row queues answers on one order at the local Gooten API (real loopback HTTP) and reads it (or, for
the sync client, writes it); the journal counts what was sent.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest

from gooten_provider.async_client import AsyncGootenClient
from gooten_provider.client import GootenClient
from gooten_provider.client.retry import MAX_RETRY_AFTER_SECONDS, parse_retry_after
from gooten_provider.exceptions import (
    GootenApiError,
    GootenConnectionError,
    GootenHttpError,
    GootenIncompleteAnswerError,
    GootenOutcomeUnknownError,
    GootenRateLimitError,
)
from gooten_provider.testing import GootenApiServer

OPTIONS = {"timeout": 5, "max_retries": 3, "backoff_factor": 0.01}


@dataclass(frozen=True)
class Row:
    """Answers queued for one order, what both clients must send, and how the call must end."""

    name: str
    faults: tuple[str, ...]
    requests: int
    error: type[GootenApiError] | None
    fault_headers: tuple[tuple[str, str], ...] = ()
    options: dict[str, Any] = field(default_factory=dict)
    #: the most seconds between the first and the last request (an unreadable Retry-After is not obeyed)
    within: float | None = None


_UNREADABLE = ("-1", "120s", "1e9", "soon", "NaN", "Infinity")
READS = [
    # The first row: sync sent (max_retries+1)**2 = 16 requests here, stacking three retry layers.
    Row("503 503 503 then an HTML 200, repeated", ("503", "503", "503", "html") * 4, 4, GootenHttpError),
    Row("every try reset", ("reset",) * 8, 4, GootenConnectionError),
    Row("every try cut short", ("cut",) * 8, 4, GootenIncompleteAnswerError),
    Row(  # the body came whole but cannot be decoded: httpx raises it outside its transport errors
        "every answer's body undecodable (gzip declared, plain bytes sent)",
        ("html",) * 8,
        4,
        GootenConnectionError,
        (("Content-Encoding", "gzip"),),
    ),
    Row("a mixture, then the budget is spent", ("500", "cut", "reset", "html", "502"), 4, GootenHttpError),
    Row("a mixture, then an answer", ("cut", "reset", "503"), 4, None),
    # The issue's second row: sync sent 1 request and failed on urllib3's InvalidHeader.
    *(
        Row(
            f"a 503 with Retry-After {value!r}, then an answer",
            ("503",),
            2,
            None,
            (("Retry-After", value),),
            within=5.0,
        )
        for value in _UNREADABLE
    ),
    # The fourth row: sync waited 60 s, then read; a wait past throttle_timeout fails at once.
    Row(
        "a 429 with Retry-After in 2099, throttle_timeout 20",
        ("429",),
        1,
        GootenRateLimitError,
        (("Retry-After", "Fri, 01 Jan 2099 00:00:00 GMT"),),
        {"throttle_timeout": 20},
        within=5.0,
    ),
    Row("429s are the pacer's, not tries", ("429",) * 6, 7, None, (("Retry-After", "0.01"),)),
    Row("a 429 with an unreadable Retry-After", ("429",), 2, None, (("Retry-After", "soon"),), within=5.0),
    Row("Gooten's refusal is final", ("refused",), 1, GootenApiError),
]
WRITES = [
    Row("a 503 to a write", ("503",), 1, GootenOutcomeUnknownError),
    Row("a reset write", ("reset",), 1, GootenOutcomeUnknownError),
    Row("a write's answer cut short", ("cut",), 1, GootenOutcomeUnknownError),
    Row("an HTML 200 to a write", ("html",), 1, GootenOutcomeUnknownError),
    Row("a 429 to a write, then an answer", ("429",), 2, None, (("Retry-After", "0.01"),)),
]


@pytest.fixture(scope="module")
def api():
    with GootenApiServer(slow_seconds=1.0) as server:
        yield server


def _outcome(call: Callable[[], Any]) -> type[BaseException] | None:
    try:
        call()
    except GootenApiError as exc:
        return type(exc)
    return None


def _read_sync(api: GootenApiServer, order_id: str, options: dict[str, Any]) -> None:
    with GootenClient(api.recipe_id, api.billing_key, base_url=api.base_url, **options) as client:
        client.get_order(order_id)


def _read_async(api: GootenApiServer, order_id: str, options: dict[str, Any]) -> None:
    async def read() -> None:
        async with AsyncGootenClient(api.recipe_id, api.billing_key, base_url=api.base_url, **options) as aio:
            await aio.get_order(order_id)

    asyncio.run(read())


def _check(api: GootenApiServer, row: Row, method: str, send: Callable[[str, dict[str, Any]], None]) -> None:
    api.fault_headers = row.fault_headers
    api.retry_after = False  # only fault_headers name a Retry-After
    order_id = api.add_order(statuses="New")["Id"]
    api.inject_faults(order_id, *row.faults, method=method)
    error = _outcome(lambda: send(order_id, {**OPTIONS, **row.options}))
    sent = [entry for entry in api.journal if entry.order_id == order_id]
    assert (len(sent), error) == (row.requests, row.error)
    assert len(api.applied_writes(order_id)) == (1 if method == "POST" and row.error is None else 0)
    if row.within is not None:
        assert sent[-1].started - sent[0].started < row.within


@pytest.mark.parametrize("row", READS, ids=lambda row: row.name)
@pytest.mark.parametrize("client", ["sync", "async"])
def test_a_read_is_sent_as_often_and_ends_the_same_in_both_clients(api, row, client):
    read = _read_sync if client == "sync" else _read_async
    _check(api, row, "GET", lambda order_id, options: read(api, order_id, options))


@pytest.mark.parametrize("row", WRITES, ids=lambda row: row.name)
def test_a_write_whose_outcome_is_unknown_is_never_resent(api, row):
    def write(order_id: str, options: dict[str, Any]) -> None:
        with GootenClient(api.recipe_id, api.billing_key, base_url=api.base_url, **options) as client:
            client.update_order_status(order_id, "Hold")

    _check(api, row, "POST", write)


def test_a_readable_retry_after_on_a_503_is_waited_for(api):
    api.fault_headers, api.retry_after = (("Retry-After", "0.4"),), False
    order_id = api.add_order(statuses="New")["Id"]
    api.inject_faults(order_id, "503", method="GET")
    _read_sync(api, order_id, OPTIONS)
    refused, served = [entry for entry in api.journal if entry.order_id == order_id]
    assert served.started - refused.finished >= 0.4


@pytest.mark.parametrize("client", ["sync", "async"])
def test_three_reads_answered_429_are_paused_together_not_one_after_another(client):
    """The issue's third row: sync took 3.0 s, urllib3 sleeping each thread alone; the pacer never heard."""
    with GootenApiServer(retry_after=1.0, latency=0.2) as api:  # all three are sent before any answer
        ids = api.add_orders(3)
        for order_id in ids:
            api.inject_faults(order_id, "429", method="GET")
        options = {**OPTIONS, "throttle_timeout": 1.5}
        if client == "sync":
            sync = GootenClient(api.recipe_id, api.billing_key, base_url=api.base_url, **options)
            threads = [threading.Thread(target=sync.get_order, args=(order_id,)) for order_id in ids]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join(10)
            pacer = sync.pacer
        else:
            aio = AsyncGootenClient(api.recipe_id, api.billing_key, base_url=api.base_url, **options)

            async def read_all() -> None:
                async with aio:
                    await asyncio.gather(*(aio.get_order(order_id) for order_id in ids))

            asyncio.run(read_all())
            pacer = aio.pacer
        refused = [entry for entry in api.journal if entry.fault == "429"]
        served = [entry for entry in api.journal if entry.fault is None]
    assert (len(refused), len(served), pacer.throttled) == (3, 3, 3)  # every 429 reached the pacer
    assert pacer.events >= 1 and pacer.paced  # and lowered the pace
    first_refusal = min(entry.finished for entry in refused)
    assert min(entry.started for entry in served) - first_refusal >= 0.9  # all held by the Retry-After
    assert max(entry.started for entry in served) - first_refusal < 1.5  # together, not one after another


@pytest.mark.parametrize("client", ["sync", "async"])
def test_throttle_timeout_bounds_read_throttling(client):
    with GootenApiServer(rate_limit=0.2, rate_burst=1, retry_after=True) as api:  # one request every 5 s
        order_id = api.add_order(statuses="New")["Id"]
        options = {**OPTIONS, "throttle_timeout": 1.5}
        read = _read_sync if client == "sync" else _read_async
        read(api, order_id, options)  # takes the one token
        with pytest.raises(
            GootenRateLimitError, match=r"past throttle_timeout \(1.5 s\); nothing was applied"
        ):
            read(api, order_id, options)
        refused = [entry for entry in api.journal if entry.throttled]
    assert len(refused) == 1  # asked to wait 5 s, past the budget: not sent again


@pytest.mark.parametrize(
    ("header", "seconds"),
    [
        ("2", 2.0),
        ("0.25", 0.25),
        (" 3 ", 3.0),
        ("3600", MAX_RETRY_AFTER_SECONDS),
        ("Fri, 01 Jan 2099 00:00:00 GMT", MAX_RETRY_AFTER_SECONDS),
        ("Thu, 01 Jan 1970 00:00:00 GMT", 0.0),
        *((value, None) for value in (*_UNREADABLE, "", "1,5", "0x10", "+5", None)),
    ],
)
def test_retry_after_is_read_as_seconds_or_a_date_capped_and_anything_else_is_ignored(header, seconds):
    assert parse_retry_after(header) == seconds
