"""Scale: 100,000 orders in one operator task, and crashes (early, half-way, ...) each followed by a retry.

Each task try runs in a fresh process of its own (``python -m bench.scale --child``), so that its memory
is its own: the baseline is the resident set just before ``execute()`` (Airflow and the provider imported,
the order ids in memory, as a task holds them once its arguments are rendered); the peak is the process's
``ru_maxrss`` at the end. The task log goes to a file, as in a worker, and its lines are counted. The local
Gooten API runs in another process, with no latency, so that the provider's own cost is what is measured.

Runs:

* ``results_path``: every order ``New`` -> ``Hold``, records in a JSON Lines folder, the summary in XCom;
* ``without results_path``: the same with every record in XCom (the behaviour kept for small batches);
* ``crash at N%`` (:data:`KILL_AT`: early in the batch, a quarter, half-way, three quarters): a try is
  killed with SIGKILL once that share of the orders is changed, then a retry (try 2, same ``results_path``)
  finishes the batch. The requests the retry sends are compared with a full run's, and the orders it reads
  again although the killed try had changed them are counted: ideally only those whose write was in flight
  (at most ``max_workers``).
"""

from __future__ import annotations

import json
import os
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from bench.api_process import ApiProcess

REPO_ROOT = Path(__file__).resolve().parent.parent
TARGET = "Hold"
#: When the first try is killed: the share of the orders changed by then.
KILL_AT: tuple[float, ...] = (0.01, 0.25, 0.5, 0.75)
MiB = 1024 * 1024


@dataclass
class TaskTry:
    """What one task try measured of itself, and what the server saw."""

    name: str
    orders: int
    returned: str
    baseline_rss_mib: float
    peak_rss_mib: float
    xcom_bytes: int
    log_lines: int
    wall_seconds: float
    cpu_seconds: float
    requests: int
    counts: dict[str, int] = field(default_factory=dict)

    @property
    def peak_over_baseline_mib(self) -> float:
        """Peak resident memory above the baseline."""
        return self.peak_rss_mib - self.baseline_rss_mib


@dataclass
class Crash:
    """One try killed with SIGKILL, and the retry that finished its batch."""

    kill_at: float
    #: Orders the killed try had changed (the server applied their write).
    changed_when_killed: int
    #: Records in the killed try's folder after the kill.
    records_when_killed: int
    #: Orders the killed try had changed that the retry read again (ideally those whose write was in flight).
    read_again: int
    retry: TaskTry


@dataclass
class ScaleResult:
    """The full runs and the crash-and-retry runs."""

    orders: int
    workers: int
    runs: list[TaskTry] = field(default_factory=list)
    crashes: list[Crash] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        """Everything, for bench/results/scale.json."""
        return {
            "orders": self.orders,
            "workers": self.workers,
            "runs": [asdict(r) | {"peak_over_baseline_mib": r.peak_over_baseline_mib} for r in self.runs],
            "crashes": [asdict(crash) for crash in self.crashes],
        }


def _rss_mib() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


class _TaskInstance:
    def __init__(self, try_number: int) -> None:
        self.try_number = try_number
        self.pushed: Any = None

    def xcom_push(self, key: str, value: Any) -> None:
        self.pushed = value


def child(args: dict[str, Any]) -> None:
    """One task try: run the operator, write what it measured to ``args["report"]``."""
    from airflow.sdk.log import configure_logging

    from gooten_provider.operators.gooten import GootenOrderStatusOperator

    configure_logging(log_level="INFO", output=open(args["log"], "a", encoding="utf-8"))
    order_ids = Path(args["ids"]).read_text().split()
    operator = GootenOrderStatusOperator(
        task_id="change",
        order_ids=order_ids,
        status=TARGET,
        max_workers=args["workers"],
        results_path=args.get("results_path"),
    )
    ti = _TaskInstance(args["try_number"])
    baseline = _rss_mib()
    started, cpu = time.monotonic(), time.process_time()
    try:
        value: Any = operator.execute({"ti": ti})  # type: ignore[arg-type]
    except Exception:
        value = ti.pushed
    wall, cpu_used = time.monotonic() - started, time.process_time() - cpu
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    if isinstance(value, dict):
        counts = value["counts"]
    else:
        counts = {}
        for record in value or []:
            counts[record["outcome"]] = counts.get(record["outcome"], 0) + 1
    report = {
        "baseline_rss_mib": baseline,
        "peak_rss_mib": peak,
        "xcom_bytes": len(json.dumps(value).encode()),
        "returned": "summary" if isinstance(value, dict) else "records",
        "wall_seconds": wall,
        "cpu_seconds": cpu_used,
        "counts": {k: v for k, v in counts.items() if v},
    }
    Path(args["report"]).write_text(json.dumps(report))


