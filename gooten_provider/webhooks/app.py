"""The relay's ASGI app (Starlette): receive Gooten's webhooks, store them, let the deliverer send them.

Routes:

* ``POST /gooten/webhook/{token}?orderid=<id>``: one order change. Answered ``200`` once the change is
  on disk in the outbox (``{"accepted": true, "duplicate": false}``), or refused with a 4xx (or ``503``
  when the outbox cannot be written) and ``{"error": "<what was wrong>"}``; nothing of a refused request
  is stored or forwarded.
* ``GET /healthz``: ``{"status": "ok", "pending": ..., "parked": ..., ...}``, counts only, for a
  supervisor; ``"status": "degraded"`` while changes Airflow refused for good are parked.

One relay per outbox: :func:`create_app` takes the outbox's lock
(:class:`~gooten_provider.webhooks.outbox_lock.OutboxLock`) and the app's shutdown releases it. No route
redirects (Starlette's ``redirect_slashes`` is off): a redirect's ``Location`` would repeat the token.

The token in the URL is the only thing that tells Gooten's requests from anyone else's: it is compared in
constant time, and the relay never logs a request path with it (uvicorn's access log is off; the relay
logs its own lines with the token replaced by ``<token>``).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import hashlib
import hmac
import logging
import re
import sqlite3
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from gooten_provider.webhooks.airflow_client import AirflowEventsClient
from gooten_provider.webhooks.delivery import Deliverer
from gooten_provider.webhooks.group_commit import GroupCommitter
from gooten_provider.webhooks.order_change import (
    MAX_BODY_BYTES,
    WebhookRefused,
    parse_order_change,
    printable,
)
from gooten_provider.webhooks.outbox import Outbox
from gooten_provider.webhooks.outbox_lock import OutboxLock
from gooten_provider.webhooks.settings import WEBHOOK_PATH, RelaySettings

log = logging.getLogger("gooten_provider.webhooks")

_ALL_METHODS = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]
_SHOWN_PATH = f"{WEBHOOK_PATH}/<token>"
_TOKEN_IN_PATH = re.compile(rf"({re.escape(WEBHOOK_PATH)}/)[^\s?#\"']+")


class TokenPathFilter(logging.Filter):
    """Replaces the token of any webhook path in a log record with ``<token>``.

    The relay turns uvicorn's access log off, but a server run another way (or a logging setup that
    turns it back on) would log request paths: this filter on ``uvicorn.access`` keeps the token out.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        """Redact the record in place; never drops it."""
        message = record.getMessage()
        redacted = _TOKEN_IN_PATH.sub(r"\g<1><token>", message)
        if redacted != message:
            record.msg, record.args = redacted, None
        return True


def install_token_path_filter(logger_name: str = "uvicorn.access") -> None:
    """Attach :class:`TokenPathFilter` to a logger (once)."""
    logger = logging.getLogger(logger_name)
    if not any(isinstance(existing, TokenPathFilter) for existing in logger.filters):
        logger.addFilter(TokenPathFilter())


def _digest(token: str) -> bytes:
    # Comparing fixed-size digests keeps the comparison's time independent of the token's length too.
    return hashlib.sha256(token.encode("utf-8", "surrogateescape")).digest()


def _error(refusal: WebhookRefused) -> JSONResponse:
    headers = {"Allow": "POST"} if refusal.status == 405 else None
    return JSONResponse({"error": refusal.message}, status_code=refusal.status, headers=headers)


async def _read_body(request: Request, timeout: float) -> bytes:
    """The whole body, within ``timeout`` seconds and :data:`MAX_BODY_BYTES`.

    :raises WebhookRefused: 413 for a body over the limit (announced or streamed), 408 when it stalls.
    """
    too_large = WebhookRefused(
        413,
        "body_too_large",
        f"The body is over {MAX_BODY_BYTES} bytes (1 MiB); a Gooten order JSON is a few KiB.",
    )
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > MAX_BODY_BYTES:
        raise too_large  # refused before reading a byte of it
    chunks: list[bytes] = []
    size = 0
    try:
        async with asyncio.timeout(timeout):
            async for chunk in request.stream():
                size += len(chunk)
                if size > MAX_BODY_BYTES:
                    raise too_large
                chunks.append(chunk)
    except TimeoutError:
        raise WebhookRefused(
            408, "read_timeout", f"The request body did not arrive within {timeout:g} s."
        ) from None
    return b"".join(chunks)


