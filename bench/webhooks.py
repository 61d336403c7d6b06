"""The webhook relay: how fast it accepts Gooten's webhooks, and how soon a change is an Airflow asset event.

Two measurements, each in its own processes so that the load generator, the relay and Airflow do not share
a GIL (they do share the machine's two cores, as they would on a small host):

* **Accept.** ``python -m gooten_provider.webhooks`` (the real command, SQLite outbox with
  ``synchronous=FULL``) delivering to ``bench/stub_airflow.py``, a stand-in that answers Airflow's three
  routes at once, so the relay does its whole work, delivery included. An asyncio client posts a full order
  JSON (about 2 KiB, addresses and all; a new order each time, so nothing collapses) on a **new TCP
  connection** per webhook, **open loop**: webhook *i* is due at ``start + i / rate`` whatever happened to
  the others, and its latency runs from when it was due to the end of the answer (so a slow relay cannot
  hide its backlog: no coordinated omission). Then a closed-loop burst (``--burst-concurrency`` clients
  posting back to back) gives the most webhooks per second the relay accepts.
* **To Airflow.** The stack of ``make airflow`` (``demo/airflow_stack.py``: Airflow with its scheduler and
  LocalExecutor, the local Gooten API, the relay). Orders are moved in the local Gooten API (its admin
  route, which sends Gooten's webhooks to the relay), and each change's delay runs from the move to the
  ``timestamp`` Airflow gave the asset event (``GET /api/v2/assets/events``). Then, one change at a time,
  the delay from the move to the end of the ``gooten_order_status_history`` run that recorded it.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

import requests

from gooten_provider.testing.orders import build_order
from gooten_provider.webhooks.settings import new_token

REPO_ROOT = Path(__file__).resolve().parent.parent
HISTORY_DAG_ID = "gooten_order_status_history"
#: Statuses the "to Airflow" part moves orders through (production, then issues).
CYCLE = ("InProduction", "Printing", "Shipped", "OutForDelivery", "Delivered", "AddressIssue", "ImageIssue")


def percentile(values: list[float], q: float) -> float:
    """The ``q``-th percentile (0-100) by nearest rank; 0 for no values."""
    if not values:
        return 0.0
    ordered = sorted(values)
    rank = max(1, min(len(ordered), round(q / 100 * len(ordered) + 0.5)))
    return ordered[rank - 1]


def _free_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _wait(condition: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(0.1)


def _get_ok(url: str) -> bool:
    try:
        return requests.get(url, timeout=2).status_code == 200
    except requests.RequestException:
        return False


def _cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (Linux ``/proc``)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


# -- accept --------------------------------------------------------------------------------------------


@dataclass
class LoadRun:
    """One load on the relay: open loop at ``rate`` a second, or closed loop with ``concurrency`` clients."""

    mode: str
    rate: float | None
    concurrency: int | None
    seconds: float
    sent: int
    accepted: int
    failed: int
    latencies_ms: list[float] = field(repr=False)
    relay_cpu_seconds: float
    round: int = 1
    #: 1-minute load average of the machine when the load started (other jobs share it).
    load_average: float = 0.0
    #: Open loop: seconds from the last webhook until every change had reached the stub.
    drain_seconds: float | None = None
    #: Open loop: accept-to-delivery delay percentiles (ms).
    delivery_delay_ms: dict[str, float] | None = None

    @property
    def accepted_per_second(self) -> float:
        return self.accepted / self.seconds if self.seconds else 0.0

    def summary(self) -> dict[str, Any]:
        return {
            "round": self.round,
            "load_average": round(self.load_average, 2),
            "drain_seconds": self.drain_seconds,
            "delivery_delay_ms": self.delivery_delay_ms,
            "mode": self.mode,
            "rate": self.rate,
            "concurrency": self.concurrency,
            "seconds": round(self.seconds, 2),
            "sent": self.sent,
            "accepted": self.accepted,
            "failed": self.failed,
            "accepted_per_second": round(self.accepted_per_second, 1),
            "p50_ms": round(percentile(self.latencies_ms, 50), 2),
            "p90_ms": round(percentile(self.latencies_ms, 90), 2),
            "p99_ms": round(percentile(self.latencies_ms, 99), 2),
            "max_ms": round(max(self.latencies_ms, default=0.0), 2),
            "relay_cpu_ms_per_webhook": round(1000 * self.relay_cpu_seconds / max(1, self.accepted), 2),
        }


@dataclass
class AcceptResult:
    """The open-loop and burst runs of every round."""

    body_bytes: int
    runs: list[LoadRun]

    def to_json(self) -> dict[str, Any]:
        return {"body_bytes": self.body_bytes, "runs": [run.summary() for run in self.runs]}


async def _post(port: int, request: bytes) -> int:
    """One POST on a new connection; return the HTTP status once the whole answer is read."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(request)
        await writer.drain()
        status = int((await reader.readline()).split()[1])
        length = 0
        while (line := await reader.readline()) not in (b"\r\n", b""):
            if line.lower().startswith(b"content-length:"):
                length = int(line.split(b":", 1)[1])
        await reader.readexactly(length)
        return status
    finally:
        writer.close()


