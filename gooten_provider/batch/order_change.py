"""One order through an action: read first, decide, write once, settle an unknown outcome by reading.

Gooten's writes are not idempotent and may time out after taking effect (a change can even land seconds
after its answer was lost), so each order goes through the same steps, and ends with exactly one record:

1. Read the order (or, when an earlier try sent a write it never saw answered, settle that write first by
   reading: :func:`_settle_earlier_write`).
2. Decide, without I/O (:meth:`OrderAction.decide <gooten_provider.batch.action.OrderAction.decide>`):
   already done, ``unchanged``; not allowed from the order's state, ``ineligible``; in a dry run, stop
   here with ``dry_run``.
3. Write once.
4. An outcome the write's answer does not settle is settled by the function the :data:`SETTLE` table names
   for the way it is unknown: a refusal is checked against the order (:func:`_settle_refusal`); a lost
   answer is re-sent after a re-read only when the action says a re-send cannot be applied twice
   (:func:`_resend_until_settled`), and is otherwise only read, over a window at least as long as the
   request timeout (:func:`_settle_by_reading`). What stays unknown is recorded ``unknown``.

Nothing here raises for an API failure: a step returns an :class:`OrderEnd`, which may also tell the batch
to stop (the credentials were refused, Gooten is unreachable, the results could not be written).
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from enum import Enum
from typing import Any, Generic

from gooten_provider.batch.action import EarlierWrite, OrderAction, State
from gooten_provider.batch.records import OrderRecord, Outcome, order_record
from gooten_provider.batch.stop import BatchStop
from gooten_provider.exceptions import (
    GootenApiError,
    GootenAuthenticationError,
    GootenConnectionError,
    GootenOutcomeUnknownError,
    GootenRateLimitError,
)

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
_EARLIER_WRITE_UNREAD = "an earlier try's change may have landed, and reading the order to settle it failed"


@dataclass(frozen=True)
class ChangeSettings:
    """How every order of a batch is changed."""

    dry_run: bool = False
    #: Free text kept in every record.
    reason: str | None = None
    max_resends: int = DEFAULT_MAX_RESENDS
    resend_backoff: float = DEFAULT_RESEND_BACKOFF
    settle_window: float = DEFAULT_SETTLE_WINDOW


class BatchSignal(Enum):
    """What one order's end tells about the orders not yet started."""

    #: Gooten refused the credentials: every later order would fail the same way.
    CREDENTIALS_REFUSED = "credentials refused"
    #: Gooten could not be reached to read the order (a run of these stops the batch).
    UNREACHABLE = "unreachable"
    #: The write's entry could not be made durable, so the write was not sent: the batch stops.
    RESULTS_UNWRITABLE = "results unwritable"


@dataclass(frozen=True)
class OrderEnd:
    """One order's final record, and what it tells the batch, if anything."""

    record: OrderRecord
    signal: BatchSignal | None = None
    #: Why the results could not be written (with ``RESULTS_UNWRITABLE``).
    cause: Exception | None = None


class Unsettled(Enum):
    """The ways a write's outcome can be left unknown by its answer; :data:`SETTLE` settles each one."""

    #: The answer was lost, and a re-send cannot be applied twice (Gooten would refuse it after a landing).
    LOST_ANSWER_RESENDABLE = "lost answer, safe to re-send"
    #: The answer was lost, and a re-send could be applied twice: the order is only read.
    LOST_ANSWER_READ_ONLY = "lost answer, read only"
    #: Gooten refused the write: the order may have changed meanwhile.
    REFUSED = "refused"


@dataclass(frozen=True)
class _Sent:
    """A write whose answer left its outcome unknown, and how."""

    how: Unsettled
    error: GootenApiError


@dataclass
class _Order(Generic[State]):
    """One order being changed: what every step needs, and the statuses its record keeps."""

    action: OrderAction[State]
    order_id: str
    settings: ChangeSettings
    stop: BatchStop
    previous: list[str]

    def end(self, outcome: Outcome, error: str | None = None, signal: BatchSignal | None = None) -> OrderEnd:
        record = order_record(
            self.order_id, outcome, self.previous, self.action.target, self.settings.reason, error
        )
        return OrderEnd(record, signal)


