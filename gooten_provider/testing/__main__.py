"""Run the local Gooten API in the foreground: ``python -m gooten_provider.testing --port 8089``.

Prints ``Local Gooten API listening on http://127.0.0.1:PORT (recipe id <id>)``, then a ready
``export AIRFLOW_CONN_GOOTEN_DEFAULT=...`` line and the orders it holds (see
:mod:`gooten_provider.testing.startup`), and runs until SIGINT or SIGTERM. The billing key it accepts is
the fake :data:`~gooten_provider.testing.server.DEFAULT_BILLING_KEY`, unless ``--billing-key-env`` names
an environment variable holding another one; that one is never printed.

``--rate-limit 50 --rate-burst 5`` throttles each Recipe ID as an API gateway would (not
Gooten-documented behaviour; see :mod:`gooten_provider.testing.throttling`).
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading
from collections.abc import Sequence
from types import FrameType
from typing import Any

from gooten_provider.testing.faults import ALL_FAULT_KINDS, parse_fault_kinds
from gooten_provider.testing.orders import demo_order_specs, load_order_specs
from gooten_provider.testing.server import DEFAULT_RECIPE_ID, GootenApiServer
from gooten_provider.testing.startup import startup_text


def _non_negative(text: str) -> float:
    value = float(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be zero or more, got {text}")
    return value


def _positive(text: str) -> float:
    value = float(text)
    if not 0 < value < float("inf"):
        raise argparse.ArgumentTypeError(f"must be above 0, got {text}")
    return value


def _at_least_one(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a whole number, 1 or more, got {text}")
    return value


def build_parser() -> argparse.ArgumentParser:
    """Return the command-line parser."""
    parser = argparse.ArgumentParser(
        prog="python -m gooten_provider.testing",
        description="Run a local stand-in of the Gooten order API on 127.0.0.1 (for tests and demos).",
    )
    parser.add_argument("--port", type=int, default=8089, help="port to listen on; 0 picks a free one")
    parser.add_argument(
        "--orders-file", help='JSON list of orders to seed: [{"id": ..., "statuses": [...], ...fields}]'
    )
    parser.add_argument(
        "--demo-orders", action="store_true", help="seed a handful of orders in various statuses"
    )
    parser.add_argument("--latency", type=_non_negative, default=0.0, help="seconds added to every request")
    parser.add_argument(
        "--connect-latency",
        type=_non_negative,
        default=0.0,
        help="seconds added to the first request of each TCP connection",
    )
    parser.add_argument(
        "--fault-rate", type=float, default=0.0, help="probability (0-1) of a random fault per request"
    )
    parser.add_argument(
        "--fault-kinds",
        default=",".join(kind.value for kind in ALL_FAULT_KINDS),
        help="comma-separated fault kinds for --fault-rate (default: all)",
    )
    parser.add_argument("--seed", type=int, default=None, help="seed for random faults")
    parser.add_argument(
        "--error-status", type=int, default=200, help="HTTP status of HadError replies (Gooten: 200)"
    )
    retry_after = parser.add_mutually_exclusive_group()
    retry_after.add_argument(
        "--retry-after", type=_non_negative, default=1.0, help="Retry-After seconds of injected 429s"
    )
    retry_after.add_argument(
        "--no-retry-after",
        dest="retry_after",
        action="store_false",
        help="send no Retry-After with any 429, injected or throttled",
    )
    parser.add_argument(
        "--rate-limit",
        type=_positive,
        metavar="PER_SECOND",
        help="throttle each recipe id to this many requests per second (429 past it; default: no limit)",
    )
    parser.add_argument(
        "--rate-burst",
        type=_at_least_one,
        metavar="REQUESTS",
        help="requests a recipe id may send at once under --rate-limit (default: one second's worth)",
    )
    parser.add_argument("--slow-seconds", type=_non_negative, default=2.0, help="delay of 'slow' faults")
    parser.add_argument("--recipe-id", default=DEFAULT_RECIPE_ID, help="recipe id to accept")
    parser.add_argument(
        "--webhook-url-env",
        metavar="VAR",
        help="environment variable holding the URL to send Gooten's webhooks to (it holds a token)",
    )
    parser.add_argument(
        "--webhook-drop-rate",
        type=float,
        default=0.0,
        metavar="P",
        help="with --webhook-url-env: lose each webhook with probability P (0-1), as deliveries get lost",
    )
    parser.add_argument(
        "--billing-key-env",
        metavar="VAR",
        help="environment variable holding the billing key to accept (default: the fake test key)",
    )
    return parser


def _options_from_environment(parser: argparse.ArgumentParser, args: argparse.Namespace) -> dict[str, Any]:
    """The secrets read from environment variables (never arguments); a usage error if one is missing."""
    options: dict[str, Any] = {}
    if args.rate_burst is not None and args.rate_limit is None:
        parser.error("--rate-burst needs --rate-limit")
    if args.billing_key_env:
        key = os.environ.get(args.billing_key_env, "")
        if not key:
            parser.error(f"environment variable {args.billing_key_env} is not set or empty")
        options["billing_key"] = key
    if args.webhook_url_env:
        options["webhook_url"] = os.environ.get(args.webhook_url_env) or parser.error(
            f"environment variable {args.webhook_url_env} is not set or empty"
        )
    return options


def main(argv: Sequence[str] | None = None) -> int:
    """Run the server until SIGINT or SIGTERM; return the exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        orders = []
        if args.demo_orders:
            orders.extend(demo_order_specs())
        if args.orders_file:
            orders.extend(load_order_specs(args.orders_file))
        options = _options_from_environment(parser, args)
        server = GootenApiServer(
            recipe_id=args.recipe_id,
            port=args.port,
            latency=args.latency,
            connect_latency=args.connect_latency,
            error_status=args.error_status,
            fault_rate=args.fault_rate,
            fault_kinds=parse_fault_kinds(args.fault_kinds),
            seed=args.seed,
            retry_after=args.retry_after,
            slow_seconds=args.slow_seconds,
            orders=orders,
            rate_limit=args.rate_limit,
            rate_burst=args.rate_burst,
            webhook_drop_rate=args.webhook_drop_rate,
            **options,
        )
        server.start()
    except (OSError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2

    stop = threading.Event()

    def request_stop(signum: int, frame: FrameType | None) -> None:
        stop.set()

    previous = {sig: signal.signal(sig, request_stop) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        print(f"Local Gooten API listening on {server.base_url} (recipe id {server.recipe_id})", flush=True)
        print(startup_text(server, args.billing_key_env), flush=True)
        while not stop.wait(0.5):
            pass
    finally:
        server.stop()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return 0


if __name__ == "__main__":
    sys.exit(main())
