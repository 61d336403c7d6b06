"""``python -m gooten_provider.webhooks``: run the relay from Gooten's webhooks to Airflow asset events."""

from __future__ import annotations

import argparse
import ipaddress
import logging
import os
import sqlite3
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

from gooten_provider.asset_uri import ORDERS_URI
from gooten_provider.project_urls import doc_url
from gooten_provider.webhooks.settings import (
    AIRFLOW_PASSWORD_ENV,
    AIRFLOW_PASSWORD_FILE_ENV,
    AIRFLOW_TOKEN_ENV,
    AIRFLOW_TOKEN_FILE_ENV,
    AIRFLOW_URL_ENV,
    AIRFLOW_USERNAME_ENV,
    TOKEN_ENV,
    TOKEN_FILE_ENV,
    WEBHOOK_PATH,
    RelaySettings,
    airflow_credentials,
    new_token,
    read_secret,
)

log = logging.getLogger("gooten_provider.webhooks")

DEFAULT_PORT = 8095
DEFAULT_OUTBOX = "gooten-webhooks-outbox.sqlite3"

DESCRIPTION = f"""\
Relay Gooten's order webhooks into Airflow asset events.

Gooten POSTs the whole order JSON to the URL registered in the Gooten Admin, with the order id appended,
each time an order item changes. The relay receives them on {WEBHOOK_PATH}/<token>?orderid=, refuses
anything without the right token or that is not an order JSON, stores each change in a local SQLite
outbox before answering 200, collapses exact duplicates, and creates one event per change on the Airflow
asset {ORDERS_URI} (gooten_provider.assets.gooten_orders_asset) through Airflow's REST API, retrying
until Airflow takes it. Only the order id, NiceId, item statuses and arrival time reach Airflow; never
the addresses, names or e-mails of the order JSON."""

EPILOG = f"""\
behind a TLS proxy:
  The relay speaks plain HTTP and binds 127.0.0.1 unless told otherwise (--host). Put it behind the TLS
  proxy you already run (nginx, Caddy, a cloud load balancer) and forward only {WEBHOOK_PATH}/ to it,
  e.g. with nginx:
      location {WEBHOOK_PATH}/ {{ proxy_pass http://127.0.0.1:{DEFAULT_PORT}; }}
  Then register https://<your host>{WEBHOOK_PATH}/<token>?orderid= in the Gooten Admin. The token is the
  only secret of that URL: keep the proxy from logging request paths (or mask them), as the relay does.

secrets (never arguments: command lines are visible to every user of the machine):
  webhook token     ${TOKEN_ENV}, or a file: --token-file or ${TOKEN_FILE_ENV}
                    (make one with --new-token: at least 32 characters of A-Z a-z 0-9 - _)
  Airflow           ${AIRFLOW_TOKEN_ENV} (or --airflow-token-file, ${AIRFLOW_TOKEN_FILE_ENV}): an API token;
                    or ${AIRFLOW_USERNAME_ENV} (--airflow-username) with ${AIRFLOW_PASSWORD_ENV}
                    (or --airflow-password-file, ${AIRFLOW_PASSWORD_FILE_ENV}) to log in with POST /auth/token

More: {doc_url("webhooks.md")} (systemd, a container, scheduling a DAG on the asset)."""


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of seconds: {text!r}") from None
    if not value >= 0:
        raise argparse.ArgumentTypeError(f"must be zero or more seconds, got {text}")
    return value


