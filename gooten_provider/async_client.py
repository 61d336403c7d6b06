"""The Gooten API client for an event loop (the triggerer): order reads over ``httpx.AsyncClient``.

It reads only: a trigger may run more than once (a triggerer restart re-runs it from its kwargs), so status
changes stay with the synchronous :class:`~gooten_provider.client.GootenClient`, on a worker. Requests,
answers, errors, redaction and retry decisions come from the same
:class:`~gooten_provider.request_core.RequestCore` as the sync client's; pacing from the same
:class:`~gooten_provider.adaptive_rate.AdaptiveRateController` logic, waiting with ``asyncio.sleep``.

Example::

    async with AsyncGootenClient(recipe_id, billing_key) as client:
        await client.get_order_status("115557-b5c97bb2-934d-48aa-9ad2-a565154b5cd4")  # ['New', 'New']
"""

from __future__ import annotations

import asyncio
import ssl
from types import TracebackType
from typing import Any

import httpx

from gooten_provider.client_base import GootenClientBase
from gooten_provider.exceptions import GootenApiError
from gooten_provider.redaction import install_log_redaction
from gooten_provider.request_core import GootenRequest, TransportFailure
from gooten_provider.transport import USER_AGENT

# httpx logs every request's URL at INFO ("HTTP Request: GET ...?partnerBillingKey=..."), httpcore at DEBUG.
_HTTPX_LOGGERS = ("httpx", "httpcore", "httpcore.connection", "httpcore.http11")


def _innermost(exc: BaseException) -> BaseException:
    inner, seen = exc, set()
    while id(inner) not in seen and (inner.__cause__ or inner.__context__) is not None:
        seen.add(id(inner))
        inner = inner.__cause__ or inner.__context__  # type: ignore[assignment]
    return inner


def _failure(exc: httpx.TransportError) -> TransportFailure:
    """What an ``httpx`` error means, in the core's terms."""
    if isinstance(exc, (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)):
        tls = isinstance(_innermost(exc), ssl.SSLError)
        return TransportFailure.TLS if tls else TransportFailure.NOT_SENT
    if isinstance(exc, httpx.TimeoutException):
        return TransportFailure.TIMED_OUT
    # h11 says "peer closed connection without sending complete message body" for a cut body
    if isinstance(exc, httpx.RemoteProtocolError) and "complete message body" in str(exc):
        return TransportFailure.CUT_ANSWER
    return TransportFailure.BROKEN


class AsyncGootenClient(GootenClientBase):
    """Read Gooten orders from an event loop, never blocking it; one per trigger run.

    Takes :class:`~gooten_provider.client.GootenClient`'s parameters (checked by the same core). Reads are
    retried on connection errors, 500/502/503/504 and cut or non-JSON answers, up to ``max_retries``, with
    the sync client's backoff; 429s are paced and retried until ``throttle_timeout``, as in the sync client.
    """

    def _open_transport(self, pool_maxsize: int) -> None:
        install_log_redaction(_HTTPX_LOGGERS)
        self._http = httpx.AsyncClient(
            timeout=self.timeout,
            limits=httpx.Limits(max_connections=pool_maxsize, max_keepalive_connections=pool_maxsize),
            headers={"User-Agent": USER_AGENT, "Accept": "application/json"},
            follow_redirects=False,  # the key must not travel to another URL
            trust_env=False,  # no proxy from the environment: the answer must come from base_url
        )
        #: Requests sent (tries included), for tests and benchmarks.
        self.requests_sent = 0

    async def get_order(self, order_id: str) -> dict[str, Any]:
        """Return one order as Gooten describes it (``Id``, ``NiceId``, ``Items[]`` with ``Status``, ...)."""
        return await self._read(self.core.order_request(order_id))

    async def get_order_status(self, order_id: str) -> list[str]:
        """Return the status of each item of the order, in item order.

        :raises GootenApiError: the order has no items to read a status from, or the read failed.
        """
        return self.core.item_statuses(order_id, await self.get_order(order_id))

    async def _read(self, request: GootenRequest) -> dict[str, Any]:
        retry = 0
        while True:
            try:
                return await self._send(request, attempt=retry + 1)
            except GootenApiError as exc:
                if retry >= self.core.max_retries or not self.core.should_read_again(exc):
                    raise
            await asyncio.sleep(self.core.backoff_seconds(retry))
            retry += 1

    async def _send(self, request: GootenRequest, *, attempt: int) -> dict[str, Any]:
        controller = self.rate_controller
        throttle = self.core.throttle_window(request)
        while True:
            ticket = await controller.aacquire() if controller else 0.0
            if self._rate_limiter:
                await self._rate_limiter.await_slot()
            error: GootenApiError | None = None
            self.requests_sent += 1
            try:
                response = await self._http.request(
                    request.method, f"{self.base_url}{request.path}", params=request.query
                )
            except httpx.TransportError as exc:
                error = self.core.transport_error(
                    _failure(exc), request, cause=type(_innermost(exc)).__name__, attempts=attempt
                )
            if error is not None:
                raise error  # out here: httpx's exception text holds the URL, key included
            if not self._send_again(ticket, throttle, response.status_code, response.headers):
                return self.core.parse(response, request)

    async def aclose(self) -> None:
        """Close the pooled connections."""
        await self._http.aclose()

    async def __aenter__(self) -> AsyncGootenClient:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()