def results_unwritable(exc: BaseException) -> str:
    """Why the batch stops when its results cannot be written."""
    return f"the results could not be written ({type(exc).__name__}: {exc})"


def change_order(
    action: OrderAction[State],
    order_id: str,
    settings: ChangeSettings,
    stop: BatchStop,
    *,
    earlier_write: EarlierWrite | None = None,
    before_write: Callable[[Sequence[str]], None] | None = None,
) -> OrderEnd:
    """Bring one order through ``action``; see the module docstring for the steps.

    ``earlier_write``: an earlier try sent a write whose outcome it never recorded; it is settled by reading
    before anything is sent again. ``before_write`` is called with the statuses read, before the first write
    is sent (the results journal makes it durable). After a task stop, the change is not sent any more, and
    a write already sent is settled only within the stop's grace.
    """
    previous = list(earlier_write.previous_statuses) if earlier_write else []
    order = _Order(action, order_id, settings, stop, previous)
    if earlier_write is None:
        state = _first_read(order)
    else:
        state = _settle_earlier_write(order, earlier_write)
    if isinstance(state, OrderEnd):
        return state
    decision = action.decide(state)
    if settings.dry_run:
        record = order.end(Outcome.DRY_RUN, decision.error).record
        record["dry_run_outcome"] = decision.outcome
        return OrderEnd(record)
    if decision.outcome is not Outcome.UPDATED:
        return order.end(decision.outcome, decision.error)
    held = _hold_before_write(order, before_write)
    if held is not None:
        return held
    return _write_and_settle(order, state, attempt=1)


def _unreadable(order: _Order[State], exc: GootenApiError, outcome: Outcome, what: str) -> OrderEnd:
    """The end of an order whose read failed; a refused key or an unreachable Gooten concerns the batch."""
    if isinstance(exc, GootenAuthenticationError):
        return order.end(outcome, str(exc), BatchSignal.CREDENTIALS_REFUSED)
    signal = BatchSignal.UNREACHABLE if isinstance(exc, GootenConnectionError) else None
    return order.end(outcome, f"{what}: {exc}", signal)


def _first_read(order: _Order[State]) -> State | OrderEnd:
    try:
        state = order.action.read(order.order_id)
    except GootenApiError as exc:
        return _unreadable(order, exc, Outcome.FAILED, "could not read the order")
    order.previous = order.action.statuses(state)
    return state


def _settle_earlier_write(order: _Order[State], earlier: EarlierWrite) -> State | OrderEnd:
    """Settle an earlier try's write by reading: its end if that settles it, else the state read.

    The order showing the change is ``updated``. Otherwise it is read until the settle window after the
    write was sent is over (a change queued at Gooten lands within it); the state then read is decided like
    any other order's.
    """
    deadline = time.monotonic() + max(0.0, earlier.sent_at + order.settings.settle_window - time.time())
    interval = 0.5
    while True:
        try:
            state = order.action.read(order.order_id)
        except GootenApiError as exc:
            return _unreadable(order, exc, Outcome.UNKNOWN, _EARLIER_WRITE_UNREAD)
        decision = order.action.decide(state)
        if decision.landed:
            return order.end(Outcome.UPDATED)
        now = time.monotonic()
        if now >= deadline or decision.blocked:
            return state
        if order.stop.task_stopped and now >= (order.stop.settle_deadline() or now):
            statuses = ", ".join(order.action.statuses(state))
            return order.end(
                Outcome.UNKNOWN,
                f"an earlier try's change did not show yet (the order reads {statuses}) and the settling "
                f"was cut short: {order.stop.reason}. A retry of the task settles it by reading.",
            )
        time.sleep(min(interval, deadline - now))
        interval = min(interval * 2, _MAX_SETTLE_INTERVAL)


