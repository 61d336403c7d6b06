"""The relay's delivery loop: from the outbox to Airflow, oldest change first, until Airflow accepts each.

It wakes when a change is stored and sends the pending changes one by one. When a delivery fails, the
whole loop backs off (exponentially, with jitter, up to ``retry_max`` seconds): a failure almost always
means Airflow as a whole is down, slow or refusing the credentials, so hammering it with the other
changes would not help. The failed change is tried again first. A relay that restarts finds its
undelivered changes in the outbox and starts again at once.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from typing import Protocol

from gooten_provider.webhooks.airflow_client import AirflowDeliveryError
from gooten_provider.webhooks.outbox import Outbox

log = logging.getLogger(__name__)

#: Pending changes read from the outbox at a time.
BATCH = 100
#: How often delivered changes older than the dedupe window (and at least a day) are pruned.
PRUNE_EVERY = 3600.0
KEEP_DELIVERED_AT_LEAST = 86400.0


class EventSink(Protocol):
    """Where changes go: :class:`~gooten_provider.webhooks.airflow_client.AirflowEventsClient`."""

    async def create_event(self, extra: dict[str, object]) -> None:
        """Create one event; raise :class:`AirflowDeliveryError` if it was not taken."""


def backoff_delay(failures: int, initial: float, maximum: float) -> float:
    """Seconds to wait after ``failures`` failures in a row: ``initial * 2**(failures-1)`` +-20%, capped."""
    delay = initial * 2 ** min(max(0, failures - 1), 30)
    return min(maximum, delay * random.uniform(0.8, 1.2))  # noqa: S311 - jitter, not cryptography


class Deliverer:
    """Sends the outbox's pending changes as events, in order, retrying with backoff.

    :param retry_initial: seconds to wait after a first failure.
    :param retry_max: the longest wait between two attempts.
    """

    def __init__(self, outbox: Outbox, sink: EventSink, *, retry_initial: float, retry_max: float) -> None:
        if not 0 < retry_initial <= retry_max:
            raise ValueError(
                f"retry delays must satisfy 0 < initial <= max, got {retry_initial!r} and {retry_max!r}."
            )
        self.outbox = outbox
        self.sink = sink
        self.retry_initial = retry_initial
        self.retry_max = retry_max
        #: Failed attempts in a row (0 while Airflow accepts events).
        self.failures = 0
        #: The last delivery error (no secret in it), ``None`` once a delivery succeeds.
        self.last_error: str | None = None
        self._wake = asyncio.Event()
        self._last_prune = 0.0

    def wake(self) -> None:
        """Tell the loop a change was stored (call from the event loop's thread)."""
        self._wake.set()

    async def run(self) -> None:
        """Deliver until cancelled; an unexpected error (the outbox's disk) is logged and backed off."""
        while True:
            try:
                await self._deliver_pending()
            except Exception:
                self.failures += 1
                delay = backoff_delay(self.failures, self.retry_initial, self.retry_max)
                log.exception("The delivery loop failed; trying again in %.1f s.", delay)
                await asyncio.sleep(delay)

    async def _deliver_pending(self) -> None:
        """Send what is pending, or wait to be woken when nothing is."""
        self._wake.clear()  # before reading: a change stored from now on wakes the wait below
        await self._prune_now_and_then()
        pending = await asyncio.to_thread(self.outbox.pending, BATCH)
        if not pending:
            await self._wake.wait()
            return
        for item in pending:
            try:
                await self.sink.create_event(item.change.event_extra())
            except AirflowDeliveryError as error:
                await self._failed(item.row_id, item.change.order_id, str(error))
                return
            await asyncio.to_thread(self.outbox.mark_delivered, item.row_id, time.time())
            if self.failures:
                log.info("Airflow accepts events again, after %d failed attempt(s).", self.failures)
            self.failures, self.last_error = 0, None
            log.info("Delivered change %d (order %s) to Airflow.", item.row_id, item.change.order_id)

    async def _failed(self, row_id: int, order_id: str, error: str) -> None:
        self.failures += 1
        self.last_error = error
        delay = backoff_delay(self.failures, self.retry_initial, self.retry_max)
        await asyncio.to_thread(self.outbox.mark_failed, row_id, error, time.time())
        log.warning(
            "Could not deliver change %d (order %s), attempt %d in a row: %s Trying again in %.1f s.",
            row_id,
            order_id,
            self.failures,
            error,
            delay,
        )
        await asyncio.sleep(delay)

    async def _prune_now_and_then(self) -> None:
        now = time.time()
        if now - self._last_prune < PRUNE_EVERY:
            return
        self._last_prune = now
        keep = max(self.outbox.dedupe_window, KEEP_DELIVERED_AT_LEAST)
        pruned = await asyncio.to_thread(self.outbox.prune, now - keep)
        if pruned:
            log.info("Pruned %d delivered change(s) older than %.0f s from the outbox.", pruned, keep)
