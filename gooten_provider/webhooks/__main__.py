"""``python -m gooten_provider.webhooks``: run the relay from Gooten's webhooks to Airflow asset events."""

from __future__ import annotations

import argparse
import ipaddress
import logging
import os
import re
import sqlite3
import sys
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import NoReturn

from gooten_provider.asset_uri import ORDERS_URI
from gooten_provider.project_urls import doc_url
from gooten_provider.webhooks.delivery import DEFAULT_PARK_AFTER
from gooten_provider.webhooks.order_change import printable
from gooten_provider.webhooks.outbox import Outbox
from gooten_provider.webhooks.outbox_lock import OutboxInUse
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

changes Airflow refuses for good:
  A change Airflow refuses with an answer retrying cannot change (a 422) is parked after --park-after
  refusals, so that later changes flow on; /healthz then says "degraded". List parked changes, and queue
  them again once the cause is fixed (the running relay picks them up within seconds):
      python -m gooten_provider.webhooks parked --outbox PATH [--requeue] [ROW_ID ...]

More: {doc_url("webhooks.md")} (systemd, a container, scheduling a DAG on the asset)."""

PARKED_DESCRIPTION = """\
List the changes Airflow refused for good (parked after --park-after refusals), with the last error of
each, or queue them again (--requeue) once the cause is fixed: a running relay delivers them within
seconds. Works beside a running relay."""

_OPTION_NAME = re.compile(r"(--?[a-z]+(?:-[a-z]+)*)(=.*)?\Z", re.DOTALL)
_ARGUMENTS_ADVICE = (
    "Secrets are never arguments (every user of the machine can read command lines): see --help for the "
    "environment variables and files the relay reads them from."
)


class _ArgumentParser(argparse.ArgumentParser):
    """An argument parser whose errors never repeat a value it did not understand.

    argparse's "unrecognized arguments: --token s3cr3t" (and "invalid choice: 's3cr3t'") would write a
    secret given by mistake to stderr, so to the journal: those messages name the options, not values.
    """

    def error(self, message: str) -> NoReturn:
        """Print the usage and the message, values the parser did not understand left out; exit 2."""
        unknown = re.match(r"unrecognized arguments: (.*)", message, re.DOTALL)
        if unknown:
            message = (
                "unrecognized arguments: " + _without_values(unknown[1].split(" ")) + ". " + _ARGUMENTS_ADVICE
            )
        message = re.sub(
            r"invalid choice: .*? \(choose from", "invalid choice (not shown) (choose from", message
        )
        super().error(message)


def _without_values(arguments: list[str]) -> str:
    """The option names among ``arguments``, and how many other words were left out.

    Only words shaped like an option name (``--token``, ``--token=x`` as ``--token``: lowercase letters and
    hyphens) are shown: a secret starting with ``-`` is counted, not shown.
    """
    names = [_OPTION_NAME.match(argument) for argument in arguments]
    shown = [name[1] for name in names if name]
    hidden = len(arguments) - len(shown) + sum(bool(name and name[2]) for name in names)
    return (" ".join(shown) or "(none shown)") + (f" and {hidden} value(s), not shown" if hidden else "")


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
    parser = _ArgumentParser(
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
    airflow.add_argument(
        "--park-after",
        type=_refusals,
        default=DEFAULT_PARK_AFTER,
        help="refusals for good (a 422) of one change after which it is parked and later changes flow on "
        f"(default {DEFAULT_PARK_AFTER}; see the `parked` command)",
    )
    parser.add_argument("--log-level", default="INFO", choices=["DEBUG", "INFO", "WARNING", "ERROR"])
    return parser


def build_parked_parser() -> argparse.ArgumentParser:
    """The parser of ``python -m gooten_provider.webhooks parked``.

    A command of its own, not an argparse sub-command: a sub-command's name is a positional argument, which
    would take a stray value (``--token s3cr3t``) for a command name.
    """
    parked = _ArgumentParser(
        prog="python -m gooten_provider.webhooks parked",
        description=PARKED_DESCRIPTION,
        allow_abbrev=False,
    )
    parked.add_argument(
        "--outbox",
        type=Path,
        default=Path(DEFAULT_OUTBOX),
        help=f"the relay's SQLite outbox file (default ./{DEFAULT_OUTBOX})",
    )
    parked.add_argument(
        "--requeue", action="store_true", help="queue the parked changes (all, or the ROW_IDs) again"
    )
    parked.add_argument(
        "row_ids", nargs="*", type=_row_id, metavar="ROW_ID", help="only these parked changes (their numbers)"
    )
    return parked


def _refusals(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number of refusals: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be 1 or more refusals, got {text}")
    return value


def _row_id(text: str) -> int:
    if not text.isdigit():  # the text itself is not repeated: it could be a secret given by mistake
        raise argparse.ArgumentTypeError("not the number of a change, as `parked` lists them (not shown)")
    return int(text)


def parked_command(args: argparse.Namespace) -> int:
    """``parked``: print the parked changes of an outbox, or queue them again; return the exit code."""
    if not args.outbox.is_file():
        print(f"error: there is no outbox at {args.outbox} (give the relay's --outbox).", file=sys.stderr)
        return 2
    try:
        outbox = Outbox(args.outbox)
    except (OSError, RuntimeError, sqlite3.Error) as error:
        print(f"error: cannot open the outbox {args.outbox}: {error}", file=sys.stderr)
        return 2
    try:
        parked = [p for p in outbox.parked() if not args.row_ids or p.row_id in args.row_ids]
        if args.requeue:
            queued = outbox.requeue([p.row_id for p in parked])
            print(f"Queued {len(queued)} parked change(s) again: {', '.join(map(str, queued)) or 'none'}.")
            return 0
    finally:
        outbox.close()
    print(f"{len(parked)} parked change(s) in {args.outbox}" + (":" if parked else "."))
    for item in parked:
        when = datetime.fromtimestamp(item.parked_at, UTC).isoformat(timespec="seconds")
        print(
            f"  change {item.row_id}: order {printable(item.change.order_id)} "
            f"({printable(', '.join(item.change.item_statuses))}), received "
            f"{item.change.received_at.isoformat(timespec='seconds')}, parked {when} after "
            f"{item.refusals} refusal(s): {item.last_error}"
        )
    if parked:
        print("Queue them again once fixed: add --requeue (and ROW_IDs to choose).")
    return 0


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
        park_after=args.park_after,
    )


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def main(argv: Sequence[str] | None = None, environ: Mapping[str, str] | None = None) -> int:
    """Run the relay until SIGINT or SIGTERM, or the ``parked`` command; return the exit code.

    The exit code is 2 for bad settings or an outbox another relay uses.
    """
    environ = os.environ if environ is None else environ
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv[:1] == ["parked"]:
        return parked_command(build_parked_parser().parse_args(argv[1:]))
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

    try:
        app = create_app(settings)
    except OutboxInUse as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except (OSError, RuntimeError, sqlite3.Error) as error:
        print(f"error: cannot open the outbox {settings.outbox_path}: {error}", file=sys.stderr)
        return 2
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
