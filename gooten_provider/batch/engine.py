"""Many orders through one action, a few at a time, each ending with exactly one record.

:func:`run_batch` keeps up to ``max_workers`` orders in flight (each one through
:func:`~gooten_provider.batch.order_change.change_order`) and only a bounded window of them queued. It stops
starting orders once :class:`~gooten_provider.batch.stop.BatchStop` is given a reason: the task was stopped,
Gooten refused the credentials, Gooten could not be reached for :data:`MAX_CONSECUTIVE_UNREACHABLE` orders in
a row, or the results could not be written; the orders not yet started are then recorded ``failed`` without
a request, naming the cause.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field

from gooten_provider.batch.action import EarlierWrite, OrderAction, State
from gooten_provider.batch.order_change import (
    BatchSignal,
    ChangeSettings,
    OrderEnd,
    change_order,
    results_unwritable,
)
from gooten_provider.batch.records import NOT_ATTEMPTED, OrderRecord, Outcome, order_record
from gooten_provider.batch.stop import BatchStop

#: After this many orders in a row whose first read could not reach Gooten, the rest are not attempted.
MAX_CONSECUTIVE_UNREACHABLE = 5


@dataclass
class _Batch:
    """The shared state of one batch's workers: the records, and what stops it."""

    ids: list[str]
    action: OrderAction[object]
    settings: ChangeSettings
    stop: BatchStop
    earlier_writes: Mapping[str, EarlierWrite]
    before_write: Callable[[str, Sequence[str]], None] | None
    on_record: Callable[[OrderRecord], None] | None
    records: list[OrderRecord | None] = field(default_factory=list)
    #: 1 once the order's record is final: exactly one record per order.
    recorded: bytearray = field(default_factory=bytearray)
    unreachable_in_a_row: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def emit(self, index: int, record: OrderRecord) -> None:
        self.recorded[index] = 1
        if self.on_record is None:
            self.records[index] = record
            return
        try:
            self.on_record(record)
        except Exception as exc:  # the records can no longer be kept: starting more orders would lose them
            self.stop.stop_task(results_unwritable(exc), exc)

    def not_attempted(self, order_id: str) -> OrderRecord:
        error = f"{NOT_ATTEMPTED}{self.stop.reason}"
        return order_record(order_id, Outcome.FAILED, [], self.action.target, self.settings.reason, error)

    def run(self, index: int) -> None:
        order_id = self.ids[index]
        if self.stop.requested:
            self.emit(index, self.not_attempted(order_id))
            return
        before_write = self.before_write
        try:
            end = change_order(
                self.action,
                order_id,
                self.settings,
                self.stop,
                earlier_write=self.earlier_writes.get(order_id),
                before_write=None if before_write is None else lambda seen: before_write(order_id, seen),
            )
        except Exception as exc:  # a bug must not lose the order: record it and go on
            error = f"{type(exc).__name__}: {exc}"
            end = OrderEnd(
                order_record(order_id, Outcome.FAILED, [], self.action.target, self.settings.reason, error)
            )
        self.heed(end)
        self.emit(index, end.record)

    def heed(self, end: OrderEnd) -> None:
        """Stop the batch if one order's end says the orders not yet started would fail the same way."""
        with self.lock:
            if end.signal is BatchSignal.UNREACHABLE:
                self.unreachable_in_a_row += 1
            elif end.signal is None:
                self.unreachable_in_a_row = 0
            in_a_row = self.unreachable_in_a_row
        if end.signal is BatchSignal.CREDENTIALS_REFUSED:
            self.stop.stop_for_gooten(f"Gooten refused the credentials ({end.record['error']})")
        elif end.signal is BatchSignal.RESULTS_UNWRITABLE and end.cause is not None:
            self.stop.stop_task(results_unwritable(end.cause), end.cause)
        elif end.signal is BatchSignal.UNREACHABLE and in_a_row >= MAX_CONSECUTIVE_UNREACHABLE:
            self.stop.stop_for_gooten(
                f"Gooten could not be reached for {MAX_CONSECUTIVE_UNREACHABLE} orders in a row "
                f"(last: {end.record['error']})"
            )


def run_batch(
    action: OrderAction[State],
    order_ids: Iterable[str],
    settings: ChangeSettings,
    *,
    max_workers: int = 4,
    stop: BatchStop | None = None,
    earlier_writes: Mapping[str, EarlierWrite] | None = None,
    before_write: Callable[[str, Sequence[str]], None] | None = None,
    on_record: Callable[[OrderRecord], None] | None = None,
) -> list[OrderRecord]:
    """Change many orders with up to ``max_workers`` in flight; return one record per order, in input order.

    Any unexpected error in one order is recorded as ``failed`` for that order; the others go on. An
    exception raised in the calling thread while it waits (``AirflowTaskTimeout`` from an
    ``execution_timeout``, an interrupt) stops the task's batch, is kept in ``stop.interruption``, and is not
    raised: the caller decides how the task ends, with every order recorded.

    ``earlier_writes``: writes an earlier try sent without recording their outcome, settled by reading
    (:class:`~gooten_provider.batch.action.EarlierWrite`). ``before_write(order_id, previous_statuses)`` is
    called before an order's first write. With ``on_record``, each record is handed to it (from the worker
    threads) as soon as it is final, and none is kept: the function then returns an empty list, so memory
    does not grow with the batch. If either raises (the results could not be written), the task's batch
    stops, and an order whose write could not be recorded first is not written.
    """
    ids = list(order_ids)
    batch = _Batch(
        ids,
        action,  # type: ignore[arg-type]  # the batch never looks inside the action's state
        settings,
        stop if stop is not None else BatchStop(),
        earlier_writes or {},
        before_write,
        on_record,
        records=[None] * len(ids) if on_record is None else [],
        recorded=bytearray(len(ids)),
    )
    _run_all(batch, max(1, max_workers))
    for index, order_id in enumerate(ids):  # never started: the batch stopped first
        if not batch.recorded[index]:
            batch.emit(index, batch.not_attempted(order_id))
    return [record for record in batch.records if record is not None]


def _run_all(batch: _Batch, workers: int) -> None:
    """Hand every order to the pool, a bounded window at a time, until all ran or the batch stopped."""
    window = workers * 2
    pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="gooten")
    try:
        in_flight: set[Future[None]] = set()
        for index in range(len(batch.ids)):
            if batch.stop.requested:
                break
            if len(in_flight) >= window:
                _, in_flight = wait(in_flight, return_when=FIRST_COMPLETED)
            in_flight.add(pool.submit(batch.run, index))
        wait(in_flight)
    except BaseException as exc:  # raised here by a signal handler: stop, record all, let the caller end
        batch.stop.stop_task(_interruption_reason(exc), exc)
    finally:
        _finish_in_flight(pool, batch.stop)


def _interruption_reason(exc: BaseException) -> str:
    detail = str(exc).strip()
    return f"the task was stopped by {type(exc).__name__}" + (f" ({detail})" if detail else "")


def _finish_in_flight(pool: ThreadPoolExecutor, stop: BatchStop) -> None:
    """Wait for the orders in flight to finish their step, even if another signal interrupts the wait."""
    while True:
        try:
            pool.shutdown(wait=True)
            return
        except BaseException as exc:  # a second interruption: the stop stands, the waiting goes on
            stop.stop_task(_interruption_reason(exc), exc)
