"""Run the benchmarks, print the results, and record them in docs/performance.md and bench/results/.

``python -m bench.run`` runs everything (``make bench``); ``python -m bench.run throughput`` (or
``airflow``, ``startup``, ``throttling``, ``throttling-grid``, ``shared-pace``, ``webhooks``,
``webhooks-postgres``, ``scale``, ``sensor``, ``export``) runs one part. Each part rewrites only its own
marked block of docs/performance.md (``<!-- bench:NAME:start -->`` ... ``<!-- bench:NAME:end -->``) and its
JSON file in bench/results/.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import re
import shutil
import sys
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Protocol

REPO_ROOT = Path(__file__).resolve().parent.parent
DOC = REPO_ROOT / "docs" / "performance.md"
RESULTS = REPO_ROOT / "bench" / "results"
PARTS: tuple[str, ...] = (
    "throughput",
    "airflow",
    "startup",
    "throttling",
    "throttling-grid",
    "shared-pace",
    "webhooks",
    "webhooks-postgres",
    "scale",
    "sensor",
    "export",
)


def machine() -> dict[str, Any]:
    """What the figures were measured on."""
    import importlib.metadata as metadata

    cpu = platform.processor() or "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text(encoding="utf-8").splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    versions = {
        name: metadata.version(name)
        for name in ("apache-airflow", "apache-airflow-providers-http", "requests", "urllib3")
    }
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "os": platform.platform(),
        "python": platform.python_version(),
        "versions": versions,
    }


def machine_block(info: dict[str, Any]) -> str:
    """The machine as Markdown (each part's block says when it ran, see :func:`when`)."""
    versions = ", ".join(f"{name} {version}" for name, version in info["versions"].items())
    return (
        f"{info['cpu']}, {info['cores']} cores shared with other jobs, {info['os']}, "
        f"Python {info['python']}; {versions}."
    )


def when() -> dict[str, Any]:
    """When a part starts, and how loaded the machine is then."""
    return {
        "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "load_average": os.getloadavg() if hasattr(os, "getloadavg") else None,
    }


def when_line(measured: dict[str, Any]) -> str:
    """``Run 2026-01-01 10:00 UTC (load average 0.9, 1.0, 0.9 at the start).``"""
    load = measured.get("load_average")
    if not load:
        return f"Run {measured['date']}."
    return f"Run {measured['date']} (load average {', '.join(f'{x:.2f}' for x in load)} at the start)."


#: The halves of the throttling grid: the block each is recorded in, and the cells it runs.
GRID_HALVES: dict[str, tuple[str, tuple[bool, ...]]] = {
    "both": ("throttling-grid", (True, False)),
    "yes": ("throttling-grid-retry-after", (True,)),
    "no": ("throttling-grid-no-retry-after", (False,)),
}


def record(name: str, markdown: str, data: dict[str, Any]) -> None:
    """Replace the ``name`` block of docs/performance.md and write bench/results/NAME.json."""
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / f"{name}.json").write_text(json.dumps(data, indent=2, default=str) + "\n", encoding="utf-8")
    if not DOC.exists():
        print(f"  ({DOC} is missing: results not recorded there)")
        return
    text = DOC.read_text(encoding="utf-8")
    start, end = f"<!-- bench:{name}:start -->", f"<!-- bench:{name}:end -->"
    pattern = re.compile(re.escape(start) + r".*?" + re.escape(end), re.DOTALL)
    if not pattern.search(text):
        print(f"  (no {start} block in {DOC}: results not recorded there)")
        return
    block = f"{start}\n{markdown.strip()}\n{end}"
    DOC.write_text(pattern.sub(lambda _: block, text, count=1), encoding="utf-8")
    print(f"  recorded in {DOC.relative_to(REPO_ROOT)} ({name}) and bench/results/{name}.json")


