"""Reading the results folders back: resuming from earlier tries, and the records of a complete try.

A later try reads every earlier folder (:func:`load_earlier_results`): orders with a final record are carried
over into its own folder without a request, and writes sent without a recorded outcome are settled by
reading. A damaged line there (a torn write, a flipped byte, a line without an order id) is skipped with a
warning naming the file and line; the order it concerned is read again. So the newest complete folder
always holds every order's record (:func:`newest_attempt`, :func:`iter_records`). The folders' layout is in
:mod:`gooten_provider.batch.results`.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, cast

from gooten_provider.batch.action import EarlierWrite
from gooten_provider.batch.records import OUTCOMES, SETTLED_OUTCOMES, OrderRecord, Outcome
from gooten_provider.batch.results import ATTEMPT_PREFIX, RECORDS_STEM, SUMMARY_NAME, WRITES_STEM

log = logging.getLogger(__name__)

#: Damaged lines warned about one by one in one reading of the earlier tries; the rest are counted.
_MAX_DAMAGE_WARNINGS = 20


class DamagedResultsError(ValueError):
    """A complete try's records hold a line that is not a record (damaged after it was written)."""


@dataclass
class EarlierResults:
    """What earlier tries recorded, for a try that resumes them (keys are order ids in lower case)."""

    #: The JSON line of each order's final record.
    done: dict[str, bytes] = field(default_factory=dict)
    #: Writes sent without a final record after them, to settle by reading.
    writes: dict[str, EarlierWrite] = field(default_factory=dict)
    attempts: int = 0
    #: Lines skipped because they were damaged.
    damaged: int = 0


def attempts(results_path: Any) -> list[Any]:
    """Every try's folder under ``results_path``, oldest first (none when the path does not exist)."""
    try:
        children = list(results_path.iterdir())
    except (FileNotFoundError, NotADirectoryError):
        return []
    return sorted((c for c in children if c.name.startswith(ATTEMPT_PREFIX)), key=lambda c: c.name)


def _files(folder: Any, stem: str) -> list[Any]:
    try:
        children = list(folder.iterdir())
    except FileNotFoundError:
        return []
    return sorted((c for c in children if c.name.startswith(stem) and c.name.endswith(".jsonl")), key=str)


def _is_text(value: Any) -> bool:
    return isinstance(value, str) and bool(value)


def _is_statuses(value: Any) -> bool:
    return isinstance(value, list) and all(isinstance(status, str) for status in value)


def _write_problem(entry: Any) -> str | None:
    """What makes a line of ``writes*.jsonl`` unusable, or ``None``."""
    if not isinstance(entry, dict) or not _is_text(entry.get("order_id")):
        return "no order_id"
    sent_at = entry.get("sent_at")
    if not _is_text(entry.get("status")) or not _is_statuses(entry.get("previous_statuses")):
        return "no status or previous_statuses"
    if isinstance(sent_at, bool) or not isinstance(sent_at, (int, float)) or not math.isfinite(sent_at):
        return "no sent_at time"
    return None


def _record_problem(record: Any) -> str | None:
    """What makes a line of ``records*.jsonl`` unusable, or ``None``."""
    if not isinstance(record, dict) or not _is_text(record.get("order_id")):
        return "no order_id"
    if record.get("outcome") not in OUTCOMES or not _is_text(record.get("status")):
        return "no known outcome or status"
    if not isinstance(record.get("error"), (str, type(None))) or not _is_statuses(
        record.get("previous_statuses")
    ):
        return "no error text or previous_statuses"
    return None


@dataclass(frozen=True)
class _Damage:
    """A line that is not what its file holds."""

    file: Any
    line: int
    problem: str

    def __str__(self) -> str:
        return f"{self.file}, line {self.line}: {self.problem}"


