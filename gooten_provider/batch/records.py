"""One order's record, the batch's main output, and the outcomes it can end with.

A record is what the operator returns in XCom, writes to ``records*.jsonl`` and keeps in ``summary.json``::

    {"order_id": "1-ab...", "outcome": "updated", "previous_statuses": ["New"], "status": "Hold",
     "error": None, "reason": "address check failed"}

plus ``dry_run_outcome`` in a dry run. It is a plain ``dict`` (a :class:`~typing.TypedDict`, so that strict
mypy checks its keys), and its outcome a :class:`~enum.StrEnum`, which JSON writes as its text: the wire
format is held by ``tests/operators/test_wire_format.py``. A record read back from JSON holds the outcome as
plain text, equal to the enum member.
"""

from __future__ import annotations

from collections.abc import Sequence
from enum import StrEnum
from typing import NotRequired, TypedDict


class Outcome(StrEnum):
    """How one order ended; exactly one per order handed to the provider."""

    #: The order is now at the target (written by this task, or an earlier try's write that landed).
    UPDATED = "updated"
    #: The order was at the target already; nothing was written.
    UNCHANGED = "unchanged"
    #: An item is in a status Gooten allows no change from; nothing was written.
    INELIGIBLE = "ineligible"
    #: The order did not reach the target (or was not attempted); ``error`` says why.
    FAILED = "failed"
    #: A write's answer was lost and reading the order could not tell whether it landed.
    UNKNOWN = "unknown"
    #: A dry run: read only; ``dry_run_outcome`` says what a real run would have done.
    DRY_RUN = "dry_run"

    # A record printed or logged reads as the JSON it becomes: ``'updated'``, not ``<Outcome.UPDATED: ...>``.
    __repr__ = str.__repr__


#: Every outcome, in the order counts are reported.
OUTCOMES: tuple[Outcome, ...] = tuple(Outcome)
#: Outcomes that fail the task: the order did not reach its target, or nobody can tell whether it did.
FAILING_OUTCOMES: frozenset[Outcome] = frozenset({Outcome.FAILED, Outcome.UNKNOWN})
#: Outcomes that are final: a later try carries them over instead of touching the order again.
SETTLED_OUTCOMES: frozenset[Outcome] = frozenset(
    {Outcome.UPDATED, Outcome.UNCHANGED, Outcome.INELIGIBLE, Outcome.DRY_RUN}
)
#: The start of ``error`` for an order never started because the batch stopped first.
NOT_ATTEMPTED = "not attempted: "


class OrderRecord(TypedDict):
    """One order's final record; keys in the order they are written."""

    order_id: str
    outcome: Outcome
    #: The item statuses read before any write (empty when the order could not be read).
    previous_statuses: list[str]
    #: The target status.
    status: str
    error: str | None
    reason: str | None
    #: Only in a dry run: what a real run would have recorded.
    dry_run_outcome: NotRequired[Outcome]


class BatchSummary(TypedDict):
    """What the operator returns with ``results_path`` (and writes as ``summary.json``) instead of records."""

    total: int
    #: Every outcome with its count, zero included, in the order of :data:`OUTCOMES`.
    counts: dict[str, int]
    #: The first failing records (at most ``batch.report.SUMMARY_FAILURES``).
    failed: list[OrderRecord]
    results_path: str
    #: This try's folder under ``results_path``.
    attempt: str


def order_record(
    order_id: str,
    outcome: Outcome,
    previous_statuses: Sequence[str],
    target: str,
    reason: str | None,
    error: str | None = None,
) -> OrderRecord:
    """Build one order's record, its keys in the order of the wire format."""
    return {
        "order_id": order_id,
        "outcome": outcome,
        "previous_statuses": list(previous_statuses),
        "status": target,
        "error": error,
        "reason": reason,
    }


def is_failing(record: OrderRecord, *, fail_on_ineligible: bool) -> bool:
    """Whether a record fails the task: failed, unknown; ineligible too with ``fail_on_ineligible``."""
    outcome = record["outcome"]
    return outcome in FAILING_OUTCOMES or (fail_on_ineligible and outcome == Outcome.INELIGIBLE)


def was_not_attempted(record: OrderRecord) -> bool:
    """Whether the order was never started because the batch stopped first."""
    return (record["error"] or "").startswith(NOT_ATTEMPTED)