def _hold_before_write(
    order: _Order[State], before_write: Callable[[Sequence[str]], None] | None
) -> OrderEnd | None:
    """The end of an order that must not be written after all (the task stopped, the journal failed)."""
    if order.stop.task_stopped:
        why = f"not changed: {order.stop.reason}, after this order was read and before its change was sent"
        return order.end(Outcome.FAILED, why)
    if before_write is None:
        return None
    try:
        before_write(order.previous)
    except Exception as exc:  # sending a write that no later try would know of could lose its outcome
        end = order.end(Outcome.FAILED, f"not changed: {results_unwritable(exc)}, so its change was not sent")
        return OrderEnd(end.record, BatchSignal.RESULTS_UNWRITABLE, exc)
    return None


def _write(order: _Order[State], state: State) -> OrderEnd | _Sent:
    """Send the write once: its end when the answer settles it, else how its outcome is unknown."""
    try:
        order.action.write(order.order_id, state)
    except GootenOutcomeUnknownError as exc:
        resendable = order.action.resend_is_safe
        return _Sent(Unsettled.LOST_ANSWER_RESENDABLE if resendable else Unsettled.LOST_ANSWER_READ_ONLY, exc)
    except GootenAuthenticationError as exc:
        return order.end(Outcome.FAILED, str(exc), BatchSignal.CREDENTIALS_REFUSED)
    except GootenRateLimitError as exc:  # throttled past every retry: nothing was applied
        return order.end(Outcome.FAILED, str(exc))
    except GootenApiError as exc:
        return _Sent(Unsettled.REFUSED, exc)
    return order.end(Outcome.UPDATED)


def _write_and_settle(order: _Order[State], state: State, *, attempt: int) -> OrderEnd:
    """Write (the ``attempt``-th time), and settle the outcome its answer leaves unknown."""
    sent = _write(order, state)
    if isinstance(sent, OrderEnd):
        return sent
    return SETTLE[sent.how](order, sent.error, attempt)


def _settle_refusal(order: _Order[State], refusal: GootenApiError, attempt: int) -> OrderEnd:
    """Record a refused write as what the order shows, not as a failure the order itself contradicts."""
    try:
        decision = order.action.decide(order.action.read(order.order_id))
    except GootenApiError as exc:
        return order.end(Outcome.FAILED, f"{refusal} Reading the order after the refusal failed too: {exc}")
    if decision.landed and attempt > 1:  # a write whose answer was lost landed after the read that said not
        return order.end(Outcome.UPDATED)
    if decision.landed:
        target = order.action.target
        return order.end(
            Outcome.UNCHANGED,
            f"already {target} when the change was sent: another task or person changed it meanwhile "
            f"(Gooten answered: {refusal})",
        )
    if decision.blocked:
        return order.end(Outcome.INELIGIBLE, f"{decision.error}; it changed while this task ran ({refusal})")
    return order.end(Outcome.FAILED, str(refusal))


def _pause(backoff: float, attempt: int) -> None:
    """Wait ``backoff * 2**(attempt - 1)`` seconds plus jitter, so that a change still landing is seen."""
    time.sleep(backoff * 2 ** (attempt - 1) + random.uniform(0, backoff))  # noqa: S311


def _reread(order: _Order[State], unknown: GootenApiError) -> State | OrderEnd:
    """Read the order after a lost answer: its end if the read settles it, else the state to re-send from."""
    try:
        state = order.action.read(order.order_id)
    except GootenApiError as exc:
        return order.end(Outcome.UNKNOWN, f"{unknown} Reading the order to settle it failed too: {exc}")
    decision = order.action.decide(state)
    if decision.landed:
        return order.end(Outcome.UPDATED)
    if decision.blocked:
        statuses = ", ".join(order.action.statuses(state))
        return order.end(
            Outcome.FAILED, f"{unknown} The order now reads {statuses}, so the change was not re-sent."
        )
    return state


