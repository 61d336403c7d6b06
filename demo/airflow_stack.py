"""``make airflow``: a local Airflow with the Gooten example DAGs, a local Gooten API and a SQLite warehouse.

Starts, all on 127.0.0.1 and in ``.demo/airflow/`` (wiped at each start):

* the local Gooten API (``GootenApiServer``) and a SQLite warehouse, both holding the demo orders of
  ``dags/gooten_examples/seed.py``;
* Airflow's API server (UI) on http://127.0.0.1:8080, scheduler, dag-processor and triggerer, with the
  simple auth manager (user ``admin``, fixed password below), LocalExecutor with parallelism 4, log
  servers off (``--skip-serve-logs``: only the API server listens), connection testing enabled, and the
  ``gooten_default`` and ``gooten_warehouse`` connections set as environment variables
  (``gooten_default`` has ``admin_order_url`` set to the local API's read-only order page, so a task's
  "Gooten order" button opens something real);
* the webhook relay (``python -m gooten_provider.webhooks``) with a fresh token, logging in to Airflow as
  ``admin``; the local Gooten API sends its webhooks to it, so every item status change (an example DAG
  holding an order, or ``POST /admin/orders/<id>/status?status=Shipped``) becomes an event on the asset
  ``gooten://orders`` and a run of ``gooten_order_status_history``.

``--executor celery`` (``make airflow EXECUTOR=celery``) starts the production shape instead, still all on
127.0.0.1: a throwaway PostgreSQL cluster as the metadata database (:mod:`postgres_cluster`), a
``redis-server`` as the Celery broker and as the pace shared by every task of the Gooten account (the
``gooten_pace`` connection, named by ``gooten_default``'s ``rate_limit_conn_id`` extra), and two Celery
workers (``--worker-concurrency`` task slots each) in place of the LocalExecutor. ``--rate-limit`` throttles
the local Gooten API like a gateway, and ``--batch-orders`` adds orders in ``New`` for a big batch
(``gooten_bulk_order_status``).

It prints the URL and login once everything is healthy. Ctrl-C (or SIGTERM) stops all of it.
``--ready-file`` also writes the URLs and login as JSON once healthy, for scripts and tests (``tests/ui``).
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import FrameType

REPO_ROOT = Path(__file__).resolve().parent.parent
DAGS_FOLDER = REPO_ROOT / "dags"
DEFAULT_HOME = REPO_ROOT / ".demo" / "airflow"
HOST = "127.0.0.1"
USERNAME = "admin"
PASSWORD = "gooten-demo"  # noqa: S105 - a local sandbox on 127.0.0.1, printed on start
COMPONENTS: dict[str, list[str]] = {
    "api-server": ["api-server", "--host", HOST],  # the port is appended
    "scheduler": ["scheduler", "--skip-serve-logs"],
    "dag-processor": ["dag-processor"],
    "triggerer": ["triggerer", "--skip-serve-logs"],
}
RELAY = "webhook-relay"
EXECUTORS = ("local", "celery")
#: The Celery workers of ``--executor celery``: two, as two machines would run them.
CELERY_WORKERS = ("celery-worker-1", "celery-worker-2")
#: The connection of the pace shared through Redis (``--executor celery``), and its Redis database (the
#: Celery broker uses database 0).
PACE_CONN_ID = "gooten_pace"
PACE_REDIS_DB = 1
HEALTH_COMPONENTS = ("metadatabase", "scheduler", "triggerer", "dag_processor")

sys.path.insert(0, str(DAGS_FOLDER))  # gooten_examples, as Airflow itself does for the DAG bundle

from gooten_examples.seed import (  # noqa: E402
    build_sqlite_warehouse,
    demo_orders,
    gooten_order_specs,
    warehouse_connection,
)
from postgres_cluster import PostgresCluster  # noqa: E402 - demo/, beside this script

from gooten_provider.testing import GootenApiServer  # noqa: E402
from gooten_provider.testing.redis_server import LocalRedisServer  # noqa: E402
from gooten_provider.webhooks.settings import new_token  # noqa: E402


class Stop(Exception):
    """Raised by the signal handler to leave the wait loop."""


def port_is_free(port: int) -> bool:
    """Tell whether ``127.0.0.1:port`` can be bound."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        try:
            probe.bind((HOST, port))
        except OSError:
            return False
    return True


