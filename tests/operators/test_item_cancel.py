"""GootenCancelOrderItemsOperator.execute() against the local Gooten API over loopback HTTP.

Each test checks the records against what the server saw (its journal) and the items' statuses: what the
records say happened must be what Gooten did, and no item is ever cancelled twice.
"""

import jinja2
import pytest
from airflow.providers.common.compat.sdk import AirflowException, AirflowFailException, AirflowSkipException

from gooten_provider.operators.gooten import GootenCancelOrderItemsOperator as ReExported
from gooten_provider.operators.item_cancel import GootenCancelOrderItemsOperator
from gooten_provider.operators.order_results import read_order_results
from gooten_provider.testing.order_cancel import cancellation_counts, cancellations
from tests.operators.conftest import point_connection_at


def cancel(ti, **kwargs):
    kwargs.setdefault("task_id", "cancel_items")
    return GootenCancelOrderItemsOperator(**kwargs).execute({"ti": ti})


def ids_of(api, order_id):
    return [item["Images"][0]["OrderItemId"] for item in api.order(order_id)["Items"]]


def requests_made(api, order_id=None):
    return [f"{e.method} {e.outcome}" for e in api.journal if order_id is None or e.order_id == order_id]


def test_the_operator_is_importable_from_the_status_operators_module():
    assert ReExported is GootenCancelOrderItemsOperator


def test_every_item_of_a_held_order_is_cancelled(api, ti):
    order = api.add_order(statuses=["Hold", "Hold"])
    (record,) = cancel(ti, order_ids=order["Id"], reason="fraud")
    assert record == {
        "order_id": order["Id"],
        "outcome": "updated",
        "previous_statuses": ["Hold", "Hold"],
        "status": "Cancelled",
        "error": None,
        "reason": "fraud",
    }
    assert api.item_statuses(order["Id"]) == ["Cancelled", "Cancelled"]
    assert requests_made(api, order["Id"]) == ["GET read", "PUT cancelled"]
    assert cancellation_counts(api.journal) == dict.fromkeys(ids_of(api, order["Id"]), 1)


def test_a_partly_cancelled_order_gets_only_the_rest_cancelled(api, ti):
    order = api.add_order(statuses=["Cancelled", "Hold", "AddressIssue"])
    first, second, third = ids_of(api, order["Id"])
    (record,) = cancel(ti, order_ids=[order["Id"]])
    assert record["outcome"] == "updated"
    assert record["previous_statuses"] == ["Cancelled", "Hold", "AddressIssue"]
    assert [e.cancelled_items for e in cancellations(api.journal)] == [(second, third)]
    assert first not in cancellation_counts(api.journal)
    assert api.item_statuses(order["Id"]) == ["Cancelled"] * 3


def test_a_batch_mixing_every_outcome(api, ti):
    held = api.add_order(statuses="Hold")["Id"]
    done = api.add_order(statuses=["Cancelled", "CancelledRefunded"])["Id"]
    produced = api.add_order(statuses=["Hold", "InProduction"])["Id"]
    unknown = "999-00000000-0000-0000-0000-000000000000"
    with pytest.raises(
        AirflowException, match=f"(?s)1 of 4 Gooten order.*have their items cancelled.*{unknown}"
    ):
        cancel(ti, order_ids=[held, done, produced, unknown], max_workers=2)
    records = {r["order_id"]: r for r in ti.xcoms["return_value"]}
    assert {k: r["outcome"] for k, r in records.items()} == {
        held: "updated",
        done: "unchanged",
        produced: "ineligible",
        unknown: "failed",
    }
    assert records[done]["error"] is None
    # the reason names the items and their statuses, and what Gooten allows
    _, blocking = ids_of(api, produced)
    assert (
        f"item(s) {blocking} (InProduction) are in a status Gooten allows no item cancellation"
        in (records[produced]["error"])
    )
    assert "Hold" in records[produced]["error"].split("only from")[1]
    assert [e.order_id for e in cancellations(api.journal)] == [held]  # ineligible: refused before a write
    assert api.item_statuses(produced) == ["Hold", "InProduction"]


