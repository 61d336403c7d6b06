"""Changing the status of many orders safely: read first, write once, settle unknown outcomes by reading.

Gooten's ``POST /api/orderstatus`` is not idempotent and may time out after taking effect (a change can
even land seconds after its answer was lost), so each order goes through the same steps, and ends with
exactly one recorded outcome:

1. Read the item statuses.
2. All items already at the target: ``unchanged`` (no write). Any item outside the statuses Gooten allows
   a change from: ``ineligible`` (no write). In a dry run, stop here: ``dry_run``.
3. Write once. A refusal is checked against the order before it is recorded: at the target already (another
   task or person changed it meanwhile), ``unchanged``; no longer changeable, ``ineligible``; otherwise
   ``failed`` with Gooten's reason.
4. The write's outcome is unknown (answer lost, or a 5xx): settle it by reading the order. What happens
   next depends on the target (:func:`resend_is_safe`):

   * ``Hold``, ``Cancelled``, ``Test``: Gooten refuses any change *from* these, so a re-send can never be
     applied on top of a first write that landed late. After a backoff, a read that shows the order still
     changeable and not at the target leads to a re-send (a bounded number of times); a re-send refused
     because the order reached the target counts as ``updated``.
   * ``New``: Gooten accepts ``New`` again from ``New``, and each acceptance re-submits the order to
     production, so a re-send after a late landing would submit it twice. The order is only read, over a
     window at least as long as the request timeout (long enough for a queued change to land):
     ``updated`` once it shows ``New``; never re-sent. Still not at ``New`` at the end: ``unknown``.

   An outcome that stays unknown (the last write's answer was lost and the reads could not tell) is
   recorded as ``unknown``: the task fails, and the record says what was seen and what to check.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from typing import Any, Protocol

from gooten_provider.batch.records import NOT_ATTEMPTED, OrderRecord, Outcome, order_record
from gooten_provider.batch.stop import BatchStop
from gooten_provider.exceptions import (
    GootenApiError,
    GootenAuthenticationError,
    GootenConnectionError,
    GootenOutcomeUnknownError,
    GootenRateLimitError,
)
from gooten_provider.statuses import CHANGEABLE_FROM_STATUSES, can_change_from

log = logging.getLogger(__name__)

#: How many times a write whose outcome was unknown, and which the order shows never took effect, is re-sent.
DEFAULT_MAX_RESENDS = 2
#: Seconds before the first re-send; doubled for each later one.
DEFAULT_RESEND_BACKOFF = 0.5
#: Seconds over which an unknown write that must not be re-sent is settled by reading (at least the
#: request timeout: a change queued at Gooten lands within it, or it was never accepted).
DEFAULT_SETTLE_WINDOW = 30.0
#: Longest pause between two settling reads.
_MAX_SETTLE_INTERVAL = 5.0
#: After this many orders in a row whose first read could not reach Gooten, the rest are not attempted.
MAX_CONSECUTIVE_UNREACHABLE = 5


@dataclass(frozen=True)
class EarlierWrite:
    """A write of an earlier try of the task whose outcome that try never recorded (it died or was stopped).

    It is settled by reading the order before anything is sent; its ``previous_statuses`` (read before
    that write) stay the order's record of where it came from.
    """

    previous_statuses: tuple[str, ...]
    #: When the write was sent (seconds since the epoch): a change queued at Gooten lands within the settle
    #: window after it, so only the part of the window still to come is waited.
    sent_at: float


class OrderStatusApi(Protocol):
    """What the change needs of a Gooten client or hook."""

    def get_order_status(self, order_id: str) -> list[str]:
        """Return the item statuses of an order."""
        ...

    def update_order_status(self, order_id: str, status: str) -> dict[str, Any]:
        """Set the status of every item of an order."""
        ...


def resend_is_safe(target: str) -> bool:
    """Tell whether a write to ``target`` whose outcome is unknown may be sent again.

    It may when Gooten refuses a change from the target itself: if the first write landed late, the
    re-send is refused rather than applied a second time. ``New`` is changeable, so it is never re-sent.
    """
    return target not in CHANGEABLE_FROM_STATUSES


class _OrderStop(Exception):
    """One order's record, raised because it says something about the orders not yet started."""

    def __init__(self, result: OrderRecord) -> None:
        super().__init__(result["error"])
        self.result = result