@dataclass
class CeleryServices:
    """What ``--executor celery`` runs besides Airflow: the metadata database and Redis."""

    postgres: PostgresCluster
    redis: LocalRedisServer
    worker_concurrency: int

    def env(self) -> dict[str, str]:
        """Airflow's settings for them (the metadata DB, the executor, the broker and result backend)."""
        broker = f"redis://:{self.redis.password}@{self.redis.url.removeprefix('redis://')}/0"
        return {
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": self.postgres.sqlalchemy_url,
            "AIRFLOW__CORE__EXECUTOR": "CeleryExecutor",
            "AIRFLOW__CORE__PARALLELISM": str(len(CELERY_WORKERS) * self.worker_concurrency),
            "AIRFLOW__CELERY__BROKER_URL": broker,
            "AIRFLOW__CELERY__RESULT_BACKEND": "db+" + self.postgres.sqlalchemy_url,
            "AIRFLOW__CELERY__WORKER_CONCURRENCY": str(self.worker_concurrency),
            f"AIRFLOW_CONN_{PACE_CONN_ID.upper()}": json.dumps(self.redis.connection_config(PACE_REDIS_DB)),
        }

    def worker_command(self, airflow: str, name: str, home: Path) -> list[str]:
        """One Celery worker: its own hostname and pid file, no log server (it would bind 0.0.0.0)."""
        return [
            airflow, "celery", "worker", "--celery-hostname", f"{name}@{HOST}",
            "--concurrency", str(self.worker_concurrency), "--pid", str(home / f"{name}.pid"),
            "--skip-serve-logs", "--without-gossip", "--without-mingle",
        ]  # fmt: skip

    def stop(self) -> None:
        """Stop Redis and PostgreSQL (after Airflow)."""
        self.redis.stop()
        self.postgres.stop()


def airflow_env(
    home: Path, port: int, api: GootenApiServer, warehouse: Path, celery: CeleryServices | None = None
) -> dict[str, str]:
    """Recipe C's environment, plus the two connections; no AIRFLOW_* variable is inherited.

    With ``celery``, the Celery executor over PostgreSQL and Redis, and the shared pace's connection.
    """
    env = {name: value for name, value in os.environ.items() if not name.startswith("AIRFLOW")}
    env.update(
        {
            "AIRFLOW_HOME": str(home),
            "AIRFLOW__CORE__DAGS_FOLDER": str(DAGS_FOLDER),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
            "AIRFLOW__CORE__PARALLELISM": "4",
            "AIRFLOW__CORE__AUTH_MANAGER": (
                "airflow.api_fastapi.auth.managers.simple.simple_auth_manager.SimpleAuthManager"
            ),
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": f"{USERNAME}:admin",
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(home / "passwords.json"),
            "AIRFLOW__CORE__TEST_CONNECTION": "Enabled",
            "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "False",
            "AIRFLOW__API__HOST": HOST,
            "AIRFLOW__API__PORT": str(port),
            "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"http://{HOST}:{port}/execution/",
            "AIRFLOW__API_AUTH__JWT_SECRET": secrets.token_urlsafe(64),
            "AIRFLOW_CONN_GOOTEN_WAREHOUSE": json.dumps(warehouse_connection(warehouse)),
            # the example DAGs' results files, next to the warehouse (dags/gooten_examples/results.py)
            "AIRFLOW_VAR_GOOTEN_RESULTS_ROOT": (warehouse.parent / "results").as_uri(),
            "PYTHONWARNINGS": "ignore",
            # gooten_wait_for_release polls every 5 s here, not every 10 minutes: a release shows at once
            "GOOTEN_RELEASE_POKE_INTERVAL": "5",
        }
    )
    gooten_default = api.connection_config("gooten_default")
    gooten_default["extra"]["admin_order_url"] = api.admin_order_url
    if celery is not None:
        env.update(celery.env())
        gooten_default["extra"]["rate_limit_conn_id"] = PACE_CONN_ID
    env["AIRFLOW_CONN_GOOTEN_DEFAULT"] = json.dumps(gooten_default)
    return env