def build_parser(environ: Mapping[str, str] | None = None) -> argparse.ArgumentParser:
    """The command-line parser (defaults of the Airflow URL and username come from ``environ``)."""
    environ = os.environ if environ is None else environ
    parser = argparse.ArgumentParser(
        prog="python -m gooten_provider.webhooks",
        description=DESCRIPTION,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        allow_abbrev=False,  # "--token x" must not pass for "--token-file x"
    )
    parser.add_argument("--new-token", action="store_true", help="print a fresh webhook token and exit")
    where = parser.add_argument_group("listening")
    where.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    where.add_argument("--port", type=int, default=DEFAULT_PORT, help=f"port (default {DEFAULT_PORT})")
    where.add_argument(
        "--token-file", metavar="PATH", help=f"file holding the webhook token (else ${TOKEN_ENV})"
    )
    where.add_argument(
        "--read-timeout",
        type=_seconds,
        default=10.0,
        help="seconds a request body may take to arrive, else 408 (default 10)",
    )
    where.add_argument(
        "--dedupe-window",
        type=_seconds,
        default=600.0,
        help="seconds within which a repeat of an order's latest statuses collapses (default 600)",
    )
    where.add_argument(
        "--outbox",
        type=Path,
        default=Path(DEFAULT_OUTBOX),
        help=f"SQLite outbox file (default ./{DEFAULT_OUTBOX})",
    )
    airflow = parser.add_argument_group("Airflow")
    airflow.add_argument(
        "--airflow-url",
        default=environ.get(AIRFLOW_URL_ENV),
        help=f"Airflow's API server, e.g. http://127.0.0.1:8080 (default ${AIRFLOW_URL_ENV})",
    )
    airflow.add_argument(
        "--airflow-username", help=f"user for POST /auth/token (else ${AIRFLOW_USERNAME_ENV})"
    )
    airflow.add_argument("--airflow-token-file", metavar="PATH", help="file holding an Airflow API token")
    airflow.add_argument("--airflow-password-file", metavar="PATH", help="file holding the Airflow password")
    airflow.add_argument(
        "--omit-nice-id",
        action="store_true",
        help="leave Gooten's NiceId out of events (it starts with letters of the recipient's first name)",
    )
    airflow.add_argument(
        "--asset-uri", default=ORDERS_URI, help=f"asset to post events to (default {ORDERS_URI})"
    )
    airflow.add_argument(
        "--retry-initial",
        type=_seconds,
        default=1.0,
        help="seconds before retrying a failed delivery (default 1)",
    )
    airflow.add_argument(
        "--retry-max", type=_seconds, default=60.0, help="longest wait between delivery attempts (default 60)"
    )
    airflow.add_argument(
        "--airflow-timeout", type=_seconds, default=10.0, help="seconds to wait for Airflow (default 10)"
    )
    parser.add_argument("--log-level", default="INFO", choices=["DEBUG", "INFO", "WARNING", "ERROR"])
    return parser


def settings_from(args: argparse.Namespace, environ: Mapping[str, str]) -> RelaySettings:
    """The relay's settings from parsed arguments and the environment.

    :raises ValueError: a secret is missing or unreadable, or a setting is invalid (the message says which).
    """
    token = read_secret(environ, TOKEN_ENV, TOKEN_FILE_ENV, args.token_file)
    if token is None:
        raise ValueError(
            f"No webhook token: set {TOKEN_ENV}, or name a file holding it with --token-file or "
            f"{TOKEN_FILE_ENV} (generate one with `python -m gooten_provider.webhooks --new-token`)."
        )
    if not args.airflow_url:
        raise ValueError(
            f"No Airflow URL: pass --airflow-url or set {AIRFLOW_URL_ENV} (e.g. http://127.0.0.1:8080)."
        )
    credentials = airflow_credentials(
        environ,
        username=args.airflow_username,
        token_file=args.airflow_token_file,
        password_file=args.airflow_password_file,
    )
    return RelaySettings(
        token=token,
        airflow_url=args.airflow_url,
        airflow_credentials=credentials,
        outbox_path=args.outbox,
        asset_uri=args.asset_uri,
        dedupe_window=args.dedupe_window,
        read_timeout=args.read_timeout,
        retry_initial=args.retry_initial,
        retry_max=args.retry_max,
        airflow_timeout=args.airflow_timeout,
        include_nice_id=not args.omit_nice_id,
    )


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def main(argv: Sequence[str] | None = None, environ: Mapping[str, str] | None = None) -> int:
    """Run the relay until SIGINT or SIGTERM; return the exit code (2 for bad settings)."""
    environ = os.environ if environ is None else environ
    parser = build_parser(environ)
    args = parser.parse_args(argv)
    if args.new_token:
        print(new_token())
        return 0
    try:
        settings = settings_from(args, environ)
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    logging.basicConfig(
        level=args.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stderr
    )

    import uvicorn

    # The delivery and outbox threads share the GIL with the event loop that answers Gooten: hand it over
    # every millisecond (not every 5) so that an answer never waits long behind them.
    sys.setswitchinterval(0.001)

    from gooten_provider.webhooks.app import create_app

    if not _is_loopback(args.host):
        log.warning("Listening on %s, not loopback: let only your TLS proxy reach this port.", args.host)
    log.info(
        "Gooten webhook relay on http://%s:%d%s/<token>?orderid= -> asset %s of Airflow at %s; outbox %s",
        args.host,
        args.port,
        WEBHOOK_PATH,
        settings.asset_uri,
        settings.airflow_url,
        settings.outbox_path,
    )
    try:
        app = create_app(settings)
    except (OSError, RuntimeError, sqlite3.Error) as error:
        print(f"error: cannot open the outbox {settings.outbox_path}: {error}", file=sys.stderr)
        return 2
    config = uvicorn.Config(
        app,
        host=args.host,
        port=args.port,
        access_log=False,  # its lines hold the request path, and so the token; the relay logs its own
        log_config=None,
        server_header=False,
        timeout_keep_alive=5,
        timeout_graceful_shutdown=10,
        lifespan="on",
    )
    server = uvicorn.Server(config)
    server.run()
    return 0 if server.started else 1


if __name__ == "__main__":
    sys.exit(main())
