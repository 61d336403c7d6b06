"""The client against the local Gooten API over real loopback HTTP: encoding, retries, faults."""

import logging
import socket
import time
from urllib.parse import quote, quote_plus

import pytest

from gooten_provider.client import GootenClient
from gooten_provider.client.billing_key import billing_key_forms
from gooten_provider.exceptions import (
    GootenApiError,
    GootenAuthenticationError,
    GootenConnectionError,
    GootenHttpError,
    GootenOutcomeUnknownError,
    GootenRateLimitError,
)
from gooten_provider.testing import DEFAULT_BILLING_KEY, GootenApiServer

KEY = DEFAULT_BILLING_KEY


@pytest.fixture
def api():
    with GootenApiServer(retry_after=0.2, slow_seconds=1.0) as server:
        yield server


def make_client(api, **kwargs):
    options = {"base_url": api.base_url, "timeout": 5, "max_retries": 3, "backoff_factor": 0.01, **kwargs}
    billing_key = options.pop("billing_key", api.billing_key)
    return GootenClient(api.recipe_id, billing_key, **options)


def test_hold_changes_every_item_and_the_key_arrives_intact(api):
    order_id = api.add_order(statuses=["New", "AddressIssue"])["Id"]
    client = make_client(api)
    assert client.update_order_status(order_id, "hold") == {"HadError": False}
    assert api.item_statuses(order_id) == ["Hold", "Hold"]
    (write,) = api.writes(order_id)
    assert (write.key_check, write.target_status, write.applied) == ("ok", "Hold", True)


def test_key_stored_pre_encoded_is_sent_encoded_once(api, caplog):
    order_id = api.add_order(statuses="New")["Id"]
    with caplog.at_level(logging.WARNING):
        client = make_client(api, billing_key=quote(KEY, safe=""))
    client.update_order_status(order_id, "Cancelled")
    assert api.writes(order_id)[0].key_check == "ok"
    assert api.item_statuses(order_id) == ["Cancelled"]
    assert "looks URL-encoded already" in caplog.text


def test_read_status_and_order(api):
    order_id = api.add_order(statuses=["Pending", "ImageIssue"])["Id"]
    client = make_client(api)
    assert client.get_order_status(order_id) == ["Pending", "ImageIssue"]
    assert client.get_order(order_id)["Id"] == order_id


def test_ineligible_order_is_refused_by_gooten_with_its_message(api):
    order_id = api.add_order(statuses="InProduction")["Id"]
    with pytest.raises(GootenApiError, match=r"orderStatusName: .*InProduction") as info:
        make_client(api).update_order_status(order_id, "Hold")
    assert info.value.error_reference_code
    assert api.item_statuses(order_id) == ["InProduction"]


def test_unknown_order(api):
    with pytest.raises(GootenApiError, match="id: "):
        make_client(api).get_order("404-nope")


def test_wrong_key_and_wrong_recipe_are_authentication_errors(api):
    with pytest.raises(GootenAuthenticationError, match="partnerBillingKey"):
        make_client(api, billing_key="wrong+key/=").check_credentials()
    bad_recipe = GootenClient("not-the-recipe", KEY, base_url=api.base_url, max_retries=0)
    with pytest.raises(GootenAuthenticationError, match="Recipe ID"):
        bad_recipe.check_credentials()
    make_client(api).check_credentials()  # the right pair passes


def test_search_pages_through_every_order(api):
    ids = [api.add_order(statuses="New")["Id"] for _ in range(7)]
    client = make_client(api)
    assert [order["Id"] for order in client.search_orders(page_size=3)] == ids
    assert sum(1 for entry in api.journal if entry.path.lower().startswith("/api/ordersearch")) == 3


def test_unknown_route_html_is_a_clear_error(api):
    client = make_client(api, base_url=f"{api.base_url}/not-gooten")
    with pytest.raises(GootenHttpError, match="HTTP 404"):
        client.get_order("1-a")


@pytest.mark.parametrize("fault", ["500", "502", "503", "reset", "html"])
def test_reads_are_retried_through_transient_faults(api, fault):
    order_id = api.add_order(statuses="New")["Id"]
    api.inject_faults(order_id, fault, fault, method="GET")
    client = make_client(api)
    assert client.get_order_status(order_id) == ["New"]
    reads = [e for e in api.journal if e.order_id == order_id]
    assert [e.fault for e in reads] == [fault, fault, None]


def test_reads_give_up_after_max_retries_with_the_last_status(api):
    order_id = api.add_order(statuses="New")["Id"]
    api.inject_faults(order_id, *["503"] * 5, method="GET")
    with pytest.raises(GootenHttpError, match="HTTP 503"):
        make_client(api, max_retries=2).get_order(order_id)
    assert len([e for e in api.journal if e.order_id == order_id]) == 3