class _CredentialsRefused(_OrderStop):
    """Gooten refused the credentials while changing one order: every later order would fail the same way."""


class _Unreachable(_OrderStop):
    """Gooten could not be reached to read an order: after a run of these, later orders are not attempted."""


class _ResultsUnwritable(_OrderStop):
    """A write's entry could not be made durable before sending it: it is not sent, and the batch stops."""

    def __init__(self, result: OrderRecord, cause: Exception) -> None:
        super().__init__(result)
        self.cause = cause


def _results_unwritable(exc: BaseException) -> str:
    return f"the results could not be written ({type(exc).__name__}: {exc})"


def _ineligible_message(statuses: Sequence[str]) -> str:
    blocking = sorted({s for s in statuses if s not in CHANGEABLE_FROM_STATUSES})
    message = (
        f"items are {', '.join(blocking)}; Gooten allows a change only from "
        f"{', '.join(sorted(CHANGEABLE_FROM_STATUSES))}"
    )
    if "Hold" in blocking:
        message += " (a held order can only be released by Gooten support or in the Gooten Admin)"
    return message


def _all_at(statuses: Iterable[str], target: str) -> bool:
    return all(status == target for status in statuses)


def _pause(backoff: float, attempt: int) -> None:
    """Wait ``backoff * 2**(attempt - 1)`` seconds plus jitter, so that a change still landing is seen."""
    time.sleep(backoff * 2 ** (attempt - 1) + random.uniform(0, backoff))  # noqa: S311


