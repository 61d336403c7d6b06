"""The deferrable sensor through a real triggerer: `gooten_wait_for_release` in the `make airflow` stack.

No browser: the run is triggered and followed through Airflow's REST API, and Gooten is played through the
local API's admin route. Runs with the browser tests (``make test-ui``, ``GOOTEN_UI_TESTS=1``).
"""

from __future__ import annotations

import time
from urllib.parse import quote

import requests

from .conftest import RUN_TIMEOUT, AirflowStack, demo_order_id

DAG_ID = "gooten_wait_for_release"


def move(stack: AirflowStack, order_id: str, status: str) -> None:
    """Move every item of an order in the local API, as Gooten (support, production) would."""
    moved = requests.post(
        f"{stack.gooten_api_url}/admin/orders/{quote(order_id, safe='')}/status",
        params={"status": status},
        timeout=30,
    )
    assert moved.status_code == 200, moved.text


def sensor_state(stack: AirflowStack, run_id: str) -> str | None:
    path = f"/api/v2/dags/{DAG_ID}/dagRuns/{quote(run_id, safe='')}/taskInstances/wait_for_release"
    reply = stack.api("GET", path)
    return reply.json().get("state") if reply.status_code == 200 else None


def test_a_held_order_released_while_the_sensor_waits_in_the_triggerer(airflow_stack: AirflowStack) -> None:
    stack = airflow_stack
    stack.wait_for_dag(DAG_ID)
    order_id = demo_order_id("repeat-order")  # New, no rule hits it; no other test moves it
    move(stack, order_id, "Hold")

    reply = stack.api(
        "POST",
        f"/api/v2/dags/{DAG_ID}/dagRuns",
        json={"logical_date": None, "conf": {"order_ids": [order_id]}},
    )
    assert reply.status_code == 200, reply.text
    run_id = reply.json()["dag_run_id"]

    deadline = time.monotonic() + RUN_TIMEOUT
    while (state := sensor_state(stack, run_id)) != "deferred":
        assert state not in ("success", "failed", "up_for_retry"), f"sensor {state} before deferring"
        assert time.monotonic() < deadline, f"sensor never deferred (last {state})\n{stack.log_tails()}"
        time.sleep(0.5)

    # Released by Gooten support after a poll or two in the triggerer. (Released at once, the trigger fires
    # about a poke interval after deferring; on a loaded machine Airflow 3.3's scheduler can then handle
    # the deferring process's exit after the re-queued task and fail it: "finished with state success, but
    # the task instance's state attribute is queued", an Airflow race, not the provider's.)
    time.sleep(2 * 5 + 1)  # make airflow polls every 5 s (GOOTEN_RELEASE_POKE_INTERVAL)
    assert sensor_state(stack, run_id) == "deferred"
    move(stack, order_id, "New")
    run = stack.wait_for_run(DAG_ID, run_id)
    assert run["state"] == "success", stack.log_tails()
    xcom = stack.api(
        "GET",
        f"/api/v2/dags/{DAG_ID}/dagRuns/{quote(run_id, safe='')}/taskInstances/wait_for_release/xcomEntries/"
        "return_value",
    )
    assert xcom.status_code == 200, xcom.text
    assert xcom.json()["value"] == {order_id: ["New"]}