def _resend_until_settled(order: _Order[State], unknown: GootenApiError, attempt: int) -> OrderEnd:
    """After a lost answer, re-read and re-send (a bounded number of times) until the order settles it.

    The change may or may not have landed, and may still be landing: each round waits, then asks the order.
    """
    settings = order.settings
    while True:
        _pause(settings.resend_backoff, attempt)
        state = _reread(order, unknown)
        if isinstance(state, OrderEnd):
            return state
        exhausted = attempt > settings.max_resends
        if exhausted or order.stop.task_stopped:
            return order.end(Outcome.UNKNOWN, _still_unknown(order, unknown, state, exhausted=exhausted))
        log.warning(
            "Order %s: the change to %s did not take effect (attempt %d); sending it again.",
            order.order_id,
            order.action.target,
            attempt,
        )
        attempt += 1
        sent = _write(order, state)
        if isinstance(sent, OrderEnd):
            return sent
        if sent.how is not Unsettled.LOST_ANSWER_RESENDABLE:
            return SETTLE[sent.how](order, sent.error, attempt)
        unknown = sent.error


def _still_unknown(order: _Order[State], unknown: GootenApiError, state: State, *, exhausted: bool) -> str:
    """Why a re-sendable write stays unknown: every re-send's answer was lost too, or the task stopped."""
    statuses = ", ".join(order.action.statuses(state))
    if exhausted:
        return (
            f"{unknown} The change did not take effect after {order.settings.max_resends + 1} attempts whose "
            f"outcome was unknown (the order still reads {statuses}); the last one may yet land. Check the "
            "order in the Gooten Admin; running the task again is safe."
        )
    return (
        f"{unknown} The change did not show yet (the order reads {statuses}) and was not sent again: "
        f"{order.stop.reason}. A retry of the task settles it by reading the order first."
    )


def _settle_by_reading(order: _Order[State], unknown: GootenApiError, attempt: int) -> OrderEnd:
    """Settle a write that must not be re-sent by reading the order until the settle window is over.

    A task stop shortens the window to the stop's grace.
    """
    started = time.monotonic()
    deadline = started + order.settings.settle_window
    seen: list[str] | None = None
    read_error: GootenApiError | None = None
    reads = 0
    while True:
        reads += 1
        deadline = min(deadline, order.stop.settle_deadline() or deadline)
        interval = order.settings.resend_backoff * 2 ** (reads - 1)
        time.sleep(max(0.0, min(interval, _MAX_SETTLE_INTERVAL, deadline - time.monotonic())))
        try:
            state = order.action.read(order.order_id)
        except GootenApiError as exc:
            read_error = exc
            blocked = False
        else:
            seen, read_error = order.action.statuses(state), None
            decision = order.action.decide(state)
            if decision.landed:
                return order.end(Outcome.UPDATED)
            blocked = decision.blocked
        if blocked or time.monotonic() >= deadline:
            break  # moved on (a late landing may have been followed by production), or out of time
    return order.end(Outcome.UNKNOWN, _not_resent(order, unknown, seen, read_error, started))


def _not_resent(
    order: _Order[State],
    unknown: GootenApiError,
    seen: list[str] | None,
    read_error: GootenApiError | None,
    started: float,
) -> str:
    target, stop = order.action.target, order.stop
    what = (
        f"reading it failed ({read_error})"
        if seen is None
        else f"it reads {', '.join(seen)} after {time.monotonic() - started:.1f} s"
    )
    return (
        f"{unknown} It was not sent again: if the first change landed late, a second change to {target} "
        f"would re-submit the order. {what[0].upper()}{what[1:]}, so the change most likely did not land. "
        f"Check the order in the Gooten Admin; running the task again re-sends it if the order is still "
        f"not {target}." + (f" Settling was cut short: {stop.reason}." if stop.task_stopped else "")
    )


#: How each way a write's outcome can be left unknown is settled.
SETTLE: dict[Unsettled, Callable[[_Order[Any], GootenApiError, int], OrderEnd]] = {
    Unsettled.LOST_ANSWER_RESENDABLE: _resend_until_settled,
    Unsettled.LOST_ANSWER_READ_ONLY: _settle_by_reading,
    Unsettled.REFUSED: _settle_refusal,
}
