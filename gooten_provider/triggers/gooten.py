"""The trigger behind the deferrable :class:`~gooten_provider.sensors.gooten.GootenOrderStatusSensor`."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from airflow.triggers.base import BaseTrigger, TriggerEvent

from gooten_provider.batch.order_wait import (
    ReadRound,
    failed_orders,
    failure_message,
    is_done,
    read_error_message,
)
from gooten_provider.exceptions import GootenApiError
from gooten_provider.hooks.gooten import GootenHook
from gooten_provider.triggers.wait_settings import WaitSettings

if TYPE_CHECKING:
    from gooten_provider.client.async_client import AsyncGootenClient

#: What :meth:`GootenOrderStatusTrigger.run` yields in ``status``.
SUCCESS, FAILURE, TIMEOUT, ERROR = "success", "failure", "timeout", "error"


class GootenOrderStatusTrigger(BaseTrigger):
    """Poll Gooten orders from the triggerer until every item of every order is in ``target_statuses``.

    Each round reads, concurrently (at most ``max_concurrency`` at once, paced by the client's adaptive rate
    controller), every order not yet done; orders done are not read again. A round starts at most once per
    ``poke_interval``, so each order is read at most once per interval (plus the client's retries of a
    failed read). It only reads, so it is safe to run more than once, and the deadline is absolute, so a
    triggerer restart does not extend the wait.

    It yields one event, a JSON object: ``status`` (``success``, ``failure``: an order reached one of
    ``failure_statuses``; ``timeout``: ``end_time`` passed; ``error``: a read that waiting will not fix, such
    as a 404 from a wrong base URL or refused credentials), ``message``, and ``statuses``:
    ``{order_id: [item statuses]}`` of every order read so far.

    :param order_ids: the orders to watch (already parsed and checked by the sensor).
    :param target_statuses: statuses that count as done (Gooten's spelling).
    :param failure_statuses: statuses that end the wait with a failure.
    :param gooten_conn_id: the Gooten connection; its credentials are read in the triggerer, never kept here.
    :param poke_interval: seconds between the starts of two rounds of reads.
    :param end_time: the deadline, in seconds since the epoch (UTC).
    :param max_concurrency: reads in flight at once.
    :param known_statuses: statuses already read (by the sensor's poke on the worker); done orders among
        them are not read again.
    :param not_before: epoch seconds before which the first round does not start: the sensor's poke read
        the orders just before deferring, so the next read is due a ``poke_interval`` after it. (After a
        triggerer restart this time has usually passed: the first round starts at once.)
    :param rate_limit_conn_id: the Redis connection of the account's shared pace (``None``: the Gooten
        connection's extra; ``""``: none), as the sensor was given it.

    Bad kwargs (a bad order id, a deadline that is not a finite number, a wrong type, a kwarg it does not
    take) are not raised here: the triggerer rebuilds the trigger from kwargs kept in its database, where
    they can be edited, so :meth:`run` yields an ``error`` event naming each problem instead.
    """

    def __init__(
        self,
        *,
        order_ids: Sequence[str],
        target_statuses: Sequence[str],
        failure_statuses: Sequence[str] = (),
        gooten_conn_id: str = GootenHook.default_conn_name,
        poke_interval: float = 60.0,
        end_time: float,
        max_concurrency: int = 8,
        known_statuses: Mapping[str, Sequence[str]] | None = None,
        not_before: float | None = None,
        rate_limit_conn_id: str | None = None,
        **unknown: Any,
    ) -> None:
        super().__init__()  # type: ignore[no-untyped-call]  # Airflow's BaseTrigger is untyped
        given = {
            "order_ids": order_ids,
            "target_statuses": target_statuses,
            "failure_statuses": failure_statuses,
            "gooten_conn_id": gooten_conn_id,
            "poke_interval": poke_interval,
            "end_time": end_time,
            "max_concurrency": max_concurrency,
            "known_statuses": known_statuses,
            "not_before": not_before,
            "rate_limit_conn_id": rate_limit_conn_id,
            **unknown,  # a kwarg no version of this trigger wrote: refused by name, not a TypeError
        }
        # Not raised here: the triggerer builds the trigger from kwargs kept in its database, and a raise
        # there is a bare traceback; run() turns the problem into an error event that names it.
        self.refusal: str | None = None
        try:
            self.settings = WaitSettings.from_kwargs(given)
        except ValueError as exc:
            self.refusal = str(exc)
            self.settings = WaitSettings([], [], [], "", 1.0, 0.0, 1, {}, None)
        self._given = given

    def serialize(self) -> tuple[str, dict[str, Any]]:
        """The class path and JSON-safe kwargs: ids, statuses, timing, the connection id; no credential."""
        kwargs = dict(self._given) if self.refusal else self.settings.to_kwargs()
        return f"{type(self).__module__}.{type(self).__qualname__}", kwargs

    async def run(self) -> AsyncIterator[TriggerEvent]:
        """Poll until done, failed, an error that waiting will not fix, or ``end_time``; yield one event."""
        if self.refusal is not None:
            yield self._event(
                ERROR,
                f"The Gooten order status trigger cannot run with the kwargs it was given (were they changed "
                f"in Airflow's database?): {self.refusal}",
                {},
            )
            return
        settings = self.settings
        statuses: dict[str, list[str]] = dict(settings.known_statuses)
        try:
            hook = GootenHook(
                settings.gooten_conn_id,
                pool_maxsize=settings.max_concurrency,
                rate_limit_conn_id=settings.rate_limit_conn_id,
            )
            client = await hook.get_async_client()
        except Exception as exc:  # a missing or unusable connection: the task fails with the reason
            yield self._event(
                ERROR, f"Could not use Gooten connection {settings.gooten_conn_id!r}: {exc}", statuses
            )
            return
        async with client:
            yield await self._poll(client, statuses)

    async def _poll(self, client: AsyncGootenClient, statuses: dict[str, list[str]]) -> TriggerEvent:
        settings = self.settings
        targets, failures = set(settings.target_statuses), set(settings.failure_statuses)
        rounds = 0
        first_due = (settings.not_before or 0.0) - time.time()
        if first_due > 0:  # the worker's poke just read them: the next read is due a poke_interval later
            if settings.end_time <= (settings.not_before or 0.0):  # the deadline comes first: no read is due
                await asyncio.sleep(max(settings.end_time - time.time(), 0.0))
                return self._timeout(
                    [o for o in settings.order_ids if not is_done(o, statuses, targets)], statuses
                )
            await asyncio.sleep(first_due)
        while True:
            started = time.monotonic()
            pending = [o for o in settings.order_ids if not is_done(o, statuses, targets)]
            read = ReadRound.sort(await self._read_all(client, pending))
            rounds += 1
            statuses.update(read.statuses)
            if read.fatal:
                return self._event(ERROR, read_error_message(read.fatal), statuses)
            read.log_transient(self.log)
            failed = failed_orders(statuses, failures)
            if failed:
                return self._event(
                    FAILURE, failure_message(failed, failures, settings.target_statuses), statuses
                )
            waiting = [o for o in settings.order_ids if not is_done(o, statuses, targets)]
            if not waiting:
                return self._event(
                    SUCCESS,
                    f"All {len(settings.order_ids)} order(s) reached {', '.join(settings.target_statuses)}.",
                    statuses,
                )
            remaining = settings.end_time - time.time()
            self.log.info(
                "Round %d: %d of %d order(s) done, waiting for %s; %d of %d read(s) made this round.",
                rounds,
                len(settings.order_ids) - len(waiting),
                len(settings.order_ids),
                ", ".join(settings.target_statuses),
                len(read.statuses) + len(read.transient),
                len(pending),
            )
            pause = settings.poke_interval - (time.monotonic() - started)
            if remaining <= max(pause, 0.0):
                await asyncio.sleep(max(remaining, 0.0))
                return self._timeout(waiting, statuses)
            await asyncio.sleep(max(pause, 0.0))

    def _timeout(self, waiting: Sequence[str], statuses: Mapping[str, Sequence[str]]) -> TriggerEvent:
        settings = self.settings
        return self._event(
            TIMEOUT,
            f"{len(waiting)} of {len(settings.order_ids)} order(s) had not reached "
            f"{', '.join(settings.target_statuses)} by the sensor's timeout; still waiting for: "
            f"{', '.join(waiting[:20])}{' ...' if len(waiting) > 20 else ''}.",
            statuses,
        )

    async def _read_all(
        self, client: AsyncGootenClient, order_ids: Sequence[str]
    ) -> dict[str, list[str] | GootenApiError]:
        """Read these orders, at most ``max_concurrency`` at once, until ``end_time``.

        A failed read gives its error; an order not read by the deadline is left out. The deadline cuts
        the round, not only the pause after it: a round of 10,000 reads lasts longer than many a timeout.
        """
        # A few readers sharing one iterator, not a task per order: 1,000 tasks started at once would hold
        # the event loop for a while at the start of each round.
        todo = iter(order_ids)
        results: dict[str, list[str] | GootenApiError] = {}

        async def reader() -> None:
            for order_id in todo:
                try:
                    results[order_id] = await client.get_order_status(order_id)
                except GootenApiError as exc:
                    results[order_id] = exc

        readers = min(self.settings.max_concurrency, len(order_ids))
        # Reads in flight at the deadline are cancelled: the trigger only reads, so nothing is left half-done.
        deadline = asyncio.timeout(max(self.settings.end_time - time.time(), 0.0))
        try:
            async with deadline:
                await asyncio.gather(*(reader() for _ in range(readers)))
        except TimeoutError:
            if not deadline.expired():  # not the deadline's: a bug below, not to be taken for a timeout
                raise
        return {order_id: results[order_id] for order_id in order_ids if order_id in results}

    def _event(self, status: str, message: str, statuses: Mapping[str, Sequence[str]]) -> TriggerEvent:
        ordered = {
            order_id: list(statuses[order_id]) for order_id in self.settings.order_ids if order_id in statuses
        }
        return TriggerEvent({"status": status, "message": message, "statuses": ordered})  # type: ignore[no-untyped-call]