def change_order_status(
    api: OrderStatusApi,
    order_id: str,
    target: str,
    *,
    dry_run: bool = False,
    reason: str | None = None,
    max_resends: int = DEFAULT_MAX_RESENDS,
    resend_backoff: float = DEFAULT_RESEND_BACKOFF,
    settle_window: float = DEFAULT_SETTLE_WINDOW,
    stop: BatchStop | None = None,
    earlier_write: EarlierWrite | None = None,
    before_write: Callable[[Sequence[str]], None] | None = None,
) -> OrderRecord:
    """Bring one order to ``target`` (a normalised target status) and return its result record.

    Never raises for an API failure: every failure is recorded as a ``failed`` (or ``unknown``) result with
    its message. See the module docstring for the steps, and :func:`resend_is_safe` for when a write whose
    outcome is unknown is sent again; ``settle_window`` is how long such a write is settled by reading
    when it must not be re-sent.

    ``earlier_write``: an earlier try sent a write whose outcome it never recorded; it is settled by reading
    (the order at the target is ``updated``, from the statuses read before that write) before anything is
    sent again. ``before_write`` is called with the statuses read, before the first write is sent (the
    results journal makes it durable). After a task stop (``stop``), the change is not sent any more, and a
    write already sent is settled only within the stop's grace.
    """
    stop = stop or BatchStop()
    previous: list[str] = list(earlier_write.previous_statuses) if earlier_write else []

    def record(outcome: Outcome, error: str | None = None) -> OrderRecord:
        return order_record(order_id, outcome, previous, target, reason, error)

    if earlier_write is not None:
        settled = _settle_earlier_write(api, order_id, target, earlier_write, record, settle_window, stop)
        if isinstance(settled, dict):
            return settled
        current = settled
    else:
        try:
            current = previous = api.get_order_status(order_id)
        except GootenAuthenticationError as exc:
            raise _CredentialsRefused(record(Outcome.FAILED, str(exc))) from None
        except GootenConnectionError as exc:
            raise _Unreachable(record(Outcome.FAILED, f"could not read the order: {exc}")) from None
        except GootenApiError as exc:
            return record(Outcome.FAILED, f"could not read the order: {exc}")
    if _all_at(current, target):
        decision, error = Outcome.UNCHANGED, None
    elif not can_change_from(current):
        decision, error = Outcome.INELIGIBLE, _ineligible_message(current)
    else:
        decision, error = Outcome.UPDATED, None
    if dry_run:
        return {**record(Outcome.DRY_RUN, error), "dry_run_outcome": decision}
    if decision != Outcome.UPDATED:
        return record(decision, error)
    if stop.task_stopped:
        return record(
            Outcome.FAILED,
            f"not changed: {stop.reason}, after this order was read and before its change was sent",
        )
    if before_write is not None:
        try:
            before_write(previous)
        except Exception as exc:  # sending a write that no later try would know of could lose its outcome
            failed = record(
                Outcome.FAILED, f"not changed: {_results_unwritable(exc)}, so its change was not sent"
            )
            raise _ResultsUnwritable(failed, exc) from None

    for attempt in range(1, max_resends + 2):
        try:
            api.update_order_status(order_id, target)
            return record(Outcome.UPDATED)
        except GootenOutcomeUnknownError as exc:
            unknown = exc
        except GootenAuthenticationError as exc:
            raise _CredentialsRefused(record(Outcome.FAILED, str(exc))) from None
        except GootenRateLimitError as exc:  # throttled past every retry: nothing was applied
            return record(Outcome.FAILED, str(exc))
        except GootenApiError as exc:
            return _settle_refusal(api, order_id, target, exc, record, earlier_write_lost=attempt > 1)
        if not resend_is_safe(target):
            return _settle_by_reading(
                api, order_id, target, unknown, record, resend_backoff, settle_window, stop
            )
        # The change may or may not have landed, and may still be landing: wait, then ask the order itself.
        _pause(resend_backoff, attempt)
        try:
            current = api.get_order_status(order_id)
        except GootenApiError as exc:
            return record(Outcome.UNKNOWN, f"{unknown} Reading the order to settle it failed too: {exc}")
        if _all_at(current, target):
            return record(Outcome.UPDATED)
        if not can_change_from(current):
            return record(
                Outcome.FAILED,
                f"{unknown} The order now reads {', '.join(current)}, so the change was not re-sent.",
            )
        if attempt > max_resends:
            break
        if stop.task_stopped:
            return record(
                Outcome.UNKNOWN,
                f"{unknown} The change did not show yet (the order reads {', '.join(current)}) and was not "
                f"sent again: {stop.reason}. A retry of the task settles it by reading the order first.",
            )
        log.warning(
            "Order %s: the change to %s did not take effect (attempt %d); sending it again.",
            order_id,
            target,
            attempt,
        )
    return record(
        Outcome.UNKNOWN,
        f"{unknown} The change did not take effect after {max_resends + 1} attempts whose outcome was "
        f"unknown (the order still reads {', '.join(current)}); the last one may yet land. Check the order "
        "in the Gooten Admin; running the task again is safe.",
    )


def _settle_refusal(
    api: OrderStatusApi,
    order_id: str,
    target: str,
    refusal: GootenApiError,
    record: Callable[..., OrderRecord],
    *,
    earlier_write_lost: bool,
) -> OrderRecord:
    """Record a refused write as what the order shows, not as a failure the order itself contradicts."""
    try:
        current = api.get_order_status(order_id)
    except GootenApiError as exc:
        return record(Outcome.FAILED, f"{refusal} Reading the order after the refusal failed too: {exc}")
    if _all_at(current, target):
        if earlier_write_lost:  # the write whose answer was lost landed after the read that said it had not
            return record(Outcome.UPDATED)
        return record(
            Outcome.UNCHANGED,
            f"already {target} when the change was sent: another task or person changed it meanwhile "
            f"(Gooten answered: {refusal})",
        )
    if not can_change_from(current):
        why = f"{_ineligible_message(current)}; it changed while this task ran ({refusal})"
        return record(Outcome.INELIGIBLE, why)
    return record(Outcome.FAILED, str(refusal))