def main(argv: Sequence[str] | None = None) -> int:
    """Parse arguments, run the chosen parts, print and record their results."""
    parser = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__.splitlines()[0])
    parser.add_argument("parts", nargs="*", help=f"parts to run: {', '.join(PARTS)} (default: all)")
    parser.add_argument("--orders", type=int, default=1000, help="throughput: orders per run (N)")
    parser.add_argument("--rounds", type=int, default=3, help="throughput: rounds of every alternative")
    parser.add_argument(
        "--only", action="append", default=[], help="throughput: only alternatives whose name has this text"
    )
    parser.add_argument("--latency", type=float, default=0.02, help="seconds added to every request")
    parser.add_argument(
        "--connect-latency",
        type=float,
        default=0.06,
        help="seconds added to a new connection's first request",
    )
    parser.add_argument("--airflow-orders", type=int, default=200, help="airflow: orders per DAG run")
    parser.add_argument("--airflow-rounds", type=int, default=3, help="airflow: runs of each DAG")
    parser.add_argument("--samples", type=int, default=7, help="startup: fresh processes per measure")
    parser.add_argument(
        "--grid-seconds", type=float, default=30.0, help="throttling-grid: seconds of work per cell"
    )
    parser.add_argument(
        "--shared-orders",
        type=int,
        default=2400,
        help="shared-pace: orders of each run, split between its tasks (2,400: about 96 s of work at 50/s)",
    )
    parser.add_argument(
        "--grid-retry-after",
        choices=sorted(GRID_HALVES),
        default="both",
        help="throttling-grid: only the cells whose 429s carry a Retry-After (yes) or not (no); a half is "
        "recorded as its own block (throttling-grid-retry-after, throttling-grid-no-retry-after)",
    )
    parser.add_argument("--webhook-rate", type=float, default=200, help="webhooks: open-loop webhooks/s")
    parser.add_argument("--webhook-seconds", type=float, default=30, help="webhooks: open-loop duration")
    parser.add_argument("--webhook-rounds", type=int, default=3, help="webhooks: rounds of the accept part")
    parser.add_argument("--burst-concurrency", type=int, default=16, help="webhooks: burst clients")
    parser.add_argument("--burst-seconds", type=float, default=10, help="webhooks: burst duration")
    parser.add_argument("--webhook-changes", type=int, default=60, help="webhooks: changes sent to Airflow")
    parser.add_argument(
        "--webhook-change-rate",
        type=float,
        action="append",
        help="webhooks: changes a second to Airflow (repeat for several paces; default 1 and 10)",
    )
    parser.add_argument("--webhook-runs", type=int, default=5, help="webhooks: changes timed to a DAG run")
    parser.add_argument("--no-airflow-stack", action="store_true", help="webhooks: the accept part only")
    parser.add_argument("--scale-orders", type=int, default=100_000, help="scale: orders per task")
    parser.add_argument("--scale-workers", type=int, default=8, help="scale: max_workers of the task")
    parser.add_argument(
        "--scale-kill-at",
        type=float,
        action="append",
        default=[],
        help="scale: kill the first try once this share of the orders is changed (repeatable; default "
        "0.01, 0.25, 0.5, 0.75)",
    )
    parser.add_argument("--sensor-orders", type=int, default=1000, help="sensor: orders waited on")
    parser.add_argument("--sensor-rounds", type=int, default=3, help="sensor: pokes of each mode")
    parser.add_argument(
        "--sensor-poke-interval", type=float, default=10, help="sensor: seconds between pokes"
    )
    parser.add_argument(
        "--no-record", action="store_true", help="print only; leave the doc and results alone"
    )
    parser.add_argument("--keep", action="store_true", help="keep the throwaway AIRFLOW_HOME (task log)")
    args = parser.parse_args(argv)
    parts = args.parts or list(PARTS)
    unknown = sorted(set(parts) - set(PARTS))
    if unknown:
        parser.error(f"unknown part(s) {', '.join(unknown)}; choose from {', '.join(PARTS)}")

    # A throwaway Airflow home, so nothing is read from or written to the user's.
    home = tempfile.mkdtemp(prefix="gooten-bench-airflow-home-")
    os.environ["AIRFLOW_HOME"] = home
    os.environ["AIRFLOW__CORE__LOAD_EXAMPLES"] = "False"
    os.environ.pop("AIRFLOW__CORE__UNIT_TEST_MODE", None)
    try:
        _run(args, parts)
    finally:
        if args.keep:
            print(f"\nkept {home}")
        else:
            shutil.rmtree(home, ignore_errors=True)
    return 0


def throughput_intro(result: Any, measured: dict[str, Any]) -> str:
    """The sentence above the throughput table."""
    return (
        f"{when_line(measured)} N = {result.orders} orders, {result.orders * 2} requests per run; latency "
        f"{1000 * result.latency:g} ms per request, +{1000 * result.connect_latency:g} ms on each new "
        f"connection's first request; median of {len(result.rounds)} round(s); ratios are computed "
        "within each round, then the median is taken." + _against_threaded(result)
    )


def _against_threaded(result: Any) -> str:
    """The reference held against the best plain threaded client of the same round (issue 19's target)."""
    ratio = result.against_threaded()
    if ratio is None:
        return ""
    return (
        f" The operator at 8 workers took {ratio:.2f}x the time of the best plain threaded client (8 "
        "threads) of the same round (target: at most 1.25x)."
    )


