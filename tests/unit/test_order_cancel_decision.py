"""The pure steps of an item cancellation: ids given, the decision from a read order, the landed-check."""

from __future__ import annotations

from typing import Any

import pytest

from gooten_provider.client.core import RequestCore
from gooten_provider.client.order_cancel import ORDER_CANCEL_PATH, order_cancel_request
from gooten_provider.client.settings import ClientSettings
from gooten_provider.exceptions import GootenApiError, GootenItemsNotCancellableError, GootenOrderItemsError
from gooten_provider.order_cancel_decision import (
    CancelDecision,
    OrderItem,
    items_cancelled,
    plan_item_cancellation,
    uncancelled_items,
)
from gooten_provider.order_items import name_ids, normalize_item_ids
from gooten_provider.statuses import ITEM_CANCELLABLE_FROM_STATUSES, KNOWN_STATUSES

SAFE_ID = "520718-b5c97bb2-934d-48aa-9ad2-a565154b5cd4"


def order(*statuses: str, gooten_id: object = 520718) -> dict[str, Any]:
    """An order as GET order returns it: item ``n`` (from 1) has the OrderItemId ``9000 + n``."""
    items = [
        {"Sku": f"SKU-{n}", "Status": status, "Images": [{"OrderItemId": 9000 + n, "SourceUrl": "x"}]}
        for n, status in enumerate(statuses, start=1)
    ]
    return {"Id": SAFE_ID, "GootenId": gooten_id, "Items": items}


def test_every_item_of_a_held_order_is_sent_when_none_is_named():
    plan = plan_item_cancellation(SAFE_ID, order("Hold", "Hold", "Hold"))
    assert plan.gooten_id == 520718
    assert plan.items == (OrderItem(9001, "Hold"), OrderItem(9002, "Hold"), OrderItem(9003, "Hold"))
    assert plan.decision is CancelDecision.CANCEL
    assert plan.to_send == (9001, 9002, 9003)
    assert plan.already_cancelled == ()
    assert plan.require_eligible() is plan


def test_a_partly_cancelled_order_sends_only_the_rest():
    plan = plan_item_cancellation(SAFE_ID, order("Cancelled", "Hold", "Canceled", "New", "CancelledRefunded"))
    assert plan.already_cancelled == (9001, 9003, 9005)  # Gooten's other spelling read as Cancelled
    assert plan.to_send == (9002, 9004)
    assert plan.decision is CancelDecision.CANCEL


def test_an_order_whose_wanted_items_are_all_cancelled_is_unchanged():
    plan = plan_item_cancellation(SAFE_ID, order("Cancelled", "InProduction"), [9001])
    assert plan.decision is CancelDecision.UNCHANGED
    assert plan.to_send == ()
    assert plan.ineligible_message() == ""


def test_only_the_named_items_are_decided_in_the_order_named_and_each_once():
    plan = plan_item_cancellation(SAFE_ID, order("New", "Shipped", "Pending"), ["9003", 9001, 9003])
    assert [item.item_id for item in plan.items] == [9003, 9001]
    assert plan.to_send == (9003, 9001)  # the shipped item, not named, does not block the others


@pytest.mark.parametrize("status", sorted(ITEM_CANCELLABLE_FROM_STATUSES | {"ReadyForImageDI"}))
def test_every_status_gooten_allows_is_sent(status):
    assert plan_item_cancellation(SAFE_ID, order(status)).to_send == (9001,)


@pytest.mark.parametrize(
    "status",
    [*sorted(KNOWN_STATUSES - ITEM_CANCELLABLE_FROM_STATUSES - {"Cancelled", "CancelledRefunded"}), "Later"],
)
def test_an_item_in_any_other_status_makes_the_order_ineligible_and_nothing_is_sent(status):
    plan = plan_item_cancellation(SAFE_ID, order("Hold", status, "Cancelled"))
    assert plan.decision is CancelDecision.INELIGIBLE
    assert plan.to_send == ()  # not even the held item: one order, one outcome
    assert plan.ineligible == (OrderItem(9002, status),)
    with pytest.raises(GootenItemsNotCancellableError) as info:
        plan.require_eligible()
    assert str(info.value) == (
        f"Cannot cancel: order {SAFE_ID}: item(s) 9002 ({status}) are in a status Gooten allows no item "
        "cancellation from; it allows one only from AccountingIssue, AddressIssue, Hold, HoldByCIImageIssue, "
        "ImageIssue, NeedsManualApproval, NeedsPersonalization, New, Pending, ReadyForAccounting, "
        "ReadyForImageDl. Nothing was sent."
    )


def test_unknown_item_ids_are_named_with_the_orders_ids():
    with pytest.raises(GootenOrderItemsError) as info:
        plan_item_cancellation(SAFE_ID, order("Hold", "Hold"), [9002, 77, 78])
    assert str(info.value) == (
        f"Order {SAFE_ID} has no item(s) 77, 78; its order-item ids are 9001, 9002. Nothing was cancelled."
    )
    assert isinstance(info.value, ValueError)  # a wrong argument, which trying again cannot mend


