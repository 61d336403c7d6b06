"""Changing the status of many orders safely: read first, write once, settle unknown outcomes by reading.

Gooten's ``POST /api/orderstatus`` is not idempotent and may time out after taking effect, so each order
goes through the same steps, and ends with exactly one recorded outcome:

1. Read the item statuses.
2. All items already at the target: ``unchanged`` (no write). Any item outside the statuses Gooten allows
   a change from: ``ineligible`` (no write). In a dry run, stop here: ``dry_run``.
3. Write once. Gooten's ``HadError`` or any other refusal: ``failed``.
4. The write's outcome is unknown (response lost, or a 5xx): wait a backoff (the change may still be
   landing), then read again. At the target: ``updated``. Still changeable and not at the target, so the
   write never took effect: send it again, a bounded number of times. Otherwise: ``failed``. A re-send
   refused by Gooten is checked once more against the order, in case the earlier write landed late.
"""

from __future__ import annotations

import logging
import random
import time
from collections import Counter
from collections.abc import Iterable, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from typing import Any, Protocol

from gooten_provider.exceptions import GootenApiError, GootenAuthenticationError, GootenOutcomeUnknownError
from gooten_provider.statuses import CHANGEABLE_FROM_STATUSES, can_change_from

log = logging.getLogger(__name__)

UPDATED = "updated"
UNCHANGED = "unchanged"
INELIGIBLE = "ineligible"
FAILED = "failed"
DRY_RUN = "dry_run"
OUTCOMES: tuple[str, ...] = (UPDATED, UNCHANGED, INELIGIBLE, FAILED, DRY_RUN)

#: How many times a write whose outcome was unknown, and which the order shows never took effect, is re-sent.
DEFAULT_MAX_RESENDS = 2
#: Seconds before the first re-send; doubled for each later one.
DEFAULT_RESEND_BACKOFF = 0.5


class OrderStatusApi(Protocol):
    """What the change needs of a Gooten client or hook."""

    def get_order_status(self, order_id: str) -> list[str]:
        """Return the item statuses of an order."""
        ...

    def update_order_status(self, order_id: str, status: str) -> dict[str, Any]:
        """Set the status of every item of an order."""
        ...


def _result(
    order_id: str,
    outcome: str,
    previous: Sequence[str],
    target: str,
    reason: str | None,
    error: str | None = None,
) -> dict[str, Any]:
    return {
        "order_id": order_id,
        "outcome": outcome,
        "previous_statuses": list(previous),
        "status": target,
        "error": error,
        "reason": reason,
    }


class _CredentialsRefused(Exception):
    """Gooten refused the credentials while changing one order: every later order would fail the same way."""

    def __init__(self, result: dict[str, Any]) -> None:
        super().__init__(result["error"])
        self.result = result


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


def _is_at(api: OrderStatusApi, order_id: str, target: str) -> bool:
    """Tell whether every item of the order is at ``target``; ``False`` when the order cannot be read."""
    try:
        return _all_at(api.get_order_status(order_id), target)
    except GootenApiError:
        return False


