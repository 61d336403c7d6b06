"""The item cancellation as the engine's action (``batch/item_cancel.py``): its pure decision and its calls.

A fake API stands in for the client here, since the action only maps a read order to the engine's
decision and hands the write to what it is given; the behaviour over HTTP is held by
``tests/operators/test_item_cancel.py`` and its write-safety suite.
"""

from __future__ import annotations

from typing import Any

import pytest

from gooten_provider.batch.item_cancel import CANCELLED_TARGET, ItemCancellation, decide_item_cancellation
from gooten_provider.batch.records import Outcome
from gooten_provider.exceptions import GootenOrderItemsError
from gooten_provider.order_cancel_decision import plan_item_cancellation

ORDER_ID = "1001-6c0f521e-b041-41ed-931a-f378057214e8"


def order(*statuses: str) -> dict[str, Any]:
    """GET order's shape: a GootenId, and items whose images name their order-item id."""
    items = [
        {"Sku": "S", "Status": status, "Images": [{"OrderItemId": 100101 + index}]}
        for index, status in enumerate(statuses)
    ]
    return {"Id": ORDER_ID, "GootenId": 1001, "Items": items}


class FakeApi:
    def __init__(self, read: dict[str, Any]) -> None:
        self.read = read
        self.sent: list[tuple[int, tuple[int, ...], str | None]] = []

    def get_order(self, order_id: str) -> dict[str, Any]:
        return self.read

    def send_item_cancellation(self, gooten_id: int, item_ids: Any, *, order_id: str | None = None) -> Any:
        self.sent.append((gooten_id, tuple(item_ids), order_id))
        return {"HadError": False}


@pytest.mark.parametrize(
    ("statuses", "outcome"),
    [
        (("Hold", "Hold"), Outcome.UPDATED),
        (("Cancelled", "AddressIssue"), Outcome.UPDATED),
        (("Cancelled", "CancelledRefunded"), Outcome.UNCHANGED),
        (("Hold", "InProduction"), Outcome.INELIGIBLE),
        (("Cancelled", "Shipped"), Outcome.INELIGIBLE),
        (("Test",), Outcome.INELIGIBLE),
    ],
)
def test_the_decision_maps_the_cancellations_to_the_engines_outcomes(statuses, outcome):
    decision = decide_item_cancellation(plan_item_cancellation(ORDER_ID, order(*statuses)))
    assert decision.outcome is outcome
    assert (decision.error is not None) == (outcome is Outcome.INELIGIBLE)
    assert decision.landed == (outcome is Outcome.UNCHANGED)  # a re-read shows the write landed
    assert decision.blocked == (outcome is Outcome.INELIGIBLE)


def test_an_ineligible_order_names_each_blocking_item_and_its_status():
    decision = decide_item_cancellation(
        plan_item_cancellation(ORDER_ID, order("Hold", "InProduction", "Shipped"))
    )
    assert "item(s) 100102 (InProduction), 100103 (Shipped) are in a status" in decision.error
    assert "100101" not in decision.error


def test_the_write_sends_only_the_wanted_items_not_cancelled_yet():
    api = FakeApi(order("Cancelled", "Hold", "New"))
    action = ItemCancellation(api)
    state = action.read(ORDER_ID)
    assert action.statuses(state) == ["Cancelled", "Hold", "New"]
    action.write(ORDER_ID, state)
    assert api.sent == [(1001, (100102, 100103), ORDER_ID)]
    assert (action.target, action.resend_is_safe) == (CANCELLED_TARGET, True)


def test_item_ids_are_looked_up_whatever_the_letter_case_of_the_order_id():
    api = FakeApi(order("Hold", "Hold", "Hold"))
    action = ItemCancellation(api, {ORDER_ID.casefold(): (100103,)})
    state = action.read(ORDER_ID.upper())
    assert action.statuses(state) == ["Hold"]
    action.write(ORDER_ID.upper(), state)
    assert api.sent == [(1001, (100103,), ORDER_ID.upper())]


def test_an_item_id_the_order_does_not_have_fails_the_read():
    with pytest.raises(GootenOrderItemsError, match="has no item\\(s\\) 42"):
        ItemCancellation(FakeApi(order("Hold")), {ORDER_ID: (42,)}).read(ORDER_ID)