class Webhooks:
    """Pre-built webhook requests, a new order id each (nothing collapses as a duplicate)."""

    def __init__(self, token: str, port: int) -> None:
        self.token, self.port, self.count = token, port, 0

    def next(self) -> bytes:
        self.count += 1
        # a Safe ID, as the relay requires: the order number, a dash and a GUID
        order_id = f"{100000 + self.count}-00000000-0000-4000-8000-{self.count:012d}"
        body = json.dumps(build_order(order_id, ["Shipped", "Shipped"], 100000 + self.count)).encode()
        head = (
            f"POST /gooten/webhook/{self.token}?orderid={order_id} HTTP/1.1\r\nHost: relay\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\nConnection: close\r\n\r\n"
        )
        return head.encode() + body


async def _open_loop(webhooks: Webhooks, rate: float, seconds: float) -> tuple[list[float], int, list[float]]:
    """Post at ``rate`` per second for ``seconds``; return latencies (ms), failures, accept times."""
    loop = asyncio.get_running_loop()
    count = int(rate * seconds)
    requests_ = [webhooks.next() for _ in range(count)]
    latencies: list[float] = []
    accepted_at: list[float] = []
    failures = 0

    async def one(request: bytes, due: float) -> None:
        nonlocal failures
        try:
            status = await _post(webhooks.port, request)
        except OSError:
            status = 0
        if status == 200:
            latencies.append(1000 * (loop.time() - due))
            accepted_at.append(time.time())
        else:
            failures += 1

    start = loop.time() + 0.2
    tasks = []
    for index, request in enumerate(requests_):
        due = start + index / rate
        if (wait := due - loop.time()) > 0:
            await asyncio.sleep(wait)
        tasks.append(asyncio.create_task(one(request, due)))
    await asyncio.gather(*tasks)
    return latencies, failures, accepted_at


async def _closed_loop(
    webhooks: Webhooks, concurrency: int, seconds: float
) -> tuple[list[float], int, float]:
    """``concurrency`` clients posting back to back for ``seconds``; return latencies (ms), failures, time."""
    loop = asyncio.get_running_loop()
    latencies: list[float] = []
    failures = 0
    end = loop.time() + seconds

    async def client() -> None:
        nonlocal failures
        while loop.time() < end:
            request = webhooks.next()
            started = loop.time()
            try:
                status = await _post(webhooks.port, request)
            except OSError:
                status = 0
            if status == 200:
                latencies.append(1000 * (loop.time() - started))
            else:
                failures += 1

    started = loop.time()
    await asyncio.gather(*(client() for _ in range(concurrency)))
    return latencies, failures, loop.time() - started