def change_order_status(
    api: OrderStatusApi,
    order_id: str,
    target: str,
    *,
    dry_run: bool = False,
    reason: str | None = None,
    max_resends: int = DEFAULT_MAX_RESENDS,
    resend_backoff: float = DEFAULT_RESEND_BACKOFF,
) -> dict[str, Any]:
    """Bring one order to ``target`` (a normalised target status) and return its result record.

    Never raises for an API failure: every failure is recorded as a ``failed`` result with its message.
    After a write whose outcome is unknown it waits ``resend_backoff * 2**n`` seconds plus jitter before
    reading the order, so that a change still landing is seen, and a short outage does not use up every
    attempt.
    """
    previous: list[str] = []

    def record(outcome: str, error: str | None = None) -> dict[str, Any]:
        return _result(order_id, outcome, previous, target, reason, error)

    try:
        previous = api.get_order_status(order_id)
    except GootenAuthenticationError as exc:
        raise _CredentialsRefused(record(FAILED, str(exc))) from None
    except GootenApiError as exc:
        return record(FAILED, f"could not read the order: {exc}")
    if _all_at(previous, target):
        decision, error = UNCHANGED, None
    elif not can_change_from(previous):
        decision, error = INELIGIBLE, _ineligible_message(previous)
    else:
        decision, error = UPDATED, None
    if dry_run:
        return {**record(DRY_RUN, error), "dry_run_outcome": decision}
    if decision != UPDATED:
        return record(decision, error)

    for attempt in range(1, max_resends + 2):
        try:
            api.update_order_status(order_id, target)
            return record(UPDATED)
        except GootenOutcomeUnknownError as exc:
            unknown = exc
        except GootenAuthenticationError as exc:
            raise _CredentialsRefused(record(FAILED, str(exc))) from None
        except GootenApiError as exc:
            # A re-send refused because the order moved on: an earlier write, whose answer was lost, may have
            # landed after the read that said it had not.
            if attempt > 1 and _is_at(api, order_id, target):
                return record(UPDATED)
            return record(FAILED, str(exc))
        # The change may or may not have landed, and may still be landing: wait, then ask the order itself.
        time.sleep(resend_backoff * 2 ** (attempt - 1) + random.uniform(0, resend_backoff))  # noqa: S311
        try:
            current = api.get_order_status(order_id)
        except GootenApiError as exc:
            return record(FAILED, f"{unknown} Reading the order to settle it failed too: {exc}")
        if _all_at(current, target):
            return record(UPDATED)
        if not can_change_from(current):
            return record(
                FAILED, f"{unknown} The order now reads {', '.join(current)}, so the change was not re-sent."
            )
        if attempt > max_resends:
            break
        log.warning(
            "Order %s: the change to %s did not take effect (attempt %d); sending it again.",
            order_id,
            target,
            attempt,
        )
    return record(FAILED, f"{unknown} The change did not take effect after {max_resends + 1} attempts.")


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
) -> list[dict[str, Any]]:
    """Change many orders with up to ``max_workers`` in flight; return one result per order, in input order.

    Only a bounded window of orders is queued at a time, so memory holds a result per order and little more.
    Any unexpected error in one order is recorded as ``failed`` for that order; the others go on. Once
    Gooten refuses the credentials, the orders not yet started are recorded ``failed`` without a request.
    """
    ids = list(order_ids)
    results: list[dict[str, Any] | None] = [None] * len(ids)
    refused: list[str] = []  # the first credentials refusal, once there is one

    def run(index: int) -> None:
        order_id = ids[index]
        if refused:
            results[index] = _result(
                order_id,
                FAILED,
                [],
                target,
                reason,
                f"not attempted: Gooten refused the credentials ({refused[0]})",
            )
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
            )
        except _CredentialsRefused as stop:
            refused.append(str(stop))
            result = stop.result
        except Exception as exc:  # a bug must not lose the order: record it and go on
            result = _result(order_id, FAILED, [], target, reason, f"{type(exc).__name__}: {exc}")
        results[index] = result

    window = max(1, max_workers) * 2
    with ThreadPoolExecutor(max_workers=max(1, max_workers), thread_name_prefix="gooten") as pool:
        in_flight: set[Future[None]] = set()
        for index in range(len(ids)):
            if len(in_flight) >= window:
                _, in_flight = wait(in_flight, return_when=FIRST_COMPLETED)
            in_flight.add(pool.submit(run, index))
        wait(in_flight)
    return [
        result or _result(order_id, FAILED, [], target, reason, "no result was recorded for this order")
        for order_id, result in zip(ids, results, strict=True)
    ]


def count_outcomes(results: Iterable[dict[str, Any]]) -> dict[str, int]:
    """Count results per outcome, every outcome listed (zero included), in a stable order."""
    counts = Counter(result["outcome"] for result in results)
    return {outcome: counts.get(outcome, 0) for outcome in OUTCOMES}
