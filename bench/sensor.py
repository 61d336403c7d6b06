"""One wait over 1,000 held orders: the deferred sensor's trigger against the same wait in reschedule mode.

Deferred, the sensor's trigger (``GootenOrderStatusTrigger``) runs here as the triggerer runs it: in an
event loop, from its kwargs, reading the connection through the async path; it is instrumented per round
(one round per poke interval): requests sent, CPU time of this process (the triggerer's share; the local
API runs in a child process), wall time of the round's reads, and the event loop's worst lag (a 10 ms
heartbeat: how long the loop was kept from other triggers).

In reschedule mode every poke is a task start. Each poke here is a fresh Python process that imports
Airflow and the provider, reads the connection and pokes the sensor once over the same orders, which is
the worker's share of a task start; the scheduler's and the executor's share (queueing, the supervisor,
the task's API calls) comes on top, so these figures are a lower bound.
"""

from __future__ import annotations

import asyncio
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from typing import Any

from bench.api_process import ApiProcess

POKE_SCRIPT = """
import json, os, resource, sys, time
started = time.perf_counter()
from gooten_provider.sensors.gooten import GootenOrderStatusSensor
imported = time.perf_counter()
ids = json.load(open(sys.argv[1]))
sensor = GootenOrderStatusSensor(task_id="wait", order_ids=ids, target_statuses="New", max_concurrency=8)
done = sensor.poke({})
finished = time.perf_counter()
usage = resource.getrusage(resource.RUSAGE_SELF)
print(json.dumps({"import_s": imported - started, "poke_s": finished - imported, "done": bool(done),
                  "cpu_s": usage.ru_utime + usage.ru_stime}))
"""


def _run_trigger(config: dict[str, Any], ids: list[str], poke_interval: float, rounds: int) -> dict[str, Any]:
    """Run the trigger for ``rounds`` poke intervals (then it times out); figures per round."""
    os.environ["AIRFLOW_CONN_GOOTEN_DEFAULT"] = json.dumps(config)
    from gooten_provider.triggers.gooten import GootenOrderStatusTrigger

    per_round: list[dict[str, float]] = []

    class Measured(GootenOrderStatusTrigger):
        async def _read_all(self, client: Any, order_ids: Sequence[str]) -> Any:
            sent, cpu, wall = client.requests_sent, time.process_time(), time.perf_counter()
            result = await super()._read_all(client, order_ids)
            per_round.append(
                {
                    "requests": client.requests_sent - sent,
                    "cpu_s": time.process_time() - cpu,
                    "reads_wall_s": time.perf_counter() - wall,
                }
            )
            return result

    trigger = Measured(
        order_ids=ids,
        target_statuses=["New"],
        failure_statuses=["Cancelled"],
        poke_interval=poke_interval,
        end_time=time.time() + poke_interval * (rounds - 0.5),
        max_concurrency=8,
    )
    lags: list[float] = []

    async def heartbeat() -> None:
        while True:
            before = time.perf_counter()
            await asyncio.sleep(0.01)
            lags.append(time.perf_counter() - before - 0.01)

    async def main() -> tuple[dict[str, Any], float, float]:
        beat = asyncio.create_task(heartbeat())
        cpu, wall = time.process_time(), time.perf_counter()
        event = await trigger.run().asend(None)
        cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
        beat.cancel()
        return event.payload, cpu, wall

    payload, cpu_total, wall_total = asyncio.run(main())
    return {
        "status": payload["status"],
        "rounds": per_round,
        "cpu_total_s": cpu_total,
        "wall_total_s": wall_total,
        "loop_lag_max_s": max(lags, default=0.0),
        "loop_lag_p99_s": statistics.quantiles(lags, n=100)[98]
        if len(lags) >= 100
        else max(lags, default=0.0),
    }


