"""GootenHook against the local Gooten API: every public method, and the billing key kept secret."""

import json
import logging
import re
from urllib.parse import quote, quote_plus

import pytest

from gooten_provider.client.billing_key import billing_key_forms
from gooten_provider.exceptions import GootenApiError
from gooten_provider.hooks.gooten import GootenHook
from gooten_provider.testing import GootenApiServer
from tests.operators.conftest import point_connection_at

# A key full of the characters that break when encoded wrongly.
NASTY_KEY = "a+b/c=d+e/f==g+/h+i/j=k+l/m=n+o/p=q+r/s=t=="


@pytest.fixture
def api(monkeypatch):
    with GootenApiServer(billing_key=NASTY_KEY, retry_after=0.01) as server:
        point_connection_at(server, monkeypatch)
        yield server


def test_every_hook_method_over_http(api):
    order_id = api.add_order(statuses=["New", "New"])["Id"]
    hook = GootenHook()
    assert hook.get_order(order_id)["Id"] == order_id
    assert hook.get_order_status(order_id) == ["New", "New"]
    assert hook.update_order_status(order_id, "HOLD") == {"HadError": False}
    assert api.item_statuses(order_id) == ["Hold", "Hold"]
    assert [o["Id"] for o in hook.search_orders(page_size=1)] == [order_id]
    assert hook.test_connection() == (
        True,
        f"Connected to the Gooten API at {api.base_url}: Recipe ID and billing key accepted.",
    )


def test_one_pooled_session_serves_every_call(api):
    order_id = api.add_order(statuses="New")["Id"]
    hook = GootenHook()
    for _ in range(3):
        hook.get_order_status(order_id)
    assert len({entry.connection_id for entry in api.journal}) == 1


def test_test_connection_reports_a_bad_key_clearly(api, monkeypatch):
    config = api.connection_config()
    config["password"] = "not-the-key"
    monkeypatch.setenv("AIRFLOW_CONN_GOOTEN_DEFAULT", json.dumps(config))
    ok, message = GootenHook().test_connection()
    assert not ok
    assert "partnerBillingKey" in message
    assert "not-the-key" not in message


def test_test_connection_reports_an_unreachable_host(monkeypatch):
    with GootenApiServer() as stopped:
        config = stopped.connection_config()
    config["extra"] = {"max_retries": 0}
    monkeypatch.setenv("AIRFLOW_CONN_GOOTEN_DEFAULT", json.dumps(config))
    ok, message = GootenHook().test_connection()
    assert not ok
    assert re.search(r"Could not connect to http://127\.0\.0\.1:\d+ .* never sent", message)


def test_invalid_status_is_refused_before_any_request(api):
    order_id = api.add_order(statuses="New")["Id"]
    with pytest.raises(ValueError, match="Cancelled, New, Test, Hold"):
        GootenHook().update_order_status(order_id, "Shipped")
    assert api.journal == []


def test_the_key_never_appears_in_logs_or_errors(api, caplog, monkeypatch):
    """Drive every hook path, failures included, and look for any form of the key everywhere."""
    forms = set(billing_key_forms(NASTY_KEY)) | {quote_plus(quote_plus(NASTY_KEY))}
    eligible = api.add_order(statuses="New")["Id"]
    in_production = api.add_order(statuses="InProduction")["Id"]
    api.inject_faults(eligible, "reset", "500", method="GET")
    api.inject_faults(eligible, "lost_response", method="POST")
    texts: list[str] = []
    with caplog.at_level(logging.DEBUG):
        hook = GootenHook()
        hook.get_order(eligible)
        hook.get_order_status(eligible)
        list(hook.search_orders(page_size=1))
        hook.test_connection()
        for call in (
            lambda: hook.update_order_status(eligible, "Hold"),  # response lost
            lambda: hook.update_order_status(in_production, "Hold"),  # HadError
            lambda: hook.get_order("1-unknown"),
        ):
            with pytest.raises(GootenApiError) as info:
                call()
            texts += [str(info.value), repr(info.value)]
        # the key stored pre-encoded, and a wrong key: both go through the same paths
        for password in (quote(NASTY_KEY, safe=""), NASTY_KEY[::-1]):
            config = api.connection_config()
            config["password"] = password
            monkeypatch.setenv("AIRFLOW_CONN_GOOTEN_DEFAULT", json.dumps(config))
            texts.append(GootenHook().test_connection()[1])
    texts.append(caplog.text)
    texts += [repr(entry) for entry in api.journal]
    combined = "\n".join(texts)
    assert "partnerBillingKey=***" in combined  # urllib3's request lines were there, redacted
    for form in forms:
        assert form not in combined, f"a form of the key leaked: {re.escape(form)[:4]}..."
