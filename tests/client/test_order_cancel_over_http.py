"""``cancel_order_items`` of both clients and the hook, over loopback HTTP against the local Gooten API.

Each case runs on the sync client, the async client and the hook, and checks what reached the server
(the journal): one read, then at most one ``PUT /api/orderCancel``, never re-sent once it may have landed.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from gooten_provider.async_client import AsyncGootenClient
from gooten_provider.client import GootenClient
from gooten_provider.exceptions import (
    GootenApiError,
    GootenItemsNotCancellableError,
    GootenOrderItemsError,
    GootenOutcomeUnknownError,
)
from gooten_provider.hooks.gooten import GootenHook
from gooten_provider.order_cancel_decision import CancelDecision, CancelPlan, items_cancelled
from gooten_provider.testing import GootenApiServer
from gooten_provider.testing.order_cancel import cancellation_counts, cancellations

#: Calls ``cancel_order_items(order_id, item_ids)`` through one of the three surfaces.
Cancel = Callable[[str, Any], CancelPlan]


@pytest.fixture
def api(monkeypatch: pytest.MonkeyPatch) -> Iterator[GootenApiServer]:
    with GootenApiServer(retry_after=0.01, slow_seconds=0.3) as server:
        config = server.connection_config()
        config["extra"] = {"timeout": 5, "max_retries": 3, "backoff_factor": 0.01}
        monkeypatch.setenv("AIRFLOW_CONN_GOOTEN_DEFAULT", json.dumps(config))
        yield server


def _options(api: GootenApiServer) -> dict[str, Any]:
    return {
        "recipe_id": api.recipe_id,
        "billing_key": api.billing_key,
        "base_url": api.base_url,
        "timeout": 5,
        "max_retries": 3,
        "backoff_factor": 0.01,
    }


def _sync(api: GootenApiServer) -> Cancel:
    client = GootenClient(**_options(api))
    return lambda order_id, item_ids=None: client.cancel_order_items(order_id, item_ids)


def _async(api: GootenApiServer) -> Cancel:
    def cancel(order_id: str, item_ids: Any = None) -> CancelPlan:
        async def main() -> CancelPlan:
            async with AsyncGootenClient(**_options(api)) as client:
                return await client.cancel_order_items(order_id, item_ids)

        return asyncio.run(main())

    return cancel


def _hook(api: GootenApiServer) -> Cancel:
    del api  # the connection points at it
    return GootenHook().cancel_order_items


SURFACES = {"sync client": _sync, "async client": _async, "hook": _hook}


@pytest.fixture(params=SURFACES)
def cancel(request: pytest.FixtureRequest, api: GootenApiServer) -> Cancel:
    return SURFACES[request.param](api)


def ids_of(api: GootenApiServer, order_id: str) -> list[int]:
    return [item["Images"][0]["OrderItemId"] for item in api.order(order_id)["Items"]]


def requests_made(api: GootenApiServer) -> list[str]:
    return [f"{entry.method} {entry.outcome}" for entry in api.journal]


def test_every_item_of_a_held_order_is_cancelled_with_one_read_and_one_write(api, cancel):
    order = api.add_order(statuses=["Hold", "Hold"])

    plan = cancel(order["Id"], None)

    assert api.item_statuses(order["Id"]) == ["Cancelled", "Cancelled"]
    assert (plan.gooten_id, plan.to_send, plan.decision) == (
        order["GootenId"],
        tuple(ids_of(api, order["Id"])),
        CancelDecision.CANCEL,
    )
    assert requests_made(api) == ["GET read", "PUT cancelled"]
    assert cancellation_counts(api.journal) == dict.fromkeys(ids_of(api, order["Id"]), 1)
    assert items_cancelled(order["Id"], api.order(order["Id"]), plan.to_send)  # the settle check agrees


def test_a_partly_cancelled_order_gets_only_the_rest_sent(api, cancel):
    order = api.add_order(statuses=["Cancelled", "Hold", "New"])
    first, second, third = ids_of(api, order["Id"])

    plan = cancel(order["Id"], None)

    assert plan.already_cancelled == (first,)
    assert [entry.cancelled_items for entry in cancellations(api.journal)] == [(second, third)]
    assert api.item_statuses(order["Id"]) == ["Cancelled"] * 3


def test_named_items_alone_are_cancelled(api, cancel):
    order = api.add_order(statuses=["Hold", "InProduction", "Hold"])
    first, _, third = ids_of(api, order["Id"])
    cancel(order["Id"], [str(third)])
    assert api.item_statuses(order["Id"]) == ["Hold", "InProduction", "Cancelled"]
    assert cancellation_counts(api.journal) == {third: 1}
    assert first not in cancellation_counts(api.journal)


def test_an_order_already_cancelled_is_read_and_nothing_is_sent(api, cancel):
    order = api.add_order(statuses=["Cancelled", "Canceled"])
    assert cancel(order["Id"], None).decision is CancelDecision.UNCHANGED
    assert requests_made(api) == ["GET read"]


def test_ineligible_items_are_refused_before_any_write(api, cancel):
    order = api.add_order(statuses=["Hold", "InProduction"])
    with pytest.raises(GootenItemsNotCancellableError) as info:
        cancel(order["Id"], None)
    _, produced = ids_of(api, order["Id"])
    assert f"item(s) {produced} (InProduction) are in a status Gooten allows no item cancellation" in str(
        info.value
    )
    assert str(info.value).endswith("Nothing was sent.")
    assert requests_made(api) == ["GET read"]  # the journal shows no write
    assert api.item_statuses(order["Id"]) == ["Hold", "InProduction"]


def test_unknown_item_ids_are_refused_before_any_write_naming_the_orders_ids(api, cancel):
    order = api.add_order(statuses=["Hold", "Hold"])
    first, second = ids_of(api, order["Id"])
    with pytest.raises(GootenOrderItemsError) as info:
        cancel(order["Id"], [first, 42])
    assert str(info.value) == (
        f"Order {order['Id']} has no item(s) 42; its order-item ids are {first}, {second}. "
        "Nothing was cancelled."
    )
    assert requests_made(api) == ["GET read"]


@pytest.mark.parametrize("item_ids", ["100101", [], [0], [True]])
def test_item_ids_that_are_not_ids_are_refused_before_any_request(api, cancel, item_ids):
    order = api.add_order(statuses="Hold")
    with pytest.raises(ValueError):
        cancel(order["Id"], item_ids)
    assert api.journal == []


def test_a_bad_order_id_is_refused_before_any_request(api, cancel):
    with pytest.raises(ValueError, match="Invalid Gooten order id"):
        cancel("  ", None)
    assert api.journal == []


def test_gootens_refusal_in_a_200_body_is_an_error_that_says_why(api, cancel):
    order = api.add_order(statuses="Hold")
    api.inject_faults(order["Id"], "refused", method="PUT")
    with pytest.raises(GootenApiError) as info:
        cancel(order["Id"], None)
    assert type(info.value) is GootenApiError
    [item] = ids_of(api, order["Id"])
    assert str(info.value).startswith(
        f"Gooten refused PUT /api/orderCancel (order {order['Id']}, GootenId {order['GootenId']}: "
        f"cancel items {item}): id: The order could not be updated at this time. (ErrorReferenceCode "
    )
    assert info.value.status_code == 200
    assert requests_made(api) == ["GET read", "PUT refused"]  # not sent again


@pytest.mark.parametrize("surface", ["client", "hook"])
def test_a_cancellation_refused_by_the_route_itself_names_the_item_and_its_status(api, surface):
    order = api.add_order(statuses="Shipped")
    [item] = ids_of(api, order["Id"])
    sender = GootenClient(**_options(api)) if surface == "client" else GootenHook()
    with pytest.raises(GootenApiError) as info:  # no read and no check first: the write step alone
        sender.send_item_cancellation(order["GootenId"], [item])
    assert f"Ids: Order item {item} cannot be cancelled from 'Shipped'." in str(info.value)
    assert str(info.value).startswith(
        f"Gooten refused PUT /api/orderCancel (GootenId {order['GootenId']}: cancel items {item})"
    )
    assert requests_made(api) == ["PUT ineligible"]


@pytest.mark.parametrize("fault", ["lost_response", "late_apply", "500", "503"])
def test_a_write_whose_outcome_is_unknown_is_never_sent_again(api, cancel, fault):
    order = api.add_order(statuses=["Hold", "Hold"])
    api.inject_faults(order["Id"], fault, method="PUT")
    with pytest.raises(GootenOutcomeUnknownError) as info:
        cancel(order["Id"], None)
    assert str(info.value).endswith(
        "the change may or may not have been applied. Read the order to find out before sending it again."
    )
    deadline = time.monotonic() + 5  # a late landing is journaled once applied, slow_seconds later
    while not cancellations(api.journal) and time.monotonic() < deadline:
        time.sleep(0.02)
    assert len(cancellations(api.journal)) == 1
    landed = fault in ("lost_response", "late_apply")
    assert items_cancelled(order["Id"], api.order(order["Id"]), ids_of(api, order["Id"])) is landed
    # settling by cancelling again: read, and nothing sent for items already cancelled
    again = cancel(order["Id"], None)
    assert again.decision is (CancelDecision.UNCHANGED if landed else CancelDecision.CANCEL)
    assert max(cancellation_counts(api.journal).values()) == 1  # each item cancelled at most once


def test_a_429_is_sent_again_paced_and_applied_once(api, cancel):
    order = api.add_order(statuses="Hold")
    api.inject_faults(order["Id"], "429", "429", method="PUT")
    cancel(order["Id"], None)
    assert [e.outcome for e in cancellations(api.journal)] == ["429", "429", "cancelled"]
    assert api.item_statuses(order["Id"]) == ["Cancelled"]


def test_a_read_that_fails_a_while_is_retried_before_the_write(api, cancel):
    order = api.add_order(statuses="Hold")
    api.inject_faults(order["Id"], "500", "reset", method="GET")
    cancel(order["Id"], None)
    assert requests_made(api) == ["GET 500", "GET reset", "GET read", "PUT cancelled"]


def test_both_clients_and_the_hook_give_the_same_errors(api):
    order = api.add_order(statuses=["Hold", "Shipped"])
    messages = set()
    for make in SURFACES.values():
        with pytest.raises(GootenItemsNotCancellableError) as info:
            make(api)(order["Id"], None)
        messages.add(str(info.value))
    assert len(messages) == 1
