"""``GootenHook.get_async_client()``: the connection read through the async-safe path, same settings."""

from __future__ import annotations

import asyncio
import json
from typing import Any
from urllib.parse import quote, quote_plus

import pytest
from airflow.providers.common.compat.sdk import AirflowNotFoundException

from gooten_provider.async_client import AsyncGootenClient
from gooten_provider.exceptions import GootenConfigurationError
from gooten_provider.hooks.gooten import GootenHook

KEY = "q+Zb/7Kx9Lm2Pw+Yr4Tn8Vc1Ds6Fg0Hj3Ak5Ml7No9="


def set_connection(monkeypatch: Any, **fields: Any) -> None:
    config = {"conn_type": "gooten", "login": "recipe-1", "password": KEY, **fields}
    monkeypatch.setenv("AIRFLOW_CONN_GOOTEN_DEFAULT", json.dumps(config))


def async_client(hook: GootenHook) -> AsyncGootenClient:
    async def build() -> AsyncGootenClient:
        client = await hook.get_async_client()
        await client.aclose()
        return client

    return asyncio.run(build())


def test_the_async_client_has_the_sync_clients_settings(monkeypatch):
    set_connection(
        monkeypatch, host="staging-api.print.io", port=8443, extra={"timeout": "12", "max_retries": 1}
    )
    aio = async_client(GootenHook(backoff_factor=0.1)).settings
    assert aio == GootenHook(backoff_factor=0.1).client.settings  # every field, the key included
    assert aio.base_url == "https://staging-api.print.io:8443"
    assert (aio.timeout, aio.max_retries) == (12, 1)


def test_every_form_of_the_key_is_masked(monkeypatch, mocker):
    set_connection(monkeypatch, password=quote(KEY, safe=""))  # stored encoded: sent decoded
    masked = mocker.patch("gooten_provider.hooks.gooten.mask_secret")
    async_client(GootenHook())
    registered = {call.args[0] for call in masked.call_args_list}
    assert {KEY, quote(KEY, safe=""), quote_plus(KEY)} <= registered


def test_the_connection_is_read_through_common_compats_async_accessor(monkeypatch, mocker):
    set_connection(monkeypatch)
    import airflow.providers.common.compat.connection as module

    spy = mocker.spy(module, "get_async_connection")  # imported by the hook when called
    async_client(GootenHook())
    assert spy.call_count == 1


def test_a_missing_connection_says_what_to_do(monkeypatch):
    monkeypatch.delenv("AIRFLOW_CONN_GOOTEN_NOWHERE", raising=False)
    with pytest.raises(AirflowNotFoundException, match="gooten_nowhere"):
        async_client(GootenHook("gooten_nowhere"))


def test_missing_credentials_are_refused_as_for_the_sync_client(monkeypatch):
    set_connection(monkeypatch, password="")
    with pytest.raises(GootenConfigurationError, match="has no password"):
        async_client(GootenHook())