@dataclasses.dataclass(frozen=True)
class Relay:
    """Everything the relay's handlers read: its settings, the outbox and its lock, and the delivery."""

    settings: RelaySettings
    lock: OutboxLock
    outbox: Outbox
    airflow_client: AirflowEventsClient
    committer: GroupCommitter
    deliverer: Deliverer
    #: The digest of the token, compared in constant time with the digest of the one in the URL.
    expected: bytes

    @classmethod
    def open(cls, settings: RelaySettings) -> Relay:
        """Take the outbox's lock and open the outbox and the Airflow client.

        :raises ~gooten_provider.webhooks.outbox_lock.OutboxInUse: another relay uses the outbox.
        """
        lock = OutboxLock(settings.outbox_path).acquire()
        try:
            outbox = Outbox(settings.outbox_path, settings.dedupe_window)
        except BaseException:
            lock.release()
            raise
        client = AirflowEventsClient(
            settings.airflow_url,
            settings.asset_uri,
            settings.airflow_credentials,
            timeout=settings.airflow_timeout,
            secrets=[settings.token],
        )
        deliverer = Deliverer(
            outbox,
            client,
            retry_initial=settings.retry_initial,
            retry_max=settings.retry_max,
            park_after=settings.park_after,
        )
        return cls(settings, lock, outbox, client, GroupCommitter(outbox), deliverer, _digest(settings.token))


def _relay(request: Request) -> Relay:
    relay: Relay = request.app.state.relay
    return relay


async def receive(request: Request) -> Response:
    """``POST /gooten/webhook/{token}``: store one order change, or refuse it; log one line either way."""
    started = time.perf_counter()
    try:
        response, detail = await _accept(request, _relay(request))
    except WebhookRefused as refusal:
        response, detail = _error(refusal), f"refused: {refusal.reason}"
    except ClientDisconnect:
        response, detail = Response(status_code=400), "refused: client disconnected mid-body"
    log.info(
        "%s %s from %s: %d %s (%.1f ms)",
        request.method,
        _SHOWN_PATH,
        request.client.host if request.client else "?",
        response.status_code,
        detail,
        (time.perf_counter() - started) * 1000,
    )
    return response


async def _accept(request: Request, relay: Relay) -> tuple[Response, str]:
    """Check the method and token, read and parse the body, store the change: the answer and a log detail.

    :raises WebhookRefused: the request is refused; nothing of it is stored.
    """
    if request.method != "POST":
        raise WebhookRefused(
            405,
            "method_not_allowed",
            f"{request.method} is not accepted here: Gooten POSTs the order JSON.",
        )
    if not hmac.compare_digest(_digest(request.path_params["token"]), relay.expected):
        raise WebhookRefused(403, "wrong_token", "Wrong token in the webhook URL.")
    body = await _read_body(request, relay.settings.read_timeout)
    order_id = next((v for k, v in request.query_params.multi_items() if k.lower() == "orderid"), None)
    change = parse_order_change(body, order_id, datetime.now(UTC))
    if not relay.settings.include_nice_id:
        change = dataclasses.replace(change, nice_id=None)
    try:
        stored = await relay.committer.add(change)
    except (sqlite3.Error, ValueError) as error:  # ValueError: a value SQLite cannot encode
        log.error("Could not store a change of order %s in the outbox: %s", printable(change.order_id), error)
        raise WebhookRefused(
            503, "outbox_unavailable", "The relay could not store the change; send it again later."
        ) from None
    relay.deliverer.wake()
    statuses = printable(", ".join(change.item_statuses))
    verdict = "duplicate of change" if stored.duplicate else "stored as change"
    detail = f"order {printable(change.order_id)} ({statuses}): {verdict} {stored.row_id}"
    return JSONResponse({"accepted": True, "duplicate": stored.duplicate}), detail


