"""Tests of the local Gooten API itself, over real HTTP on 127.0.0.1."""

from __future__ import annotations

import dataclasses
import itertools
import json
import os
import re
import select
import signal
import socket
import subprocess
import sys
import threading
import uuid
from urllib.parse import quote

import pytest
import requests

from gooten_provider.statuses import TARGET_STATUSES
from gooten_provider.testing import (
    DEFAULT_BILLING_KEY,
    DEFAULT_RECIPE_ID,
    FaultKind,
    GootenApiServer,
    JournalEntry,
)
from gooten_provider.testing.faults import ALL_FAULT_KINDS
from gooten_provider.testing.orders import demo_order_specs

pytest_plugins = ["pytester"]

KEY = DEFAULT_BILLING_KEY
SAFE_ID = re.compile(r"^(\d+)-[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
ORDER_PATH = "/api/v/5/source/api/orders"


@pytest.fixture
def api():
    with GootenApiServer() as server:
        yield server


def status_params(order_id: str, target: str = "Hold", **overrides: str) -> dict[str, str]:
    params = {
        "recipeid": DEFAULT_RECIPE_ID,
        "partnerBillingKey": KEY,
        "id": order_id,
        "orderStatusName": target,
    }
    params.update(overrides)
    return params


def post_status(api: GootenApiServer, order_id: str, target: str = "Hold", *, http=requests, **kwargs):
    kwargs.setdefault("timeout", 5)
    return http.post(f"{api.base_url}/api/orderstatus", params=status_params(order_id, target), **kwargs)


def get_order(api: GootenApiServer, order_id: str, *, http=requests, **kwargs):
    kwargs.setdefault("timeout", 5)
    return http.get(
        f"{api.base_url}{ORDER_PATH}", params={"recipeId": DEFAULT_RECIPE_ID, "id": order_id}, **kwargs
    )


def search(api: GootenApiServer, **params):
    query = {"recipeID": DEFAULT_RECIPE_ID, "partnerBillingKey": KEY, **params}
    return requests.get(f"{api.base_url}/api/ordersearch", params=query, timeout=5)


def assert_had_error(reply: requests.Response, property_name: str, message: str, attempted: str) -> None:
    body = reply.json()
    assert body["HadError"] is True
    assert body["Errors"] == [
        {
            "AttemptedValue": attempted,
            "CustomState": None,
            "ErrorMessage": message,
            "PropertyName": property_name,
        }
    ]
    uuid.UUID(body["ErrorReferenceCode"])


# -- orderstatus -------------------------------------------------------------------------------------


def test_success_changes_every_item(api):
    order_id = api.add_order(statuses=["New", "Pending", "AddressIssue"])["Id"]

    reply = post_status(api, order_id, "Hold")

    assert reply.status_code == 200
    assert reply.headers["Content-Type"].startswith("application/json")
    assert reply.content == b'{"HadError": false}'
    assert api.item_statuses(order_id) == ["Hold", "Hold", "Hold"]
    assert [item["Status"] for item in get_order(api, order_id).json()["Items"]] == ["Hold"] * 3
    [entry] = api.applied_writes(order_id)
    assert (entry.method, entry.target_status, entry.outcome, entry.key_check, entry.recipe_check) == (
        "POST",
        "Hold",
        "updated",
        "ok",
        "ok",
    )


def test_ineligible_order_is_refused_with_an_envelope(api):
    order_id = api.add_order(statuses=["New", "InProduction"])["Id"]

    reply = post_status(api, order_id, "Cancelled")

    assert reply.status_code == 200
    assert_had_error(
        reply, "orderStatusName", "Order status cannot be updated from 'InProduction'.", "Cancelled"
    )
    assert api.item_statuses(order_id) == ["New", "InProduction"]
    assert api.applied_writes(order_id) == []
    assert api.writes(order_id)[0].outcome == "ineligible"


@pytest.mark.parametrize("current", ["Hold", "Test", "Cancelled", "Shipped"])
def test_orders_outside_the_changeable_statuses_are_refused(api, current):
    order_id = api.add_order(statuses=current)["Id"]

    reply = post_status(api, order_id, "New")

    assert_had_error(reply, "orderStatusName", f"Order status cannot be updated from '{current}'.", "New")
    assert api.item_statuses(order_id) == [current]


def test_unknown_order_id(api):
    missing = f"999-{uuid.uuid4()}"

    reply = post_status(api, missing)
    assert_had_error(reply, "id", "Order not found.", missing)
    assert api.writes()[0].outcome == "unknown_order"

    reply = get_order(api, missing)
    assert_had_error(reply, "id", "Order not found.", missing)


@pytest.mark.parametrize("target", ["hold", "HOLD", "Shipped", "Pending", " Hold"])
def test_bad_target_status(api, target):
    order_id = api.add_order(statuses="New")["Id"]

    reply = post_status(api, order_id, target)

    body = reply.json()
    assert body["HadError"] is True
    [error] = body["Errors"]
    assert error["PropertyName"] == "orderStatusName"
    assert error["AttemptedValue"] == target
    assert api.item_statuses(order_id) == ["New"]
    assert api.writes(order_id)[0].outcome == "bad_status"


@pytest.mark.parametrize("target", TARGET_STATUSES)
def test_every_target_status_is_accepted(api, target):
    order_id = api.add_order(statuses="Pending")["Id"]
    assert post_status(api, order_id, target).json() == {"HadError": False}
    assert api.item_statuses(order_id) == [target]


def test_missing_status_and_id(api):
    reply = requests.post(
        f"{api.base_url}/api/orderstatus",
        params={"recipeid": DEFAULT_RECIPE_ID, "partnerBillingKey": KEY},
        timeout=5,
    )
    body = reply.json()
    assert body["HadError"] is True
    assert {error["PropertyName"] for error in body["Errors"]} == {"id", "orderStatusName"}


def test_invalid_recipe_id(api):
    order_id = api.add_order(statuses="New")["Id"]

    wrong = requests.post(
        f"{api.base_url}/api/orderstatus",
        params=status_params(order_id, recipeid=str(uuid.uuid4())),
        timeout=5,
    )
    missing = requests.get(f"{api.base_url}{ORDER_PATH}", params={"id": order_id}, timeout=5)

    for reply in (wrong, missing):
        assert reply.status_code == 200
        assert reply.json() == {"Message": "Invalid recipeId"}
    assert [entry.recipe_check for entry in api.journal] == ["invalid", "missing"]
    assert {entry.outcome for entry in api.journal} == {"invalid_recipe"}
    assert api.item_statuses(order_id) == ["New"]


def test_error_status_switch():
    with GootenApiServer(error_status=400) as api:
        order_id = api.add_order(statuses="Shipped")["Id"]
        assert post_status(api, order_id).status_code == 400
        assert get_order(api, "nope").status_code == 400
        bad_recipe = requests.get(f"{api.base_url}{ORDER_PATH}", params={"id": order_id}, timeout=5)
        assert (bad_recipe.status_code, bad_recipe.json()) == (400, {"Message": "Invalid recipeId"})
        assert get_order(api, order_id).status_code == 200


# -- billing key encoding ----------------------------------------------------------------------------


def test_key_encoded_once_by_requests_is_accepted(api):
    order_id = api.add_order(statuses="New")["Id"]

    reply = post_status(api, order_id)

    assert "%2B" in reply.request.url and "%2F" in reply.request.url
    assert reply.json() == {"HadError": False}
    assert api.writes(order_id)[0].key_check == "ok"


def test_key_encoded_once_by_hand_is_accepted(api):
    order_id = api.add_order(statuses="New")["Id"]
    url = (
        f"{api.base_url}/api/orderstatus?recipeid={DEFAULT_RECIPE_ID}"
        f"&partnerBillingKey={quote(KEY, safe='')}&id={order_id}&orderStatusName=Hold"
    )

    assert requests.post(url, timeout=5).json() == {"HadError": False}
    assert api.writes(order_id)[0].key_check == "ok"


def test_raw_key_in_url_is_a_mismatch(api):
    order_id = api.add_order(statuses="New")["Id"]
    url = (
        f"{api.base_url}/api/orderstatus?recipeid={DEFAULT_RECIPE_ID}"
        f"&partnerBillingKey={KEY}&id={order_id}&orderStatusName=Hold"
    )

    reply = requests.post(url, timeout=5)

    assert "+" in reply.request.url
    assert_had_error(reply, "partnerBillingKey", "Invalid partnerBillingKey.", "")
    assert api.writes(order_id)[0].key_check == "mismatch"
    assert api.writes(order_id)[0].outcome == "bad_key"
    assert api.item_statuses(order_id) == ["New"]


def test_double_encoded_key_is_a_mismatch(api):
    order_id = api.add_order(statuses="New")["Id"]

    reply = requests.post(
        f"{api.base_url}/api/orderstatus",
        params=status_params(order_id, partnerBillingKey=quote(KEY, safe="")),
        timeout=5,
    )

    assert "%252B" in reply.request.url
    assert_had_error(reply, "partnerBillingKey", "Invalid partnerBillingKey.", "")
    assert api.writes(order_id)[0].key_check == "mismatch"
    assert api.item_statuses(order_id) == ["New"]


def test_missing_key(api):
    order_id = api.add_order(statuses="New")["Id"]
    params = status_params(order_id)
    del params["partnerBillingKey"]

    reply = requests.post(f"{api.base_url}/api/orderstatus", params=params, timeout=5)

    assert_had_error(reply, "partnerBillingKey", "'partnerBillingKey' must not be empty.", "")
    assert api.writes(order_id)[0].key_check == "missing"
    assert api.item_statuses(order_id) == ["New"]


def test_get_order_needs_no_key(api):
    order_id = api.add_order(statuses="New")["Id"]
    assert get_order(api, order_id).status_code == 200
    assert api.journal[0].key_check == "not_required"


def test_journal_never_contains_the_key(api):
    order_id = api.add_order(statuses="New")["Id"]
    raw_url = (
        f"{api.base_url}/api/orderstatus?recipeid={DEFAULT_RECIPE_ID}&partnerBillingKey={KEY}&id={order_id}"
    )
    requests.post(raw_url + "&orderStatusName=Hold", timeout=5)
    requests.post(
        f"{api.base_url}/api/orderstatus",
        params=status_params(order_id, partnerBillingKey=quote(KEY, safe="")),
        timeout=5,
    )
    post_status(api, order_id)
    search(api)
    api.inject_faults(order_id, "500", "reset")
    post_status(api, order_id)
    with pytest.raises(requests.ConnectionError):
        post_status(api, order_id)
    requests.get(f"{api.base_url}/api/unknown", params={"partnerBillingKey": KEY}, timeout=5)

    journal = api.journal
    assert len(journal) == 7
    text = repr(journal) + json.dumps([dataclasses.asdict(entry) for entry in journal])
    for fragment in (
        KEY,
        quote(KEY, safe=""),
        quote(quote(KEY, safe=""), safe=""),
        KEY.replace("+", " "),
        "Zb/7Kx",
    ):
        assert fragment not in text
    assert "partnerBillingKey" not in text
    assert all("?" not in entry.path for entry in journal)


# -- routes --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "path", ["/api/orderstatus", "/api/orderstatus/", "/API/OrderStatus", "/Api/orderStatus/"]
)
def test_orderstatus_path_variants(api, path):
    order_id = api.add_order(statuses="New")["Id"]
    reply = requests.post(f"{api.base_url}{path}", params=status_params(order_id), timeout=5)
    assert reply.json() == {"HadError": False}