def _start(command: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    with log.open("ab") as out:
        return subprocess.Popen(command, env=env, cwd=REPO_ROOT, stdout=out, stderr=subprocess.STDOUT)


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _pending(port: int) -> int:
    return int(requests.get(f"http://127.0.0.1:{port}/healthz", timeout=5).json()["pending"])


def _delivered(stub_port: int) -> list[float]:
    return list(requests.get(f"http://127.0.0.1:{stub_port}/stats", timeout=30).json()["arrivals"])


def _open_loop_round(
    webhooks: Webhooks,
    relay: subprocess.Popen[bytes],
    stub_port: int,
    rate: float,
    seconds: float,
    number: int,
    progress: Callable[[str], None],
) -> LoadRun:
    """One open-loop run, then the wait until every change reached the stub."""
    progress(f"  round {number}: open loop, {rate:g} webhooks/s for {seconds:g} s, a new connection each")
    before = len(_delivered(stub_port))
    load, cpu = os.getloadavg()[0], _cpu_seconds(relay.pid)
    latencies, failures, accepted_at = asyncio.run(_open_loop(webhooks, rate, seconds))
    cpu = _cpu_seconds(relay.pid) - cpu
    started = time.monotonic()
    _wait(lambda: _pending(webhooks.port) == 0, 300, "delivery to the stub")
    drain = time.monotonic() - started
    arrivals = _delivered(stub_port)[before:]
    delays = [1000 * (a - b) for a, b in zip(sorted(arrivals), sorted(accepted_at), strict=False)]
    delivery = {key: round(percentile(delays, q), 1) for key, q in (("p50", 50), ("p99", 99), ("max", 100))}
    run = LoadRun(
        "open loop",
        rate,
        None,
        seconds,
        int(rate * seconds),
        len(latencies),
        failures,
        latencies,
        cpu,
        number,
        load,
        round(drain, 2),
        delivery,
    )
    progress(f"    {run.summary()}")
    return run


def _burst_round(
    webhooks: Webhooks,
    relay: subprocess.Popen[bytes],
    concurrency: int,
    seconds: float,
    number: int,
    progress: Callable[[str], None],
) -> LoadRun:
    """One closed-loop burst, then the wait until the outbox is empty again."""
    progress(f"  round {number}: burst, {concurrency} clients back to back for {seconds:g} s")
    load, cpu = os.getloadavg()[0], _cpu_seconds(relay.pid)
    latencies, failures, elapsed = asyncio.run(_closed_loop(webhooks, concurrency, seconds))
    run = LoadRun(
        "closed loop",
        None,
        concurrency,
        elapsed,
        len(latencies) + failures,
        len(latencies),
        failures,
        latencies,
        _cpu_seconds(relay.pid) - cpu,
        number,
        load,
    )
    progress(f"    {run.summary()}")
    _wait(lambda: _pending(webhooks.port) == 0, 300, "delivery to the stub")
    return run


def run_accept(
    *,
    rounds: int,
    rate: float,
    seconds: float,
    burst_concurrency: int,
    burst_seconds: float,
    progress: Callable[[str], None],
) -> AcceptResult:
    """The accept part: ``rounds`` times an open loop at ``rate``, then a burst; the relay delivers to the
    stub throughout (one relay process for all rounds)."""
    work = Path(tempfile.mkdtemp(prefix="gooten-bench-webhooks-"))
    token, relay_port, stub_port = new_token(), _free_port(), _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "GOOTEN_RELAY"))}
    stub = _start(
        [sys.executable, "-m", "bench.stub_airflow", "--port", str(stub_port)], env, work / "stub.log"
    )
    relay_env = {
        **env,
        "GOOTEN_RELAY_TOKEN": token,
        "GOOTEN_RELAY_AIRFLOW_USERNAME": "bench",
        "GOOTEN_RELAY_AIRFLOW_PASSWORD": "bench",
    }
    relay_command = [
        sys.executable,
        "-m",
        "gooten_provider.webhooks",
        "--port",
        str(relay_port),
        "--airflow-url",
        f"http://127.0.0.1:{stub_port}",
        "--outbox",
        str(work / "outbox.sqlite3"),
    ]  # logging at INFO (two lines per webhook) to a file, as under systemd
    relay = _start(relay_command, relay_env, work / "relay.log")
    try:
        _wait(lambda: _get_ok(f"http://127.0.0.1:{relay_port}/healthz"), 60, "the relay")
        _wait(lambda: _get_ok(f"http://127.0.0.1:{stub_port}/stats"), 60, "the Airflow stub")
        webhooks = Webhooks(token, relay_port)
        body_bytes = len(webhooks.next().split(b"\r\n\r\n", 1)[1])
        asyncio.run(_open_loop(webhooks, 20, 1))  # warm-up (not counted)
        _wait(
            lambda: requests.get(f"http://127.0.0.1:{relay_port}/healthz", timeout=5).json()["pending"] == 0,
            60,
            "warm-up delivery",
        )
        runs: list[LoadRun] = []
        for number in range(1, rounds + 1):
            runs.append(_open_loop_round(webhooks, relay, stub_port, rate, seconds, number, progress))
            runs.append(_burst_round(webhooks, relay, burst_concurrency, burst_seconds, number, progress))
        return AcceptResult(body_bytes, runs)
    finally:
        _stop(relay)
        _stop(stub)