def test_reads_answered_with_a_page_that_is_not_gootens_json_give_up_after_max_retries(api):
    order_id = api.add_order(statuses="New")["Id"]
    api.inject_faults(order_id, *["html"] * 5, method="GET")
    with pytest.raises(GootenHttpError, match=r"HTTP 200 .* not Gooten's JSON"):
        make_client(api, max_retries=2).get_order(order_id)
    assert len([e for e in api.journal if e.order_id == order_id]) == 3


def test_read_429_honours_retry_after(api):
    order_id = api.add_order(statuses="New")["Id"]
    api.inject_faults(order_id, "429", method="GET")
    make_client(api).get_order(order_id)
    refused, served = [e for e in api.journal if e.order_id == order_id]
    assert refused.fault == "429"
    assert served.started - refused.finished >= 0.2  # the Retry-After the server sent


def test_write_refused_with_429_is_resent_and_applied_once(api):
    order_id = api.add_order(statuses="New")["Id"]
    api.inject_faults(order_id, "429", method="POST")
    make_client(api).update_order_status(order_id, "Hold")
    assert [(w.fault, w.applied) for w in api.writes(order_id)] == [("429", False), (None, True)]


def test_without_adaptive_rate_a_write_429_storm_ends_as_rate_limited_without_applying(api):
    api.retry_after = 0.01
    order_id = api.add_order(statuses="New")["Id"]
    api.inject_faults(order_id, *["429"] * 10, method="POST")
    with pytest.raises(GootenRateLimitError, match="nothing was applied"):
        make_client(api, max_retries=2, adaptive_rate=False).update_order_status(order_id, "Hold")
    assert len(api.writes(order_id)) == 3
    assert api.item_statuses(order_id) == ["New"]


def test_with_adaptive_rate_a_write_429_storm_is_outlasted_and_applied_once(api):
    api.retry_after = 0.01
    order_id = api.add_order(statuses="New")["Id"]
    api.inject_faults(order_id, *["429"] * 10, method="POST")
    make_client(api, max_retries=2).update_order_status(order_id, "Hold")  # more 429s than max_retries
    assert [w.fault for w in api.writes(order_id)] == ["429"] * 10 + [None]
    assert len(api.applied_writes(order_id)) == 1


@pytest.mark.parametrize(
    ("fault", "applied"),
    [
        ("500", False),
        ("502", False),
        ("503", False),
        ("reset", False),
        ("lost_response", True),
        ("slow", True),
    ],
)
def test_write_that_may_have_landed_is_never_resent(api, fault, applied):
    order_id = api.add_order(statuses="New")["Id"]
    api.inject_faults(order_id, fault, method="POST")
    client = make_client(api, timeout=0.5)
    with pytest.raises(GootenOutcomeUnknownError, match="may or may not have been applied") as info:
        client.update_order_status(order_id, "Hold")
    writes = wait_for_writes(api, order_id)  # a slow reply is journaled when the server finishes it
    assert len(writes) == 1
    assert writes[0].applied is applied
    assert api.item_statuses(order_id) == (["Hold"] if applied else ["New"])
    assert "http://" not in str(info.value)


def wait_for_writes(api, order_id, timeout=5.0):
    deadline = time.monotonic() + timeout
    while not api.writes(order_id) and time.monotonic() < deadline:
        time.sleep(0.02)
    return api.writes(order_id)


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_write_that_cannot_connect_is_never_sent_and_says_so():
    client = GootenClient(
        "r", KEY, base_url=f"http://127.0.0.1:{_closed_port()}", max_retries=1, backoff_factor=0
    )
    with pytest.raises(GootenConnectionError, match=r"after 2 attempt\(s\) .*never sent") as info:
        client.update_order_status("1-a", "Hold")
    assert not isinstance(info.value, GootenOutcomeUnknownError)
    assert info.value.__cause__ is None and info.value.__context__ is None  # requests' text holds the URL


def test_read_timeout_is_a_connection_error_after_retries(api):
    order_id = api.add_order(statuses="New")["Id"]
    api.inject_faults(order_id, "slow", "slow", method="GET")
    with pytest.raises(GootenConnectionError, match=r"no answer within 0.3 s, after 2 attempt"):
        make_client(api, timeout=0.3, max_retries=1).get_order(order_id)


def test_urllib3_logs_never_show_the_key(api, caplog):
    order_id = api.add_order(statuses="New")["Id"]
    api.inject_faults(order_id, "reset", method="GET")
    api.inject_faults(order_id, "lost_response", method="POST")
    client = make_client(api)
    with caplog.at_level(logging.DEBUG, logger="urllib3"):
        client.get_order_status(order_id)
        client.check_credentials()
        with pytest.raises(GootenOutcomeUnknownError):
            client.update_order_status(order_id, "Hold")
    text = caplog.text
    assert "partnerBillingKey=***" in text  # urllib3 did log the request line, redacted
    for form in billing_key_forms(KEY):
        assert form not in text
    assert quote_plus(KEY) not in text