@pytest.mark.parametrize(
    "path",
    [
        "/api/v/1/source/api/orders",
        "/api/v/4/source/api/orders/",
        "/api/v/5/source/ios/orders",
        "/api/v/5/source/android/orders/",
        "/API/V/5/Source/Api/Orders",
        "/api/v/12/source/api/orders",
    ],
)
def test_get_order_path_variants(api, path):
    order_id = api.add_order(statuses="New")["Id"]
    reply = requests.get(
        f"{api.base_url}{path}", params={"recipeid": DEFAULT_RECIPE_ID, "id": order_id}, timeout=5
    )
    assert reply.status_code == 200
    assert reply.json()["Id"] == order_id


@pytest.mark.parametrize(
    ("recipe_name", "key_name", "id_name", "status_name"),
    [
        ("recipeid", "partnerBillingKey", "id", "orderStatusName"),
        ("recipeId", "partnerbillingkey", "Id", "orderstatusname"),
        ("RecipeID", "PartnerBillingKey", "ID", "OrderStatusName"),
        ("RECIPEID", "PARTNERBILLINGKEY", "iD", "ORDERSTATUSNAME"),
    ],
)
def test_parameter_names_are_case_insensitive(api, recipe_name, key_name, id_name, status_name):
    order_id = api.add_order(statuses="New")["Id"]
    params = {recipe_name: DEFAULT_RECIPE_ID, key_name: KEY, id_name: order_id, status_name: "Cancelled"}
    reply = requests.post(f"{api.base_url}/api/orderstatus", params=params, timeout=5)
    assert reply.json() == {"HadError": False}
    assert api.item_statuses(order_id) == ["Cancelled"]


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/"),
        ("GET", "/api/orders"),
        ("GET", "/api/orderstatus"),
        ("POST", "/api/orderCancel"),
        ("PUT", "/api/orderstatus"),
        ("GET", "/api/v/5/source/web/orders"),
        ("GET", "/api/v/x/source/api/orders"),
        ("POST", "/api/ordersearch"),
    ],
)
def test_unknown_routes_are_html_404(api, method, path):
    reply = requests.request(
        method, f"{api.base_url}{path}", params={"recipeid": DEFAULT_RECIPE_ID}, timeout=5
    )
    assert reply.status_code == 404
    assert reply.headers["Content-Type"].startswith("text/html")
    assert reply.text.startswith("<!DOCTYPE html>")
    assert "Not Found" in reply.text
    assert api.journal[0].outcome == "not_found"


