"""How GootenHook turns an Airflow connection into a client (no network needed)."""

import json
import re
from urllib.parse import quote, quote_plus

import pytest

from gooten_provider.exceptions import GootenConfigurationError
from gooten_provider.hooks.gooten import GootenHook

KEY = "q+Zb/7Kx9Lm2Pw+Yr4Tn8Vc1Ds6Fg0Hj3Ak5Ml7No9="


def set_connection(monkeypatch, conn_id="gooten_default", **fields):
    config = {"conn_type": "gooten", "login": "recipe-1", "password": KEY, **fields}
    monkeypatch.setenv(f"AIRFLOW_CONN_{conn_id.upper()}", json.dumps(config))


def test_init_reads_no_connection(mocker):
    get_connection = mocker.patch.object(GootenHook, "get_connection")
    GootenHook("does_not_exist")
    get_connection.assert_not_called()


def test_client_settings_come_from_the_connection(monkeypatch):
    extra = {"timeout": "12", "max_retries": 1}
    set_connection(monkeypatch, host="staging-api.print.io", port=8443, extra=extra)
    client = GootenHook().client
    assert client.base_url == "https://staging-api.print.io:8443"
    assert client.recipe_id == "recipe-1"
    assert client.timeout == 12
    assert client.max_retries == 1


def test_defaults_when_the_connection_sets_only_credentials(monkeypatch):
    set_connection(monkeypatch)
    client = GootenHook().client
    assert (client.base_url, client.timeout, client.max_retries) == ("https://api.print.io", 30, 3)


def test_hook_arguments_override_extras(monkeypatch):
    set_connection(monkeypatch, extra={"timeout": 12, "max_retries": 1})
    client = GootenHook(timeout=3, max_retries=0).client
    assert (client.timeout, client.max_retries) == (3, 0)


@pytest.mark.parametrize(
    ("fields", "missing"),
    [
        ({"login": None}, "has no login (Recipe ID)"),
        ({"password": ""}, "has no password (Partner Billing Key)"),
        ({"login": " ", "password": None}, "has no login (Recipe ID) and no password (Partner Billing Key)"),
    ],
)
def test_missing_credentials_name_the_connection_and_field(monkeypatch, fields, missing):
    set_connection(monkeypatch, conn_id="shop_eu", **fields)
    with pytest.raises(GootenConfigurationError, match=re.escape(f"'shop_eu' {missing}")):
        GootenHook("shop_eu").get_conn()


@pytest.mark.parametrize(
    ("extra", "name"),
    [
        ({"timeout": "soon"}, "timeout"),
        ({"max_retries": -1}, "max_retries"),
        ({"backoff_factor": "x"}, "backoff_factor"),
    ],
)
def test_bad_extras_are_named(monkeypatch, extra, name):
    set_connection(monkeypatch, extra=extra)
    with pytest.raises(GootenConfigurationError, match=f"extra '{name}' must be a (whole )?number"):
        GootenHook().get_conn()


def test_plain_http_to_a_remote_host_is_refused(monkeypatch):
    set_connection(monkeypatch, host="http://api.print.io")
    with pytest.raises(GootenConfigurationError, match="Refusing plain http://"):
        GootenHook().get_conn()


@pytest.mark.parametrize("stored", [KEY, quote(KEY, safe="")])
def test_every_form_of_the_key_is_masked(monkeypatch, mocker, stored):
    set_connection(monkeypatch, password=stored)
    masked = mocker.patch("gooten_provider.hooks.gooten.mask_secret")
    GootenHook().get_conn()
    registered = {call.args[0] for call in masked.call_args_list}
    assert {KEY, quote(KEY, safe=""), quote_plus(KEY), quote(quote(KEY, safe=""), safe="")} <= registered
    assert all(not call.kwargs.get("name") for call in masked.call_args_list)  # a name can switch masking off


def test_admin_order_url_comes_from_the_extra(monkeypatch):
    set_connection(monkeypatch, extra={"admin_order_url": "https://admin.example/orders/{order_id}"})
    assert GootenHook().admin_order_url == "https://admin.example/orders/{order_id}"


def test_get_conn_returns_the_client(monkeypatch):
    set_connection(monkeypatch)
    hook = GootenHook()
    assert hook.get_conn() is hook.client


def test_adaptive_rate_and_throttle_timeout_come_from_the_extras(monkeypatch):
    set_connection(monkeypatch, extra={"adaptive_rate": "false", "throttle_timeout": "45"})
    client = GootenHook().client
    assert not client.pacer.adaptive
    assert client.throttle_timeout == 45


def test_adaptive_rate_is_on_by_default_and_hook_arguments_win(monkeypatch):
    set_connection(monkeypatch, extra={"adaptive_rate": False})
    assert not GootenHook().client.pacer.adaptive
    client = GootenHook(adaptive_rate=True, throttle_timeout=5).client
    assert client.pacer.adaptive
    assert client.throttle_timeout == 5
    set_connection(monkeypatch)
    assert GootenHook().client.pacer.adaptive