def airflow_intro(result: Any, measured: dict[str, Any]) -> str:
    """The sentence above the In-Airflow table."""
    summary = {row["dag_id"]: row for row in result.summary()}
    batch, mapped = summary["gooten_bench_batch"], summary["gooten_bench_mapped"]
    runs = batch["runs"]
    return (
        f"{when_line(measured)} {result.orders} orders, the same server settings; median of {runs} run(s) "
        f"each; `airflow db migrate` of the throwaway home took {result.migrate_seconds:.1f} s (once). "
        f"Mapped / batch: {mapped['wall_seconds'] / batch['wall_seconds']:.1f}x wall time, "
        f"{mapped['task_seconds_sum'] / batch['task_seconds_sum']:.1f}x summed task time."
    )


def _progress(line: str) -> None:
    """Print a part's progress line at once (a part runs for minutes)."""
    print(line, flush=True)


class PlottedPart(Protocol):
    """A part's module that tables, plots and serializes its result (``bench/throttling.py`` and kin)."""

    def format_table(self, result: dict[str, Any]) -> str: ...

    def plot(self, result: dict[str, Any], path: str) -> None: ...

    def to_json(self, result: dict[str, Any]) -> dict[str, Any]: ...


def _run_plotted(
    name: str,
    part: PlottedPart,
    run: Callable[[], dict[str, Any]],
    *,
    header: str,
    alt: str,
    image_first: bool = False,
    record_it: bool,
) -> None:
    """Run a part with a plot, print its table, and record it with docs/images/NAME.png (alt text ``alt``).

    The block is the run's date line, then the table and the image (the image first with ``image_first``).
    """
    print(f"\n{header}", flush=True)
    measured = when()
    result = run()
    table = part.format_table(result)
    print(table, flush=True)
    if not record_it:
        return
    part.plot(result, str(REPO_ROOT / "docs" / "images" / f"{name}.png"))
    image = f"![{alt}](images/{name}.png)"
    shown = [image, table] if image_first else [table, image]
    record(name, "\n\n".join([when_line(measured), *shown]), {"measured": measured, **part.to_json(result)})