def test_admin_order_page_is_read_only_html_without_credentials(api):
    order_id = api.add_order(statuses=["New", "Hold"], NiceId="<b>Ada7-abc</b>")["Id"]
    api.inject_faults(order_id, FaultKind.HTTP_500)  # faults are for API calls: the page ignores them
    assert api.admin_order_url == f"{api.base_url}/admin/orders/{{order_id}}"
    link = api.admin_order_url.replace("{order_id}", quote(order_id, safe=""))  # as GootenOrderLink does
    reply = requests.get(link, timeout=5)
    assert reply.status_code == 200
    assert reply.headers["Content-Type"].startswith("text/html")
    assert f'<code id="order-id">{order_id}</code>' in reply.text
    assert '<strong id="order-status">Hold, New</strong>' in reply.text
    assert "&lt;b&gt;Ada7-abc&lt;/b&gt;" in reply.text and "<b>" not in reply.text  # escaped
    assert requests.get(f"{api.base_url}/ADMIN/orders/{order_id}/", timeout=5).status_code == 200
    assert api.pending_faults(order_id) == 1
    assert api.item_statuses(order_id) == ["New", "Hold"]
    assert [(e.order_id, e.outcome, e.key_check, e.applied) for e in api.journal] == [
        (order_id, "admin_page", "not_required", False)
    ] * 2

    api.clear_journal()
    missing = requests.get(f"{api.base_url}/admin/orders/1-nope", timeout=5)
    assert missing.status_code == 404 and "Not Found" in missing.text
    assert requests.post(link, timeout=5).status_code == 404
    assert requests.get(f"{api.base_url}/admin/orders/", timeout=5).status_code == 404
    assert [e.outcome for e in api.journal] == ["not_found"] * 3