def free_port() -> int:
    """A port of 127.0.0.1 that is free right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((HOST, 0))
        return int(probe.getsockname()[1])


def relay_command(relay_port: int, airflow_port: int, home: Path) -> list[str]:
    """The relay's command line: no secret in it (they are in its environment)."""
    return [
        sys.executable,
        "-m",
        "gooten_provider.webhooks",
        "--port",
        str(relay_port),
        "--airflow-url",
        f"http://{HOST}:{airflow_port}",
        "--outbox",
        str(home / "webhook-outbox.sqlite3"),
        "--retry-initial",
        "0.5",
        "--retry-max",
        "5",
    ]


def relay_env(token: str) -> dict[str, str]:
    """The relay's environment: its webhook token, and the admin login to Airflow."""
    env = {
        name: value for name, value in os.environ.items() if not name.startswith(("AIRFLOW", "GOOTEN_RELAY"))
    }
    env.update(
        {
            "GOOTEN_RELAY_TOKEN": token,
            "GOOTEN_RELAY_AIRFLOW_USERNAME": USERNAME,
            "GOOTEN_RELAY_AIRFLOW_PASSWORD": PASSWORD,
        }
    )
    return env


def relay_healthy(relay_port: int) -> bool:
    """Tell whether the relay answers ``/healthz``."""
    try:
        with urllib.request.urlopen(f"http://{HOST}:{relay_port}/healthz", timeout=2) as reply:
            return bool(reply.status == 200)
    except (OSError, urllib.error.URLError):
        return False


def health(port: int) -> dict[str, str]:
    """``{component: status}`` from ``/api/v2/monitor/health``; empty while the API server is not up."""
    try:
        with urllib.request.urlopen(f"http://{HOST}:{port}/api/v2/monitor/health", timeout=2) as reply:
            body = json.load(reply)
    except (OSError, urllib.error.URLError, ValueError):
        return {}
    return {name: str((body.get(name) or {}).get("status")) for name in HEALTH_COMPONENTS}


