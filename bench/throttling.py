"""Throttling: the operator against a local API that rate-limits the account like a gateway.

The local API (in its own process) throttles the Recipe ID with a token bucket (R requests per second,
burst B, 429 with or without ``Retry-After``), with a fixed latency per request. Each run sets fresh orders
from ``New`` to ``Hold`` (a read and a write each) with the operator, and reports:

* **useful throughput**: orders x 2 requests / wall time / R (1.0 is the gateway's limit);
* **throttled**: the share of requests answered 429;
* **failed**: orders that ended ``failed`` (a 429 must never be the reason).

Runs compare ``adaptive_rate=False`` (429s retried up to ``max_retries``, as before) with the adaptive
rate controller (the default), for several ``max_workers``; then several operator tasks in separate
processes share one account, to show each converges to a fair share with no coordination but the 429s.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from bench.api_process import ApiProcess
from bench.throttle_report import (
    Answered429,
    multi_cells,
    multi_figures,
    multi_line,
    plot_useful_and_throttled,
    run_cells,
)

CONN_ID = "gooten_bench_throttled"
#: The Redis connection of the shared pace (``rate_limit_conn_id``), when a run uses one.
PACE_CONN_ID = "gooten_bench_pace"
WORKERS: tuple[int, ...] = (1, 4, 8, 16, 32, 64)


@dataclass
class ThrottleRun(Answered429):
    """One operator run (or one task of a multi-task run) against the throttled API."""

    name: str
    adaptive: bool
    retry_after: bool
    max_workers: int
    orders: int
    seconds: float
    requests: int
    throttled: int
    outcomes: dict[str, int]
    rate_limit: float

    @property
    def useful_throughput(self) -> float:
        """Orders x 2 requests per second of wall time, as a share of the rate limit."""
        return self.orders * 2 / self.seconds / self.rate_limit if self.seconds else 0.0

    @property
    def failed(self) -> int:
        """Orders that ended ``failed``."""
        return self.outcomes.get("failed", 0)


@dataclass
class MultiTaskRun(Answered429):
    """Several operator tasks, each in its own process, against one throttled account at once."""

    adaptive: bool
    retry_after: bool
    tasks: list[ThrottleRun]
    seconds: float
    requests: int
    throttled: int
    rate_limit: float
    timeline: list[tuple[float, bool]] = field(default_factory=list)

    @property
    def useful_throughput(self) -> float:
        """All tasks' orders x 2 per second of wall time (first start to last end), over the rate limit."""
        return sum(t.orders for t in self.tasks) * 2 / self.seconds / self.rate_limit

    @property
    def share_ratio(self) -> float:
        """The smallest task's rate over the largest's (1.0 is perfectly fair)."""
        rates = [t.orders / t.seconds for t in self.tasks]
        return min(rates) / max(rates)

    @property
    def failed(self) -> int:
        """Orders that ended ``failed``, in all tasks."""
        return sum(task.failed for task in self.tasks)