def test_json_content_type_and_bodies_are_ignored_and_keep_alive_stays_in_sync(api):
    order_id = api.add_order(statuses="New")["Id"]
    with requests.Session() as session:
        empty = post_status(api, order_id, "Hold", http=session, headers={"Content-Type": "application/json"})
        with_body = post_status(api, order_id, "Cancelled", http=session, json={"orderStatusName": "New"})
        chunked = post_status(api, order_id, "New", http=session, data=iter([b'{"a":', b"1}"]))
        read = get_order(api, order_id, http=session)

    assert empty.json() == {"HadError": False}
    assert with_body.json()["Errors"][0]["ErrorMessage"] == "Order status cannot be updated from 'Hold'."
    assert chunked.json()["HadError"] is True
    assert read.json()["Items"][0]["Status"] == "Hold"
    assert len({entry.connection_id for entry in api.journal}) == 1


# -- GET order payload -------------------------------------------------------------------------------


def test_get_order_payload_shape(api):
    order_id = api.add_order(statuses=["New", "Shipped"])["Id"]

    body = get_order(api, order_id).json()

    match = SAFE_ID.match(body["Id"])
    assert match and int(match.group(1)) == body["GootenId"]
    assert "HadError" not in body and "Status" not in body
    for name in ("NiceId", "SourceId", "CreatedAt", "Total", "ShippingTotal", "DiscountAmount", "Meta"):
        assert name in body
    for name in ("FirstName", "LastName", "Line1", "City", "State", "CountryCode", "PostalCode", "Email"):
        assert name in body["ShippingAddress"] and name in body["BillingAddress"]
    item_fields = {
        "Sku", "ProductId", "Product", "Quantity", "Status", "TrackingNumber", "TrackingUrl",
        "ShipCarrierName", "Price", "DiscountAmount", "SourceId", "Meta", "Shipments", "Images",
    }  # fmt: skip
    for item in body["Items"]:
        assert item_fields <= set(item)
        assert set(item["Price"]) == {
            "Price",
            "CurrencyCode",
            "FormattedPrice",
            "CurrencyFormat",
            "CurrencyDigits",
        }
        assert set(item["Images"][0]) == {"SourceUrl", "SpaceId", "ThumbnailUrl", "OrderItemId"}
    assert [item["Status"] for item in body["Items"]] == ["New", "Shipped"]
    assert body["Items"][1]["TrackingNumber"] and body["Items"][1]["Shipments"]


def test_add_order_overrides_and_test_mode_nice_id(api):
    address = {"FirstName": "Zed", "LastName": "Zulu", "PostalCode": "10001", "Email": "zed@example.com"}
    order = api.add_order(
        "42-11111111-2222-4333-8444-555555555555",
        statuses="Test",
        ShippingAddress=address,
        SourceId="shop-42",
        items=[{"Sku": "Mug-11oz", "Quantity": 3}, {"Sku": "Tee-L"}],
    )

    body = get_order(api, order["Id"]).json()
    assert body == order
    assert body["GootenId"] == 42
    assert body["NiceId"].startswith("Test42-")
    assert body["SourceId"] == "shop-42"
    assert body["ShippingAddress"] == address
    assert [(i["Sku"], i["Quantity"], i["Status"]) for i in body["Items"]] == [
        ("Mug-11oz", 3, "Test"),
        ("Tee-L", 1, "Test"),
    ]
    mixed = api.add_order(statuses="Pending", ShippingAddress=address, items=[{}, {"Status": "New"}])
    assert mixed["NiceId"].startswith(f"Zed{mixed['GootenId']}-")
    assert [item["Status"] for item in mixed["Items"]] == ["Pending", "New"]
    with pytest.raises(ValueError, match="already exists"):
        api.add_order(order["Id"])


def test_an_order_changes_once_it_has_been_read(api):
    order_id = api.add_order(statuses="Hold")["Id"]
    other = api.add_order(statuses="Hold")["Id"]
    change = api.set_item_statuses_once_read(order_id, "New")
    assert get_order(api, other).json()["Items"][0]["Status"] == "Hold"  # another order's read: no change
    change.join(timeout=0.3)
    assert change.is_alive() and api.item_statuses(order_id) == ["Hold"]
    assert get_order(api, order_id).json()["Items"][0]["Status"] == "Hold"  # the first read sees it held
    change.join(timeout=5)
    assert api.item_statuses(order_id) == ["New"]


