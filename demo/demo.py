"""``make demo``: run ``gooten_dq_hold_cancel`` for real against a local Gooten API and a SQLite warehouse.

Everything happens on this machine, on 127.0.0.1, in a throwaway directory:

1. builds a SQLite warehouse holding a batch of demo orders (``dags/gooten_examples/seed.py``);
2. starts the local Gooten API (``gooten_provider.testing.GootenApiServer``) holding the same orders;
3. migrates a throwaway Airflow metadata DB and runs ``airflow dags test gooten_dq_hold_cancel`` with
   the ``gooten_default`` and ``gooten_warehouse`` connections set as environment variables (on
   Airflow 3.0, ``airflow dags reserialize`` first: its ``dags test`` reads the DAG from the DB);
4. prints each order: the rules it failed, the action, its Gooten status before -> after, the outcome;
5. stops the API and removes the directory (kept, with Airflow's output, when the run failed).

Exit code 0 only when the Airflow run succeeded. Options: ``--dry-run`` (trigger with
``{"dry_run": true}``), ``--stale-batch`` (load the batch three days ago: the freshness check fails, so
the run fails and no order is touched), ``--keep`` (keep the directory), ``--verbose`` (show Airflow's
output).
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import json
import os
import re
import secrets
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parent.parent
DAGS_FOLDER = REPO_ROOT / "dags"
DAG_ID = "gooten_dq_hold_cancel"
TAIL_LINES = 60
EXCEPTION_LINE = re.compile(r"^[\w.]+(Exception|Error): ")
LOG_LINE = re.compile(r"^\d{4}-\d\d-\d\dT")
LEGEND = """\
  updated     Gooten now shows the new status
  unchanged   Gooten already showed it: nothing was sent
  ineligible  Gooten no longer allows a change (in production, shipped, on Hold): reported, not failed
  dry_run     nothing was sent (--dry-run): the order was only read