def _operator_run(
    config: dict[str, Any],
    ids: list[str],
    max_workers: int,
    adaptive: bool,
    pace_conn: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Run the operator once (in this process); return its wall time and outcome counts.

    :param pace_conn: a Redis connection for the shared pace (``rate_limit_conn_id``), or ``None``.
    """
    from gooten_provider.operators.gooten import GootenOrderStatusOperator

    extra = {**config["extra"], "adaptive_rate": adaptive}
    if pace_conn is not None:
        os.environ[f"AIRFLOW_CONN_{PACE_CONN_ID.upper()}"] = json.dumps(pace_conn)
        extra["rate_limit_conn_id"] = PACE_CONN_ID
    os.environ[f"AIRFLOW_CONN_{CONN_ID.upper()}"] = json.dumps({**config, "extra": extra})

    from bench.soak import execute_recorded  # the one way the benches run an operator outside a DAG run

    operator = GootenOrderStatusOperator(
        task_id="throttled", order_ids=ids, status="Hold", gooten_conn_id=CONN_ID, max_workers=max_workers
    )
    results: list[dict[str, Any]] = []
    started = time.perf_counter()
    execute_recorded(operator, results)
    seconds = time.perf_counter() - started
    return {
        "seconds": seconds,
        "started": started,
        "outcomes": dict(Counter(r["outcome"] for r in results)),
        "errors": [r["error"] for r in results if r["outcome"] == "failed"][:3],
    }


def _task_process(
    config: dict[str, Any],
    ids: list[str],
    max_workers: int,
    adaptive: bool,
    queue: Any,
    pace_conn: dict[str, Any] | None = None,
) -> None:
    os.environ.setdefault("AIRFLOW__CORE__LOAD_EXAMPLES", "False")
    queue.put(_operator_run(config, ids, max_workers, adaptive, pace_conn))


def run_single(
    *,
    orders: int,
    rate_limit: float,
    burst: int,
    latency: float,
    retry_after: bool,
    adaptive: bool,
    max_workers: int,
    pace_conn: dict[str, Any] | None = None,
) -> ThrottleRun:
    """One operator task over ``orders`` orders against a freshly started throttled API."""
    with ApiProcess(latency=latency, rate_limit=rate_limit, rate_burst=burst, retry_after=retry_after) as api:
        ids = api.add_orders(orders)
        api.clear_journal()
        result = _operator_run(api.connection_config(), ids, max_workers, adaptive, pace_conn)
        stats = api.stats()
    return ThrottleRun(
        name=f"max_workers={max_workers}",
        adaptive=adaptive,
        retry_after=retry_after,
        max_workers=max_workers,
        orders=orders,
        seconds=result["seconds"],
        requests=stats["requests"],
        throttled=stats["throttled"],
        outcomes=result["outcomes"],
        rate_limit=rate_limit,
    )


def run_multi(
    *,
    tasks: int,
    orders_per_task: int,
    rate_limit: float,
    burst: int,
    latency: float,
    retry_after: bool,
    adaptive: bool,
    max_workers: int,
    pace_conn: dict[str, Any] | None = None,
) -> MultiTaskRun:
    """``tasks`` operator tasks, each in its own process, over their own orders of one account at once.

    :param pace_conn: a Redis connection every task shares its pace through, or ``None``.
    """
    context = multiprocessing.get_context("spawn")
    with ApiProcess(latency=latency, rate_limit=rate_limit, rate_burst=burst, retry_after=retry_after) as api:
        batches = [api.add_orders(orders_per_task) for _ in range(tasks)]
        api.clear_journal()
        queue = context.Queue()
        processes = [
            context.Process(
                target=_task_process,
                args=(api.connection_config(), ids, max_workers, adaptive, queue, pace_conn),
            )
            for ids in batches
        ]
        for process in processes:
            process.start()
        results = [queue.get(timeout=600) for _ in processes]
        for process in processes:
            process.join(30)
        stats = api.stats()
        timeline = api.timeline()
    span = stats["span_seconds"]
    runs = [
        ThrottleRun(
            name=f"task {index + 1}",
            adaptive=adaptive,
            retry_after=retry_after,
            max_workers=max_workers,
            orders=orders_per_task,
            seconds=result["seconds"],
            requests=0,
            throttled=0,
            outcomes=result["outcomes"],
            rate_limit=rate_limit,
        )
        for index, result in enumerate(results)
    ]
    return MultiTaskRun(
        adaptive=adaptive,
        retry_after=retry_after,
        tasks=runs,
        seconds=span,
        requests=stats["requests"],
        throttled=stats["throttled"],
        rate_limit=rate_limit,
        timeline=timeline,
    )


def run_throttling(
    *,
    orders: int = 600,
    rate_limit: float = 50.0,
    burst: int = 5,
    latency: float = 0.02,
    workers: Sequence[int] = WORKERS,
    tasks: int = 4,
    progress: Callable[[str], None] = print,
) -> dict[str, Any]:
    """Every single-task run (before and after, with and without Retry-After), then the multi-task runs."""
    single: list[ThrottleRun] = []
    for adaptive in (False, True):
        for retry_after in (True, False):
            for max_workers in workers:
                run = run_single(
                    orders=orders,
                    rate_limit=rate_limit,
                    burst=burst,
                    latency=latency,
                    retry_after=retry_after,
                    adaptive=adaptive,
                    max_workers=max_workers,
                )
                single.append(run)
                progress(_line(run))
    multi: list[MultiTaskRun] = []
    for adaptive in (False, True):
        run_m = run_multi(
            tasks=tasks,
            orders_per_task=orders // tasks,
            rate_limit=rate_limit,
            burst=burst,
            latency=latency,
            retry_after=True,
            adaptive=adaptive,
            max_workers=8,
        )
        multi.append(run_m)
        progress(f"{tasks} tasks, adaptive={adaptive}: {multi_line(run_m)}")
    return {
        "settings": {"orders": orders, "rate_limit": rate_limit, "burst": burst, "latency": latency},
        "single": single,
        "multi": multi,
    }


def _line(run: ThrottleRun) -> str:
    return (
        f"adaptive={run.adaptive!s:5} retry_after={run.retry_after!s:5} max_workers={run.max_workers:3}: "
        f"{run.seconds:6.1f} s, useful {run.useful_throughput:.2f}, "
        f"throttled {100 * run.throttled_share:5.1f}% "
        f"({run.throttled}/{run.requests}), failed {run.failed}"
    )


def to_json(result: dict[str, Any]) -> dict[str, Any]:
    """The result as JSON-ready data (properties included)."""

    def run_json(run: ThrottleRun) -> dict[str, Any]:
        return {
            **asdict(run),
            "useful_throughput": run.useful_throughput,
            "throttled_share": run.throttled_share,
        }

    return {
        "settings": result["settings"],
        "single": [run_json(run) for run in result["single"]],
        "multi": [
            {
                "adaptive": m.adaptive,
                "retry_after": m.retry_after,
                "seconds": m.seconds,
                "requests": m.requests,
                "throttled": m.throttled,
                **multi_figures(m),
                "tasks": [run_json(t) for t in m.tasks],
            }
            for m in result["multi"]
        ],
    }


def format_table(result: dict[str, Any]) -> str:
    """The runs as Markdown: one row per ``max_workers``, before and after, with and without Retry-After."""
    settings = result["settings"]
    lines = [
        f"{settings['orders']} orders (a read and a write each) against an account throttled at "
        f"{settings['rate_limit']:g} requests/s (burst {settings['burst']}), "
        f"{1000 * settings['latency']:g} ms latency. *Useful* is orders x 2 / wall / R (1.0 is the "
        "gateway's limit).",
        "",
        "| max_workers | Retry-After | before: useful | before: 429s | before: failed | after: useful | "
        "after: 429s | after: failed |",
        "|---:|---|---:|---:|---:|---:|---:|---:|",
    ]
    runs = {(r.adaptive, r.retry_after, r.max_workers): r for r in result["single"]}
    for retry_after in (True, False):
        for workers in sorted({r.max_workers for r in result["single"]}):
            before, after = runs[(False, retry_after, workers)], runs[(True, retry_after, workers)]
            lines.append(
                f"| {workers} | {'yes' if retry_after else 'no'} | {run_cells(before)} | {run_cells(after)} |"
            )
    lines += [
        "",
        "| tasks (processes), one account | useful, aggregate | 429s | slowest task's rate / fastest's | "
        "failed |",
        "|---|---:|---:|---:|---:|",
    ]
    for run in result["multi"]:
        lines.append(
            f"| {len(run.tasks)}, {'after (adaptive)' if run.adaptive else 'before'} | {multi_cells(run)} |"
        )
    return "\n".join(lines)


def plot(result: dict[str, Any], path: str) -> None:
    """Useful throughput and 429 share against ``max_workers``, before and after (PNG)."""
    series = []
    for adaptive, retry_after, style in (
        (False, True, "C0--"),
        (False, False, "C0:"),
        (True, True, "C1-"),
        (True, False, "C1-."),
    ):
        runs = sorted(
            (r for r in result["single"] if r.adaptive == adaptive and r.retry_after == retry_after),
            key=lambda r: r.max_workers,
        )
        label = f"{'after (adaptive)' if adaptive else 'before'}, {'' if retry_after else 'no '}Retry-After"
        series.append((label, style, [r.max_workers for r in runs], runs))
    plot_useful_and_throttled(
        path,
        series,
        x_label="max_workers",
        useful_title="useful throughput (1.0 = the rate limit)",
        log2_x=True,
    )
