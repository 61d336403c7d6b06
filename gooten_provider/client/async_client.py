"""The Gooten API client for an event loop (the triggerer): order reads over ``httpx.AsyncClient``.

Its one write is the item cancellation (:meth:`AsyncGootenClient.cancel_order_items`), safe to repeat since
it reads first and a cancelled item is never sent again; status changes stay with the synchronous
:class:`~gooten_provider.client.GootenClient`, on a worker (a trigger may run more than once: a triggerer
restart re-runs it from its kwargs). Requests,
answers, errors, redaction and retry decisions come from the same
:class:`~gooten_provider.client.core.RequestCore`, retry policy and pacer as the sync client's
(:class:`~gooten_provider.client.base.Call`); it only sends with ``httpx`` and waits with ``asyncio.sleep``.

Example::

    async with AsyncGootenClient(recipe_id, billing_key) as client:
        await client.get_order_status("115557-b5c97bb2-934d-48aa-9ad2-a565154b5cd4")  # ['New', 'New']
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Iterable, Sequence
from types import TracebackType
from typing import Any

import httpx

from gooten_provider.client.base import GootenClientBase
from gooten_provider.client.core import GootenRequest, TransportFailure
from gooten_provider.client.order_cancel import order_cancel_request
from gooten_provider.client.transport import USER_AGENT, innermost
from gooten_provider.order_cancel_decision import CancelPlan, plan_item_cancellation
from gooten_provider.order_ids import normalize_order_id
from gooten_provider.order_items import normalize_item_ids
from gooten_provider.redaction import install_log_redaction

# httpx logs every request's URL at INFO ("HTTP Request: GET ...?partnerBillingKey=..."), httpcore at DEBUG.
_HTTPX_LOGGERS = ("httpx", "httpcore", "httpcore.connection", "httpcore.http11")


def _failure(exc: httpx.RequestError) -> TransportFailure:
    """What an ``httpx`` error means, in the core's terms.

    A body that came whole but cannot be decoded (``DecodingError``, not a transport error in httpx) is a
    broken answer, as ``requests``' ``ContentDecodingError`` is to the sync client.
    """
    if isinstance(exc, (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)):
        tls = isinstance(innermost(exc), ssl.SSLError)
        return TransportFailure.TLS if tls else TransportFailure.NOT_SENT
    if isinstance(exc, httpx.TimeoutException):
        return TransportFailure.TIMED_OUT
    # h11 says "peer closed connection without sending complete message body" for a cut body
    if isinstance(exc, httpx.RemoteProtocolError) and "complete message body" in str(exc):
        return TransportFailure.CUT_ANSWER
    return TransportFailure.BROKEN


class AsyncGootenClient(GootenClientBase):
    """Read Gooten orders from an event loop, never blocking it; one per trigger run.

    Takes :class:`~gooten_provider.client.GootenClient`'s parameters (checked by the same settings object)
    and follows the same retry policy and pacing (:mod:`gooten_provider.client.retry`).
    """

    def _open_transport(self) -> None:
        install_log_redaction(_HTTPX_LOGGERS)
        pool = self.settings.pool_maxsize
        self._http = httpx.AsyncClient(
            timeout=self.timeout,
            limits=httpx.Limits(max_connections=pool, max_keepalive_connections=pool),
            headers={"User-Agent": USER_AGENT, "Accept": "application/json"},
            follow_redirects=False,  # the key must not travel to another URL
            trust_env=False,  # no proxy from the environment: the answer must come from base_url
        )

    async def get_order(self, order_id: str) -> dict[str, Any]:
        """Return one order as Gooten describes it (``Id``, ``NiceId``, ``Items[]`` with ``Status``, ...)."""
        return await self._send(self.core.order_request(order_id))

    async def get_order_status(self, order_id: str) -> list[str]:
        """Return the status of each item of the order, in item order.

        :raises GootenApiError: the order has no items to read a status from, or the read failed.
        """
        return self.core.item_statuses(order_id, await self.get_order(order_id))

    async def cancel_order_items(self, order_id: str, item_ids: Iterable[object] | None = None) -> CancelPlan:
        """Cancel items of an order (every item when ``item_ids`` is None); return what was decided and sent.

        The same steps, checks and errors as :meth:`GootenClient.cancel_order_items
        <gooten_provider.client.GootenClient.cancel_order_items>`: one read, then at most one write.
        """
        order_id, wanted = normalize_order_id(order_id), normalize_item_ids(item_ids)
        plan = plan_item_cancellation(order_id, await self.get_order(order_id), wanted).require_eligible()
        if plan.to_send:
            await self.send_item_cancellation(plan.gooten_id, plan.to_send, order_id=order_id)
        return plan

    async def send_item_cancellation(
        self, gooten_id: int, item_ids: Sequence[int], *, order_id: str | None = None
    ) -> dict[str, Any]:
        """Send one ``PUT /api/orderCancel``; return Gooten's body.

        See :meth:`GootenClient.send_item_cancellation
        <gooten_provider.client.GootenClient.send_item_cancellation>`.
        """
        return await self._send(order_cancel_request(self.core, gooten_id, item_ids, order_id=order_id))

    async def _send(self, request: GootenRequest) -> dict[str, Any]:
        call = self.call(request)
        while True:
            ticket = await self.pacer.aacquire()
            self.requests_sent += 1
            try:
                response = await self._http.request(
                    request.method, f"{self.base_url}{request.path}", params=request.query, json=request.body
                )
            except httpx.RequestError as exc:  # the transport's errors, and an undecodable body
                step = call.failed(_failure(exc), type(innermost(exc)).__name__)
            else:  # with a pace store over the network, the pacer's round trips run off the loop
                offload = self.pacer.calls_out
                step = (
                    await asyncio.to_thread(call.answered, ticket, response)
                    if offload
                    else call.answered(ticket, response)
                )
            if step.body is not None:
                return step.body
            if step.error is not None:
                raise step.error  # out here: httpx's exception text holds the URL, key included
            if step.delay > 0:
                await asyncio.sleep(step.delay)

    async def aclose(self) -> None:
        """Close the pooled connections."""
        await self._http.aclose()

    async def __aenter__(self) -> AsyncGootenClient:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()