def test_ineligible_orders_alone_fail_the_task_without_retries_with_fail_on_ineligible(api, ti):
    order_id = api.add_order(statuses="Shipped")["Id"]
    (record,) = cancel(ti, order_ids=[order_id])  # ineligible is not a failure by default
    assert record["outcome"] == "ineligible"
    with pytest.raises(AirflowFailException, match="could not have their items cancelled"):
        cancel(ti, order_ids=[order_id], fail_on_ineligible=True)
    assert cancellations(api.journal) == []


def test_named_items_alone_are_cancelled_and_every_item_with_none(api, ti):
    some = api.add_order(statuses=["Hold", "InProduction", "Hold"])["Id"]
    every = api.add_order(statuses=["New", "Pending"])["Id"]
    first, _, third = ids_of(api, some)
    records = cancel(ti, order_ids=[some, every], item_ids={some.upper(): [str(third)], every: None})
    assert [r["outcome"] for r in records] == ["updated", "updated"]
    assert records[0]["previous_statuses"] == ["Hold"]  # the wanted items' statuses
    assert api.item_statuses(some) == ["Hold", "InProduction", "Cancelled"]
    assert api.item_statuses(every) == ["Cancelled", "Cancelled"]
    assert cancellation_counts(api.journal) == dict.fromkeys([third, *ids_of(api, every)], 1)
    assert first not in cancellation_counts(api.journal)


@pytest.mark.parametrize(
    "template", ["{{ params.item_ids | tojson }}", "{{ params.item_ids }}"], ids=["json", "dict-literal"]
)
def test_item_ids_rendered_as_text_are_read(api, ti, template):
    order_id = api.add_order(statuses=["Hold", "Hold"])["Id"]
    first, _ = ids_of(api, order_id)
    operator = GootenCancelOrderItemsOperator(task_id="cancel_items", order_ids=order_id, item_ids=template)
    context = {"params": {"item_ids": {order_id: [first]}}}
    operator.render_template_fields(context, jinja_env=jinja2.Environment())
    assert isinstance(operator.item_ids, str)  # text, as a DAG without native rendering gives it
    operator.execute({"ti": ti})
    assert api.item_statuses(order_id) == ["Cancelled", "Hold"]


def test_an_item_id_the_order_does_not_have_fails_that_order_listing_its_ids(api, ti):
    order_id = api.add_order(statuses=["Hold", "Hold"])["Id"]
    first, second = ids_of(api, order_id)
    with pytest.raises(AirflowException, match="1 of 1"):
        cancel(ti, order_ids=order_id, item_ids={order_id: [first, 42]})
    (record,) = ti.xcoms["return_value"]
    assert record["outcome"] == "failed"
    assert f"has no item(s) 42; its order-item ids are {first}, {second}" in record["error"]
    assert requests_made(api, order_id) == ["GET read"]  # besides the credentials check, no write


@pytest.mark.parametrize(
    ("item_ids", "message"),
    [
        ({"{other}": [1]}, "item_ids names order\\(s\\) not in order_ids: {other}"),
        ({"{first}": [1]}, "item_ids has no entry for order\\(s\\) {second}"),
        ({"{first}": [], "{second}": None}, "item_ids of order {first}: item_ids is empty"),
        ({"{first}": [0], "{second}": None}, "item_ids of order {first}: Invalid order-item id"),
        ({"{first}": "200101", "{second}": None}, "item_ids of order {first}: item_ids must be a list"),
        ({"{first}": None, "{first_upper}": None, "{second}": None}, "names order .* twice"),
        ([1, 2], "item_ids must map each order id"),
        ("not json", "is neither a JSON object nor a dict literal"),
    ],
)
def test_a_bad_item_ids_mapping_is_refused_before_any_request(api, ti, item_ids, message):
    first, second = api.add_order(statuses="Hold")["Id"], api.add_order(statuses="Hold")["Id"]
    other = "7-00000000-0000-0000-0000-000000000007"
    names = {"first": first, "second": second, "other": other, "first_upper": first.upper()}
    if isinstance(item_ids, dict):
        item_ids = {key.format(**names): value for key, value in item_ids.items()}
    operator = GootenCancelOrderItemsOperator(
        task_id="cancel_items", order_ids=[first, second], item_ids="{{ params.item_ids }}"
    )
    operator.item_ids = item_ids  # as rendered: the check at run time, before any request
    with pytest.raises(ValueError, match=message.format(**names)):
        operator.execute({"ti": ti})
    assert api.journal == []