def test_store_helpers(api):
    ids = api.add_orders(3, statuses=["Pending", "Pending"])
    assert len(set(ids)) == 3 and all(SAFE_ID.match(order_id) for order_id in ids)
    api.set_item_statuses(ids[0], ["InProduction", "Shipped"])
    assert api.item_statuses(ids[0]) == ["InProduction", "Shipped"]
    api.set_item_statuses(ids[1], "Delivered")
    assert api.item_statuses(ids[1]) == ["Delivered", "Delivered"]
    with pytest.raises(ValueError):
        api.set_item_statuses(ids[2], ["New"])
    with pytest.raises(KeyError):
        api.item_statuses("nope")
    copy = api.order(ids[2])
    copy["Items"][0]["Status"] = "Hold"
    assert api.item_statuses(ids[2]) == ["Pending", "Pending"]


def test_seeded_orders():
    specs = [{"id": "7-73f6321e-e85f-4352-8fbf-abd27b5ee919", "statuses": ["Test"]}, {"statuses": "Hold"}]
    with GootenApiServer(orders=specs) as api:
        assert api.order("7-73f6321e-e85f-4352-8fbf-abd27b5ee919")["NiceId"] == "Test7-73f"
        assert len(api.order_ids()) == 2


# -- ordersearch ---------------------------------------------------------------------------------------


def test_ordersearch_pages_in_creation_order(api):
    ids = [api.add_order(statuses="New")["Id"] for _ in range(7)]

    pages = [search(api, page=page, pageSize=3).json() for page in (1, 2, 3, 4)]

    assert [page["Page"] for page in pages] == [1, 2, 3, 4]
    assert {page["TotalPages"] for page in pages} == {3}
    assert all(page["HadError"] is False for page in pages)
    assert [order["Id"] for page in pages for order in page["Orders"]] == ids
    assert pages[3]["Orders"] == []
    default = search(api).json()
    assert (default["Page"], default["TotalPages"], len(default["Orders"])) == (1, 1, 7)
    assert [entry.outcome for entry in api.journal] == ["search"] * 5


def test_ordersearch_page_size_default_and_cap(api):
    api.add_orders(130)
    assert len(search(api).json()["Orders"]) == 25
    capped = search(api, pageSize=500).json()
    assert (len(capped["Orders"]), capped["TotalPages"]) == (100, 2)


def test_ordersearch_with_no_orders_has_one_page(api):
    assert search(api).json() == {"Orders": [], "TotalPages": 1, "Page": 1, "HadError": False}


def test_ordersearch_filters(api):
    ada = {"FirstName": "Ada", "LastName": "Lovelace", "PostalCode": "SW1A 1AA", "Email": "ada@example.com"}
    first = api.add_order(statuses="New", ShippingAddress=ada, CreatedAt="2025-01-05T10:00:00")["Id"]
    second = api.add_order(statuses="New", CreatedAt="2025-02-10T10:00:00")["Id"]
    third = api.add_order(statuses="New", ShippingAddress=ada, CreatedAt="2025-03-15T10:00:00")["Id"]

    def found(**params):
        return [order["Id"] for order in search(api, **params).json()["Orders"]]

    assert found(email="ADA@example.com") == [first, third]
    assert found(lastName="lovelace") == [first, third]
    assert found(postalCode="sw1a1aa") == [first, third]
    assert found(startDate="2025-02-10") == [second, third]
    assert found(endDate="2025-02-10") == [first, second]
    assert found(startDate="2025-01-06", endDate="2025-03-14") == [second]
    assert found(email="ada@example.com", startDate="2025-03-01") == [third]


def test_ordersearch_auth_and_bad_parameters(api):
    missing_key = requests.get(
        f"{api.base_url}/api/ordersearch", params={"recipeid": DEFAULT_RECIPE_ID}, timeout=5
    )
    assert_had_error(missing_key, "partnerBillingKey", "'partnerBillingKey' must not be empty.", "")
    bad_recipe = requests.get(
        f"{api.base_url}/api/ordersearch/", params={"partnerBillingKey": KEY}, timeout=5
    )
    assert bad_recipe.json() == {"Message": "Invalid recipeId"}
    assert search(api, page=0).json()["Errors"][0]["PropertyName"] == "page"
    assert search(api, startDate="01/02/2025").json()["Errors"][0]["PropertyName"] == "startDate"


# -- faults --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["500", "502", "503"])
def test_server_error_faults_apply_nothing(api, kind):
    order_id = api.add_order(statuses="New")["Id"]
    api.inject_faults(order_id, kind)

    reply = post_status(api, order_id)

    assert reply.status_code == int(kind)
    assert reply.headers["Content-Type"].startswith("text/html")
    assert api.item_statuses(order_id) == ["New"]
    [entry] = api.writes(order_id)
    assert (entry.fault, entry.outcome, entry.applied) == (kind, kind, False)
    assert post_status(api, order_id).json() == {"HadError": False}  # the fault was consumed


def test_429_fault_sends_retry_after_as_given():
    with GootenApiServer(retry_after=0.05) as api:
        order_id = api.add_order(statuses="New")["Id"]
        api.inject_faults(order_id, FaultKind.HTTP_429)
        reply = post_status(api, order_id)
        assert reply.status_code == 429
        assert reply.headers["Retry-After"] == "0.05"
        assert reply.json() == {"Message": "Too many requests"}
        assert api.item_statuses(order_id) == ["New"]
    with GootenApiServer() as api:
        order_id = api.add_order(statuses="New")["Id"]
        api.inject_faults(order_id, "429")
        assert get_order(api, order_id).headers["Retry-After"] == "1"