@pytest.mark.parametrize(
    ("item_ids", "complaint"),
    [
        ("9001", "item_ids must be a list of order-item ids"),
        (b"9001", "item_ids must be a list of order-item ids"),
        ({"9001": 1}, "item_ids must be a list of order-item ids"),
        (9001, "item_ids must be a list of order-item ids"),
        ([], "item_ids is empty"),
        ([True], "Invalid order-item id(s) True"),
        ([0, -3], "Invalid order-item id(s) 0, -3"),
        ([1.0, "x", "²", " ", None], "Invalid order-item id(s) 1.0, 'x', '²', ' ', None"),
    ],
)
def test_item_ids_that_are_not_ids_are_refused(item_ids, complaint):
    with pytest.raises(ValueError, match=r"^" + complaint.replace("(", r"\(").replace(")", r"\)")):
        normalize_item_ids(item_ids)


def test_item_ids_given_as_digits_are_read_as_numbers():
    assert normalize_item_ids([" 12 ", 12, "7"]) == (12, 7)
    assert normalize_item_ids(iter([3])) == (3,)
    assert normalize_item_ids(None) is None


@pytest.mark.parametrize("gooten_id", [None, "", "abc", 0, True, 1.5, "-4"])
def test_an_order_without_a_usable_gooten_id_cannot_be_cancelled(gooten_id):
    with pytest.raises(GootenApiError, match="has no GootenId"):
        plan_item_cancellation(SAFE_ID, order("Hold", gooten_id=gooten_id))


def test_a_gooten_id_given_as_digits_is_read():
    assert plan_item_cancellation(SAFE_ID, order("Hold", gooten_id="520718")).gooten_id == 520718


def test_an_item_without_one_order_item_id_cannot_be_named():
    no_images = order("Hold", "Hold")
    no_images["Items"][1]["Images"] = []
    with pytest.raises(GootenApiError, match=r"item 2 \(Sku 'SKU-2'\) has no single OrderItemId .*\(none\)"):
        plan_item_cancellation(SAFE_ID, no_images)
    two_ids = order("Hold")
    two_ids["Items"][0]["Images"].append({"OrderItemId": 12})
    with pytest.raises(GootenApiError, match=r"\(several \(12, 9001\)\)"):
        plan_item_cancellation(SAFE_ID, two_ids)
    shared = order("Hold", "Hold")
    shared["Items"][1]["Images"][0]["OrderItemId"] = 9001
    with pytest.raises(GootenApiError, match="several items have the OrderItemId 9001"):
        plan_item_cancellation(SAFE_ID, shared)
    same_id_twice = order("Hold")
    same_id_twice["Items"][0]["Images"].append({"OrderItemId": "9001"})
    assert plan_item_cancellation(SAFE_ID, same_id_twice).to_send == (9001,)


def test_an_order_without_items_cannot_be_cancelled():
    with pytest.raises(GootenApiError, match="has no items to cancel"):
        plan_item_cancellation(SAFE_ID, {"GootenId": 5, "Items": []})


def test_the_landed_check_tells_whether_the_wanted_items_are_now_cancelled():
    before = order("Hold", "Hold", "New")
    assert not items_cancelled(SAFE_ID, before, [9001, 9002])
    partly = order("Cancelled", "Hold", "New")
    assert uncancelled_items(SAFE_ID, partly, [9001, 9002]) == (OrderItem(9002, "Hold"),)
    landed = order("Cancelled", "Canceled", "New")
    assert items_cancelled(SAFE_ID, landed, [9001, 9002])  # the item not wanted stays as it is
    assert not items_cancelled(SAFE_ID, landed, [9001, 9002, 9003])
    with pytest.raises(GootenOrderItemsError):
        items_cancelled(SAFE_ID, landed, [4])


def test_long_id_lists_are_cut_in_messages():
    assert name_ids(range(1, 4)) == "1, 2, 3"
    assert name_ids(range(1, 26)) == "1, 2, 3, 4, 5, 6, 7, 8, 9, 10 and 15 more"


def test_the_request_puts_the_ids_in_the_body_and_the_gooten_id_in_the_query():
    core = RequestCore(ClientSettings("recipe", "k+y/=", base_url="http://127.0.0.1:1"))
    request = order_cancel_request(core, 520718, [9001, 9002], order_id=SAFE_ID)
    assert (request.method, request.path, request.body) == ("PUT", ORDER_CANCEL_PATH, {"Ids": [9001, 9002]})
    assert request.query == {"recipeid": "recipe", "orderId": 520718, "partnerBillingKey": "k+y/="}
    assert request.is_write
    assert (
        request.action == f"PUT /api/orderCancel (order {SAFE_ID}, GootenId 520718: cancel items 9001, 9002)"
    )
    assert "k+y" not in repr(request)


@pytest.mark.parametrize(
    ("gooten_id", "item_ids", "complaint"),
    [
        (0, [1], "Invalid GootenId 0"),
        (True, [1], "Invalid GootenId True"),
        ("520718", [1], "Invalid GootenId '520718'"),
        (520718, None, "item_ids must list the order-item ids to cancel"),
        (520718, [], "item_ids is empty"),
    ],
)
def test_a_request_with_no_gooten_id_or_no_items_is_never_built(gooten_id, item_ids, complaint):
    core = RequestCore(ClientSettings("recipe", "key", base_url="http://127.0.0.1:1"))
    with pytest.raises(ValueError, match=complaint):
        order_cancel_request(core, gooten_id, item_ids)
