"""GootenOrderStatusSensor over many orders, deferred or not, against the local API (loopback HTTP)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from typing import Any

import pytest
from airflow.providers.common.compat.sdk import (
    AirflowFailException,
    AirflowSensorTimeout,
    AirflowSkipException,
    TaskDeferred,
)

from gooten_provider.client.billing_key import billing_key_forms
from gooten_provider.sensors.gooten import GootenOrderStatusSensor
from gooten_provider.statuses import KNOWN_STATUSES
from gooten_provider.triggers.gooten import GootenOrderStatusTrigger


def sensor(**kwargs: Any) -> GootenOrderStatusSensor:
    kwargs.setdefault("task_id", "wait")
    kwargs.setdefault("target_statuses", ["Shipped", "Delivered"])
    kwargs.setdefault("poke_interval", 5)
    kwargs.setdefault("timeout", 600)
    return GootenOrderStatusSensor(**kwargs)


def reads(api: Any, order_id: str) -> int:
    return len([e for e in api.journal if e.order_id == order_id])


# -- deferrable -------------------------------------------------------------------------------------------


def test_deferrable_pokes_once_then_defers_to_the_trigger_without_credentials(gooten_api):
    done = gooten_api.add_order(statuses="Shipped")["Id"]
    held = gooten_api.add_order(statuses="Hold")["Id"]
    waiting = sensor(order_ids=[done, held], deferrable=True, poke_interval=30, timeout=3600)
    before = time.time()
    with pytest.raises(TaskDeferred) as deferred:
        waiting.execute({})
    trigger = deferred.value.trigger
    assert isinstance(trigger, GootenOrderStatusTrigger)
    assert deferred.value.method_name == "execute_complete"
    classpath, kwargs = trigger.serialize()
    assert classpath == "gooten_provider.triggers.gooten.GootenOrderStatusTrigger"
    assert kwargs["order_ids"] == [done, held]
    assert kwargs["known_statuses"] == {done: ["Shipped"], held: ["Hold"]}
    assert kwargs["target_statuses"] == ["Shipped", "Delivered"]
    assert kwargs["failure_statuses"] == ["Cancelled"]
    assert kwargs["poke_interval"] == 30
    assert before + 3600 <= kwargs["end_time"] <= time.time() + 3600  # absolute, from the first poke
    assert before + 30 <= kwargs["not_before"] <= time.time() + 30  # the next read: one interval later
    assert deferred.value.timeout.total_seconds() > 3600  # Airflow's backstop comes after the trigger's
    text = json.dumps(kwargs)
    assert not any(form in text for form in billing_key_forms(gooten_api.billing_key))
    assert reads(gooten_api, done) == reads(gooten_api, held) == 1


def test_deferrable_returns_at_once_when_the_first_poke_is_done(gooten_api):
    order_id = gooten_api.add_order(statuses=["Shipped", "Delivered"])["Id"]
    assert sensor(order_id=order_id, deferrable=True).execute({}) == {order_id: ["Shipped", "Delivered"]}


@pytest.mark.parametrize("option", ["True", "False"])
def test_deferrable_defaults_to_the_operators_default_deferrable_option(option):
    code = (
        "from gooten_provider.sensors.gooten import GootenOrderStatusSensor as S\n"
        "print(S(task_id='w', order_id='1-a', target_statuses='New').deferrable)\n"
    )
    env = {**os.environ, "AIRFLOW__OPERATORS__DEFAULT_DEFERRABLE": option}
    shown = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert shown.stdout.strip().splitlines()[-1] == option, shown.stderr


def test_execute_complete_turns_each_event_into_the_task_outcome():
    waiting = sensor(order_id="1-a")
    statuses = {"1-a": ["Shipped"]}
    assert (
        waiting.execute_complete({}, {"status": "success", "message": "ok", "statuses": statuses}) == statuses
    )
    with pytest.raises(AirflowFailException, match="reached Cancelled"):
        waiting.execute_complete({}, {"status": "failure", "message": "Gooten order 1-a reached Cancelled"})
    with pytest.raises(AirflowFailException, match="HTTP 404"):
        waiting.execute_complete({}, {"status": "error", "message": "Order 1-a: HTTP 404"})
    with pytest.raises(AirflowSensorTimeout, match="had not reached"):
        waiting.execute_complete({}, {"status": "timeout", "message": "1 of 1 order(s) had not reached"})
    with pytest.raises(AirflowSkipException):
        sensor(order_id="1-a", soft_fail=True).execute_complete({}, {"status": "timeout", "message": "late"})


# -- many orders on the worker ---------------------------------------------------------------------------


def test_many_orders_succeed_with_every_orders_statuses(gooten_api):
    order_ids = gooten_api.add_orders(12, statuses="Delivered")
    result = sensor(order_ids=order_ids).poke({})
    assert result.is_done
    assert result.xcom_value == {order_id: ["Delivered"] for order_id in order_ids}


def test_order_ids_as_text_from_a_template_are_split(gooten_api):
    first, second = gooten_api.add_orders(2, statuses="Shipped")
    assert sensor(order_ids=f"['{first}', '{second}']").poke({}).xcom_value == {
        first: ["Shipped"],
        second: ["Shipped"],
    }


def test_orders_done_are_not_read_again_by_later_pokes(gooten_api):
    done = gooten_api.add_order(statuses="Shipped")["Id"]
    held = gooten_api.add_order(statuses="Hold")["Id"]
    waiting = sensor(order_ids=[done, held])
    assert not waiting.poke({})
    gooten_api.set_item_statuses(held, "Delivered")
    assert waiting.poke({}).xcom_value == {done: ["Shipped"], held: ["Delivered"]}
    assert reads(gooten_api, done) == 1
    assert reads(gooten_api, held) == 2


def test_each_order_that_reached_a_failure_status_is_named(gooten_api):
    fine = gooten_api.add_order(statuses="New")["Id"]
    cancelled = [gooten_api.add_order(statuses="Cancelled")["Id"] for _ in range(2)]
    with pytest.raises(AirflowFailException) as failed:
        sensor(order_ids=[fine, *cancelled]).poke({})
    message = str(failed.value)
    assert all(f"Gooten order {o} reached Cancelled" in message for o in cancelled)
    assert fine not in message


def test_a_transient_5xx_only_leaves_the_order_for_the_next_poke(gooten_api_factory, monkeypatch):
    api = gooten_api_factory()
    order_id = api.add_order(statuses="Shipped")["Id"]
    api.inject_faults(order_id, *["503"] * 4)  # every try of the first poke
    config = api.connection_config()
    config["extra"]["backoff_factor"] = 0.01
    monkeypatch.setenv("AIRFLOW_CONN_GOOTEN_DEFAULT", json.dumps(config))
    waiting = sensor(order_id=order_id)
    assert not waiting.poke({})
    assert waiting.poke({}).xcom_value == {order_id: ["Shipped"]}


def test_a_404_from_a_wrong_base_url_fails_at_once(gooten_api, monkeypatch):
    order_id = gooten_api.add_order(statuses="Hold")["Id"]
    config = gooten_api.connection_config()
    config["host"] = f"{gooten_api.base_url}/wrong"
    monkeypatch.setenv("AIRFLOW_CONN_GOOTEN_DEFAULT", json.dumps(config))
    with pytest.raises(AirflowFailException, match=r"HTTP 404 means no such API path"):
        sensor(order_id=order_id).poke({})
    assert len(gooten_api.journal) == 1


def test_refused_credentials_fail_at_once(gooten_api, monkeypatch):
    order_id = gooten_api.add_order(statuses="Hold")["Id"]
    config = gooten_api.connection_config()
    config["login"] = "not-our-recipe"
    monkeypatch.setenv("AIRFLOW_CONN_GOOTEN_DEFAULT", json.dumps(config))
    with pytest.raises(AirflowFailException, match="Recipe ID"):
        sensor(order_id=order_id).poke({})


def test_an_empty_list_of_orders_skips():
    with pytest.raises(AirflowSkipException, match="nothing to wait for"):
        sensor(order_ids=[]).poke({})


# -- arguments, when the DAG is parsed ---------------------------------------------------------------------


def test_an_unknown_status_fails_listing_the_known_ones():
    with pytest.raises(ValueError, match="'Shiped' is not a Gooten status") as refused:
        sensor(order_id="1-a", target_statuses=["Shiped"])
    assert all(name in str(refused.value) for name in KNOWN_STATUSES)
    assert "allow_unknown_statuses=True" in str(refused.value)


def test_an_unknown_status_is_kept_when_allowed():
    assert sensor(
        order_id="1-a", target_statuses=["Reprinting"], allow_unknown_statuses=True
    ).target_statuses == ("Reprinting",)


def test_waiting_for_cancelled_says_to_pass_failure_statuses():
    with pytest.raises(ValueError, match=r"Cancelled \(given as 'cancelled'\).*pass failure_statuses="):
        sensor(order_id="1-a", target_statuses=["cancelled"])
    assert sensor(order_id="1-a", target_statuses=["cancelled"], failure_statuses=()).target_statuses == (
        "Cancelled",
    )


@pytest.mark.parametrize("kwargs", [{}, {"order_id": "1-a", "order_ids": ["1-a"]}])
def test_exactly_one_of_order_id_and_order_ids(kwargs):
    with pytest.raises(ValueError, match="give the orders to wait for as order_ids"):
        sensor(**kwargs)


def test_max_concurrency_must_be_positive():
    with pytest.raises(ValueError, match="max_concurrency must be a whole number of at least 1"):
        sensor(order_id="1-a", max_concurrency=0)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"order_ids": "{{ params.ids }}"}, r"wait: order_ids: No order ids given \(None\)"),
        ({"order_id": "{{ params.id }}"}, r"wait: order_id: Invalid Gooten order id None"),
    ],
)
def test_a_template_that_rendered_none_names_the_argument(kwargs, message):
    sensor = GootenOrderStatusSensor(task_id="wait", target_statuses="New", **kwargs)
    setattr(sensor, next(iter(kwargs)), None)  # what rendering a missing value natively gives
    with pytest.raises(ValueError, match=message):
        sensor.poke({})
