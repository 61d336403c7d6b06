"""The relay's delivery thread: from the outbox to Airflow, oldest change first, until Airflow accepts each.

It wakes when a change is stored and sends the pending changes one by one. When a delivery fails, the
whole thread backs off (exponentially, with jitter, up to ``retry_max`` seconds): a failure almost always
means Airflow as a whole is down, slow or refusing the credentials, so hammering it with the other
changes would not help. The failed change is tried again first. A relay that restarts finds its
undelivered changes in the outbox and starts again at once.

The exception is an answer that retrying cannot change (a 422: Airflow read the event and refused it).
After ``park_after`` such refusals of one change in a row, the change is **parked** (kept in the outbox
with its error, no longer pending) and the changes after it flow on; ``/healthz`` says ``degraded``, and
``python -m gooten_provider.webhooks parked`` lists parked changes and queues them again.

It is a thread, not a task of the event loop: the HTTP client's CPU time then never delays the answers to
Gooten, which the event loop gives.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from typing import Protocol

from gooten_provider.webhooks.airflow_client import AirflowDeliveryError
from gooten_provider.webhooks.order_change import printable
from gooten_provider.webhooks.outbox import Outbox

log = logging.getLogger(__name__)

#: Pending changes read from the outbox at a time.
BATCH = 100
#: How often delivered changes older than the dedupe window (and at least a day) are pruned.
PRUNE_EVERY = 3600.0
KEEP_DELIVERED_AT_LEAST = 86400.0
#: Refusals for good of one change after which it is parked (``--park-after``).
DEFAULT_PARK_AFTER = 5
#: Seconds between looks at the outbox while nothing is pending: changes queued again from another
#: process (``parked --requeue``) wake no one.
IDLE_POLL = 2.0


class EventSink(Protocol):
    """Where changes go: :class:`~gooten_provider.webhooks.airflow_client.AirflowEventsClient`."""

    def create_event(self, extra: dict[str, object]) -> None:
        """Create one event; raise :class:`AirflowDeliveryError` if it was not taken."""


def backoff_delay(failures: int, initial: float, maximum: float) -> float:
    """Seconds to wait after ``failures`` failures in a row: ``initial * 2**(failures-1)`` +-20%, capped."""
    delay = initial * 2 ** min(max(0, failures - 1), 30)
    return float(min(maximum, delay * random.uniform(0.8, 1.2)))  # noqa: S311 - jitter, not cryptography


class Deliverer:
    """Sends the outbox's pending changes as events, in order, retrying with backoff, on its own thread.

    :param retry_initial: seconds to wait after a first failure.
    :param retry_max: the longest wait between two attempts.
    :param park_after: refusals for good of one change after which it is parked.
    """

    def __init__(
        self,
        outbox: Outbox,
        sink: EventSink,
        *,
        retry_initial: float,
        retry_max: float,
        park_after: int = DEFAULT_PARK_AFTER,
    ) -> None:
        if not 0 < retry_initial <= retry_max:
            raise ValueError(
                f"retry delays must satisfy 0 < initial <= max, got {retry_initial!r} and {retry_max!r}."
            )
        if park_after < 1:
            raise ValueError(f"park_after must be 1 or more refusals, got {park_after!r}.")
        self.park_after = park_after
        self.outbox = outbox
        self.sink = sink
        self.retry_initial = retry_initial
        self.retry_max = retry_max
        #: Failed attempts in a row (0 while Airflow accepts events).
        self.failures = 0
        #: The last delivery error (no secret in it), ``None`` once a delivery succeeds.
        self.last_error: str | None = None
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self._last_prune = 0.0

    def start(self) -> None:
        """Start the delivery thread."""
        self._stopping.clear()
        self._thread = threading.Thread(target=self._run, name="gooten-relay-delivery", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 15.0) -> None:
        """Stop the thread after the delivery in flight, if any (what is pending stays in the outbox)."""
        self._stopping.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None

    def wake(self) -> None:
        """Tell the thread a change was stored (from any thread)."""
        self._wake.set()

    def _run(self) -> None:
        while not self._stopping.is_set():
            try:
                self._deliver_pending()
            except Exception:  # the outbox's disk, say: keep the relay delivering once it recovers
                self.failures += 1
                delay = backoff_delay(self.failures, self.retry_initial, self.retry_max)
                log.exception("The delivery loop failed; trying again in %.1f s.", delay)
                self._stopping.wait(delay)

    def _deliver_pending(self) -> None:
        """Send what is pending, or wait to be woken when nothing is."""
        self._wake.clear()  # before reading: a change stored from now on wakes the wait below
        self._prune_now_and_then()
        pending = self.outbox.pending(BATCH)
        if not pending:
            self._wake.wait(IDLE_POLL)
            return
        for item in pending:
            if self._stopping.is_set():
                return
            try:
                self.sink.create_event(item.change.event_extra())
            except AirflowDeliveryError as error:
                self._failed(item.row_id, printable(item.change.order_id), error)
                return
            self.outbox.mark_delivered(item.row_id, time.time())
            if self.failures:
                log.info("Airflow accepts events again, after %d failed attempt(s).", self.failures)
            self.failures, self.last_error = 0, None
            log.info(
                "Delivered change %d (order %s) to Airflow.", item.row_id, printable(item.change.order_id)
            )

    def _failed(self, row_id: int, order_id: str, failure: AirflowDeliveryError) -> None:
        error = str(failure)
        self.failures += 1
        self.last_error = error
        delay = backoff_delay(self.failures, self.retry_initial, self.retry_max)
        if failure.permanent:
            parked = self.outbox.mark_refused(row_id, error, time.time(), self.park_after)
        else:
            parked = False
            self.outbox.mark_failed(row_id, error, time.time())
        if parked:
            log.error(
                "Parked change %d (order %s): Airflow refused it %d times, and retrying cannot change "
                "that: %s Later changes are delivered; list parked changes, and queue them again once "
                "fixed, with `python -m gooten_provider.webhooks parked --outbox %s`.",
                row_id,
                order_id,
                self.park_after,
                error,
                self.outbox.path,
            )
            return  # no backoff: the next change is not the one Airflow refused
        log.warning(
            "Could not deliver change %d (order %s), attempt %d in a row: %s Trying again in %.1f s.",
            row_id,
            order_id,
            self.failures,
            error,
            delay,
        )
        self._stopping.wait(delay)

    def _prune_now_and_then(self) -> None:
        now = time.time()
        if now - self._last_prune < PRUNE_EVERY:
            return
        self._last_prune = now
        keep = max(self.outbox.dedupe_window, KEEP_DELIVERED_AT_LEAST)
        pruned = self.outbox.prune(now - keep)
        if pruned:
            log.info("Pruned %d delivered change(s) older than %.0f s from the outbox.", pruned, keep)