# -- to Airflow ----------------------------------------------------------------------------------------


@dataclass
class ToAirflowResult:
    """Delays from an order moved in the local API to its event in Airflow (per pace), and to a run."""

    changes: int
    rates: list[float]
    event_delays_s: dict[str, list[float]]
    missing_events: dict[str, int]
    run_delays_s: list[float]
    stack_start_seconds: float
    #: Changes (one at a time) that no finished run recorded within the wait: their event reached Airflow
    #: while the DAG's previous run was active, and no later run took it.
    unrecorded: int = 0

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["event_delay"] = {rate: _stats(delays) for rate, delays in self.event_delays_s.items()}
        data["run_delay"] = _stats(self.run_delays_s)
        return data


def _stats(values: list[float]) -> dict[str, float]:
    return {
        "median": round(statistics.median(values), 3) if values else 0.0,
        "p90": round(percentile(values, 90), 3),
        "max": round(max(values, default=0.0), 3),
        "min": round(min(values, default=0.0), 3),
    }


class Stack:
    """``demo/airflow_stack.py`` on free ports, stopped with SIGTERM.

    :param options: more options of the script (``--executor celery``: PostgreSQL, Redis, Celery).
    """

    def __init__(self, work: Path, options: Sequence[str] = ()) -> None:
        ready = work / "ready.json"
        started = time.monotonic()
        self.process = _start(
            [
                sys.executable,
                "demo/airflow_stack.py",
                "--port",
                str(_free_port()),
                "--home",
                str(work / "home"),
                "--ready-file",
                str(ready),
                *options,
            ],
            {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW")},
            work / "stack.out",
        )
        _wait(lambda: ready.exists() or self.process.poll() is not None, 300, "the Airflow stack")
        if not ready.exists():
            raise RuntimeError(f"the stack did not start: see {work / 'stack.out'}")
        self.ready = json.loads(ready.read_text())
        self.session = requests.Session()
        token = self.session.post(
            f"{self.ready['airflow_url']}/auth/token",
            json={"username": self.ready["username"], "password": self.ready["password"]},
            timeout=30,
        ).json()["access_token"]
        self.session.headers["Authorization"] = f"Bearer {token}"
        _wait(
            lambda: self.get(f"/api/v2/dags/{HISTORY_DAG_ID}").status_code == 200,
            300,
            "the history DAG to be parsed",
        )
        self.start_seconds = time.monotonic() - started

    def get(self, path: str, **params: Any) -> requests.Response:
        return self.session.get(f"{self.ready['airflow_url']}{path}", params=params, timeout=30)

    def move(self, order_id: str, status: str) -> float:
        """Move every item of an order to ``status`` in the local API; return when (Unix time)."""
        sent = time.time()
        reply = requests.post(
            f"{self.ready['gooten_api_url']}/admin/orders/{quote(order_id, safe='')}/status",
            params={"status": status},
            timeout=30,
        )
        reply.raise_for_status()
        return sent

    def events(self) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = []
        while True:
            page = self.get(
                "/api/v2/assets/events", order_by="timestamp", limit=100, offset=len(found)
            ).json()["asset_events"]
            found.extend(page)
            if len(page) < 100:
                return found

    def stop(self) -> None:
        _stop(self.process)


def _timestamp(iso: str) -> float:
    return datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp()


def run_to_airflow(
    *,
    changes: int,
    rates: Sequence[float],
    runs: int,
    progress: Callable[[str], None],
    options: Sequence[str] = (),
) -> ToAirflowResult:
    """The to-Airflow part: ``runs`` changes one at a time to a finished run, then ``changes`` per rate.

    :param options: options of the stack (``("--executor", "celery")``: on PostgreSQL, with Celery).
    """
    from gooten_provider.client import GootenClient
    from gooten_provider.testing import DEFAULT_BILLING_KEY, DEFAULT_RECIPE_ID

    work = Path(tempfile.mkdtemp(prefix="gooten-bench-webhooks-stack-"))
    progress("  starting the stack of make airflow ...")
    stack = Stack(work, options)
    try:
        progress(f"    up in {stack.start_seconds:.1f} s")
        client = GootenClient(
            DEFAULT_RECIPE_ID, DEFAULT_BILLING_KEY, base_url=stack.ready["gooten_api_url"], timeout=10
        )
        sys.path.insert(0, str(REPO_ROOT / "dags"))
        from gooten_examples.seed import demo_orders

        order_ids = [order.order_id for order in demo_orders()]
        current = {order_id: client.get_order_status(order_id) for order_id in order_ids}
        turn = 0

        def next_change() -> tuple[str, str]:
            nonlocal turn
            while True:
                order_id, status = (
                    order_ids[turn % len(order_ids)],
                    CYCLE[(turn // len(order_ids)) % len(CYCLE)],
                )
                turn += 1
                if set(current[order_id]) != {status}:
                    current[order_id] = [status] * len(current[order_id])
                    return order_id, status

        run_delays: list[float] = []
        warehouse = Path(stack.ready["warehouse"])
        unrecorded = 0
        for _ in range(runs):
            order_id, status = next_change()
            sent = stack.move(order_id, status)
            try:
                run = _wait_for_recording_run(stack, warehouse, order_id, status, sent)
            except TimeoutError as exc:
                unrecorded += 1
                progress(f"    moved -> {exc}")
                continue
            run_delays.append(_timestamp(run["end_date"]) - sent)
            progress(f"    moved -> finished run: {run_delays[-1]:.1f} s ({run['state']})")

        used: set[int] = set()
        delays_by_rate: dict[str, list[float]] = {}
        missing: dict[str, int] = {}
        for rate in rates:
            progress(f"  {changes} changes at {rate:g}/s")
            sent_changes = []
            begin = time.monotonic()
            for index in range(changes):
                if (wait := begin + index / rate - time.monotonic()) > 0:
                    time.sleep(wait)
                order_id, status = next_change()
                sent_changes.append((order_id, status, stack.move(order_id, status)))
            delays = _event_delays(stack, sent_changes, used)
            delays_by_rate[f"{rate:g}"] = [round(d, 3) for d in delays]
            missing[f"{rate:g}"] = len(sent_changes) - len(delays)
            progress(f"    event delays: {_stats(delays)} s; {missing[f'{rate:g}']} missing")
        return ToAirflowResult(
            changes,
            list(rates),
            delays_by_rate,
            missing,
            [round(d, 3) for d in run_delays],
            round(stack.start_seconds, 1),
            unrecorded,
        )
    finally:
        stack.stop()


def _event_delays(
    stack: Stack, sent_changes: list[tuple[str, str, float]], used: set[int], timeout: float = 120
) -> list[float]:
    """Seconds from each move to its event's timestamp in Airflow (matched once, by order and status)."""
    deadline = time.monotonic() + timeout
    while True:
        events = [e for e in stack.events() if e["extra"] and e["extra"].get("order_id")]
        taken: set[int] = set()
        delays = []
        for order_id, status, sent in sent_changes:
            match = next(
                (
                    e
                    for e in events
                    if e["id"] not in used | taken
                    and e["extra"]["order_id"] == order_id
                    and set(e["extra"]["item_statuses"]) == {status}
                    and _timestamp(e["timestamp"]) >= sent - 1
                ),
                None,
            )
            if match is not None:
                taken.add(match["id"])
                delays.append(_timestamp(match["timestamp"]) - sent)
        if len(delays) == len(sent_changes) or time.monotonic() > deadline:
            used |= taken
            return delays
        time.sleep(1)


def _wait_for_recording_run(
    stack: Stack, warehouse: Path, order_id: str, status: str, sent: float
) -> dict[str, Any]:
    """The finished run that recorded ``order_id`` in ``status`` (polling the warehouse, then the run)."""
    import sqlite3

    deadline = time.monotonic() + 120
    while True:
        row = None
        try:
            with sqlite3.connect(warehouse) as db:
                row = db.execute(
                    "SELECT run_id FROM gooten_order_status_history "
                    "WHERE order_id = ? AND item_statuses LIKE ? ORDER BY recorded_at DESC LIMIT 1",
                    (order_id, f"{status}%"),
                ).fetchone()
        except sqlite3.OperationalError:
            pass
        if row is not None:
            run = stack.get(f"/api/v2/dags/{HISTORY_DAG_ID}/dagRuns/{quote(row[0], safe='')}").json()
            if (
                run.get("state") in ("success", "failed")
                and run.get("end_date")
                and _timestamp(run["end_date"]) > sent
            ):
                return run
        if time.monotonic() > deadline:
            raise TimeoutError(f"no finished run recorded {order_id} in {status}")
        time.sleep(0.25)


# -- report --------------------------------------------------------------------------------------------


def _row(cells: list[object]) -> str:
    return "| " + " | ".join(str(cell) for cell in cells) + " |"


def format_tables(
    accept: AcceptResult | None,
    to_airflow: ToAirflowResult | None,
    stack: str = "the stack of `make airflow`",
) -> str:
    """The Markdown tables of both parts; ``stack`` names the Airflow the to-Airflow part ran on."""
    parts: list[str] = []
    if accept is not None:
        lines = [
            f"Accept: the relay process delivering to the Airflow stub; a {accept.body_bytes}-byte order "
            "JSON, a new TCP connection per webhook; latency from when each webhook was due to the end of "
            "its answer. Load: the machine's 1-minute load average when the run started (2 cores, shared "
            "with other jobs).",
            "",
            _row(["round", "load", "webhooks", "accepted", "failed", "accepted/s", "p50", "p90", "p99"])
            + " max | relay CPU per webhook | all reached the stub |",
            "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
        ]
        for run in accept.runs:
            s = run.summary()
            if run.mode == "open loop":
                load = f"open loop, {s['rate']:g}/s for {s['seconds']:g} s"
                drained = f"{run.drain_seconds:.1f} s after the last"
            else:
                load = f"burst, {s['concurrency']} clients for {s['seconds']:.0f} s"
                drained = "-"
            latencies = [f"{s[key]:.1f} ms" for key in ("p50_ms", "p90_ms", "p99_ms", "max_ms")]
            counts = [s["sent"], s["accepted"], s["failed"], f"{s['accepted_per_second']:.0f}"]
            cpu = f"{s['relay_cpu_ms_per_webhook']:.2f} ms"
            lines.append(
                _row([f"{run.round}: {load}", f"{run.load_average:.1f}", *counts, *latencies, cpu, drained])
            )
        open_runs = [run for run in accept.runs if run.mode == "open loop"]
        if open_runs:
            p99s = sorted(percentile(run.latencies_ms, 99) for run in open_runs)
            lines += [
                "",
                f"Open loop at {open_runs[0].rate:g}/s: p99 {', '.join(f'{p:.1f}' for p in p99s)} ms over "
                f"{len(p99s)} round(s), median {statistics.median(p99s):.1f} ms.",
            ]
        parts.append("\n".join(lines))
    if to_airflow is not None:
        run = _stats(to_airflow.run_delays_s)
        paces = " and ".join(f"{rate:g}" for rate in to_airflow.rates)
        lines = [
            f"To Airflow: {stack} (up in {to_airflow.stack_start_seconds:.0f} s); "
            f"{len(to_airflow.run_delays_s) + to_airflow.unrecorded} changes one at a time"
            + (f" ({to_airflow.unrecorded} recorded by no run within 120 s)" if to_airflow.unrecorded else "")
            + f", then {to_airflow.changes} order changes "
            f"at {paces} per second.",
            "",
            _row(["from an order moved in the local API to", "changes", "median", "p90", "max", "min"]),
            "|---|---:|---:|---:|---:|---:|",
            _row(
                [
                    f"the end of the `{HISTORY_DAG_ID}` run that recorded it (one at a time)",
                    len(to_airflow.run_delays_s),
                    *(f"{run[k]:.1f} s" for k in ("median", "p90", "max", "min")),
                ]
            ),
        ]
        for rate, delays in to_airflow.event_delays_s.items():
            event = _stats(delays)
            found = f"{len(delays)} (missing: {to_airflow.missing_events[rate]})"
            cells = [f"its asset event in Airflow, {rate} change(s) a second", found]
            lines.append(_row([*cells, *(f"{event[k]:.2f} s" for k in ("median", "p90", "max", "min"))]))
        parts.append("\n".join(lines))
    return "\n\n".join(parts)
