"""The pace against every kind of limit: a grid of gateway token buckets, each cell against the targets.

Gooten publishes no rate limit, so the pace must hold whatever limit a gateway has. Each cell runs the
operator (adaptive pacing, the default) over fresh orders (a read and a write each) against the local API
throttling the account with a token bucket of rate R and burst B, a latency L per request, 429s with or
without ``Retry-After``, at ``max_workers`` W:

* **useful**: orders x 2 / wall time / attainable, where attainable is the smaller of R and the latency
  limit W / L (1.0 is the most any client could do); the target is at least 0.90;
* **429s**: the share of requests answered 429; the target is at most 5%;
* **failed**: orders that ended ``failed``; the target is 0;
* **steady**: useful throughput over the run's second half (after the pace has found the limit);
* **gap CV**: the coefficient of variation of the gaps between requests arriving in the second half
  (0 is perfectly even; a clumped sender is well above 1).

Then three operator tasks (three processes, no shared store) on one account: at least 0.80 of R in
aggregate with at most 10% of requests answered 429.

Each cell runs about ``seconds`` of work (30 by default: long enough that a cold start, a few round trips
and at most a second of ``Retry-After``, weighs a few percent, as it would in a task of minutes); the API
runs in its own process, reconfigured between cells (every bucket full again). ``bench/pace_model.py``
scores the same grid in seconds on a fake clock.
"""

from __future__ import annotations

import itertools
import logging
import math
import statistics
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from bench.api_process import ApiProcess
from bench.throttle_report import Answered429, figure, multi_cells, multi_line
from bench.throttling import MultiTaskRun, _operator_run, run_multi

RATES: tuple[float, ...] = (10.0, 50.0, 150.0)
BURSTS: tuple[int, ...] = (1, 5, 15)
LATENCIES: tuple[float, ...] = (0.01, 0.06)
WORKERS: tuple[int, ...] = (4, 16, 64)
#: The targets of one task and of three tasks on one account.
ONE_TASK_USEFUL, ONE_TASK_THROTTLED = 0.90, 0.05
MULTI_USEFUL, MULTI_THROTTLED = 0.80, 0.10


@dataclass
class GridCell(Answered429):
    """One operator run against one token bucket."""

    rate: float
    burst: int
    latency: float
    retry_after: bool
    max_workers: int
    orders: int
    seconds: float
    requests: int
    throttled: int
    failed: int
    steady: float
    gap_cv: float

    @property
    def attainable(self) -> float:
        """Requests per second no client can beat: the rate limit, or the latency limit W / L."""
        return min(self.rate, self.max_workers / self.latency)

    @property
    def useful(self) -> float:
        """Orders x 2 per second of wall time, over the attainable rate."""
        return self.orders * 2 / self.seconds / self.attainable if self.seconds else 0.0

    @property
    def meets_targets(self) -> bool:
        """Useful at least 0.90, at most 5% answered 429, no order failed."""
        return (
            self.useful >= ONE_TASK_USEFUL and self.throttled_share <= ONE_TASK_THROTTLED and not self.failed
        )


def _second_half(timeline: list[tuple[float, bool]]) -> list[tuple[float, bool]]:
    if not timeline:
        return []
    first, last = timeline[0][0], timeline[-1][0]
    middle = first + (last - first) / 2
    return [entry for entry in timeline if entry[0] >= middle]


def _steady_and_spacing(timeline: list[tuple[float, bool]], attainable: float) -> tuple[float, float]:
    """Accepted requests per second over the second half (over attainable), and the gaps' CV there."""
    half = _second_half(sorted(timeline))
    if len(half) < 3:
        return 0.0, 0.0
    span = half[-1][0] - half[0][0]
    accepted = sum(1 for _, throttled in half if not throttled)
    gaps = [b[0] - a[0] for a, b in itertools.pairwise(half)]
    mean = statistics.fmean(gaps)
    cv = statistics.pstdev(gaps) / mean if mean > 0 else 0.0
    return (accepted / span / attainable if span > 0 else 0.0), cv


def run_cell(
    api: ApiProcess,
    *,
    rate: float,
    burst: int,
    latency: float,
    retry_after: bool,
    max_workers: int,
    seconds: float,
) -> GridCell:
    """One operator run of about ``seconds`` against the API reconfigured for this cell."""
    attainable = min(rate, max_workers / latency)
    orders = max(20, math.ceil(seconds * attainable / 2))
    api.configure(
        latency=latency, rate_limit=rate, rate_burst=burst, retry_after=1.0 if retry_after else False
    )
    ids = api.add_orders(orders)
    api.clear_journal()
    result = _operator_run(api.connection_config(), ids, max_workers, True)
    stats = api.stats()
    steady, gap_cv = _steady_and_spacing(api.timeline(), attainable)
    return GridCell(
        rate=rate,
        burst=burst,
        latency=latency,
        retry_after=retry_after,
        max_workers=max_workers,
        orders=orders,
        seconds=result["seconds"],
        requests=stats["requests"],
        throttled=stats["throttled"],
        failed=result["outcomes"].get("failed", 0),
        steady=steady,
        gap_cv=gap_cv,
    )


