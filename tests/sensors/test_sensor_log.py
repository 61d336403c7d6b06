"""What the sensor logs at each poke: the items' statuses, and whether it waits or is done."""

from __future__ import annotations

import logging
import re

from gooten_provider.sensors.gooten import GootenOrderStatusSensor

TARGETS = ["Shipped", "Delivered"]


def poke_log(gooten_api, caplog, capsys, statuses: list[str]) -> str:
    """The sensor's log line of one poke, wherever this Airflow line sends task logs (logging or stdout)."""
    order_id = gooten_api.add_order(statuses=statuses)["Id"]
    sensor = GootenOrderStatusSensor(task_id="wait", order_id=order_id, target_statuses=TARGETS)
    capsys.readouterr()
    with caplog.at_level(logging.INFO):
        sensor.poke({})
    captured = capsys.readouterr()
    logged = "\n".join([caplog.text, captured.out, captured.err])
    # the same line may be both logged and printed (Airflow 3.0)
    (line,) = set(re.findall(rf"Order {re.escape(order_id)} items: .*?\.(?=\s|$)", logged))
    return line.replace(order_id, "<id>")


def test_a_poke_that_waits_names_the_statuses_it_waits_for(gooten_api, caplog, capsys):
    assert poke_log(gooten_api, caplog, capsys, ["New", "Shipped"]) == (
        "Order <id> items: New, Shipped; waiting for Shipped, Delivered."
    )


def test_the_last_poke_says_done_not_waiting(gooten_api, caplog, capsys):
    assert poke_log(gooten_api, caplog, capsys, ["Shipped", "Delivered"]) == (
        "Order <id> items: Shipped, Delivered; done, every item is in Shipped, Delivered."
    )