def _settle_by_reading(
    api: OrderStatusApi,
    order_id: str,
    target: str,
    unknown: GootenOutcomeUnknownError,
    record: Callable[..., OrderRecord],
    backoff: float,
    window: float,
    stop: BatchStop,
) -> OrderRecord:
    """Settle a write that must not be re-sent by reading the order until ``window`` seconds have passed.

    A task stop shortens the window to the stop's grace.
    """
    started = time.monotonic()
    deadline = started + window
    seen: list[str] | None = None
    read_error: GootenApiError | None = None
    attempt = 0
    while True:
        attempt += 1
        deadline = min(deadline, stop.settle_deadline() or deadline)
        remaining = deadline - time.monotonic()
        time.sleep(max(0.0, min(backoff * 2 ** (attempt - 1), _MAX_SETTLE_INTERVAL, remaining)))
        try:
            seen = api.get_order_status(order_id)
            read_error = None
        except GootenApiError as exc:
            read_error = exc
        if seen is not None and read_error is None and _all_at(seen, target):
            return record(Outcome.UPDATED)
        if (seen is not None and not can_change_from(seen)) or time.monotonic() >= deadline:
            break  # moved on (a late landing may have been followed by production), or out of time
    what = (
        f"reading it failed ({read_error})"
        if seen is None
        else f"it reads {', '.join(seen)} after {time.monotonic() - started:.1f} s"
    )
    return record(
        Outcome.UNKNOWN,
        f"{unknown} It was not sent again: if the first change landed late, a second change to {target} "
        f"would re-submit the order. {what[0].upper()}{what[1:]}, so the change most likely did not land. "
        f"Check the order in the Gooten Admin; running the task again re-sends it if the order is still "
        f"not {target}." + (f" Settling was cut short: {stop.reason}." if stop.task_stopped else ""),
    )


_EARLIER_WRITE_UNREAD = "an earlier try's change may have landed, and reading the order to settle it failed"


def _settle_earlier_write(
    api: OrderStatusApi,
    order_id: str,
    target: str,
    earlier: EarlierWrite,
    record: Callable[..., OrderRecord],
    window: float,
    stop: BatchStop,
) -> OrderRecord | list[str]:
    """Settle an earlier try's write by reading: its record if that settles it, else the statuses read.

    The order at the target is ``updated``. Otherwise it is read until ``window`` seconds after the write
    was sent (a change queued at Gooten lands within it); what it then reads is returned, and the change is
    decided from it like any other order's.
    """
    deadline = time.monotonic() + max(0.0, earlier.sent_at + window - time.time())
    interval = 0.5
    while True:
        try:
            current = api.get_order_status(order_id)
        except GootenAuthenticationError as exc:
            raise _CredentialsRefused(record(Outcome.UNKNOWN, str(exc))) from None
        except GootenConnectionError as exc:
            raise _Unreachable(record(Outcome.UNKNOWN, f"{_EARLIER_WRITE_UNREAD}: {exc}")) from None
        except GootenApiError as exc:
            return record(Outcome.UNKNOWN, f"{_EARLIER_WRITE_UNREAD}: {exc}")
        if _all_at(current, target):
            return record(Outcome.UPDATED)
        now = time.monotonic()
        if now >= deadline or not can_change_from(current):
            return current
        if stop.task_stopped and now >= (stop.settle_deadline() or now):
            return record(
                Outcome.UNKNOWN,
                f"an earlier try's change did not show yet (the order reads {', '.join(current)}) and the "
                f"settling was cut short: {stop.reason}. A retry of the task settles it by reading.",
            )
        time.sleep(min(interval, deadline - now))
        interval = min(interval * 2, _MAX_SETTLE_INTERVAL)


