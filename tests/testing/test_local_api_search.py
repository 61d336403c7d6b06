"""The local Gooten API's order search as an export pages it, its orders over days, and lost webhooks."""

from __future__ import annotations

import datetime as dt
from collections import Counter

import pytest
import requests

from gooten_provider.testing import DEFAULT_BILLING_KEY, DEFAULT_RECIPE_ID, GootenApiServer

from .test_local_api_webhooks import Receiver, receiver  # noqa: F401 - the fixture

FIRST_DAY = dt.date(2025, 3, 1)


def search(api: GootenApiServer, **params: object) -> requests.Response:
    query = {"recipeid": DEFAULT_RECIPE_ID, "partnerBillingKey": DEFAULT_BILLING_KEY, **params}
    return requests.get(f"{api.base_url}/api/ordersearch", params=query, timeout=5)


@pytest.fixture
def api():
    with GootenApiServer() as server:
        yield server


def test_orders_over_days_are_spread_realistic_and_reproducible(api):
    ids = api.add_orders_over_days(600, FIRST_DAY, 3, seed=4)
    orders = [api.order(i) for i in ids]

    days = Counter(order["CreatedAt"][:10] for order in orders)
    assert set(days) == {"2025-03-01", "2025-03-02", "2025-03-03"} and min(days.values()) > 150
    assert [o["CreatedAt"] for o in orders] == sorted(o["CreatedAt"] for o in orders)
    assert [o["GootenId"] for o in orders] == sorted({o["GootenId"] for o in orders})
    assert all(o["Id"].startswith(f"{o['GootenId']}-") for o in orders)
    assert {item["Sku"] for o in orders for item in o["Items"]} >= {"Mug-11oz-White", "Poster-18x24-Matte"}
    assert {len(o["Items"]) for o in orders} == {1, 2, 3}
    statuses = Counter(o["Items"][0]["Status"] for o in orders)
    assert statuses.most_common(1)[0][0] == "Shipped" and len(statuses) >= 8
    shipped = [item for o in orders for item in o["Items"] if item["Status"] == "Shipped"]
    assert all(item["TrackingNumber"] and item["Shipments"] for item in shipped)
    assert len({o["ShippingAddress"]["Email"] for o in orders}) == 600
    with GootenApiServer() as again:
        same = [again.order(i) for i in again.add_orders_over_days(600, FIRST_DAY, 3, seed=4)]
    assert [(o["CreatedAt"], o["Items"][0]["Sku"]) for o in same] == [
        (o["CreatedAt"], o["Items"][0]["Sku"]) for o in orders
    ]


def test_search_pages_a_date_window_with_gooten_ids_and_journals_each_page(api):
    ids = api.add_orders_over_days(450, FIRST_DAY, 3, seed=4)
    in_window = [i for i in ids if api.order(i)["CreatedAt"][:10] == "2025-03-02"]

    pages = [
        search(api, startDate="2025-03-02", endDate="2025-03-02", pageSize=100, page=page).json()
        for page in range(1, 4)
    ]

    assert [o["Id"] for page in pages for o in page["Orders"]] == in_window[:300]
    assert {page["TotalPages"] for page in pages} == {-(-len(in_window) // 100)}
    assert all("GootenId" in o for page in pages for o in page["Orders"])
    assert [entry.page for entry in api.journal] == [1, 2, 3]
    assert search(api, pageSize=0).json()["Errors"][0]["PropertyName"] == "pageSize"


def test_search_faults_are_queued_per_page(api):
    api.add_orders(30)
    api.inject_search_faults(2, "503")

    answers = [search(api, pageSize=10, page=page).status_code for page in (1, 2, 2, 3)]

    assert answers == [200, 503, 200, 200]
    assert [(entry.page, entry.fault) for entry in api.journal] == [
        (1, None),
        (2, "503"),
        (2, None),
        (3, None),
    ]


def test_webhook_drop_rate_loses_webhooks_and_records_which(receiver):  # noqa: F811
    with GootenApiServer(webhook_url=receiver.url, webhook_drop_rate=0.5, seed=3) as api:
        ids = [api.add_order(statuses="New")["Id"] for _ in range(40)]
        for order_id in ids:
            api.set_item_statuses(order_id, "Shipped")
        assert api.webhooks is not None and api.webhooks.wait_idle(30)
        deliveries = api.webhooks.deliveries

    dropped = {d.order_id for d in deliveries if d.dropped}
    delivered = {d.order_id for d in deliveries if d.delivered}
    assert 8 <= len(dropped) <= 32 and dropped.isdisjoint(delivered) and dropped | delivered == set(ids)
    assert {order_id for _, order_id, _ in receiver.received} == delivered
    assert all(d.attempts == 0 and not d.delivered for d in deliveries if d.dropped)


def test_webhook_drop_rate_needs_a_webhook_url_and_a_probability(receiver):  # noqa: F811
    with pytest.raises(ValueError, match="webhook_drop_rate needs a webhook_url"):
        GootenApiServer(webhook_drop_rate=0.1)
    with pytest.raises(ValueError, match="between 0 and 1"):
        GootenApiServer(webhook_url=receiver.url, webhook_drop_rate=1.5)


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--webhook-drop-rate", "0.1"], "webhook_drop_rate needs a webhook_url"),
        (["--webhook-url-env", "HOOK", "--webhook-drop-rate", "1.5"], "between 0 and 1, got 1.5"),
    ],
)
def test_the_command_line_refuses_a_bad_webhook_drop_rate(argv, message, capsys, monkeypatch):
    from gooten_provider.testing.__main__ import main

    monkeypatch.setenv("HOOK", "http://127.0.0.1:9/gooten/webhook/token?orderid=")
    assert main(["--port", "0", *argv]) == 2
    assert message in capsys.readouterr().err