def test_html_fault_is_a_200_html_page(api):
    order_id = api.add_order(statuses="New")["Id"]
    api.inject_faults(order_id, "html")

    reply = post_status(api, order_id)

    assert reply.status_code == 200
    assert reply.headers["Content-Type"].startswith("text/html")
    assert reply.text.startswith("<!DOCTYPE html>")
    assert api.item_statuses(order_id) == ["New"]
    assert api.writes(order_id)[0].fault == "html"


def test_reset_fault_applies_nothing(api):
    order_id = api.add_order(statuses="New")["Id"]
    api.inject_faults(order_id, "reset")

    with pytest.raises(requests.ConnectionError):
        post_status(api, order_id)

    assert api.item_statuses(order_id) == ["New"]
    assert api.applied_writes(order_id) == []
    [entry] = api.writes(order_id)
    assert (entry.fault, entry.outcome, entry.applied) == ("reset", "reset", False)


def test_reset_is_a_tcp_rst_not_a_clean_close(api):
    order_id = api.add_order(statuses="New")["Id"]
    api.inject_faults(order_id, "reset")
    request = (
        f"GET {ORDER_PATH}?recipeid={DEFAULT_RECIPE_ID}&id={order_id} HTTP/1.1\r\n"
        f"Host: 127.0.0.1:{api.port}\r\n\r\n"
    ).encode()
    with socket.create_connection(("127.0.0.1", api.port), timeout=5) as sock:
        sock.sendall(request)
        with pytest.raises(ConnectionResetError):  # a FIN would read b"" instead
            sock.recv(1024)


def test_lost_response_fault_applies_then_resets(api):
    order_id = api.add_order(statuses="New")["Id"]
    api.inject_faults(order_id, "lost_response")

    with pytest.raises(requests.ConnectionError):
        post_status(api, order_id)

    assert api.item_statuses(order_id) == ["Hold"]
    [entry] = api.applied_writes(order_id)
    assert (entry.fault, entry.outcome) == ("lost_response", "updated")


def test_lost_response_on_a_read_just_resets(api):
    order_id = api.add_order(statuses="New")["Id"]
    api.inject_faults(order_id, "lost_response")
    with pytest.raises(requests.ConnectionError):
        get_order(api, order_id)
    assert (api.journal[0].fault, api.journal[0].outcome) == ("lost_response", "lost_response")


def test_slow_fault_applies_and_outlasts_the_client_timeout():
    with GootenApiServer(slow_seconds=0.3) as api:
        order_id = api.add_order(statuses="New")["Id"]
        api.inject_faults(order_id, "slow", "slow")

        with pytest.raises(requests.Timeout):
            post_status(api, order_id, timeout=0.1)
        assert api.item_statuses(order_id) == ["Hold"]

        api.set_item_statuses(order_id, "New")
        reply = get_order(api, order_id)
        assert reply.status_code == 200
        read = next(entry for entry in api.journal if entry.method == "GET")
        assert read.fault == "slow" and read.duration >= 0.3
    # stop() wakes the sleeping request and journals it before returning
    [write] = api.writes(order_id)
    assert (write.fault, write.applied, write.outcome) == ("slow", True, "updated")


def test_fault_queue_per_order_with_method_filter(api):
    target = api.add_order(statuses="New")["Id"]
    other = api.add_order(statuses="New")["Id"]
    api.inject_faults(target, "503", method="POST")
    api.inject_faults(target, "500", "html")
    assert api.pending_faults(target) == 3

    assert get_order(api, other).status_code == 200
    assert post_status(api, other).status_code == 200
    assert get_order(api, target).status_code == 500  # first fault matching GET: "500"
    assert post_status(api, target).status_code == 503  # first fault matching POST: the POST-only "503"
    html = post_status(api, target)
    assert html.headers["Content-Type"].startswith("text/html")
    assert api.pending_faults() == 0
    assert post_status(api, target).json() == {"HadError": False}
    assert [entry.fault for entry in api.journal] == [None, None, "500", "503", "html", None]

    api.inject_faults(target, "reset", method="GET")
    api.clear_faults(target)
    assert get_order(api, target).status_code == 200
    with pytest.raises(ValueError):
        api.inject_faults(target, "teapot")
    with pytest.raises(ValueError):
        api.inject_faults(target, "500", method="DELETE")


def test_fault_rate_with_a_seed_is_reproducible():
    kinds = ["500", "503", "429", "html"]

    def run(api: GootenApiServer) -> list[str | None]:
        api.clear_journal()
        order_id = api.add_order(statuses="New")["Id"]
        with requests.Session() as session:
            for _ in range(30):
                get_order(api, order_id, http=session)
        return [entry.fault for entry in api.journal]

    with GootenApiServer(fault_rate=0.5, fault_kinds=kinds, seed=7) as first:
        faults = run(first)
        first.set_fault_rate(0.5, kinds, seed=7)
        assert run(first) == faults
        first.set_fault_rate(0.0)
        assert run(first) == [None] * 30
    with GootenApiServer(fault_rate=0.5, fault_kinds=kinds, seed=7) as second:
        assert run(second) == faults
    with GootenApiServer(fault_rate=0.5, fault_kinds=kinds, seed=8) as third:
        assert run(third) != faults
    assert 5 < sum(fault is not None for fault in faults) < 25
    assert {fault for fault in faults if fault} <= set(kinds)