def test_a_literal_bad_mapping_fails_when_the_dag_is_parsed():
    with pytest.raises(ValueError, match="cancel_items: item_ids of order 1-a: item_ids is empty"):
        GootenCancelOrderItemsOperator(task_id="cancel_items", order_ids=["1-a"], item_ids={"1-a": []})


def test_a_dry_run_reads_and_says_what_would_happen_without_cancelling(api, ti):
    held = api.add_order(statuses="Hold")["Id"]
    produced = api.add_order(statuses="InProduction")["Id"]
    records = cancel(ti, order_ids=[held, produced], dry_run="true")
    assert [(r["outcome"], r["dry_run_outcome"]) for r in records] == [
        ("dry_run", "updated"),
        ("dry_run", "ineligible"),
    ]
    assert "InProduction" in records[1]["error"]
    assert cancellations(api.journal) == []
    assert api.item_statuses(held) == ["Hold"]


def test_no_order_ids_skips_the_task(api, ti):
    with pytest.raises(AirflowSkipException):
        cancel(ti, order_ids=[])
    assert api.journal == []


def test_a_second_run_finds_the_items_cancelled_and_sends_nothing(api, ti):
    ids = [api.add_order(statuses=["Hold", "New"])["Id"] for _ in range(5)]
    assert {r["outcome"] for r in cancel(ti, order_ids=ids, max_workers=3)} == {"updated"}
    api.clear_journal()
    assert {r["outcome"] for r in cancel(ti, order_ids=ids, max_workers=3)} == {"unchanged"}
    assert cancellations(api.journal) == []


def test_results_path_keeps_the_records_and_a_retry_resumes_without_touching_done_orders(api, ti, tmp_path):
    ids = [api.add_order(statuses="Hold")["Id"] for _ in range(4)]
    missing = "999-00000000-0000-0000-0000-000000000000"
    results = tmp_path.as_uri()
    with pytest.raises(AirflowException, match="1 of 5"):
        cancel(ti, order_ids=[*ids, missing], results_path=results)
    summary = ti.xcoms["return_value"]
    assert summary["counts"]["updated"] == 4 and summary["counts"]["failed"] == 1
    api.clear_journal()
    api.add_order(missing, statuses="Hold")  # the failed order is there now: the retry resumes
    retry = type(ti)()
    retry.try_number = 2
    summary = cancel(retry, order_ids=[*ids, missing], results_path=results)
    assert summary["counts"]["updated"] == 5
    assert {e.order_id for e in api.journal if e.order_id} == {missing}  # done orders neither read nor sent
    assert {r["outcome"] for r in read_order_results(summary)} == {"updated"}
    assert max(cancellation_counts(api.journal).values()) == 1


def test_the_task_log_says_what_is_done_and_names_each_failure(api, ti, capsys):
    held = api.add_order(statuses="Hold")["Id"]
    shipped = api.add_order(statuses="Shipped")["Id"]
    capsys.readouterr()
    cancel(ti, order_ids=[held, shipped], reason="duplicate")
    logged = capsys.readouterr().out  # task logs go through structlog to stdout
    assert "Changing 2 order(s): cancelling items" in logged
    assert "reason: duplicate" in logged
    assert f"{held}: Hold -> Cancelled" in logged
    assert shipped in logged and "(Shipped) are in a status Gooten allows no item cancellation" in logged


def test_throttling_is_waited_out_and_every_item_is_cancelled_once(api, ti, monkeypatch):
    point_connection_at(api, monkeypatch, throttle_timeout=30)
    ids = [api.add_order(statuses="Hold")["Id"] for _ in range(12)]
    api.set_rate_limit(20, 2)
    records = cancel(ti, order_ids=ids, max_workers=4)
    assert {r["outcome"] for r in records} == {"updated"}
    assert any(e.throttled for e in api.journal)  # the limit was hit, and waited out
    assert set(cancellation_counts(api.journal).values()) == {1}
