"""GootenCancelOrderItemsOperator mapped over orders, each task with its own item ids (docs/reference.md)."""

import pendulum
import pytest
from airflow.sdk import DAG

from gooten_provider.operators.item_cancel import GootenCancelOrderItemsOperator
from tests.integration.dag_runs import run_dag, task_states

pytestmark = pytest.mark.usefixtures("airflow_db")


def test_expand_kwargs_gives_each_mapped_task_its_own_orders_and_item_ids(api):
    a = api.add_order(statuses=["Hold", "Hold"])["Id"]
    b = api.add_order(statuses=["Hold"])["Id"]
    first = api.order(a)["Items"][0]["Images"][0]["OrderItemId"]
    with DAG("cancel_mapped", schedule=None, start_date=pendulum.datetime(2026, 1, 1, tz="UTC")) as dag:
        GootenCancelOrderItemsOperator.partial(task_id="cancel").expand_kwargs(
            [{"order_ids": [a], "item_ids": {a: [first]}}, {"order_ids": [b], "item_ids": None}]
        )
    run = run_dag(dag)
    assert set(task_states(run).values()) == {"success"}
    assert api.item_statuses(a) == ["Cancelled", "Hold"]
    assert api.item_statuses(b) == ["Cancelled"]
