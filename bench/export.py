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
"""

from __future__ import annotations

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


def _one_run(
    orders: int, rate: float, told: bool, workdir: Path, progress: Callable[[str], None]
) -> ExportRun:
    with ApiProcess(rate_limit=rate, retry_after=1.0) as api:
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
    shutil.rmtree(output, ignore_errors=True)
    return run


def run_export(
    runs: Sequence[tuple[int, float, bool]] = RUNS, progress: Callable[[str], None] = print
) -> list[ExportRun]:
    """Run every ``(N, R, told)`` export."""
    workdir = Path(tempfile.mkdtemp(prefix="gooten-bench-export-"))
    try:
        return [_one_run(orders, rate, told, workdir, progress) for orders, rate, told in runs]
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


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--child":
        child(json.loads(sys.argv[2]))
    else:
        for line in format_table(run_export()).splitlines():
            print(line)