async def no_token(request: Request) -> Response:
    """``/gooten/webhook`` without a token: a 404 that says which URL Gooten must post to."""
    refusal = WebhookRefused(
        404,
        "no_token",
        f"No token in the webhook URL: Gooten must post to {WEBHOOK_PATH}/<token>?orderid= "
        "(register that URL in the Gooten Admin).",
    )
    log.info("%s %s: 404 refused: no token", request.method, WEBHOOK_PATH)
    return _error(refusal)


async def after_token(request: Request) -> Response:
    """A path that goes on after the token: a 404 that says so.

    Not a redirect: the ``Location`` header of a redirect would repeat the token, and Gooten would not follow
    it with the body anyway.
    """
    refusal = WebhookRefused(
        404,
        "path_after_token",
        f"The webhook URL goes on after the token ('/...'): Gooten must post to "
        f"{WEBHOOK_PATH}/<token>?orderid= (no '/' after the token; fix the URL in the Gooten Admin).",
    )
    log.info("%s %s/...: 404 refused: path after the token", request.method, _SHOWN_PATH)
    return _error(refusal)


async def health(request: Request) -> Response:
    """``GET /healthz``: counts only, ``degraded`` while changes Airflow refused for good are parked."""
    relay = _relay(request)
    stats = await asyncio.to_thread(relay.outbox.stats)
    oldest = stats.oldest_pending_received_at
    return JSONResponse(
        {
            "status": "degraded" if stats.parked else "ok",
            "pending": stats.pending,
            "parked": stats.parked,
            "delivered": stats.delivered,
            "duplicates": stats.duplicates,
            "oldest_pending_age_seconds": None if oldest is None else round(time.time() - oldest, 3),
            "failed_attempts_in_a_row": relay.deliverer.failures,
        }
    )


async def http_error(request: Request, exc: Exception) -> Response:
    """Starlette's 404 and 405 as the relay's JSON errors (nothing that repeats the path)."""
    status = exc.status_code if isinstance(exc, HTTPException) else 500
    if status == 405:
        return _error(WebhookRefused(405, "method_not_allowed", f"{request.method} is not accepted here."))
    return JSONResponse({"error": "Not found." if status == 404 else "Error."}, status_code=status)


@contextlib.asynccontextmanager
async def lifespan(app: Starlette) -> AsyncIterator[None]:
    """Run the group committer and the delivery loop while the app serves; close everything after."""
    relay: Relay = app.state.relay
    relay.committer.start()
    relay.deliverer.start()
    try:
        yield
    finally:
        await asyncio.to_thread(relay.committer.stop)
        await asyncio.to_thread(relay.deliverer.stop)
        relay.airflow_client.close()
        relay.outbox.close()
        relay.lock.release()


ROUTES = [
    Route(WEBHOOK_PATH + "/{token}", receive, methods=_ALL_METHODS),
    Route(WEBHOOK_PATH + "/{token}/{rest:path}", after_token, methods=_ALL_METHODS),
    Route(WEBHOOK_PATH, no_token, methods=_ALL_METHODS),
    Route(WEBHOOK_PATH + "/", no_token, methods=_ALL_METHODS),
    Route("/healthz", health, methods=["GET"]),
]


def create_app(settings: RelaySettings) -> Starlette:
    """The relay as an ASGI app; its lifespan runs the delivery loop.

    ``app.state`` holds its ``relay`` (:class:`Relay`, which the handlers read) and, from it, its ``outbox``
    (:class:`~gooten_provider.webhooks.outbox.Outbox`), ``deliverer``
    (:class:`~gooten_provider.webhooks.delivery.Deliverer`) and ``airflow_client``.

    :raises ~gooten_provider.webhooks.outbox_lock.OutboxInUse: another relay uses the outbox.
    """
    install_token_path_filter()
    relay = Relay.open(settings)
    app = Starlette(routes=ROUTES, exception_handlers={404: http_error, 405: http_error}, lifespan=lifespan)
    app.router.redirect_slashes = False  # a redirect's Location would repeat the token
    app.state.relay = relay
    app.state.outbox = relay.outbox
    app.state.deliverer = relay.deliverer
    app.state.airflow_client = relay.airflow_client
    return app
