"""Export: N orders exported by ``GootenOrdersToObjectStorageOperator`` against a local API throttled at R/s.

The local API (in its own process) holds N realistic orders created over a week (``add_orders_over_days``)
and throttles the account like a gateway at R requests per second (burst: one second's worth). Each export
runs in a fresh process of its own (``python -m bench.export --child``), so its memory is its own: the
baseline is the resident set just before ``execute()``, the peak the process's ``ru_maxrss`` at the end.
The export writes gzipped JSON Lines parts to a local folder (``file://``), default fields.

Targets (issue 21): requests sent (429s included) <= ceil(N / 100) + 2; wall time within 1.1x of
requests / R; peak memory under 100 MB over the baseline, whatever N. Two pacings are measured: the task
told the account's rate (``requests_per_second=R``, as a team that knows its limit sets it), and not told
(the connection's adaptive rate, learning R from the 429s it earns).

``python -m bench.export`` runs every run of :data:`RUNS` and prints the table;
``python -m bench.export --run N R adaptive --burst B --timeline`` runs one export and prints when each 429
came (the server's journal), to tell the pacer's course: the slow start's end, the cuts after it, the probes.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import math
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from bench.api_process import ApiProcess
from bench.scale import _rss_mib

REPO_ROOT = Path(__file__).resolve().parent.parent
FIRST_DAY = dt.date(2025, 3, 1)
DAYS = 7
#: ``(N orders, R requests per second, told the rate)`` of each run.
RUNS: tuple[tuple[int, float, bool], ...] = (
    (10_000, 10, True),
    (10_000, 20, True),
    (100_000, 10, True),
    (100_000, 20, True),
    (100_000, 40, True),
    (100_000, 20, False),
)


@dataclass
class ExportRun:
    """One export: what it wrote, what the server saw, and what the process measured of itself."""

    orders: int
    rate_limit: float
    told_rate: bool
    exported: int
    requests: int
    throttled: int
    wall_seconds: float
    cpu_seconds: float
    baseline_rss_mib: float
    peak_rss_mib: float
    parts: int
    bytes_written: int
    xcom_bytes: int

    @property
    def request_budget(self) -> int:
        """ceil(N / 100) + 2."""
        return math.ceil(self.orders / 100) + 2

    @property
    def wall_over_ideal(self) -> float:
        """Wall time over requests / R."""
        return self.wall_seconds / (self.requests / self.rate_limit)

    @property
    def peak_over_baseline_mib(self) -> float:
        """Peak resident memory above the baseline."""
        return self.peak_rss_mib - self.baseline_rss_mib

    @property
    def passed(self) -> bool:
        """Every target met."""
        return (
            self.exported == self.orders
            and self.requests <= self.request_budget
            and self.wall_over_ideal <= 1.1
            and self.peak_over_baseline_mib < 100
        )

    def to_json(self) -> dict[str, Any]:
        """Everything, derived figures included."""
        return asdict(self) | {
            "request_budget": self.request_budget,
            "wall_over_ideal": self.wall_over_ideal,
            "peak_over_baseline_mib": self.peak_over_baseline_mib,
            "passed": self.passed,
        }


def child(args: dict[str, Any]) -> None:
    """One export try: run the operator, write what it measured to ``args["report"]``."""
    from airflow.sdk.log import configure_logging

    from gooten_provider.transfers.orders_to_object_storage import GootenOrdersToObjectStorageOperator

    configure_logging(log_level="INFO", output=open(args["log"], "a", encoding="utf-8"))
    operator = GootenOrdersToObjectStorageOperator(
        task_id="export",
        output_path=args["output"],
        created_from=FIRST_DAY.isoformat(),
        created_to=(FIRST_DAY + dt.timedelta(days=DAYS - 1)).isoformat(),
        requests_per_second=args["requests_per_second"],
    )
    baseline = _rss_mib()
    started, cpu = time.monotonic(), time.process_time()
    summary = operator.execute({})  # type: ignore[arg-type]
    wall, cpu_used = time.monotonic() - started, time.process_time() - cpu
    report = {
        "exported": summary["orders"],
        "parts": summary["parts"],
        "wall_seconds": wall,
        "cpu_seconds": cpu_used,
        "baseline_rss_mib": baseline,
        "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "xcom_bytes": len(json.dumps(summary).encode()),
    }
    Path(args["report"]).write_text(json.dumps(report))


def throttle_timeline(timeline: Sequence[tuple[float, bool]]) -> list[str]:
    """One line per 429 the server answered: when it came, and what the gateway let through before it.

    :param timeline: ``(started, throttled)`` per request, as :meth:`ApiProcess.timeline` returns it (in any
        order). Times are printed in seconds after the first request; each line counts the requests accepted
        since the previous 429 (or the first request) and their rate, and a last line the same after the last
        429, so a run's 429s read as the pacer's course.
    """
    requests = sorted(timeline)
    if not requests:
        return ["no requests"]
    first = since = requests[0][0]
    accepted, refusals, lines = 0, 0, []
    for started, throttled in requests:
        if not throttled:
            accepted += 1
            continue
        refusals += 1
        span = started - since
        rate = f"{accepted / span:.1f}/s" if span > 0 else "at once"
        origin = "the first request" if refusals == 1 else f"429 #{refusals - 1}"
        lines.append(
            f"t={started - first:8.2f} s  429 #{refusals}: {accepted} accepted since {origin} "
            f"over {span:.2f} s ({rate})"
        )
        accepted, since = 0, started
    last = requests[-1][0]
    tail = f" ({accepted / (last - since):.1f}/s)" if last > since else ""
    after = "the last 429" if refusals else "the first request (no 429)"
    lines.append(f"then {accepted} accepted over {last - since:.2f} s after {after}{tail}")
    return lines


def _one_run(
    orders: int,
    rate: float,
    told: bool,
    workdir: Path,
    progress: Callable[[str], None],
    *,
    burst: int | None = None,
    timeline: bool = False,
) -> ExportRun:
    with ApiProcess(rate_limit=rate, rate_burst=burst, retry_after=1.0) as api:
        api.add_orders_over_days(orders, FIRST_DAY, DAYS, seed=21)
        api.clear_journal()
        output = workdir / f"export-{orders}-{rate:g}-{told}"
        paths = {key: str(workdir / f"{output.name}.{key}") for key in ("log", "report")}
        env = os.environ.copy()
        env["AIRFLOW_CONN_GOOTEN_DEFAULT"] = json.dumps(api.connection_config(timeout=30))
        payload = {"output": output.as_uri(), "requests_per_second": rate if told else None, **paths}
        process = subprocess.run(
            [sys.executable, "-m", "bench.export", "--child", json.dumps(payload)],
            cwd=REPO_ROOT,
            env=env,
            stdout=subprocess.DEVNULL,
            check=False,
        )
        if process.returncode != 0:
            raise RuntimeError(f"the export process exited with {process.returncode}; see {paths['log']}")
        stats = api.stats()
        refusals = throttle_timeline(api.timeline()) if timeline else []
    report = json.loads(Path(paths["report"]).read_text())
    written = sum(path.stat().st_size for path in output.rglob("part-*.jsonl*"))
    run = ExportRun(
        orders=orders,
        rate_limit=rate,
        told_rate=told,
        requests=stats["requests"],
        throttled=stats["throttled"],
        bytes_written=written,
        **report,
    )
    progress(
        f"  N={orders:,} R={rate:g}/s {'told' if told else 'adaptive'}: {run.requests} requests "
        f"({run.throttled} throttled; budget {run.request_budget}), {run.wall_seconds:.1f} s "
        f"({run.wall_over_ideal:.3f}x requests/R), +{run.peak_over_baseline_mib:.1f} MiB peak"
    )
    for line in refusals:
        progress(f"    {line}")
    shutil.rmtree(output, ignore_errors=True)
    return run


def run_export(
    runs: Sequence[tuple[int, float, bool]] = RUNS,
    progress: Callable[[str], None] = print,
    *,
    burst: int | None = None,
    timeline: bool = False,
) -> list[ExportRun]:
    """Run every ``(N, R, told)`` export.

    :param burst: the gateway's burst (default: one second's worth of R).
    :param timeline: print each run's 429s (:func:`throttle_timeline`) after its line.
    """
    workdir = Path(tempfile.mkdtemp(prefix="gooten-bench-export-"))
    try:
        return [
            _one_run(orders, rate, told, workdir, progress, burst=burst, timeline=timeline)
            for orders, rate, told in runs
        ]
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def format_table(runs: Sequence[ExportRun]) -> str:
    """The runs as a Markdown table."""
    lines = [
        "| N orders | R (req/s) | pacing | requests (429s) | budget ceil(N/100)+2 | wall s "
        "| wall / (requests/R) | peak MiB over baseline | CPU ms per page | parts, MB written | targets |",
        "|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for run in runs:
        lines.append(
            f"| {run.orders:,} | {run.rate_limit:g} "
            f"| {'requests_per_second=R' if run.told_rate else 'adaptive'} "
            f"| {run.requests} ({run.throttled}) | {run.request_budget} | {run.wall_seconds:.1f} "
            f"| {run.wall_over_ideal:.3f} | {run.peak_over_baseline_mib:.1f} "
            f"| {1000 * run.cpu_seconds / max(1, run.requests - run.throttled):.1f} "
            f"| {run.parts}, {run.bytes_written / 1e6:.1f} | {'met' if run.passed else 'MISSED'} |"
        )
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> None:
    """Run :data:`RUNS` and print the table, or one ``--run`` and its line (with ``--timeline``, its 429s)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--run",
        nargs=3,
        metavar=("N", "R", "PACING"),
        help="one export: N orders, R requests/s, PACING 'told' (requests_per_second=R) or 'adaptive'",
    )
    parser.add_argument("--burst", type=int, help="the gateway's burst (default: one second's worth of R)")
    parser.add_argument("--timeline", action="store_true", help="print when each 429 came")
    args = parser.parse_args(argv)
    if args.run is None:
        runs = run_export(burst=args.burst, timeline=args.timeline)
        print(format_table(runs))
        return
    try:
        orders, rate = int(args.run[0]), float(args.run[1])
    except ValueError:
        parser.error(f"--run takes N (a whole number) and R (a number), not {args.run[0]!r} {args.run[1]!r}")
    pacing = args.run[2]
    if orders < 1 or not rate > 0 or pacing not in ("told", "adaptive"):
        parser.error(f"--run needs N >= 1, R > 0 and PACING 'told' or 'adaptive', not {' '.join(args.run)}")
    if args.burst is not None and args.burst < 1:
        parser.error(f"--burst must be 1 or more, not {args.burst}")
    run_export([(orders, rate, pacing == "told")], burst=args.burst, timeline=args.timeline)


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--child":
        child(json.loads(sys.argv[2]))
    else:
        main()