def run_grid(
    *,
    rates: Sequence[float] = RATES,
    bursts: Sequence[int] = BURSTS,
    latencies: Sequence[float] = LATENCIES,
    workers: Sequence[int] = WORKERS,
    retry_afters: Sequence[bool] = (True, False),
    multi_rates: Sequence[float] = RATES,
    seconds: float = 30.0,
    progress: Callable[[str], None] = print,
) -> dict[str, Any]:
    """Every one-task cell, one after another (the machine's cores are shared), then the three-task runs."""
    logging.getLogger("airflow.task").setLevel(logging.WARNING)  # a line per order would drown the figures
    cells: list[GridCell] = []
    with ApiProcess() as api:
        for rate, burst, latency, retry_after, max_workers in itertools.product(
            rates, bursts, latencies, retry_afters, workers
        ):
            cell = run_cell(
                api,
                rate=rate,
                burst=burst,
                latency=latency,
                retry_after=retry_after,
                max_workers=max_workers,
                seconds=seconds,
            )
            cells.append(cell)
            progress(_line(cell))
    multi: list[MultiTaskRun] = []
    for rate, retry_after in itertools.product(multi_rates, retry_afters):
        run = run_multi(
            tasks=3,
            orders_per_task=max(20, math.ceil(seconds * 1.5 * rate / 2 / 3)),
            rate_limit=rate,
            burst=5,
            latency=0.02,
            retry_after=retry_after,
            adaptive=True,
            max_workers=16,
        )
        multi.append(run)
        progress(_multi_line(run))
    return {"seconds": seconds, "cells": cells, "multi": multi}


def _line(cell: GridCell) -> str:
    verdict = "ok" if cell.meets_targets else "MISS"
    return (
        f"R={cell.rate:5g} B={cell.burst:2} L={1000 * cell.latency:3g} ms "
        f"RA={'yes' if cell.retry_after else 'no ':3} "
        f"W={cell.max_workers:2}: useful {cell.useful:.2f} (steady {cell.steady:.2f}), "
        f"429s {100 * cell.throttled_share:4.1f}%, failed {cell.failed}, gap CV {cell.gap_cv:.2f}, "
        f"{cell.seconds:.1f} s  {verdict}"
    )


def _multi_meets(run: MultiTaskRun) -> bool:
    return run.useful_throughput >= MULTI_USEFUL and run.throttled_share <= MULTI_THROTTLED and not run.failed


def _multi_line(run: MultiTaskRun) -> str:
    return (
        f"3 tasks R={run.rate_limit:g} RA={'yes' if run.retry_after else 'no'}: {multi_line(run)}  "
        f"{'ok' if _multi_meets(run) else 'MISS'}"
    )


def to_json(result: dict[str, Any]) -> dict[str, Any]:
    """The grid as JSON-ready data (properties included)."""
    return {
        "seconds": result["seconds"],
        "cells": [
            {
                **asdict(cell),
                "attainable": cell.attainable,
                "useful": cell.useful,
                "throttled_share": cell.throttled_share,
                "meets_targets": cell.meets_targets,
            }
            for cell in result["cells"]
        ],
        "multi": [
            {
                "rate": run.rate_limit,
                "retry_after": run.retry_after,
                "useful": run.useful_throughput,
                "throttled_share": run.throttled_share,
                "share_ratio": run.share_ratio,
                "failed": run.failed,
                "meets_targets": _multi_meets(run),
            }
            for run in result["multi"]
        ],
    }


