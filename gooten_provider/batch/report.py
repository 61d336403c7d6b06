"""What a batch tells while it runs and when it ends: a bounded task log, and a bounded summary.

A batch of 100,000 orders must not write 100,000 log lines nor push megabytes to XCom: the full per-order
detail is in the records. :class:`BatchLog` writes one line per order up to a cap (every failure, and the
first :data:`DETAIL_LINES` others), then progress lines; :class:`BatchTally` counts the outcomes and keeps
the first :data:`SUMMARY_FAILURES` failing records.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter
from collections.abc import Callable
from typing import Any

from gooten_provider.batch.records import (
    NOT_ATTEMPTED,
    OUTCOMES,
    BatchSummary,
    OrderRecord,
    Outcome,
    was_not_attempted,
)

#: Orders logged one line each besides the failures (every failure is logged).
DETAIL_LINES = 1000
#: Once past the cap, a progress line every tenth of the batch...
PROGRESS_FRACTION = 0.1
#: ... or every this many seconds, whichever comes first.
PROGRESS_SECONDS = 60.0
#: Failing records kept in the summary.
SUMMARY_FAILURES = 100


def _format_counts(counts: dict[str, int]) -> str:
    return ", ".join(f"{outcome} {count}" for outcome, count in counts.items())


class BatchTally:
    """Outcome counts and the first failing records of a batch; thread-safe."""

    def __init__(
        self, is_failure: Callable[[OrderRecord], bool], keep_failures: int = SUMMARY_FAILURES
    ) -> None:
        self._is_failure = is_failure
        self._keep = keep_failures
        self._lock = threading.Lock()
        self._counts: Counter[str] = Counter()
        self.total = 0
        self.failures = 0
        #: Orders never started because the batch stopped first.
        self.not_attempted = 0
        self.failed: list[OrderRecord] = []

    def add(self, record: OrderRecord) -> None:
        """Count one order's final record."""
        with self._lock:
            self.total += 1
            self._counts[record["outcome"]] += 1
            if was_not_attempted(record):
                self.not_attempted += 1
            if self._is_failure(record):
                self.failures += 1
                if len(self.failed) < self._keep:
                    self.failed.append(record)

    def counts(self) -> dict[str, int]:
        """Every outcome with its count (zero included), in a stable order."""
        with self._lock:
            return {outcome.value: self._counts.get(outcome, 0) for outcome in OUTCOMES}

    def summary(self, results_path: str, attempt: str) -> BatchSummary:
        """The XCom summary of a batch whose records are under ``results_path``."""
        return {
            "total": self.total,
            "counts": self.counts(),
            "failed": list(self.failed),
            "results_path": results_path,
            "attempt": attempt,
        }


class BatchLog:
    """The task log of a batch: bounded whatever its size; thread-safe."""

    def __init__(
        self,
        log: logging.Logger | Any,
        total: int,
        is_failure: Callable[[OrderRecord], bool],
        *,
        detail_lines: int = DETAIL_LINES,
        progress_seconds: float = PROGRESS_SECONDS,
    ) -> None:
        self._log = log
        self._total = total
        self._is_failure = is_failure
        self._detail_left = detail_lines
        self._progress_seconds = progress_seconds
        self._step = max(1, int(total * PROGRESS_FRACTION))
        self._lock = threading.Lock()
        self._done = 0
        self._counts: Counter[str] = Counter()
        self._not_logged = 0
        self._not_attempted = 0
        self._next_progress = self._step
        self._last_progress = time.monotonic()
        self._not_attempted_reason: str | None = None

    def order(self, record: OrderRecord) -> None:
        """Log one order's final record, or count it for the progress lines once past the cap."""
        with self._lock:
            self._done += 1
            self._counts[record["outcome"]] += 1
            failure = self._is_failure(record)
            if failure and was_not_attempted(record):
                self._not_attempted += 1  # one line for them all at the end
                self._not_attempted_reason = (record["error"] or "")[len(NOT_ATTEMPTED) :]
                detail = False
            elif failure:
                detail = True
            else:
                detail = self._detail_left > 0
                self._detail_left -= 1 if detail else 0
                self._not_logged += 0 if detail else 1
            progress = self._progress_due()
        if detail:
            self._detail(record, failure)
        if progress:
            self._log.info(
                "Progress: %d of %d order(s) done (%s).",
                progress[0],
                self._total,
                _format_counts(progress[1]),
            )

    def _progress_due(self) -> tuple[int, dict[str, int]] | None:
        if self._detail_left > 0 or self._done >= self._total:
            return None  # every order so far has its own line, or the summary follows
        now = time.monotonic()
        if self._done < self._next_progress and now - self._last_progress < self._progress_seconds:
            return None
        while self._next_progress <= self._done:
            self._next_progress += self._step
        self._last_progress = now
        return self._done, {o: self._counts.get(o, 0) for o in OUTCOMES if self._counts.get(o)}

    def _detail(self, result: OrderRecord, failure: bool) -> None:
        outcome = result["outcome"]
        previous = ", ".join(result["previous_statuses"]) or "status not read"
        why = f", reason: {result['reason']}" if result["reason"] else ""
        order_id, target = result["order_id"], result["status"]
        if failure:
            self._log.error(
                "%s: %s, not set to %s (%s): %s", order_id, previous, target, outcome, result["error"]
            )
        elif outcome == Outcome.UPDATED:
            self._log.info("%s: %s -> %s%s", order_id, previous, target, why)
        elif outcome == Outcome.UNCHANGED:  # a rerun: one line per order too, within the same cap
            note = result["error"] or f"already {target}"
            self._log.info("%s: %s, unchanged: %s", order_id, previous, note)
        elif outcome == Outcome.INELIGIBLE:
            self._log.warning("%s: %s, not changed: %s", order_id, previous, result["error"])
        elif outcome == Outcome.DRY_RUN:
            self._log.info(
                "%s: %s -> %s would be %s%s", order_id, previous, target, result["dry_run_outcome"], why
            )

    def finish(self, counts: dict[str, int]) -> None:
        """Log what was not logged one by one, then the summary."""
        if self._not_attempted:
            self._log.error(
                "%d order(s) were not attempted: %s.", self._not_attempted, self._not_attempted_reason
            )
        if self._not_logged:
            self._log.info(
                "%d other order(s) were not logged one by one; their records hold the details.",
                self._not_logged,
            )
        self._log.info("Gooten status summary: %s.", _format_counts(counts))