def _start_try(workdir: Path, name: str, ids_file: Path, env: dict[str, str], **args: Any) -> tuple:
    paths = {key: str(workdir / f"{name}.{key}") for key in ("log", "report")}
    payload = {"ids": str(ids_file), **paths, **args}
    process = subprocess.Popen(
        [sys.executable, "-m", "bench.scale", "--child", json.dumps(payload)],
        cwd=REPO_ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
    )
    return process, paths


def _finish_try(
    name: str, orders: int, process: subprocess.Popen[bytes], paths: dict[str, str], api: ApiProcess
) -> TaskTry:
    if process.wait() != 0:
        raise RuntimeError(f"{name}: the task process exited with {process.returncode}")
    report = json.loads(Path(paths["report"]).read_text())
    lines = sum(1 for _ in open(paths["log"], encoding="utf-8"))
    return TaskTry(name=name, orders=orders, log_lines=lines, requests=api.stats()["requests"], **report)


def run_scale(
    orders: int = 100_000,
    workers: int = 8,
    progress: Callable[[str], None] = print,
    kill_at: tuple[float, ...] = KILL_AT,
) -> ScaleResult:
    """Measure the full runs, then each crash and its retry."""
    workdir = Path(tempfile.mkdtemp(prefix="gooten-bench-scale-"))
    try:
        return _run_scale(orders, workers, progress, workdir, kill_at)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def _run_scale(
    orders: int, workers: int, progress: Callable[[str], None], workdir: Path, kill_at: tuple[float, ...]
) -> ScaleResult:
    result = ScaleResult(orders=orders, workers=workers)
    with ApiProcess(latency=0.0, connect_latency=0.0) as api:
        env = {
            **os.environ,
            "AIRFLOW_CONN_GOOTEN_DEFAULT": json.dumps(api.connection_config()),
            "PYTHONWARNINGS": "ignore",
        }

        def fresh_orders(name: str) -> Path:
            ids_file = workdir / f"{name}.ids"
            ids_file.write_text("\n".join(api.add_orders(orders, "New")))
            api.clear_journal()
            return ids_file

        for name, results_path in (
            ("results_path", (workdir / "full-results").as_uri()),
            ("without results_path", None),
        ):
            ids_file = fresh_orders(name.replace(" ", "-"))
            progress(f"  {name}: {orders} orders ...")
            process, paths = _start_try(
                workdir, name.replace(" ", "-"), ids_file, env, workers=workers, try_number=1,
                results_path=results_path,
            )  # fmt: skip
            run = _finish_try(name, orders, process, paths, api)
            result.runs.append(run)
            progress(
                f"    {run.wall_seconds:.0f} s, peak {run.peak_over_baseline_mib:.0f} MiB over baseline, "
                f"XCom {run.xcom_bytes} bytes, {run.log_lines} log lines, {run.requests} requests"
            )

        for share in kill_at:
            ids_file = fresh_orders(f"crash-{share:g}")
            result.crashes.append(_crash(share, orders, workers, ids_file, workdir, env, api, progress))
    return result


