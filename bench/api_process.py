"""The local Gooten API in a child process, so its threads do not share the benchmark client's GIL.

On a 2-core machine a server running in the client's own process competes with the client for the GIL and
adds its CPU time to every figure. Here the server runs in a ``spawn``-ed process and is driven over a pipe::

    with ApiProcess(latency=0.02, connect_latency=0.06) as api:
        ids = api.add_orders(1000)
        api.clear_journal()
        ...  # point clients at api.base_url, with api.connection_config()
        api.stats()  # {"requests": 2000, "connections": 8, ...}
"""

from __future__ import annotations

import json
import multiprocessing
import statistics
from collections import Counter
from collections.abc import Sequence
from datetime import date
from multiprocessing.connection import Connection
from types import TracebackType
from typing import Any


def _journal_stats(api: Any) -> dict[str, Any]:
    """Summarise the journal: request and connection counts, methods, faults, time spent in the server."""
    journal = api.journal
    durations = [entry.duration for entry in journal]
    return {
        "requests": len(journal),
        "connections": len({entry.connection_id for entry in journal}),
        "methods": dict(Counter(entry.method for entry in journal)),
        "faults": dict(Counter(entry.fault for entry in journal if entry.fault)),
        "applied_writes": sum(1 for entry in journal if entry.applied),
        "throttled": sum(1 for entry in journal if entry.throttled),
        "server_seconds_median": statistics.median(durations) if durations else 0.0,
        "span_seconds": (
            max(e.finished for e in journal) - min(e.started for e in journal) if journal else 0.0
        ),
    }


def _serve(conn: Connection, options: dict[str, Any]) -> None:
    """Child process: run a GootenApiServer and answer commands until ``stop``."""
    from gooten_provider.testing.server import GootenApiServer

    api = GootenApiServer(**options).start()
    conn.send(
        {
            "base_url": api.base_url,
            "recipe_id": api.recipe_id,
            "billing_key": api.billing_key,
            "connection_config": api.connection_config(),
        }
    )
    try:
        while True:
            command, args = conn.recv()
            try:
                if command == "stop":
                    conn.send(("ok", None))
                    return
                if command == "add_orders":
                    reply: Any = api.add_orders(*args)
                elif command == "add_orders_over_days":  # (count, first day yyyy-mm-dd, days, seed)
                    count, first_day, days, seed = args
                    reply = len(
                        api.add_orders_over_days(count, date.fromisoformat(first_day), days, seed=seed)
                    )
                elif command == "add_order":
                    reply = api.add_order(statuses=args[0])["Id"]
                elif command == "item_statuses":
                    reply = {order_id: api.item_statuses(order_id) for order_id in args[0]}
                elif command == "configure":  # latency, retry_after, then the rate limit (fresh buckets)
                    options = dict(args[0])
                    api.latency = options.get("latency", api.latency)
                    api.retry_after = options.get("retry_after", api.retry_after)
                    api.set_rate_limit(options.get("rate_limit"), options.get("rate_burst"))
                    reply = None
                elif command == "clear_journal":
                    api.clear_journal()
                    reply = None
                elif command == "stats":
                    reply = _journal_stats(api)
                elif command == "order_ids":  # the orders journaled: every request, or applied changes only
                    applied_only = args[0]
                    reply = sorted(
                        {e.order_id for e in api.journal if e.order_id and (e.applied or not applied_only)}
                    )
                elif command == "timeline":  # (started, throttled, recipe-less) per request, for plots
                    reply = [(entry.started, entry.throttled) for entry in api.journal]
                else:
                    raise ValueError(f"unknown command {command!r}")
                conn.send(("ok", reply))
            except Exception as exc:  # report to the parent, keep serving
                conn.send(("error", f"{type(exc).__name__}: {exc}"))
    finally:
        api.stop()


class ApiProcess:
    """A :class:`~gooten_provider.testing.GootenApiServer` in its own process.

    :param options: keyword arguments of ``GootenApiServer`` (``latency``, ``connect_latency``, ...).
    """

    def __init__(self, **options: Any) -> None:
        self.options = options
        self._conn: Connection | None = None
        self._process: multiprocessing.process.BaseProcess | None = None
        self.base_url = ""
        self.recipe_id = ""
        self.billing_key = ""
        self._connection_config: dict[str, Any] = {}

    def start(self) -> ApiProcess:
        """Start the child process and wait until the server listens."""
        context = multiprocessing.get_context("spawn")
        parent, child = context.Pipe()
        self._process = context.Process(
            target=_serve, args=(child, self.options), name="local-gooten-api", daemon=True
        )
        self._process.start()
        child.close()
        self._conn = parent
        if not parent.poll(60):
            raise RuntimeError("the local Gooten API process did not start within 60 s")
        info = parent.recv()
        self.base_url = info["base_url"]
        self.recipe_id = info["recipe_id"]
        self.billing_key = info["billing_key"]
        self._connection_config = info["connection_config"]
        return self

    def _call(self, command: str, *args: Any) -> Any:
        if self._conn is None:
            raise RuntimeError("ApiProcess is not started")
        self._conn.send((command, args))
        status, reply = self._conn.recv()
        if status != "ok":
            raise RuntimeError(f"local Gooten API process: {reply}")
        return reply

    def add_orders(self, count: int, statuses: str | Sequence[str] = "New") -> list[str]:
        """Add ``count`` orders and return their ids."""
        return self._call("add_orders", count, statuses)

    def add_orders_over_days(
        self, count: int, first_day: date, days: int = 1, seed: int | None = None
    ) -> int:
        """Add ``count`` realistic orders created over ``days`` days from ``first_day``; return the count."""
        return self._call("add_orders_over_days", count, first_day.isoformat(), days, seed)

    def item_statuses(self, order_ids: Sequence[str]) -> dict[str, list[str]]:
        """Return the item statuses of each order."""
        return self._call("item_statuses", list(order_ids))

    def configure(
        self, *, latency: float, rate_limit: float | None, rate_burst: int | None, retry_after: float | bool
    ) -> None:
        """Change the latency, the ``Retry-After`` of 429s and the rate limit (every bucket full again)."""
        self._call(
            "configure",
            {
                "latency": latency,
                "rate_limit": rate_limit,
                "rate_burst": rate_burst,
                "retry_after": retry_after,
            },
        )

    def clear_journal(self) -> None:
        """Forget every journaled request."""
        self._call("clear_journal")

    def stats(self) -> dict[str, Any]:
        """Summarise the journal since the last :meth:`clear_journal` (see ``_journal_stats``)."""
        return self._call("stats")

    def order_ids(self, *, applied_only: bool = False) -> set[str]:
        """The orders of the requests journaled since :meth:`clear_journal` (or of the applied changes)."""
        return set(self._call("order_ids", applied_only))

    def timeline(self) -> list[tuple[float, bool]]:
        """``(started, throttled)`` for every journaled request, in the server's monotonic clock."""
        return [tuple(item) for item in self._call("timeline")]

    def connection_config(self, **extra: Any) -> dict[str, Any]:
        """The Airflow connection (JSON form) pointing at the server, with ``extra`` merged in."""
        config = json.loads(json.dumps(self._connection_config))
        config["extra"].update(extra)
        return config

    def stop(self) -> None:
        """Stop the server and the child process."""
        if self._conn is not None:
            try:
                self._call("stop")
            except (OSError, EOFError, RuntimeError):
                pass
            self._conn.close()
            self._conn = None
        if self._process is not None:
            self._process.join(10)
            if self._process.is_alive():
                self._process.terminate()
                self._process.join(5)
            self._process = None

    def __enter__(self) -> ApiProcess:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