def _entries(
    folder: Any, stem: str, problem_of: Callable[[Any], str | None]
) -> Iterator[tuple[dict[str, Any], bytes] | _Damage]:
    """Each complete line of a folder's files of one kind: the value and its bytes, or what damaged it."""
    for part in _files(folder, stem):
        with part.open("rb") as handle:
            for number, line in enumerate(handle, start=1):
                if not line.endswith(b"\n"):  # the last line, cut by a crash: not a record
                    continue
                try:
                    value = json.loads(line)
                except ValueError as exc:  # not JSON, or not UTF-8 (a torn write, a flipped byte)
                    yield _Damage(part, number, f"not a JSON line ({exc})")
                    continue
                problem = problem_of(value)
                yield _Damage(part, number, problem) if problem else (value, line)


def _damaged(earlier: EarlierResults, damage: _Damage) -> None:
    earlier.damaged += 1
    if earlier.damaged <= _MAX_DAMAGE_WARNINGS:
        log.warning(
            "Skipped a damaged line of an earlier try's results, %s; the order it concerned is read again.",
            damage,
        )


def _read_writes(folder: Any, target: str, earlier: EarlierResults) -> None:
    """Take the writes to ``target`` one try sent: each one is to settle, unless a later record settles it."""
    for item in _entries(folder, WRITES_STEM, _write_problem):
        if isinstance(item, _Damage):
            _damaged(earlier, item)
            continue
        sent, _ = item
        if sent["status"] == target:
            key = sent["order_id"].lower()
            earlier.writes[key] = EarlierWrite(tuple(sent["previous_statuses"]), float(sent["sent_at"]))
            earlier.done.pop(key, None)


def _read_records(folder: Any, target: str, dry_run: bool, earlier: EarlierResults) -> None:
    """Take the final records one try wrote: settled ones (same target, same kind of run) are carried over."""
    for item in _entries(folder, RECORDS_STEM, _record_problem):
        if isinstance(item, _Damage):
            _damaged(earlier, item)
            continue
        record, line = item
        key = record["order_id"].lower()
        outcome = record["outcome"]
        final = outcome in SETTLED_OUTCOMES and (outcome == Outcome.DRY_RUN) == dry_run
        if final and record["status"] == target:
            earlier.done[key] = line
        else:
            earlier.done.pop(key, None)


def load_earlier_results(results_path: Any, target: str, *, dry_run: bool) -> EarlierResults:
    """Read every earlier try under ``results_path``: the final records to carry over, the writes to settle.

    A record counts only for the same target and the same kind of run (a dry run's records do not settle a
    real run, nor the other way round). A later record of an order replaces an earlier one. A damaged line
    is skipped with a warning naming its file and line: the order it concerned has no record, so it is
    read again (a write's entry that is lost so is settled by that read).
    """
    earlier = EarlierResults()
    for folder in attempts(results_path):
        earlier.attempts += 1
        _read_writes(folder, target, earlier)
        _read_records(folder, target, dry_run, earlier)
    if earlier.damaged > _MAX_DAMAGE_WARNINGS:
        log.warning(
            "Skipped %d damaged lines of earlier tries' results in all (the first %d are named above).",
            earlier.damaged,
            _MAX_DAMAGE_WARNINGS,
        )
    for key in earlier.done:
        earlier.writes.pop(key, None)
    return earlier


def is_complete(folder: Any) -> bool:
    """Whether a try's folder holds every order's record, durably: it has its ``summary.json``."""
    return bool((folder / SUMMARY_NAME).exists())


def newest_attempt(results_path: Any, *, complete: bool = True) -> Any | None:
    """The newest try's folder (with ``complete``, the newest whose every order was recorded), or ``None``."""
    for folder in reversed(attempts(results_path)):
        if not complete or is_complete(folder):
            return folder
    return None


def iter_records(folder: Any) -> Iterator[OrderRecord]:
    """Yield the records of one try's folder, one per order, without holding them all in memory.

    :raises DamagedResultsError: a line is not a record (naming the file and line).
    """
    for item in _entries(folder, RECORDS_STEM, _record_problem):
        if isinstance(item, _Damage):
            raise DamagedResultsError(
                f"Damaged Gooten results at {item}. Run the task again: it reads the order of that line "
                "again and writes a complete folder."
            )
        yield cast("OrderRecord", item[0])  # checked by _record_problem