def test_fault_rate_applies_to_search_and_validates():
    with GootenApiServer(fault_rate=1.0, fault_kinds="503") as api:
        assert search(api).status_code == 503
        with pytest.raises(ValueError):
            api.set_fault_rate(1.5)
    with pytest.raises(ValueError):
        GootenApiServer(fault_kinds=[])
    assert FaultKind.parse("HTTP_503") is FaultKind.HTTP_503
    assert FaultKind.parse("Lost_Response") is FaultKind.LOST_RESPONSE


# -- latency, connections, lifecycle -----------------------------------------------------------------


def test_latency_and_connect_latency_in_journal_timestamps():
    with GootenApiServer(latency=0.05, connect_latency=0.2) as api:
        order_id = api.add_order(statuses="New")["Id"]
        with requests.Session() as session:
            for _ in range(3):
                get_order(api, order_id, http=session)
        with requests.Session() as session:
            get_order(api, order_id, http=session)
        journal = api.journal

    first, second, third, fresh = journal
    assert first.connection_id == second.connection_id == third.connection_id
    assert fresh.connection_id > first.connection_id
    assert first.duration >= 0.25 and fresh.duration >= 0.25
    for entry in (second, third):
        assert 0.05 <= entry.duration < 0.2
    assert second.started >= first.finished


