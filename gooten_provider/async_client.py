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

from gooten_provider.adaptive_rate import AdaptiveRateController
from gooten_provider.base_url import DEFAULT_BASE_URL
from gooten_provider.defaults import (
    DEFAULT_BACKOFF_FACTOR,
    DEFAULT_MAX_RETRIES,
    DEFAULT_POOL_MAXSIZE,
    DEFAULT_THROTTLE_TIMEOUT,
    DEFAULT_TIMEOUT,
)
from gooten_provider.exceptions import GootenApiError
from gooten_provider.rate_limit import RateLimiter
from gooten_provider.redaction import install_log_redaction
from gooten_provider.request_core import GootenRequest, RequestCore, TransportFailure, parse_retry_after
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


class AsyncGootenClient:
    """Read Gooten orders from an event loop, never blocking it; one per trigger run.

    Takes :class:`~gooten_provider.client.GootenClient`'s parameters (checked by the same core). Reads are
    retried on connection errors, 500/502/503/504 and cut or non-JSON answers, up to ``max_retries``, with
    the sync client's backoff; 429s are paced and retried until ``throttle_timeout``, as in the sync client.
    """

    def __init__(
        self,
        recipe_id: str,
        billing_key: str,
        *,
        base_url: str | None = DEFAULT_BASE_URL,
        port: int | None = None,
        timeout: float = DEFAULT_TIMEOUT,
        max_retries: int = DEFAULT_MAX_RETRIES,
        backoff_factor: float = DEFAULT_BACKOFF_FACTOR,
        pool_maxsize: int = DEFAULT_POOL_MAXSIZE,
        requests_per_second: float | None = None,
        adaptive_rate: bool = True,
        throttle_timeout: float = DEFAULT_THROTTLE_TIMEOUT,
    ) -> None:
        #: The sans-I/O core shared with the sync client.
        self.core = RequestCore(
            recipe_id,
            billing_key,
            base_url=base_url,
            port=port,
            timeout=timeout,
            max_retries=max_retries,
            backoff_factor=backoff_factor,
            requests_per_second=requests_per_second,
            adaptive_rate=adaptive_rate,
            throttle_timeout=throttle_timeout,
        )
        self.base_url = self.core.base_url
        self._rate_limiter = RateLimiter(requests_per_second) if requests_per_second is not None else None
        #: The rate controller of this client, or ``None`` with ``adaptive_rate=False``.
        self.rate_controller = AdaptiveRateController() if adaptive_rate else None
        install_log_redaction(_HTTPX_LOGGERS)
        self._http = httpx.AsyncClient(
            timeout=self.core.timeout,
            limits=httpx.Limits(max_connections=pool_maxsize, max_keepalive_connections=pool_maxsize),
            headers={"User-Agent": USER_AGENT, "Accept": "application/json"},
            follow_redirects=False,  # the key must not travel to another URL
            trust_env=False,  # no proxy from the environment: the answer must come from base_url
        )
        #: Requests sent (tries included), for tests and benchmarks.
        self.requests_sent = 0

    def __repr__(self) -> str:
        return f"AsyncGootenClient(base_url={self.base_url!r}, recipe_id={self.core.recipe_id!r})"

    @property
    def secret_forms(self) -> tuple[str, ...]:
        """Every form of the billing key that must be masked wherever text is shown."""
        return self.core.secret_forms

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
            if controller is None or response.status_code != 429:
                break
            retry_after = parse_retry_after(response.headers.get("Retry-After"))
            controller.record(ticket, throttled=True, retry_after=retry_after)
            throttle.throttled(retry_after)
        if controller is not None:
            controller.record(ticket, throttled=False)
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