def _crash(
    share: float,
    orders: int,
    workers: int,
    ids_file: Path,
    workdir: Path,
    env: dict[str, str],
    api: ApiProcess,
    progress: Callable[[str], None],
) -> Crash:
    """Kill a first try once ``share`` of the orders are changed, retry, and check every order is done."""
    from gooten_provider.batch.results_reader import attempts, iter_records

    name = f"crash at {100 * share:g}%"
    folder = workdir / f"crash-{share:g}-results"
    kill_after = max(1, int(orders * share))
    progress(f"  {name}: {orders} orders, SIGKILL once {kill_after} are changed ...")
    process, _ = _start_try(
        workdir, f"crash-{share:g}-try-1", ids_file, env, workers=workers, try_number=1,
        results_path=folder.as_uri(),
    )  # fmt: skip
    while api.stats()["applied_writes"] < kill_after:
        if process.poll() is not None:
            raise RuntimeError(f"{name}: the first try ended before it could be killed")
        time.sleep(0.05)
    process.send_signal(signal.SIGKILL)
    process.wait()
    time.sleep(0.5)  # the requests it had sent are answered
    changed = api.order_ids(applied_only=True)
    (first_folder,) = attempts(folder)
    recorded = sum(1 for _ in iter_records(first_folder))
    api.clear_journal()
    process, paths = _start_try(
        workdir, f"crash-{share:g}-try-2", ids_file, env, workers=workers, try_number=2,
        results_path=folder.as_uri(),
    )  # fmt: skip
    retry = _finish_try(f"retry after a {name}", orders, process, paths, api)
    read_again = len(api.order_ids() & changed)
    statuses = api.item_statuses(Path(ids_file).read_text().split())
    not_held = [i for i, s in statuses.items() if s != [TARGET] * len(s)]
    if not_held or retry.counts.get("updated") != orders:
        raise RuntimeError(f"{name}: {len(not_held)} order(s) not {TARGET}, counts {retry.counts}")
    progress(
        f"    killed after {len(changed)} changes ({recorded} records written); the retry sent "
        f"{retry.requests} requests and read {read_again} changed order(s) again"
    )
    return Crash(share, len(changed), recorded, read_again, retry)


def format_tables(result: ScaleResult) -> str:
    """The Markdown tables of docs/performance.md."""
    lines = [
        "| run | returned | peak RSS over baseline | XCom return value | task log lines | wall time "
        "| time per order | CPU per order | requests |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for run in result.runs:
        lines.append(
            f"| {run.name} | {run.returned} | {run.peak_over_baseline_mib:.0f} MiB "
            f"(baseline {run.baseline_rss_mib:.0f} MiB) | {run.xcom_bytes / 1024:,.1f} KiB "
            f"| {run.log_lines:,} | {run.wall_seconds:.0f} s | {1e6 * run.wall_seconds / run.orders:.0f} µs "
            f"| {1e6 * run.cpu_seconds / run.orders:.0f} µs | {run.requests:,} |"
        )
    full = next(run for run in result.runs if run.name == "results_path")
    if result.crashes:
        lines += [
            "",
            "| SIGKILL once this share was changed | orders changed | records written | retry's requests "
            "| retry / full run | changed orders read again | retry's wall time, peak RSS over baseline |",
            "|---|---:|---:|---:|---:|---:|---:|",
        ]
    for crash in result.crashes:
        retry = crash.retry
        lines.append(
            f"| {100 * crash.kill_at:g}% | {crash.changed_when_killed:,} | {crash.records_when_killed:,} "
            f"| {retry.requests:,} | {100 * retry.requests / full.requests:.1f}% | {crash.read_again:,} "
            f"| {retry.wall_seconds:.0f} s, {retry.peak_over_baseline_mib:.0f} MiB |"
        )
    if result.crashes:
        lines.append("")
        lines.append(
            f"A full run sent {full.requests:,} requests. Every retry ended with every order `updated` "
            "(records of both tries) and every order held at the server."
        )
    return "\n".join(lines)


if __name__ == "__main__":
    if sys.argv[1:2] == ["--child"]:
        child(json.loads(sys.argv[2]))
    else:
        scale = run_scale(orders=int(sys.argv[1]) if len(sys.argv) > 1 else 100_000)
        print(format_tables(scale))