def _run_reschedule(config: dict[str, Any], ids: list[str], pokes: int) -> list[dict[str, float]]:
    """``pokes`` task starts, each a fresh process poking once; worker wall and CPU per poke."""
    env = {**os.environ, "AIRFLOW_CONN_GOOTEN_DEFAULT": json.dumps(config)}
    results = []
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as ids_file:
        json.dump(ids, ids_file)
    try:
        for _ in range(pokes):
            before = resource.getrusage(resource.RUSAGE_CHILDREN)
            wall = time.perf_counter()
            done = subprocess.run(
                [sys.executable, "-c", POKE_SCRIPT, ids_file.name],
                env=env,
                capture_output=True,
                text=True,
                check=True,
                timeout=600,
            )
            wall = time.perf_counter() - wall
            after = resource.getrusage(resource.RUSAGE_CHILDREN)
            inner = json.loads(done.stdout.strip().splitlines()[-1])
            results.append(
                {
                    "wall_s": wall,
                    "cpu_s": (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime),
                    "import_s": inner["import_s"],
                    "poke_s": inner["poke_s"],
                }
            )
    finally:
        os.unlink(ids_file.name)
    return results


def run_sensor(
    *,
    orders: int = 1000,
    rounds: int = 3,
    poke_interval: float = 10.0,
    latency: float = 0.02,
    connect_latency: float = 0.06,
    progress: Callable[[str], None] = print,
) -> dict[str, Any]:
    """Both waits over the same held orders (they never move, so every poke reads every order)."""
    with ApiProcess(latency=latency, connect_latency=connect_latency) as api:
        ids = api.add_orders(orders, statuses="Hold")
        config = api.connection_config(backoff_factor=0.05)
        progress(f"  deferred: {orders} orders, {rounds} rounds of {poke_interval:g} s")
        api.clear_journal()
        deferred = _run_trigger(config, ids, poke_interval, rounds)
        deferred["server"] = api.stats()
        progress(f"  reschedule: {rounds} task starts (fresh processes), {orders} orders each")
        api.clear_journal()
        reschedule = _run_reschedule(config, ids, rounds)
        server = api.stats()
    return {
        "orders": orders,
        "rounds": rounds,
        "poke_interval": poke_interval,
        "latency": latency,
        "connect_latency": connect_latency,
        "deferred": deferred,
        "reschedule": {"pokes": reschedule, "server": server},
    }


def format_table(result: dict[str, Any]) -> str:
    """The comparison, per poke (medians over the rounds)."""
    deferred, reschedule = result["deferred"], result["reschedule"]["pokes"]
    rounds = deferred["rounds"]

    def median(values: Sequence[float]) -> float:
        return statistics.median(values) if values else 0.0

    lines = [
        "| Mode | Task starts per poke | Requests per poke | Worker or triggerer CPU per poke | "
        "Wall per poke | Other |",
        "|---|---|---|---|---|---|",
        f"| deferred (`GootenOrderStatusTrigger`) | 0 | {median([r['requests'] for r in rounds]):.0f} | "
        f"{median([r['cpu_s'] for r in rounds]):.2f} s (triggerer) | "
        f"{median([r['reads_wall_s'] for r in rounds]):.2f} s of reads, no slot held | "
        f"event loop lag max {1000 * deferred['loop_lag_max_s']:.0f} ms, p99 "
        f"{1000 * deferred['loop_lag_p99_s']:.0f} ms |",
        f'| `mode="reschedule"` | 1 | {result["orders"]} | '
        f"{median([p['cpu_s'] for p in reschedule]):.2f} s (worker, lower bound) | "
        f"{median([p['wall_s'] for p in reschedule]):.2f} s of a worker slot "
        f"(import {median([p['import_s'] for p in reschedule]):.2f} s, poke "
        f"{median([p['poke_s'] for p in reschedule]):.2f} s) | plus the scheduler's and executor's share |",
    ]
    server = deferred["server"]
    note = (
        f"\n\n{result['orders']} held orders, {result['rounds']} pokes each, poke interval "
        f"{result['poke_interval']:g} s, latency {1000 * result['latency']:g} ms per request "
        f"(+{1000 * result['connect_latency']:g} ms on a new connection), 8 reads in flight. Deferred: "
        f"{server['requests']} requests on {server['connections']} connection(s) in "
        f"{len(rounds)} rounds (one per poke interval), ending `{deferred['status']}`."
    )
    return "\n".join(lines) + note
