"""``PUT /api/orderCancel`` of the local Gooten API, over real HTTP on 127.0.0.1."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest
import requests

from gooten_provider.statuses import ITEM_CANCELLABLE_FROM_STATUSES, KNOWN_STATUSES
from gooten_provider.testing import DEFAULT_BILLING_KEY, DEFAULT_RECIPE_ID, GootenApiServer
from gooten_provider.testing.order_cancel import cancellation_counts, cancellations
from tests.testing.test_local_api_webhooks import Receiver

KEY = DEFAULT_BILLING_KEY


@pytest.fixture
def api() -> Iterator[GootenApiServer]:
    with GootenApiServer(slow_seconds=0.3) as server:
        yield server


def item_ids(api: GootenApiServer, order_id: str) -> list[int]:
    """The order's item ids as GET order shows them (each item's ``Images[].OrderItemId``)."""
    return [item["Images"][0]["OrderItemId"] for item in api.order(order_id)["Items"]]


def put_cancel(
    api: GootenApiServer,
    gooten_id: object,
    body: Any = None,
    *,
    path: str = "/api/orderCancel",
    data: bytes | None = None,
    **params: str,
) -> requests.Response:
    query = {"recipeid": DEFAULT_RECIPE_ID, "partnerBillingKey": KEY, "orderId": gooten_id, **params}
    return requests.put(f"{api.base_url}{path}", params=query, json=body, data=data, timeout=5)


def refusal(reply: requests.Response) -> list[tuple[str, str, str]]:
    body = reply.json()
    assert body["HadError"] is True and body["ErrorReferenceCode"]
    return [(e["PropertyName"], e["ErrorMessage"], e["AttemptedValue"]) for e in body["Errors"]]


def test_the_named_items_of_a_held_order_are_cancelled_and_journaled(api):
    order = api.add_order(statuses=["Hold", "Hold", "Hold"])
    first, second, third = item_ids(api, order["Id"])

    reply = put_cancel(api, order["GootenId"], {"Ids": [first, third]})

    assert (reply.status_code, reply.json()) == (200, {"HadError": False})
    assert api.item_statuses(order["Id"]) == ["Cancelled", "Hold", "Cancelled"]
    [entry] = cancellations(api.journal, order["Id"])  # the GootenId resolved to the Safe ID
    assert (entry.outcome, entry.applied, entry.cancelled_items, entry.key_check) == (
        "cancelled",
        True,
        (first, third),
        "ok",
    )
    assert cancellation_counts(api.journal) == {first: 1, third: 1}
    assert second not in cancellation_counts(api.journal)


def test_get_order_shows_the_gooten_id_and_one_item_id_per_item(api):
    order = api.add_order(statuses=["New", "Hold"])
    read = requests.get(
        f"{api.base_url}/api/v/5/source/api/orders",
        params={"recipeid": DEFAULT_RECIPE_ID, "id": order["Id"]},
        timeout=5,
    ).json()
    assert read["GootenId"] == int(order["Id"].split("-")[0])
    ids = [{image["OrderItemId"] for image in item["Images"]} for item in read["Items"]]
    assert all(len(one) == 1 for one in ids) and len(set.union(*ids)) == 2


@pytest.mark.parametrize("path", ["/api/orderCancel/", "/API/ORDERCANCEL", "/api/ordercancel"])
def test_the_path_is_matched_as_gooten_matches_it(api, path):
    order = api.add_order(statuses="New")
    reply = put_cancel(api, order["GootenId"], {"ids": item_ids(api, order["Id"])}, path=path)
    assert reply.json() == {"HadError": False}
    assert api.item_statuses(order["Id"]) == ["Cancelled"]


@pytest.mark.parametrize("status", sorted(ITEM_CANCELLABLE_FROM_STATUSES | {"ReadyForImageDI"}))
def test_every_status_gooten_allows_can_be_cancelled(api, status):
    order = api.add_order(statuses=status)
    assert put_cancel(api, order["GootenId"], {"Ids": item_ids(api, order["Id"])}).json() == {
        "HadError": False
    }
    assert api.item_statuses(order["Id"]) == ["Cancelled"]


@pytest.mark.parametrize("status", sorted(KNOWN_STATUSES - ITEM_CANCELLABLE_FROM_STATUSES))
def test_an_item_in_another_status_refuses_the_whole_request(api, status):
    order = api.add_order(statuses=["Hold", status])
    held, other = item_ids(api, order["Id"])

    reply = put_cancel(api, order["GootenId"], {"Ids": [held, other]})

    assert reply.status_code == 200  # Gooten's refusals come in 200 bodies
    assert refusal(reply) == [("Ids", f"Order item {other} cannot be cancelled from '{status}'.", str(other))]
    assert api.item_statuses(order["Id"]) == ["Hold", status]  # all or nothing: the held item stays
    [entry] = api.journal
    assert (entry.outcome, entry.applied, entry.cancelled_items) == ("ineligible", False, ())


def test_a_cancelled_item_is_never_cancelled_twice(api):
    order = api.add_order(statuses=["New"])
    ids = {"Ids": item_ids(api, order["Id"])}
    assert put_cancel(api, order["GootenId"], ids).json() == {"HadError": False}
    again = put_cancel(api, order["GootenId"], ids)
    assert refusal(again)[0][1] == f"Order item {ids['Ids'][0]} cannot be cancelled from 'Cancelled'."
    assert cancellation_counts(api.journal) == {ids["Ids"][0]: 1}


def test_unknown_item_ids_are_refused_by_name_and_nothing_changes(api):
    order = api.add_order(statuses=["Hold", "Hold"])
    [known, _] = item_ids(api, order["Id"])
    reply = put_cancel(api, order["GootenId"], {"Ids": [known, 5, 6]})
    assert refusal(reply) == [
        ("Ids", f"Order item 5 is not part of order {order['GootenId']}.", "5"),
        ("Ids", f"Order item 6 is not part of order {order['GootenId']}.", "6"),
    ]
    assert api.item_statuses(order["Id"]) == ["Hold", "Hold"]
    assert api.journal[0].outcome == "unknown_item"


def test_the_order_is_named_by_its_numeric_gooten_id_only(api):
    order = api.add_order(statuses="Hold")
    ids = {"Ids": item_ids(api, order["Id"])}
    by_safe_id = put_cancel(api, order["Id"], ids)
    assert refusal(by_safe_id) == [("orderId", "'orderId' must be a number (the GootenId).", order["Id"])]
    unknown = put_cancel(api, 987654, ids)
    assert refusal(unknown) == [("orderId", "Order not found.", "987654")]
    assert api.item_statuses(order["Id"]) == ["Hold"]
    assert [e.outcome for e in api.journal] == ["bad_request", "unknown_order"]
    assert api.journal[1].order_id == "987654"  # no order has it: the journal keeps what was sent


@pytest.mark.parametrize(
    ("body", "data"),
    [
        (None, None),
        (None, b"not json"),
        (None, b"\xff\xfe"),
        ([1, 2], None),
        ({}, None),
        ({"Ids": []}, None),
        ({"Ids": "100101"}, None),
        ({"Ids": [0]}, None),
        ({"Ids": [True]}, None),
        ({"Ids": [1.5]}, None),
    ],
)
def test_a_body_without_item_ids_is_refused(api, body, data):
    order = api.add_order(statuses="Hold")
    reply = put_cancel(api, order["GootenId"], body, data=data)
    [(name, message, _)] = refusal(reply)
    assert (name, message) == ("Ids", "'Ids' must be a non-empty list of order item ids.")
    assert api.item_statuses(order["Id"]) == ["Hold"]


def test_item_ids_sent_as_digits_are_read(api):
    order = api.add_order(statuses="Hold")
    [item] = item_ids(api, order["Id"])
    assert put_cancel(api, order["GootenId"], {"Ids": [str(item)]}).json() == {"HadError": False}


@pytest.mark.parametrize(
    ("key", "check", "message"),
    [
        (None, "missing", "'partnerBillingKey' must not be empty."),
        (KEY[::-1], "mismatch", "Invalid partnerBillingKey."),
        (KEY.replace("+", " "), "mismatch", "Invalid partnerBillingKey."),  # an unencoded "+", decoded
    ],
)
def test_the_billing_key_is_checked_as_for_orderstatus(api, key, check, message):
    order = api.add_order(statuses="Hold")
    query = {"recipeid": DEFAULT_RECIPE_ID, "orderId": order["GootenId"]}
    if key is not None:
        query["partnerBillingKey"] = key
    reply = requests.put(
        f"{api.base_url}/api/orderCancel", params=query, json={"Ids": item_ids(api, order["Id"])}, timeout=5
    )
    assert refusal(reply) == [("partnerBillingKey", message, "")]
    assert api.item_statuses(order["Id"]) == ["Hold"]
    assert [(e.key_check, e.outcome) for e in api.journal] == [(check, "bad_key")]


def test_a_bad_recipe_id_is_refused(api):
    order = api.add_order(statuses="Hold")
    reply = put_cancel(api, order["GootenId"], {"Ids": item_ids(api, order["Id"])}, recipeid="nope")
    assert reply.json() == {"Message": "Invalid recipeId"}
    assert api.item_statuses(order["Id"]) == ["Hold"]


def test_refusals_take_the_configured_error_status():
    with GootenApiServer(error_status=400) as api:
        order = api.add_order(statuses="Shipped")
        reply = put_cancel(api, order["GootenId"], {"Ids": item_ids(api, order["Id"])})
        assert reply.status_code == 400
        assert refusal(reply)[0][0] == "Ids"


def test_only_put_is_the_route(api):
    order = api.add_order(statuses="Hold")
    query = {"recipeid": DEFAULT_RECIPE_ID, "partnerBillingKey": KEY, "orderId": order["GootenId"]}
    for method in ("POST", "GET", "DELETE"):
        reply = requests.request(method, f"{api.base_url}/api/orderCancel", params=query, timeout=5)
        assert reply.status_code == 404 and reply.text.startswith("<!DOCTYPE html>")
    assert api.item_statuses(order["Id"]) == ["Hold"]


# -- faults and throttling apply as they do to orderstatus ---------------------------------------------------


def test_a_lost_answer_is_applied_journaled_and_answered_by_nothing(api):
    order = api.add_order(statuses=["Hold", "Hold"])
    api.inject_faults(order["Id"], "lost_response", method="PUT")
    with pytest.raises(requests.ConnectionError):
        put_cancel(api, order["GootenId"], {"Ids": item_ids(api, order["Id"])})
    assert api.item_statuses(order["Id"]) == ["Cancelled", "Cancelled"]
    [entry] = cancellations(api.journal, order["Id"])
    assert (entry.fault, entry.applied, entry.cancelled_items) == (
        "lost_response",
        True,
        tuple(item_ids(api, order["Id"])),
    )


def test_a_late_landing_applies_after_the_connection_is_gone(api):
    order = api.add_order(statuses="Hold")
    api.inject_faults(order["Id"], "late_apply", method="PUT")
    with pytest.raises(requests.ConnectionError):
        put_cancel(api, order["GootenId"], {"Ids": item_ids(api, order["Id"])})
    assert api.item_statuses(order["Id"]) == ["Hold"]  # not yet: it lands slow_seconds later
    deadline = time.monotonic() + 5
    while api.item_statuses(order["Id"]) != ["Cancelled"] and time.monotonic() < deadline:
        time.sleep(0.02)
    assert api.item_statuses(order["Id"]) == ["Cancelled"]
    assert [(e.fault, e.applied) for e in cancellations(api.journal)] == [("late_apply", True)]


@pytest.mark.parametrize("fault", ["500", "503", "reset", "html", "cut"])
def test_a_fault_that_applies_nothing_cancels_nothing(api, fault):
    order = api.add_order(statuses="Hold")
    api.inject_faults(order["Id"], fault, method="PUT")
    try:
        put_cancel(api, order["GootenId"], {"Ids": item_ids(api, order["Id"])})
    except requests.RequestException:
        pass
    assert api.item_statuses(order["Id"]) == ["Hold"]
    assert [(e.fault, e.applied, e.cancelled_items) for e in cancellations(api.journal)] == [
        (fault, False, ())
    ]


def test_a_fault_queued_for_put_leaves_reads_and_status_changes_alone(api):
    order = api.add_order(statuses="New")
    api.inject_faults(order["Id"], "500", method="PUT")
    read = requests.get(
        f"{api.base_url}/api/v/5/source/api/orders",
        params={"recipeid": DEFAULT_RECIPE_ID, "id": order["Id"]},
        timeout=5,
    )
    assert read.status_code == 200
    assert api.pending_faults(order["Id"]) == 1
    assert put_cancel(api, order["GootenId"], {"Ids": item_ids(api, order["Id"])}).status_code == 500


def test_the_rate_limit_throttles_cancellations_too():
    with GootenApiServer(rate_limit=1, rate_burst=1, retry_after=0.5) as api:
        order = api.add_order(statuses=["Hold", "Hold"])
        first, second = item_ids(api, order["Id"])
        assert put_cancel(api, order["GootenId"], {"Ids": [first]}).json() == {"HadError": False}
        throttled = put_cancel(api, order["GootenId"], {"Ids": [second]})
        assert throttled.status_code == 429 and "Retry-After" in throttled.headers
        assert api.item_statuses(order["Id"]) == ["Cancelled", "Hold"]
        assert [e.outcome for e in cancellations(api.journal)] == ["cancelled", "throttled"]


def test_a_cancellation_sends_one_webhook_per_item_cancelled():
    receiver = Receiver()
    try:
        with GootenApiServer(webhook_url=receiver.url) as api:
            order = api.add_order(statuses=["Hold", "Hold", "Shipped"])
            first, second, _ = item_ids(api, order["Id"])
            assert put_cancel(api, order["GootenId"], {"Ids": [first, second]}).json() == {"HadError": False}
            assert api.webhooks is not None and api.webhooks.wait_idle(10)
    finally:
        receiver.server.shutdown()
    assert [[i["Status"] for i in body["Items"]] for _, _, body in receiver.received] == [
        ["Cancelled", "Cancelled", "Shipped"]
    ] * 2


def test_orders_sharing_a_made_up_gooten_id_are_not_guessed_between(api):
    api.add_order("7-a", statuses="Hold")
    api.add_order("7-b", statuses="Hold")
    reply = put_cancel(api, 7, {"Ids": [701]})
    assert "names 2 orders of the local Gooten API" in refusal(reply)[0][1]
    assert api.item_statuses("7-a") == api.item_statuses("7-b") == ["Hold"]


def test_items_seeded_with_their_own_images_keep_an_item_id_of_their_own(api):
    # the example DAGs' seed gives each item its image URL: Gooten's images still name their item
    order = api.add_order(statuses="Hold", items=[{"Images": [{"SourceUrl": "https://x/a.png"}]}] * 2)
    first, second = item_ids(api, order["Id"])
    assert first != second
    assert api.order(order["Id"])["Items"][0]["Images"][0]["SourceUrl"] == "https://x/a.png"
    assert put_cancel(api, order["GootenId"], {"Ids": [second]}).json() == {"HadError": False}
    assert api.item_statuses(order["Id"]) == ["Hold", "Cancelled"]


def test_an_order_seeded_without_item_ids_cannot_have_its_items_named(api):
    order = api.add_order(statuses="Hold", items=[{"Images": []}])
    reply = put_cancel(api, order["GootenId"], {"Ids": [order["GootenId"] * 100 + 1]})
    assert (
        refusal(reply)[0][1]
        == f"An item of order {order['GootenId']} has no OrderItemId of its own: it cannot be named."
    )
    assert api.item_statuses(order["Id"]) == ["Hold"]


def test_a_slow_answer_comes_after_the_cancellation_was_applied(api):
    order = api.add_order(statuses="Hold")
    api.inject_faults(order["Id"], "slow", method="PUT")
    with pytest.raises(requests.Timeout):  # a client that gives up first does not know it landed
        requests.put(
            f"{api.base_url}/api/orderCancel",
            params={"recipeid": DEFAULT_RECIPE_ID, "partnerBillingKey": KEY, "orderId": order["GootenId"]},
            json={"Ids": item_ids(api, order["Id"])},
            timeout=0.1,
        )
    assert api.item_statuses(order["Id"]) == ["Cancelled"]
