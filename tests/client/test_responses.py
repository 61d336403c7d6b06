"""Gooten's answers turned into data or errors, through the client with requests-mock."""

import pytest

from gooten_provider.client import GootenClient
from gooten_provider.exceptions import (
    GootenApiError,
    GootenAuthenticationError,
    GootenHttpError,
    GootenOutcomeUnknownError,
    GootenRateLimitError,
)

KEY = "q+Zb/7Kx9Lm2Pw+Yr4Tn8Vc1Ds6Fg0Hj3Ak5Ml7No9="
BASE = "https://api.print.io"
STATUS_URL = f"{BASE}/api/orderstatus"
ORDER_URL = f"{BASE}/api/v/5/source/api/orders"


@pytest.fixture
def client():
    return GootenClient("recipe-1", KEY, max_retries=0)


def test_success_body_is_returned_and_the_key_encoded_once(client, requests_mock):
    requests_mock.post(STATUS_URL, json={"HadError": False})
    assert client.update_order_status("1-a", "hold") == {"HadError": False}
    sent = requests_mock.last_request
    assert sent.method == "POST"
    assert "partnerBillingKey=q%2BZb%2F7Kx9Lm2Pw%2BYr4Tn8Vc1Ds6Fg0Hj3Ak5Ml7No9%3D" in sent.url
    assert sent.qs["orderStatusName"] == ["Hold"]
    assert sent.qs["id"] == ["1-a"]
    assert sent.qs["recipeid"] == ["recipe-1"]


def test_had_error_carries_messages_property_names_and_reference(client, requests_mock):
    requests_mock.post(
        STATUS_URL,
        json={
            "HadError": True,
            "Errors": [
                {
                    "PropertyName": "orderStatusName",
                    "ErrorMessage": "Order status cannot be updated.",
                    "AttemptedValue": "Hold",
                    "CustomState": None,
                }
            ],
            "ErrorReferenceCode": "72f3c717-f204-4b4a-9b14-7c169f346235",
        },
    )
    with pytest.raises(GootenApiError) as info:
        client.update_order_status("1-a", "Hold")
    error = info.value
    assert type(error) is GootenApiError
    assert "orderStatusName: Order status cannot be updated." in str(error)
    assert "72f3c717-f204-4b4a-9b14-7c169f346235" in str(error)
    assert error.error_reference_code == "72f3c717-f204-4b4a-9b14-7c169f346235"
    assert error.errors[0].property_name == "orderStatusName"


def test_had_error_as_a_string_is_still_an_error(client, requests_mock):
    requests_mock.get(ORDER_URL, json={"HadError": "true", "Errors": []})
    with pytest.raises(GootenApiError, match="no error details given"):
        client.get_order("1-a")


def test_billing_key_refusal_is_an_authentication_error(client, requests_mock):
    requests_mock.post(
        STATUS_URL,
        json={
            "HadError": True,
            "Errors": [{"PropertyName": "partnerBillingKey", "ErrorMessage": "Invalid key."}],
        },
    )
    with pytest.raises(GootenAuthenticationError, match="partnerBillingKey: Invalid key"):
        client.update_order_status("1-a", "Hold")


def test_invalid_recipe_id_message_is_an_authentication_error(client, requests_mock):
    requests_mock.get(ORDER_URL, json={"Message": "Invalid recipeId"})
    with pytest.raises(GootenAuthenticationError, match="Gooten rejected the Recipe ID"):
        client.get_order("1-a")


def test_html_page_is_a_clear_http_error_with_a_short_excerpt(client, requests_mock):
    page = "<!DOCTYPE html><html><body>" + "Server Error " * 100 + "</body></html>"
    requests_mock.get(ORDER_URL, text=page, headers={"Content-Type": "text/html"})
    with pytest.raises(GootenHttpError, match=r"not Gooten's JSON \(text/html\): '<!DOCTYPE html>") as info:
        client.get_order("1-a")
    assert len(str(info.value)) < 400


def test_truncated_json_is_a_clear_error(client, requests_mock):
    requests_mock.get(
        ORDER_URL, text='{"Id": "1-a", "Items": [', headers={"Content-Type": "application/json"}
    )
    with pytest.raises(GootenHttpError, match="not Gooten's JSON"):
        client.get_order("1-a")


def test_4xx_names_the_status_and_hides_an_echoed_key(client, requests_mock):
    requests_mock.get(ORDER_URL, status_code=404, text=f"no route for partnerBillingKey={KEY}&x=1 {KEY}")
    with pytest.raises(GootenHttpError, match="HTTP 404") as info:
        client.get_order("1-a")
    assert KEY not in str(info.value)
    assert "***" in str(info.value)


def test_5xx_answer_to_a_write_is_outcome_unknown(client, requests_mock):
    requests_mock.post(STATUS_URL, status_code=502, text="Bad Gateway")
    with pytest.raises(GootenOutcomeUnknownError, match="may or may not have been applied"):
        client.update_order_status("1-a", "Hold")