def change_order_statuses(
    api: OrderStatusApi,
    order_ids: Iterable[str],
    target: str,
    *,
    max_workers: int = 4,
    dry_run: bool = False,
    reason: str | None = None,
    max_resends: int = DEFAULT_MAX_RESENDS,
    resend_backoff: float = DEFAULT_RESEND_BACKOFF,
    settle_window: float = DEFAULT_SETTLE_WINDOW,
    stop: BatchStop | None = None,
    earlier_writes: Mapping[str, EarlierWrite] | None = None,
    before_write: Callable[[str, Sequence[str]], None] | None = None,
    on_record: Callable[[OrderRecord], None] | None = None,
) -> list[OrderRecord]:
    """Change many orders with up to ``max_workers`` in flight; return one result per order, in input order.

    Only a bounded window of orders is queued at a time. Any unexpected error in one order is recorded as
    ``failed`` for that order; the others go on. Once a reason to stop is given to ``stop`` (a
    :class:`~gooten_provider.batch.stop.BatchStop`: the task was stopped), or Gooten refuses the
    credentials, or could not be reached for :data:`MAX_CONSECUTIVE_UNREACHABLE` orders in a row, the
    orders not yet started are recorded ``failed`` without a request, naming the cause. An exception raised
    in the calling thread while it waits (``AirflowTaskTimeout`` from an ``execution_timeout``, an
    interrupt) stops the task's batch the same way, is kept in ``stop.interruption``, and is not raised:
    the caller decides how the task ends, with every order recorded.

    ``earlier_writes``: writes an earlier try sent without recording their outcome, settled by reading
    (:class:`EarlierWrite`). ``before_write(order_id, previous_statuses)`` is called before an order's
    first write. With ``on_record``, each record is handed to it (from the worker threads) as soon as it is
    final, and none is kept: the function then returns an empty list, so memory does not grow with the batch.
    If either raises (the results could not be written), the task's batch stops as above, and an order whose
    write could not be recorded first is not written.
    """
    ids = list(order_ids)
    stop = stop if stop is not None else BatchStop()
    earlier_writes = earlier_writes or {}
    results: list[OrderRecord | None] = [None] * len(ids) if on_record is None else []
    recorded = bytearray(len(ids))  # 1 once the order's record is final: exactly one record per order
    unreachable_in_a_row = [0]

    def emit(index: int, result: OrderRecord) -> None:
        recorded[index] = 1
        if on_record is None:
            results[index] = result
            return
        try:
            on_record(result)
        except Exception as exc:  # the records can no longer be kept: starting more orders would lose them
            stop.stop_task(_results_unwritable(exc), exc)

    def not_attempted(order_id: str) -> OrderRecord:
        return order_record(order_id, Outcome.FAILED, [], target, reason, f"{NOT_ATTEMPTED}{stop.reason}")

    def run(index: int) -> None:
        order_id = ids[index]
        if stop.requested:
            emit(index, not_attempted(order_id))
            return
        try:
            result = change_order_status(
                api,
                order_id,
                target,
                dry_run=dry_run,
                reason=reason,
                max_resends=max_resends,
                resend_backoff=resend_backoff,
                settle_window=settle_window,
                stop=stop,
                earlier_write=earlier_writes.get(order_id),
                before_write=None if before_write is None else lambda seen: before_write(order_id, seen),
            )
            unreachable_in_a_row[0] = 0
        except _CredentialsRefused as refused:
            stop.stop_for_gooten(f"Gooten refused the credentials ({refused})")
            result = refused.result
        except _ResultsUnwritable as unwritable:
            stop.stop_task(_results_unwritable(unwritable.cause), unwritable.cause)
            result = unwritable.result
        except _Unreachable as unreachable:
            unreachable_in_a_row[0] += 1
            if unreachable_in_a_row[0] >= MAX_CONSECUTIVE_UNREACHABLE:
                stop.stop_for_gooten(
                    f"Gooten could not be reached for {MAX_CONSECUTIVE_UNREACHABLE} orders in a row "
                    f"(last: {unreachable})"
                )
            result = unreachable.result
        except Exception as exc:  # a bug must not lose the order: record it and go on
            result = order_record(
                order_id, Outcome.FAILED, [], target, reason, f"{type(exc).__name__}: {exc}"
            )
        emit(index, result)

    window = max(1, max_workers) * 2
    pool = ThreadPoolExecutor(max_workers=max(1, max_workers), thread_name_prefix="gooten")
    try:
        in_flight: set[Future[None]] = set()
        for index in range(len(ids)):
            if stop.requested:
                break
            if len(in_flight) >= window:
                _, in_flight = wait(in_flight, return_when=FIRST_COMPLETED)
            in_flight.add(pool.submit(run, index))
        wait(in_flight)
    except BaseException as exc:  # raised here by a signal handler: stop, record all, let the caller end
        stop.stop_task(_interruption_reason(exc), exc)
    finally:
        _finish_in_flight(pool, stop)
    for index, order_id in enumerate(ids):  # never started: the batch stopped first
        if not recorded[index]:
            emit(index, not_attempted(order_id))
    return [result for result in results if result is not None]


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
