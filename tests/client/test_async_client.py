"""The async client shares the sync client's core: the same requests, answers, errors and messages."""

from __future__ import annotations

import asyncio
import logging
import socket
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from gooten_provider.async_client import AsyncGootenClient
from gooten_provider.client import GootenClient
from gooten_provider.exceptions import (
    GootenApiError,
    GootenConfigurationError,
    GootenConnectionError,
    GootenHttpError,
    GootenRateLimitError,
)
from gooten_provider.testing import GootenApiServer
from gooten_provider.testing.server import DEFAULT_BILLING_KEY, DEFAULT_RECIPE_ID


def both(api_or_url: Any, **options: Any) -> tuple[GootenClient, AsyncGootenClient]:
    """A sync and an async client with the same settings, at a local API or a URL."""
    base_url = api_or_url if isinstance(api_or_url, str) else api_or_url.base_url
    settings = {"recipe_id": DEFAULT_RECIPE_ID, "billing_key": DEFAULT_BILLING_KEY}
    options = {"backoff_factor": 0.01, "timeout": 5, **options}
    return GootenClient(**settings, base_url=base_url, **options), AsyncGootenClient(
        **settings, base_url=base_url, **options
    )


def run(call: Callable[[], Awaitable[Any]]) -> Any:
    async def main() -> Any:
        return await call()

    return asyncio.run(main())


def outcome(call: Callable[[], Any]) -> tuple[type[BaseException] | None, str]:
    try:
        call()
    except GootenApiError as exc:
        return type(exc), str(exc)
    return None, ""


def test_reads_give_the_same_statuses():
    with GootenApiServer() as api:
        order_id = api.add_order(statuses=["New", "Canceled"])["Id"]
        sync, aio = both(api)
        assert (
            run(lambda: aio.get_order_status(order_id))
            == sync.get_order_status(order_id)
            == ["New", "Cancelled"]
        )


@pytest.mark.parametrize(
    ("situation", "error"),
    [
        ("unknown order", GootenApiError),
        ("bad recipe id", GootenApiError),
        ("html page on every try", GootenHttpError),
        ("503 on every try", GootenHttpError),
        ("wrong path", GootenHttpError),
    ],
)
def test_failures_raise_the_same_error_with_the_same_message(situation, error):
    with GootenApiServer() as api:
        order_id = api.add_order(statuses="New")["Id"]
        base_url = f"{api.base_url}/v1" if situation == "wrong path" else api.base_url
        options: dict[str, Any] = {}
        if situation == "unknown order":
            order_id = "999-00000000-0000-0000-0000-000000000000"
        sync, aio = both(base_url if situation == "wrong path" else api, **options)
        if situation == "bad recipe id":
            sync, aio = (
                GootenClient("nope", api.billing_key, base_url=api.base_url),
                AsyncGootenClient("nope", api.billing_key, base_url=api.base_url),
            )
        fault = {"html page on every try": "html", "503 on every try": "503"}.get(situation)
        if fault:
            api.inject_faults(order_id, *[fault] * 4)
        sync_outcome = outcome(lambda: sync.get_order_status(order_id))
        if fault:
            api.inject_faults(order_id, *[fault] * 4)
        async_outcome = outcome(lambda: run(lambda: aio.get_order_status(order_id)))
        assert sync_outcome[0] is not None and issubclass(sync_outcome[0], error)
        assert async_outcome[0] is sync_outcome[0]
        assert _without_reference_code(async_outcome[1]) == _without_reference_code(sync_outcome[1])
        if fault:
            assert len([e for e in api.journal if e.fault == fault]) == 8  # 1 + max_retries each


def _without_reference_code(message: str) -> str:
    return message.split("(ErrorReferenceCode")[0]


def test_nothing_listening_is_a_connection_error_that_says_nothing_was_sent():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{probe.getsockname()[1]}"
    sync, aio = both(url, max_retries=1)
    kind, message = outcome(lambda: run(lambda: aio.get_order_status("1-a")))
    assert kind is GootenConnectionError
    assert message.startswith(f"Could not connect to {url} for GET /api/v/5/source/api/orders (order 1-a)")
    assert "after 2 attempt(s)" in message
    assert "the request was never sent" in message
    assert outcome(lambda: sync.get_order_status("1-a"))[0] is GootenConnectionError


def test_settings_are_checked_by_the_same_core():
    for client in (GootenClient, AsyncGootenClient):
        with pytest.raises(GootenConfigurationError, match="max_retries must be a whole number from 0 to 10"):
            client("r", "k", max_retries=11)


def test_throttling_is_paced_and_retried_and_a_spent_budget_fails_like_the_sync_client():
    with GootenApiServer(rate_limit=20, rate_burst=2, retry_after=0.05) as api:
        order_ids = api.add_orders(12, statuses="New")
        _, aio = both(api)

        async def read_all() -> list[list[str]]:
            async with aio:
                return await asyncio.gather(*(aio.get_order_status(o) for o in order_ids))

        assert asyncio.run(read_all()) == [["New"]] * 12
        assert any(e.throttled for e in api.journal)
        assert aio.pacer.events >= 1
        api.set_rate_limit(0.01, 1)
        _, impatient = both(api, throttle_timeout=0)

        async def read_twice() -> None:
            async with impatient:
                await impatient.get_order_status(order_ids[0])  # the bucket's one token
                await impatient.get_order_status(order_ids[0])

        kind, message = outcome(lambda: asyncio.run(read_twice()))
        assert kind is GootenRateLimitError
        assert "past throttle_timeout (0 s); nothing was applied" in message


def test_httpx_log_lines_never_show_the_billing_key(caplog):
    with GootenApiServer() as api:
        _, aio = both(api)
        request = aio.core.credentials_request()  # the one kind of read that carries the key

        async def send() -> None:
            async with aio:
                await aio._send(request)

        with caplog.at_level(logging.DEBUG), caplog.at_level(logging.DEBUG, logger="httpx"):
            asyncio.run(send())
    assert "HTTP Request: GET" in caplog.text
    assert "partnerBillingKey=***" in caplog.text
    assert not any(form in caplog.text for form in aio.secret_forms)
