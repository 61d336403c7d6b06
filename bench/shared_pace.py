"""Throttling with a shared pace: several operator tasks on one account, with and without Redis.

The throttling part's account (R requests/s, burst B, Retry-After, a fixed latency) and operator, in
separate processes as Celery workers would run them: 4 and 8 tasks on one account, each pacing itself
(``rate_limit_conn_id`` unset) and then sharing one pace through a ``redis-server`` started for the run
(fresh each time: every run starts cold). Then one task alone with the shared pace at several
``max_workers``, to show that sharing costs a lone task nothing. Targets (issue 23): with the shared pace,
aggregate useful throughput >= 0.90 of R, <= 5% of requests answered 429, 0 orders failed, the slowest
task's rate >= 0.8 of the fastest's; one task alone >= 0.90 of R.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from bench.throttle_report import multi_cells, multi_figures, multi_line, plot_useful_and_throttled, run_cells
from bench.throttling import MultiTaskRun, ThrottleRun, run_multi, run_single
from gooten_provider.testing.redis_server import LocalRedisServer

TASKS: tuple[int, ...] = (4, 8)
SINGLE_WORKERS: tuple[int, ...] = (4, 16, 64)


def run_shared_pace(
    *,
    orders: int = 2400,
    rate_limit: float = 50.0,
    burst: int = 5,
    latency: float = 0.02,
    tasks: Sequence[int] = TASKS,
    single_workers: Sequence[int] = SINGLE_WORKERS,
    max_workers: int = 8,
    progress: Callable[[str], None] = print,
) -> dict[str, Any]:
    """Every multi-task run (each pacing itself, then sharing), then one task alone sharing."""
    account = {"rate_limit": rate_limit, "burst": burst, "latency": latency, "retry_after": True}
    multi: list[dict[str, Any]] = []
    for count in tasks:
        for shared in (False, True):
            with LocalRedisServer() as redis_server:
                run = run_multi(
                    tasks=count,
                    orders_per_task=orders // count,
                    adaptive=True,
                    max_workers=max_workers,
                    pace_conn=redis_server.connection_config() if shared else None,
                    **account,
                )
            multi.append({"shared": shared, "run": run})
            progress(_multi_line(run, shared))
    single: list[ThrottleRun] = []
    for workers in single_workers:
        with LocalRedisServer() as redis_server:
            one = run_single(
                orders=orders,
                adaptive=True,
                max_workers=workers,
                pace_conn=redis_server.connection_config(),
                **account,
            )
        single.append(one)
        progress(
            f"1 task, shared pace, max_workers={workers}: useful {one.useful_throughput:.2f}, "
            f"throttled {100 * one.throttled_share:.1f}%, failed {one.failed}"
        )
    return {
        "settings": {"orders": orders, "max_workers": max_workers, **account},
        "multi": multi,
        "single": single,
    }


def _multi_line(run: MultiTaskRun, shared: bool) -> str:
    return f"{len(run.tasks)} tasks, {'shared pace' if shared else 'each its own pace'}: {multi_line(run)}"


def _meets(run: MultiTaskRun) -> bool:
    return (
        run.useful_throughput >= 0.90
        and run.throttled_share <= 0.05
        and run.share_ratio >= 0.8
        and run.failed == 0
    )


def format_table(result: dict[str, Any]) -> str:
    """The runs as Markdown, each multi-task row against the targets."""
    settings = result["settings"]
    lines = [
        f"{settings['orders']} orders in all (a read and a write each), split between the tasks, each task "
        f"an operator with max_workers={settings['max_workers']} in its own process, against one account "
        f"throttled at {settings['rate_limit']:g} requests/s (burst {settings['burst']}, Retry-After), "
        f"{1000 * settings['latency']:g} ms latency. *Useful* is orders x 2 / wall (first request to last) "
        "/ R. Target with the shared pace: useful >= 0.90, 429s <= 5%, slowest/fastest >= 0.8, 0 failed.",
        "",
        "| tasks (processes) | pace | useful, aggregate | 429s | slowest task's rate / fastest's | failed | "
        "targets |",
        "|---:|---|---:|---:|---:|---:|---|",
    ]
    for entry in result["multi"]:
        run, shared = entry["run"], entry["shared"]
        lines.append(
            f"| {len(run.tasks)} | {'shared (Redis)' if shared else 'each its own'} | {multi_cells(run)} | "
            f"{('met' if _meets(run) else 'missed') if shared else '-'} |"
        )
    lines += [
        "",
        "| one task, shared pace: max_workers | useful | 429s | failed |",
        "|---:|---:|---:|---:|",
    ]
    for one in result["single"]:
        lines.append(f"| {one.max_workers} | {run_cells(one)} |")
    return "\n".join(lines)


def to_json(result: dict[str, Any]) -> dict[str, Any]:
    """The result as JSON-ready data."""

    def task_json(run: ThrottleRun) -> dict[str, Any]:
        return {"seconds": run.seconds, "orders": run.orders, "outcomes": run.outcomes}

    return {
        "settings": result["settings"],
        "multi": [
            {
                "tasks": len(entry["run"].tasks),
                "shared": entry["shared"],
                **multi_figures(entry["run"]),
                "requests": entry["run"].requests,
                "throttled": entry["run"].throttled,
                "seconds": entry["run"].seconds,
                "per_task": [task_json(task) for task in entry["run"].tasks],
            }
            for entry in result["multi"]
        ],
        "single": [
            {
                "max_workers": one.max_workers,
                "useful_throughput": one.useful_throughput,
                "throttled_share": one.throttled_share,
                "outcomes": one.outcomes,
            }
            for one in result["single"]
        ],
    }


def plot(result: dict[str, Any], path: str) -> None:
    """Aggregate useful throughput and 429 share per number of tasks, each pace against the shared (PNG)."""
    series = []
    for shared, style, label in ((False, "C0--", "each task its own pace"), (True, "C1-", "shared pace")):
        runs = [e["run"] for e in result["multi"] if e["shared"] == shared]
        runs.sort(key=lambda r: len(r.tasks))
        series.append((label, style, [len(r.tasks) for r in runs], runs))
    plot_useful_and_throttled(
        path,
        series,
        x_label="operator tasks on one account",
        useful_title="useful throughput, aggregate (1.0 = R)",
        x_ticks=sorted({len(e["run"].tasks) for e in result["multi"]}),
        targets=(0.90, 5),
    )