def start(name: str, command: Sequence[str], env: Mapping[str, str], logs: Path) -> subprocess.Popen[bytes]:
    """Start one Airflow component in its own session (Ctrl-C reaches only this script), output to a log."""
    with (logs / f"{name}.log").open("ab") as log:
        return subprocess.Popen(  # noqa: S603 - our own venv's airflow, fixed arguments
            list(command),
            env=dict(env),
            cwd=REPO_ROOT,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def stop_all(processes: Mapping[str, subprocess.Popen[bytes]], timeout: float = 30.0) -> None:
    """Stop every component, the API server last: a task still running reports its end through it."""
    last = {name: p for name, p in processes.items() if name == "api-server"}
    stop_group({name: p for name, p in processes.items() if name not in last}, timeout)
    stop_group(last, timeout)


def stop_group(processes: Mapping[str, subprocess.Popen[bytes]], timeout: float) -> None:
    """SIGTERM each component's process group (it and the workers it forked), SIGKILL what is left."""
    for process in processes.values():
        if process.poll() is None:
            try:
                os.killpg(process.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
    deadline = time.monotonic() + timeout
    for name, process in processes.items():
        try:
            process.wait(max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            print(f"  {name} did not stop within {timeout:.0f} s: killing it", flush=True)
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
    for process in processes.values():  # workers left behind in a group whose leader exited
        try:
            os.killpg(process.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass


def log_tail(path: Path, lines: int = 30) -> str:
    """The last lines of a log file."""
    return "\n".join(path.read_text(encoding="utf-8", errors="replace").splitlines()[-lines:])


def banner(
    port: int,
    api: GootenApiServer,
    warehouse: Path,
    home: Path,
    relay_port: int,
    celery: CeleryServices | None = None,
) -> str:
    """What to tell the user once everything is up."""
    some_order = api.order_ids()[0]
    production = ""
    if celery is not None:
        slots, redis = celery.worker_concurrency, celery.redis.url
        production = f"""
  executor             Celery: {len(CELERY_WORKERS)} workers x {slots} task slots; broker {redis}/0
  metadata database    PostgreSQL on {HOST}:{celery.postgres.port} (a throwaway cluster)
  shared pace          {PACE_CONN_ID} ({redis}/{PACE_REDIS_DB}), gooten_default's rate_limit_conn_id"""
    throttled = ""
    if api.throttle is not None:
        limit = api.throttle.rate_limit
        throttled = f"\n{'':23}throttled like a gateway: {limit:g} requests/s per account"
    return f"""
Airflow is up: http://{HOST}:{port}   (login: {USERNAME} / {PASSWORD})

  DAGs                 gooten_dq_hold_cancel, gooten_reconcile_order_statuses, gooten_manual_order_status,
                       gooten_order_status_history (on each Gooten webhook),
                       gooten_wait_for_release (a deferrable sensor: the triggerer waits for held orders),
                       gooten_orders_export (daily export to the lake, load, and a sweep for lost webhooks),
                       gooten_bulk_order_status (a big batch in mapped chunks, on every worker at once)
  local Gooten API     {api.base_url}  ({len(api.order_ids())} orders; connection gooten_default){throttled}
                       an order's page: {api.admin_order_url} (the "Gooten order" button)
  webhook relay        http://{HOST}:{relay_port}  (the local API's webhooks -> events on gooten://orders)
  SQLite warehouse     {warehouse}  (connection gooten_warehouse){production}
  logs                 {home / "logs"}

Try: trigger gooten_dq_hold_cancel (it holds and cancels the orders failing the rules), then
gooten_reconcile_order_statuses, then gooten_manual_order_status from its trigger form (dry run first).
Every status change sends Gooten's webhooks, and gooten_order_status_history runs on them; play Gooten's
production with:
  curl -X POST '{api.base_url}/admin/orders/{some_order}/status?status=Shipped'
The connections are environment variables, so the UI's Connections list does not show them.

Press Ctrl-C to stop everything."""


def write_ready_file(
    path: Path,
    port: int,
    api: GootenApiServer,
    warehouse: Path,
    home: Path,
    relay_port: int,
    *,
    executor: str = "local",
    batch_order_ids: Sequence[str] = (),
) -> None:
    """Write what a script needs to drive the running stack, as JSON (atomically: it appears complete).

    Keys: ``airflow_url``, ``username``, ``password``, ``gooten_api_url``, ``admin_order_url``,
    ``relay_url``, ``warehouse``, ``home``, ``logs``, ``executor``, ``batch_order_ids`` (the orders
    ``--batch-orders`` added) and ``pid`` (this process: SIGTERM it to stop the stack). The billing key is
    not written: it is :data:`gooten_provider.testing.DEFAULT_BILLING_KEY`; nor is the relay's token (the
    local API sends the webhooks), nor any database or Redis password.
    """
    ready = {
        "airflow_url": f"http://{HOST}:{port}",
        "username": USERNAME,
        "password": PASSWORD,
        "gooten_api_url": api.base_url,
        "admin_order_url": api.admin_order_url,
        "relay_url": f"http://{HOST}:{relay_port}",
        "warehouse": str(warehouse),
        "home": str(home),
        "logs": str(home / "logs"),
        "executor": executor,
        "batch_order_ids": list(batch_order_ids),
        "pid": os.getpid(),
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".partial")
    partial.write_text(json.dumps(ready, indent=2), encoding="utf-8")
    partial.replace(path)


def worker_ready(log: Path) -> bool:
    """Tell whether a Celery worker's log says it is ready (``celery@<name> ready.``)."""
    try:
        return " ready." in log.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return False


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    """The command line (``--help`` lists it)."""
    parser = argparse.ArgumentParser(prog="make airflow", description=__doc__.split("\n\n")[0])
    parser.add_argument("--port", type=int, default=8080, help="API server / UI port (default 8080)")
    parser.add_argument(
        "--gooten-port", type=int, default=0, help="local Gooten API port (default: any free)"
    )
    parser.add_argument("--relay-port", type=int, default=0, help="webhook relay port (default: any free)")
    parser.add_argument(
        "--home", type=Path, default=DEFAULT_HOME, help=f"state directory (default {DEFAULT_HOME})"
    )
    parser.add_argument("--timeout", type=float, default=180.0, help="seconds to wait for a healthy stack")
    parser.add_argument(
        "--ready-file",
        type=Path,
        default=None,
        help="once healthy, write the URLs and login here as JSON (for scripts and tests)",
    )
    parser.add_argument(
        "--executor",
        choices=EXECUTORS,
        default="local",
        help="local: SQLite, LocalExecutor (default); celery: PostgreSQL, Redis, two Celery workers",
    )
    parser.add_argument(
        "--worker-concurrency", type=int, default=2, help="task slots of each Celery worker (default 2)"
    )
    parser.add_argument(
        "--rate-limit",
        type=float,
        default=None,
        help="throttle the local Gooten API to this many requests/s per account (default: no limit)",
    )
    parser.add_argument(
        "--rate-burst", type=int, default=None, help="the throttle's burst (default: a second's worth)"
    )
    parser.add_argument(
        "--batch-orders", type=int, default=0, help="add this many orders in New to the local API (default 0)"
    )
    args = parser.parse_args(argv)
    if args.worker_concurrency < 1 or args.batch_orders < 0:
        parser.error("--worker-concurrency must be 1 or more and --batch-orders 0 or more")
    return args


def start_celery_services(home: Path, worker_concurrency: int) -> CeleryServices:
    """Start Redis, then PostgreSQL (stopping Redis again if PostgreSQL fails)."""
    redis = LocalRedisServer().start()
    try:
        postgres = PostgresCluster(free_port(), home / "logs" / "postgresql.log").start()
    except BaseException:
        redis.stop()
        raise
    return CeleryServices(postgres, redis, worker_concurrency)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the stack until Ctrl-C; return the exit code."""
    args = parse_args(argv)
    if args.ready_file is not None:  # a stale file would announce a stack that is not up yet
        args.ready_file.unlink(missing_ok=True)

    if not port_is_free(args.port):
        print(
            f"error: {HOST}:{args.port} is in use (another Airflow?); pick another with --port.",
            file=sys.stderr,
        )
        return 2
    airflow = str(Path(sys.executable).with_name("airflow"))
    home: Path = args.home.resolve()
    shutil.rmtree(home, ignore_errors=True)
    logs = home / "logs"
    logs.mkdir(parents=True)
    (home / "passwords.json").write_text(json.dumps({USERNAME: PASSWORD}), encoding="utf-8")

    def request_stop(signum: int, frame: FrameType | None) -> None:
        raise Stop

    previous = {sig: signal.signal(sig, request_stop) for sig in (signal.SIGINT, signal.SIGTERM)}
    processes: dict[str, subprocess.Popen[bytes]] = {}
    orders = demo_orders()
    warehouse = build_sqlite_warehouse(home / "warehouse.db", orders)
    token, relay_port = new_token(), args.relay_port or free_port()
    api = GootenApiServer(
        orders=gooten_order_specs(orders),
        port=args.gooten_port,
        webhook_url=f"http://{HOST}:{relay_port}/gooten/webhook/{token}?orderid=",
        rate_limit=args.rate_limit,
        rate_burst=args.rate_burst,
    )
    batch_order_ids = api.add_orders(args.batch_orders)
    celery: CeleryServices | None = None
    try:
        if args.executor == "celery":
            print("Starting Redis and a throwaway PostgreSQL cluster ...", flush=True)
            celery = start_celery_services(home, args.worker_concurrency)
        api.start()
        env = airflow_env(home, args.port, api, warehouse, celery)
        print(
            f"Local Gooten API on {api.base_url}; migrating the Airflow metadata DB in {home} ...", flush=True
        )
        with (logs / "db-migrate.log").open("ab") as log:
            migrated = subprocess.run(  # noqa: S603
                [airflow, "db", "migrate"],
                env=env,
                cwd=REPO_ROOT,
                stdout=log,
                stderr=subprocess.STDOUT,
                check=False,
            )
        if migrated.returncode != 0:
            print(f"airflow db migrate failed:\n{log_tail(logs / 'db-migrate.log')}", file=sys.stderr)
            return 1
        for name, arguments in COMPONENTS.items():
            extra = ["--port", str(args.port)] if name == "api-server" else []
            processes[name] = start(name, [airflow, *arguments, *extra], env, logs)
        if celery is not None:
            for name in CELERY_WORKERS:
                processes[name] = start(name, celery.worker_command(airflow, name, home), env, logs)
        processes[RELAY] = start(RELAY, relay_command(relay_port, args.port, home), relay_env(token), logs)
        workers = ", two Celery workers" if celery is not None else ""
        print(
            f"Starting the API server, scheduler, dag-processor, triggerer{workers} and webhook relay ",
            end="",
            flush=True,
        )
        deadline = time.monotonic() + args.timeout
        while True:
            dead = {name: p.returncode for name, p in processes.items() if p.poll() is not None}
            if dead:
                name = next(iter(dead))
                print(
                    f"\n{name} exited (code {dead[name]}):\n{log_tail(logs / f'{name}.log')}", file=sys.stderr
                )
                return 1
            status = health(args.port)
            workers_up = celery is None or all(worker_ready(logs / f"{name}.log") for name in CELERY_WORKERS)
            if (
                status
                and all(value == "healthy" for value in status.values())
                and relay_healthy(relay_port)
                and workers_up
            ):
                break
            if time.monotonic() > deadline:
                print(f"\nNot healthy after {args.timeout:.0f} s: {status or 'no answer'}; logs in {logs}")
                return 1
            print(".", end="", flush=True)
            time.sleep(1)
        print(" healthy.")
        if args.ready_file is not None:
            write_ready_file(
                args.ready_file,
                args.port,
                api,
                warehouse,
                home,
                relay_port,
                executor=args.executor,
                batch_order_ids=batch_order_ids,
            )
        print(banner(args.port, api, warehouse, home, relay_port, celery), flush=True)
        while True:
            for name, process in processes.items():
                if process.poll() is not None:
                    print(f"\n{name} exited (code {process.returncode}); stopping. Its log:", file=sys.stderr)
                    print(log_tail(logs / f"{name}.log"), file=sys.stderr)
                    return 1
            time.sleep(1)
    except Stop:
        print("\nStopping ...", flush=True)
        return 0
    finally:
        for sig in previous:  # a second Ctrl-C must not interrupt the clean-up
            signal.signal(sig, signal.SIG_IGN)
        if args.ready_file is not None:
            args.ready_file.unlink(missing_ok=True)
        stop_all(processes)
        api.stop()
        if celery is not None:
            celery.stop()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        print(f"Stopped Airflow and the local Gooten API. State and logs are in {home}.", flush=True)


if __name__ == "__main__":
    sys.exit(main())