def _run(args: argparse.Namespace, parts: list[str]) -> None:
    """Run the chosen parts."""

    info = machine()
    print(machine_block(info), flush=True)
    if not args.no_record:
        record("machine", machine_block(info), info)

    if "throughput" in parts:
        from bench import throughput

        print(
            f"\nThroughput: {args.orders} orders (read + write each), latency {1000 * args.latency:g} ms, "
            f"+{1000 * args.connect_latency:g} ms on a new connection, {args.rounds} round(s)",
            flush=True,
        )
        measured = when()
        result = throughput.run_throughput(
            orders=args.orders,
            rounds=args.rounds,
            latency=args.latency,
            connect_latency=args.connect_latency,
            only=args.only,
            progress=_progress,
            log_file=os.path.join(os.environ["AIRFLOW_HOME"], "bench-task.log"),
        )
        table = throughput.format_table(result)
        print(table, flush=True)
        intro = throughput_intro(result, measured)
        if not args.no_record:
            record("throughput", f"{intro}\n\n{table}", {"measured": measured, **result.to_json()})

    if "airflow" in parts:
        from bench import in_airflow

        print(
            f"\nIn Airflow: {args.airflow_orders} orders, batch task vs mapped task instances, "
            f"`airflow dags test`, {args.airflow_rounds} round(s)",
            flush=True,
        )
        measured = when()
        result_af = in_airflow.run_in_airflow(
            orders=args.airflow_orders,
            rounds=args.airflow_rounds,
            latency=args.latency,
            connect_latency=args.connect_latency,
            progress=_progress,
        )
        table = in_airflow.format_table(result_af)
        print(table, flush=True)
        intro = airflow_intro(result_af, measured)
        if not args.no_record:
            record("airflow", f"{intro}\n\n{table}", {"measured": measured, **result_af.to_json()})

    if "throttling" in parts:
        from bench import throttling

        _run_plotted(
            "throttling",
            throttling,
            lambda: throttling.run_throttling(progress=_progress),
            header="Throttling: the operator against a rate-limited account, before and after",
            alt="Useful throughput and 429s against max_workers",
            record_it=not args.no_record,
        )

    if "throttling-grid" in parts:
        from bench import throttling_grid

        name, retry_afters = GRID_HALVES[args.grid_retry_after]
        _run_plotted(
            name,
            throttling_grid,
            lambda: throttling_grid.run_grid(
                seconds=args.grid_seconds, retry_afters=retry_afters, progress=_progress
            ),
            header="Throttling grid: the pace against every limit of the grid, each cell against the targets",
            alt="Each cell of the grid: useful throughput against the share of requests answered 429, the "
            "target regions marked",
            image_first=True,
            record_it=not args.no_record,
        )

    if "shared-pace" in parts:
        from bench import shared_pace

        _run_plotted(
            "shared-pace",
            shared_pace,
            lambda: shared_pace.run_shared_pace(orders=args.shared_orders, progress=_progress),
            header="Throttling, several tasks on one account: each its own pace, then shared",
            alt="Several tasks on one account, with and without a shared pace",
            record_it=not args.no_record,
        )

    if "startup" in parts:
        from bench import startup

        print(f"\nStartup: import and parse times, {args.samples} fresh process(es) each", flush=True)
        measured = when()
        result_st = startup.run_startup(samples=args.samples, progress=_progress)
        tables = startup.format_tables(result_st)
        print(tables, flush=True)
        if not args.no_record:
            record(
                "startup", f"{when_line(measured)}\n\n{tables}", {"measured": measured, **result_st.to_json()}
            )

    if "webhooks" in parts:
        from bench import webhooks

        print("\nWebhooks: the relay's accept rate and latency, and the delay to Airflow", flush=True)
        measured = when()
        accept = webhooks.run_accept(
            rounds=args.webhook_rounds,
            rate=args.webhook_rate,
            seconds=args.webhook_seconds,
            burst_concurrency=args.burst_concurrency,
            burst_seconds=args.burst_seconds,
            progress=_progress,
        )
        to_airflow = None
        if not args.no_airflow_stack:
            to_airflow = webhooks.run_to_airflow(
                changes=args.webhook_changes,
                rates=args.webhook_change_rate or [1.0, 10.0],
                runs=args.webhook_runs,
                progress=_progress,
            )
        tables = webhooks.format_tables(accept, to_airflow)
        print(tables, flush=True)
        if not args.no_record:
            data = {"measured": measured, "accept": accept.to_json()}
            data["to_airflow"] = to_airflow.to_json() if to_airflow else None
            record("webhooks", f"{when_line(measured)}\n\n{tables}", data)
    if "webhooks-postgres" in parts:
        from bench import webhooks

        print("\nWebhooks to Airflow on PostgreSQL with Celery (make airflow EXECUTOR=celery)", flush=True)
        measured = when()
        to_postgres = webhooks.run_to_airflow(
            changes=args.webhook_changes,
            rates=args.webhook_change_rate or [1.0, 10.0],
            runs=args.webhook_runs,
            progress=_progress,
            options=("--executor", "celery"),
        )
        tables = webhooks.format_tables(
            None,
            to_postgres,
            "the stack of `make airflow EXECUTOR=celery` (PostgreSQL, Redis, two Celery workers)",
        )
        print(tables, flush=True)
        if not args.no_record:
            data = {"measured": measured, "to_airflow": to_postgres.to_json()}
            record("webhooks-postgres", f"{when_line(measured)}\n\n{tables}", data)
    if "scale" in parts:
        from bench import scale

        print(f"\nScale: {args.scale_orders} orders in one task, and crashes then retries", flush=True)
        measured = when()
        result_sc = scale.run_scale(
            orders=args.scale_orders,
            workers=args.scale_workers,
            progress=_progress,
            kill_at=tuple(args.scale_kill_at) or scale.KILL_AT,
        )
        tables = scale.format_tables(result_sc)
        print(tables, flush=True)
        if not args.no_record:
            intro = (
                f"{when_line(measured)} {result_sc.orders:,} orders `New` -> `Hold` in one task, "
                f"`max_workers={result_sc.workers}`, the local API with no latency in its own process."
            )
            record("scale", f"{intro}\n\n{tables}", {"measured": measured, **result_sc.to_json()})

    if "sensor" in parts:
        from bench import sensor

        print(
            f"\nSensor: one wait over {args.sensor_orders} held orders, deferred vs reschedule mode",
            flush=True,
        )
        measured = when()
        result_se = sensor.run_sensor(
            orders=args.sensor_orders,
            rounds=args.sensor_rounds,
            poke_interval=args.sensor_poke_interval,
            latency=args.latency,
            connect_latency=args.connect_latency,
            progress=_progress,
        )
        table_se = sensor.format_table(result_se)
        print(table_se, flush=True)
        if not args.no_record:
            record("sensor", f"{when_line(measured)}\n\n{table_se}", {"measured": measured, **result_se})

    if "export" in parts:
        from bench import export

        print(
            "\nExport: N orders to object storage against a local API throttled at R requests/s", flush=True
        )
        measured = when()
        runs = export.run_export(progress=_progress)
        table_ex = export.format_table(runs)
        print(table_ex, flush=True)
        if not args.no_record:
            intro = (
                f"{when_line(measured)} `GootenOrdersToObjectStorageOperator`, default fields, gzip, to a "
                f"local folder; the local API in its own process, orders created over {export.DAYS} days, no "
                "latency but the throttle's; each export in a fresh process."
            )
            record(
                "export",
                f"{intro}\n\n{table_ex}",
                {"measured": measured, "runs": [run.to_json() for run in runs]},
            )


if __name__ == "__main__":
    sys.exit(main())