def test_keep_alive_replies_do_not_stall_on_delayed_acks(api):
    order_id = api.add_order(statuses="New")["Id"]
    with requests.Session() as session:
        for _ in range(51):
            get_order(api, order_id, http=session)
    journal = api.journal
    assert len({entry.connection_id for entry in journal}) == 1
    # The gap between one reply and the next request on the connection is the client's wait for the whole
    # reply: a delayed-ACK stall makes it about 40 ms per reply.
    gaps = sorted(after.started - before.finished for before, after in itertools.pairwise(journal))
    assert gaps[len(gaps) // 2] < 0.02


def test_concurrent_clients(api):
    ids = api.add_orders(64)
    errors: list[BaseException] = []

    def worker(chunk: list[str]) -> None:
        try:
            with requests.Session() as session:
                for order_id in chunk:
                    assert get_order(api, order_id, http=session).status_code == 200
                    assert post_status(api, order_id, "Cancelled", http=session).json() == {"HadError": False}
        except BaseException as error:
            errors.append(error)

    threads = [threading.Thread(target=worker, args=(ids[n::16],)) for n in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)

    assert errors == []
    assert len(api.journal) == 128
    assert len(api.applied_writes()) == 64
    assert all(api.item_statuses(order_id) == ["Cancelled"] for order_id in ids)
    assert len({entry.connection_id for entry in api.journal}) == 16


def test_stop_closes_connections_and_restart_keeps_the_port():
    api = GootenApiServer()
    with pytest.raises(RuntimeError):
        _ = api.base_url
    api.start()
    api.start()  # idempotent
    base_url = api.base_url
    order_id = api.add_order(statuses="New")["Id"]
    with requests.Session() as session:
        assert get_order(api, order_id, http=session).status_code == 200
        api.stop()
        api.stop()  # idempotent
        assert not api.running
        with pytest.raises(requests.ConnectionError):
            get_order(api, order_id, http=session)
        with api:
            assert api.base_url == base_url
            assert get_order(api, order_id, http=session).status_code == 200
    connection_ids = [entry.connection_id for entry in api.journal]
    assert connection_ids[1] > connection_ids[0]


def test_only_loopback_hosts():
    with pytest.raises(ValueError):
        GootenApiServer(host="0.0.0.0")
    assert GootenApiServer(host="localhost").host == "127.0.0.1"


def test_connection_config_and_env():
    with GootenApiServer() as api:
        config = api.connection_config()
        assert config == {
            "conn_type": "gooten",
            "login": DEFAULT_RECIPE_ID,
            "password": DEFAULT_BILLING_KEY,
            "host": api.base_url,
            "extra": {"timeout": 5, "max_retries": 3},
        }
        assert api.connection_env("gooten_other") == {"AIRFLOW_CONN_GOOTEN_OTHER": json.dumps(config)}
        assert KEY not in repr(api)
    assert DEFAULT_BILLING_KEY == "q+Zb/7Kx9Lm2Pw+Yr4Tn8Vc1Ds6Fg0Hj3Ak5Ml7No9="  # other tests hard-code it
    assert {"+", "/", "="} <= set(DEFAULT_BILLING_KEY)
    assert isinstance(JournalEntry, type)


# -- pytest plugin -------------------------------------------------------------------------------------


def test_gooten_api_fixture_sets_the_connection(gooten_api):
    config = json.loads(os.environ["AIRFLOW_CONN_GOOTEN_DEFAULT"])
    assert config["host"] == gooten_api.base_url
    assert (config["login"], config["password"]) == (DEFAULT_RECIPE_ID, DEFAULT_BILLING_KEY)
    order_id = gooten_api.add_order(statuses="New")["Id"]
    assert get_order(gooten_api, order_id).status_code == 200


def test_gooten_api_factory_points_at_the_latest_server(gooten_api_factory):
    first = gooten_api_factory()
    second = gooten_api_factory(error_status=400, latency=0.01)
    assert json.loads(os.environ["AIRFLOW_CONN_GOOTEN_DEFAULT"])["host"] == second.base_url
    assert first.running and second.running and first.port != second.port
    assert get_order(second, "nope").status_code == 400


def test_plugin_stops_servers_and_restores_env(pytester):
    pytester.makepyfile(
        """
        import os
        import requests

        BEFORE = os.environ.get("AIRFLOW_CONN_GOOTEN_DEFAULT")
        SEEN = []

        def test_uses_fixtures(gooten_api, gooten_api_factory):
            SEEN.extend([gooten_api, gooten_api_factory(latency=0.0)])
            assert all(server.running for server in SEEN)

        def test_after():
            assert not any(server.running for server in SEEN)
            assert os.environ.get("AIRFLOW_CONN_GOOTEN_DEFAULT") == BEFORE
        """
    )
    pytester.runpytest("-p", "no:cacheprovider").assert_outcomes(passed=2)


def test_plugin_import_is_light():
    prefixes = ("airflow", "gooten_provider.testing.", "http.server")
    code = (
        "import sys, gooten_provider.testing.pytest_plugin; "
        f"print(sorted(m for m in sys.modules if m.startswith({prefixes!r})))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=30)
    assert out.stdout.strip() == "['gooten_provider.testing.pytest_plugin']"


# -- CLI -----------------------------------------------------------------------------------------------


def test_cli_serves_and_stops_on_sigterm(tmp_path):
    seed_file = tmp_path / "orders.json"
    seed_file.write_text(
        json.dumps([{"id": "77-00000000-0000-4000-8000-000000000077", "statuses": ["Pending"]}])
    )
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "gooten_provider.testing",
            "--port",
            "0",
            "--demo-orders",
            "--orders-file",
            str(seed_file),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        ready, _, _ = select.select([process.stdout], [], [], 15)
        assert ready, "the CLI printed nothing"
        line = process.stdout.readline()
        match = re.fullmatch(
            r"Local Gooten API listening on (http://127\.0\.0\.1:\d+) \(recipe id (\S+)\)\n", line
        )
        assert match, line
        base_url, recipe_id = match.groups()
        assert recipe_id == DEFAULT_RECIPE_ID
        demo_id = demo_order_specs()[0]["id"]
        for order_id in (demo_id, "77-00000000-0000-4000-8000-000000000077"):
            reply = requests.get(
                f"{base_url}{ORDER_PATH}", params={"recipeid": recipe_id, "id": order_id}, timeout=5
            )
            assert reply.json()["Id"] == order_id
        process.send_signal(signal.SIGTERM)
        _out, err = process.communicate(timeout=10)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    assert process.returncode == 0, err
    assert KEY not in line + err  # the export line with the fake key: tests/testing/test_cli_startup.py
    with pytest.raises(requests.ConnectionError):
        requests.get(f"{base_url}{ORDER_PATH}", timeout=2)


def test_refused_fault_is_a_had_error_reply_and_not_a_default_random_fault(api):
    order_id = api.add_order(statuses="New")["Id"]
    api.inject_faults(order_id, "refused", method="POST")
    body = post_status(api, order_id, "Hold").json()
    assert body["HadError"] is True and body["ErrorReferenceCode"]
    assert api.item_statuses(order_id) == ["New"]
    assert FaultKind.REFUSED not in ALL_FAULT_KINDS


def test_the_journal_is_served_as_json_without_the_local_routes_or_the_key():
    with GootenApiServer(rate_limit=1.0, rate_burst=1) as api:
        order_id = api.add_order(statuses="New")["Id"]
        key = {"recipeid": api.recipe_id, "partnerBillingKey": api.billing_key}
        base = api.base_url
        requests.post(f"{base}/api/orderstatus", params={**key, "id": order_id, "orderStatusName": "Hold"})
        requests.post(f"{base}/api/orderstatus", params={**key, "id": order_id, "orderStatusName": "Hold"})
        requests.get(f"{base}/admin/orders/{quote(order_id)}", timeout=5)  # local: not in it
        reply = requests.get(f"{base}/admin/journal", timeout=5)

    assert reply.status_code == 200
    entries = reply.json()
    assert [(e["method"], e["order_id"], e["outcome"], e["applied"]) for e in entries] == [
        ("POST", order_id, "updated", True),
        ("POST", order_id, "throttled", False),  # the rate limit does not hold the local routes
    ]
    assert entries[0]["started"] <= entries[0]["finished"] <= entries[1]["started"]
    assert api.billing_key not in reply.text
    as_json = [
        json.loads(json.dumps(dataclasses.asdict(e))) for e in api.journal if e.path == "/api/orderstatus"
    ]
    assert reply.json() == as_json