def test_5xx_answer_to_a_read_is_an_http_error(client, requests_mock):
    requests_mock.get(ORDER_URL, status_code=503, text="Unavailable")
    with pytest.raises(GootenHttpError, match="HTTP 503"):
        client.get_order("1-a")


def test_429_is_a_rate_limit_error_saying_nothing_was_applied(requests_mock):
    # throttle_timeout=0: the first 429 ends the retries (the default keeps retrying for 300 s)
    client = GootenClient("recipe-1", KEY, max_retries=0, throttle_timeout=0)
    requests_mock.post(STATUS_URL, status_code=429, headers={"Retry-After": "0"})
    with pytest.raises(GootenRateLimitError, match="nothing was applied"):
        client.update_order_status("1-a", "Hold")
    assert requests_mock.call_count == 1


def test_item_statuses_are_read_from_items(client, requests_mock):
    requests_mock.get(ORDER_URL, json={"Id": "1-a", "Items": [{"Status": "New"}, {"Status": "Hold"}]})
    assert client.get_order_status("1-a") == ["New", "Hold"]


def test_order_without_items_has_no_status(client, requests_mock):
    requests_mock.get(ORDER_URL, json={"Id": "1-a", "Items": []})
    with pytest.raises(GootenApiError, match="has no items"):
        client.get_order_status("1-a")


@pytest.mark.parametrize(
    ("status", "message"), [("Shipped", "Invalid Gooten target status"), ("", "Invalid")]
)
def test_invalid_status_is_refused_before_any_request(client, requests_mock, status, message):
    with pytest.raises(ValueError, match=message):
        client.update_order_status("1-a", status)
    assert requests_mock.call_count == 0


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"recipe_id": "", "billing_key": KEY}, "Recipe ID is required"),
        ({"recipe_id": "r", "billing_key": "  "}, "Partner Billing Key is required"),
        ({"recipe_id": "r", "billing_key": KEY, "timeout": 0}, "timeout must be a number of at least 0.001"),
        ({"recipe_id": "r", "billing_key": KEY, "base_url": "http://api.print.io"}, "Refusing plain http"),
    ],
)
def test_bad_client_settings_fail_before_any_request(kwargs, message, requests_mock):
    with pytest.raises(GootenApiError, match=message):
        GootenClient(**kwargs)
    assert requests_mock.call_count == 0


def test_search_iterates_every_page(client, requests_mock):
    pages = {
        "1": {"Orders": [{"Id": "1-a"}, {"Id": "1-b"}], "TotalPages": 3, "Page": 1, "HadError": False},
        "2": {"Orders": [{"Id": "1-c"}], "TotalPages": 3, "Page": 2, "HadError": False},
        "3": {"Orders": [{"Id": "1-d"}], "TotalPages": 3, "Page": 3, "HadError": False},
    }
    requests_mock.get(f"{BASE}/api/ordersearch", json=lambda request, _: pages[request.qs["page"][0]])
    ids = [order["Id"] for order in client.search_orders(page_size=2, email="a@b.c")]
    assert ids == ["1-a", "1-b", "1-c", "1-d"]
    assert requests_mock.call_count == 3
    assert requests_mock.last_request.qs["email"] == ["a@b.c"]


def test_search_refuses_unknown_filters(client):
    with pytest.raises(ValueError, match="Unknown order search filter"):
        client.search_orders(status="New")  # refused at the call, before any request


def test_client_repr_shows_no_key(client):
    assert KEY not in repr(client)
    assert KEY not in str(vars(client).get("session", ""))


def test_a_write_answered_with_a_body_that_is_not_gootens_json_may_have_landed(client, requests_mock):
    requests_mock.post(STATUS_URL, text='{"HadErr', headers={"Content-Type": "application/json"})
    with pytest.raises(
        GootenOutcomeUnknownError, match=r"not Gooten's JSON .* may or may not have been applied"
    ):
        client.update_order_status("1-a", "Hold")


def test_gootens_own_error_texts_are_redacted_of_the_key(client, requests_mock):
    requests_mock.post(
        STATUS_URL,
        json={"HadError": True, "Errors": [{"PropertyName": "x", "ErrorMessage": f"Invalid key '{KEY}'"}]},
    )
    with pytest.raises(GootenApiError) as info:
        client.update_order_status("1-a", "Hold")
    assert KEY not in str(info.value)
    assert "Invalid key '***'" in str(info.value)
    assert KEY not in info.value.errors[0].error_message


def test_a_redirect_is_not_success_and_is_not_followed(client, requests_mock):
    requests_mock.get(ORDER_URL, status_code=302, json={"ok": 1}, headers={"Location": "https://elsewhere/"})
    with pytest.raises(GootenHttpError, match="HTTP 302"):
        client.get_order("1-a")
    assert requests_mock.call_count == 1


def test_status_spellings_from_gootens_documents_are_read_as_the_apis(client, requests_mock):
    requests_mock.get(
        ORDER_URL, json={"Id": "1-a", "Items": [{"Status": "ReadyForImageDI"}, {"Status": "Canceled"}]}
    )
    assert client.get_order_status("1-a") == ["ReadyForImageDl", "Cancelled"]