def format_table(result: dict[str, Any]) -> str:
    """Markdown: a summary, one row per one-task cell, then the three-task runs."""
    cells: list[GridCell] = result["cells"]
    met = sum(cell.meets_targets for cell in cells)
    lines = [
        f"{met} of {len(cells)} one-task cells meet every target (useful >= {ONE_TASK_USEFUL:.2f}, 429s <= "
        f"{100 * ONE_TASK_THROTTLED:g}%, 0 failed); about {result['seconds']:g} s of work per cell. "
        f"Worst useful {min(c.useful for c in cells):.2f}, worst 429 share "
        f"{100 * max(c.throttled_share for c in cells):.1f}%, "
        f"failed orders {sum(c.failed for c in cells)}.",
        "",
        "| R (req/s) | burst | latency | Retry-After | max_workers | useful | steady | 429s | failed "
        "| gap CV | targets |",
        "|---:|---:|---:|---|---:|---:|---:|---:|---:|---:|---|",
    ]
    for cell in cells:
        lines.append(
            f"| {cell.rate:g} | {cell.burst} | {1000 * cell.latency:g} ms | "
            f"{'yes' if cell.retry_after else 'no'} | {cell.max_workers} | {cell.useful:.2f} | "
            f"{cell.steady:.2f} | {100 * cell.throttled_share:.1f}% | {cell.failed} | {cell.gap_cv:.2f} | "
            f"{'met' if cell.meets_targets else '**missed**'} |"
        )
    lines += [
        "",
        "Three operator tasks (separate processes, 16 workers each, no shared store) on one account, "
        "burst 5, 20 ms latency:",
        "",
        "| R (req/s) | Retry-After | useful, aggregate | 429s | slowest / fastest task | failed | targets |",
        "|---:|---|---:|---:|---:|---:|---|",
    ]
    for run in result["multi"]:
        lines.append(
            f"| {run.rate_limit:g} | {'yes' if run.retry_after else 'no'} | {multi_cells(run)} | "
            f"{'met' if _multi_meets(run) else '**missed**'} |"
        )
    return "\n".join(lines)


def plot(result: dict[str, Any], path: str) -> None:
    """Each cell as a point (429 share, useful), the target regions shaded (PNG)."""
    with figure(path, figsize=(8, 5)) as (_, axis):
        _plot_grid(axis, result)


def _plot_grid(axis: Any, result: dict[str, Any]) -> None:
    """The target regions, then a point per one-task cell and per three-task run."""
    axis.fill_between([-0.5, 100 * ONE_TASK_THROTTLED], ONE_TASK_USEFUL, 1.2, color="C2", alpha=0.12)
    axis.axvline(100 * ONE_TASK_THROTTLED, color="C2", linestyle="--", linewidth=1, label="one task: targets")
    axis.axhline(ONE_TASK_USEFUL, color="C2", linestyle="--", linewidth=1)
    axis.axvline(100 * MULTI_THROTTLED, color="C3", linestyle=":", linewidth=1, label="three tasks: targets")
    axis.axhline(MULTI_USEFUL, color="C3", linestyle=":", linewidth=1)
    for retry_after, marker in ((True, "o"), (False, "^")):
        for index, rate in enumerate(sorted({c.rate for c in result["cells"]})):
            chosen = [c for c in result["cells"] if c.retry_after == retry_after and c.rate == rate]
            axis.scatter(
                [100 * c.throttled_share for c in chosen],
                [c.useful for c in chosen],
                marker=marker,
                color=f"C{index}",
                alpha=0.7,
                label=f"one task, R={rate:g}/s, {'' if retry_after else 'no '}Retry-After",
            )
    axis.scatter(
        [100 * run.throttled_share for run in result["multi"]],
        [run.useful_throughput for run in result["multi"]],
        marker="*",
        s=150,
        color="C3",
        label="three tasks, one account",
    )
    axis.set_xlabel("requests answered 429 (%)")
    axis.set_ylabel("useful throughput (1.0 = attainable)")
    axis.set_title("The pace against every limit of the grid (one point per cell)")
    axis.set_ylim(0, 1.2)
    axis.set_xlim(left=-0.5)
    axis.grid(True, alpha=0.3)
    axis.legend(fontsize=7, loc="lower right")


if __name__ == "__main__":  # a quick look at a few cells: python -m bench.throttling_grid
    import argparse

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rates", type=float, nargs="+", default=list(RATES))
    parser.add_argument("--bursts", type=int, nargs="+", default=list(BURSTS))
    parser.add_argument("--latencies", type=float, nargs="+", default=list(LATENCIES))
    parser.add_argument("--workers", type=int, nargs="+", default=list(WORKERS))
    parser.add_argument("--retry-after", choices=["yes", "no", "both"], default="both")
    parser.add_argument("--multi-rates", type=float, nargs="*", default=[])
    parser.add_argument("--seconds", type=float, default=30.0)
    args = parser.parse_args()
    choice = {"yes": (True,), "no": (False,), "both": (True, False)}[args.retry_after]
    run_grid(
        rates=args.rates,
        bursts=args.bursts,
        latencies=args.latencies,
        workers=args.workers,
        retry_afters=choice,
        multi_rates=args.multi_rates,
        seconds=args.seconds,
    )