Every outcome is also in the warehouse table gooten_status_audit."""

sys.path.insert(0, str(DAGS_FOLDER))  # gooten_examples, as Airflow itself does for the DAG bundle

from gooten_examples.audit import status_text  # noqa: E402
from gooten_examples.seed import (  # noqa: E402
    SeedOrder,
    build_sqlite_warehouse,
    demo_orders,
    gooten_order_specs,
    short_id,
    warehouse_connection,
)

from gooten_provider.testing import GootenApiServer  # noqa: E402


def airflow_env(home: Path, api: GootenApiServer, warehouse: Path) -> dict[str, str]:
    """The environment of the Airflow commands: a throwaway home and both connections, nothing inherited."""
    env = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith(("AIRFLOW_", "AIRFLOW__")) and name != "AIRFLOW_HOME"
    }
    env.update(
        {
            "AIRFLOW_HOME": str(home),
            "AIRFLOW__CORE__DAGS_FOLDER": str(DAGS_FOLDER),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__API_AUTH__JWT_SECRET": secrets.token_urlsafe(64),
            "AIRFLOW_CONN_GOOTEN_WAREHOUSE": json.dumps(warehouse_connection(warehouse)),
            # the example DAGs' results files, next to the warehouse (dags/gooten_examples/results.py)
            "AIRFLOW_VAR_GOOTEN_RESULTS_ROOT": (warehouse.parent / "results").as_uri(),
            "PYTHONWARNINGS": "ignore",
        }
    )
    env.update(api.connection_env("gooten_default"))
    return env


def run_step(label: str, command: Sequence[str], env: Mapping[str, str], log: Path, verbose: bool) -> int:
    """Run one Airflow command, output appended to ``log`` (or shown with ``verbose``); return its code."""
    print(f"  {label} ".ljust(56, "."), end=" ", flush=True)
    started = time.monotonic()
    with log.open("a", encoding="utf-8") as out:
        out.write(f"\n$ {' '.join(command)}\n")
        out.flush()
        completed = subprocess.run(  # noqa: S603 - our own venv's airflow, fixed arguments
            list(command),
            env=dict(env),
            cwd=REPO_ROOT,
            stdout=None if verbose else out,
            stderr=subprocess.STDOUT if not verbose else None,
            check=False,
        )
    verdict = "ok" if completed.returncode == 0 else f"FAILED (exit code {completed.returncode})"
    print(f"{verdict} ({time.monotonic() - started:.1f} s)", flush=True)
    return completed.returncode


def read_audit(warehouse: Path) -> dict[str, dict[str, Any]]:
    """The audit rows of the run, by order id (empty when the table was never written)."""
    connection = sqlite3.connect(warehouse)
    connection.row_factory = sqlite3.Row
    try:
        rows = connection.execute("SELECT * FROM gooten_status_audit ORDER BY order_id").fetchall()
    except sqlite3.OperationalError:
        return {}
    finally:
        connection.close()
    return {row["order_id"]: dict(row) for row in rows}


def order_table(
    orders: Sequence[SeedOrder],
    before: Mapping[str, list[str]],
    after: Mapping[str, list[str]],
    audit: Mapping[str, Mapping[str, Any]],
) -> str:
    """The result table: one line per order of the batch."""
    header = ("order", "shop order", "rules hit", "action", "Gooten before -> after", "outcome")
    rows = []
    for order in orders:
        row = audit.get(order.order_id, {})
        rows.append(
            (
                short_id(order.order_id),
                order.source_id,
                row.get("rules") or "-",
                "Cancel" if row.get("action") == "Cancelled" else row.get("action") or "-",
                f"{status_text(before[order.order_id])} -> {status_text(after[order.order_id])}",
                row.get("outcome") or "-",
            )
        )
    widths = [max(len(str(cell)) for cell in column) for column in zip(header, *rows, strict=True)]
    lines = ["  ".join(cell.ljust(width) for cell, width in zip(header, widths, strict=True)).rstrip()]
    lines.append("  ".join("-" * width for width in widths))
    lines.extend(
        "  ".join(str(c).ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in rows
    )
    return "\n".join(lines)


def summary(audit: Mapping[str, Mapping[str, Any]], total: int) -> str:
    """One sentence on what happened to the orders that failed a rule."""
    counts: dict[tuple[str, str], int] = {}
    for row in audit.values():
        key = (row["action"], row["outcome"])
        counts[key] = counts.get(key, 0) + 1
    words = {
        ("Hold", "updated"): "held",
        ("Cancelled", "updated"): "cancelled",
        ("Hold", "unchanged"): "already on hold",
        ("Cancelled", "unchanged"): "already cancelled",
        ("Hold", "ineligible"): "could not be held any more",
        ("Cancelled", "ineligible"): "could not be cancelled any more",
        ("Hold", "dry_run"): "would be held (dry run)",
        ("Cancelled", "dry_run"): "would be cancelled (dry run)",
    }
    parts = [
        f"{n} {words.get(key, ' '.join(key))}" for key, n in sorted(counts.items(), key=lambda kv: -kv[1])
    ]
    return f"{len(audit)} of {total} orders failed a rule: " + (", ".join(parts) or "none") + "."


def tail(path: Path, lines: int = TAIL_LINES) -> str:
    """The last lines of a text file."""
    text = path.read_text(encoding="utf-8", errors="replace").splitlines()
    return "\n".join(text[-lines:])


def errors(path: Path, context: int = 30) -> str:
    """The exception lines of a captured Airflow output (each with its message's following lines)."""
    lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
    found: list[str] = []
    for index, line in enumerate(lines):
        if EXCEPTION_LINE.match(line):
            message = [line]
            for following in lines[index + 1 : index + context]:
                if LOG_LINE.match(following):
                    break
                message.append(following)
            found.append("\n".join(message))
    return "\n\n".join(found)


def dags_test_reads_the_db() -> bool:
    """Whether ``airflow dags test`` finds a DAG only once it is serialized in the metadata DB (3.0)."""
    from importlib.metadata import version

    from packaging.version import Version

    return Version(version("apache-airflow")) < Version("3.1")


def main(argv: Sequence[str] | None = None) -> int:
    """Run the demo; return the exit code (0 only when the Airflow run succeeded)."""
    parser = argparse.ArgumentParser(prog="make demo", description=__doc__.split("\n\n")[0])
    parser.add_argument("--dry-run", action="store_true", help='trigger with {"dry_run": true}')
    parser.add_argument(
        "--stale-batch",
        action="store_true",
        help="load the batch 3 days ago: the freshness check fails and no order is touched",
    )
    parser.add_argument("--keep", action="store_true", help="keep the throwaway directory")
    parser.add_argument("--verbose", action="store_true", help="show Airflow's own output")
    args = parser.parse_args(argv)

    airflow = Path(sys.executable).with_name("airflow")
    workdir = Path(tempfile.mkdtemp(prefix="gooten-demo-"))
    log = workdir / "airflow-output.log"
    keep = args.keep
    succeeded = False
    try:
        now = dt.datetime.now(dt.UTC)
        orders = demo_orders()
        loaded = orders
        if args.stale_batch:
            loaded = [dataclasses.replace(order, loaded_minutes_ago=3 * 24 * 60) for order in orders]
        warehouse = build_sqlite_warehouse(workdir / "warehouse.db", loaded, now)
        with GootenApiServer(orders=gooten_order_specs(orders, now)) as api:
            print(f"Gooten demo: {DAG_ID}, hold or cancel orders that fail data-quality checks\n")
            print(f"  local Gooten API   {api.base_url} ({len(orders)} orders; test credentials)")
            print(f"  warehouse          SQLite, {len(orders)} orders in the batch: {warehouse}")
            print(f"  Airflow home       {workdir / 'airflow-home'} (throwaway)\n")
            before = {order.order_id: api.item_statuses(order.order_id) for order in orders}
            env = airflow_env(workdir / "airflow-home", api, warehouse)
            code = run_step("airflow db migrate", [str(airflow), "db", "migrate"], env, log, args.verbose)
            if code == 0 and dags_test_reads_the_db():
                command = [str(airflow), "dags", "reserialize"]
                code = run_step("airflow dags reserialize", command, env, log, args.verbose)
            if code == 0:
                command = [str(airflow), "dags", "test", DAG_ID]
                if args.dry_run:
                    command += ["--conf", json.dumps({"dry_run": True})]
                code = run_step(f"airflow dags test {DAG_ID}", command, env, log, args.verbose)
            after = {order.order_id: api.item_statuses(order.order_id) for order in orders}
        audit = read_audit(warehouse)
        succeeded = code == 0 and bool(audit)
        print()
        print(order_table(orders, before, after, audit))
        print()
        if audit:
            print(summary(audit, len(orders)))
            print(LEGEND)
        else:
            print("No audit row was written: the run stopped before deciding anything, no order was touched.")
        if not succeeded:
            keep = True
            if not args.verbose:
                print("\nThe Airflow run failed. The errors it reported:\n")
                print(errors(log) or tail(log))
            print(f"\nDemo FAILED. Airflow's full output: {log}")
        return 0 if succeeded else 1
    finally:
        if keep:
            print(f"Kept {workdir}.")
        else:
            shutil.rmtree(workdir, ignore_errors=True)
        print(f"Stopped the local Gooten API{'' if keep else f' and removed {workdir}'}.")


if __name__ == "__main__":
    sys.exit(main())
