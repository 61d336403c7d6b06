"""Soak under faults: the operator over orders in every status while the local API injects ~20% faults.

Used by ``make soak`` (``python -m bench.soak``, 2,000 orders) and by ``tests/soak/test_soak.py``
(200 orders): both call :func:`run_soak`, which runs the operator and then :func:`check_soak`, the one
place the properties are checked (``make soak`` then runs the item cancellation's soak with the same
settings: :mod:`bench.soak_cancel`):

1. every order has exactly one outcome, and it is the one its statuses call for (or ``failed``);
2. every eligible order not reported ``failed`` is at its target in the local API; no other order changed;
3. at most 1% of the orders end ``failed``, each with an error naming its cause;
4. no order had a change applied twice, no order received a write after its change was applied (the API's
   journal: no write to an order starts after the first write applied to it finished; the one exception is a
   re-send that Gooten refused because a change queued earlier had just landed), and orders that needed no
   change received no write at all.

The runs to ``Hold``, ``Cancelled`` and ``Test`` each have a rival: a second operator run over the same
orders at the same time (as an overlapping scheduled run, or a manual trigger during one, would be). Its
records are checked the same way (one per order, each true to the order's statuses, failures naming a
cause); between them the two runs may report an order ``updated`` and ``unchanged``, but the order is
changed once. With rivals, a write refused after the other run's change was applied is expected, so only a
second *applied* write is flagged. ``New`` has no rival: Gooten accepts ``New`` from ``New`` and offers no
compare-and-set, so two runs setting ``New`` on one order at the same moment can both submit it; the
provider documents that such runs must not overlap.

Faults include late landings (``late_apply``: the answer is lost and the change lands later, within the
operator's settle window), and the account is throttled like a gateway does it (150 requests per second,
bursts of 20, 429 with ``Retry-After``), on top of the injected faults. Orders are spread over the four
targets (one operator run per target) and over statuses that are eligible (``New``, ``Pending``,
``AddressIssue``, ... and mixes of them), ineligible (``InProduction``, ``Shipped``, ``Hold``,
``Cancelled``, ``Test``, items mixing an eligible and an ineligible status) or already at the target.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import random
import re
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from gooten_provider.testing import GootenApiServer

#: The transport faults the issue names: HTTP 500/502/503, 429 with Retry-After, a connection reset before
#: anything is applied, a write applied but its response lost, and a reply slower than the client's timeout.
SOAK_FAULT_KINDS: tuple[str, ...] = (
    "500",
    "502",
    "503",
    "429",
    "reset",
    "lost_response",
    "slow",
    "late_apply",
)
TARGETS: tuple[str, ...] = ("Hold", "Cancelled", "New", "Test")
CONN_ID = "gooten_soak"

#: ``(label, statuses, weight)``; ``None`` in statuses stands for the run's target status.
STATUS_MIX: tuple[tuple[str, tuple[str | None, ...], int], ...] = (
    ("New", ("New",), 10),
    ("Pending", ("Pending",), 6),
    ("AddressIssue", ("AddressIssue",), 4),
    ("NeedsManualApproval", ("NeedsManualApproval",), 3),
    ("New+Pending", ("New", "Pending"), 4),
    ("ImageIssue+ReadyForImageDl", ("ImageIssue", "ReadyForImageDl"), 3),
    ("InProduction", ("InProduction",), 3),
    ("Shipped", ("Shipped", "Shipped"), 3),
    ("Hold", ("Hold",), 3),
    ("Cancelled", ("Cancelled",), 3),
    ("Test", ("Test",), 3),
    ("New+Shipped", ("New", "Shipped"), 2),
    ("Pending+InProduction", ("Pending", "InProduction"), 2),
    ("at target", (None, None), 4),
)

#: Where a failed order's change stopped, told by its error (checked in order; the last is the default).
STAGES: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("write never took effect", re.compile(r"did not take effect after \d+ attempts")),
    ("settle window passed", re.compile(r"It was not sent again")),
    ("settling read failed", re.compile(r"Reading the order to settle it failed too")),
    ("order changed meanwhile", re.compile(r"The order now reads")),
    ("read failed", re.compile(r"could not read the order")),
    ("write failed", re.compile(r"")),
)
#: The transport causes an error can name; a failed order's error must name at least one.
CAUSES: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("HTTP 5xx", re.compile(r"HTTP 5\d\d")),
    ("429 after every retry", re.compile(r"429 Too Many Requests")),
    ("timeout", re.compile(r"no answer within")),
    ("connection broke", re.compile(r"connection broke before an answer \(\w+")),
    ("could not connect", re.compile(r"Could not connect")),
    ("not Gooten's JSON", re.compile(r"not Gooten's JSON")),
)


@dataclass(frozen=True)
class SoakConfig:
    """Everything a soak run depends on; the same config and seed give the same orders and fault draws."""

    orders: int = 2000
    seed: int = 20260101
    fault_rate: float = 0.2
    fault_kinds: tuple[str, ...] = SOAK_FAULT_KINDS
    max_workers: int = 8
    #: The client's timeout (connection extra); ``slow_seconds`` is past it, and within the operator's settle
    #: window (twice the timeout), so that late landings are settled by reading.
    timeout: float = 0.5
    slow_seconds: float = 0.8
    retry_after: float = 0.05
    backoff_factor: float = 0.05
    max_retries: int = 3
    latency: float = 0.0
    max_failed_fraction: float = 0.01
    #: Run a rival operator over the same orders, at the same time, for each target.
    rival_runs: bool = True
    #: The account is throttled like a gateway does it (requests per second, burst; 429 with Retry-After).
    rate_limit: float | None = 150.0
    rate_burst: int = 20

    @property
    def failure_limit(self) -> int:
        """The most orders that may end ``failed``."""
        return int(self.max_failed_fraction * self.orders)


@dataclass(frozen=True)
class SoakOrder:
    """One order of the soak: its target and initial statuses, and the outcome they call for."""

    order_id: str
    target: str
    label: str
    initial: tuple[str, ...]
    expected: str  # "updated", "unchanged" or "ineligible"


@dataclass
class SoakReport:
    """What happened, and every property that did not hold (``problems`` empty means the soak passed)."""

    config: SoakConfig
    seconds: float = 0.0
    counts: dict[str, Any] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        """True when every property held."""
        return not self.problems

    def format(self) -> str:
        """A human-readable summary: counts, then problems (or PASS)."""
        c = self.counts
        lines = [
            f"soak: {self.config.orders} orders, seed {self.config.seed}, "
            f"fault rate {self.config.fault_rate:g} "
            f"({', '.join(self.config.fault_kinds)}), max_workers {self.config.max_workers}, "
            f"timeout {self.config.timeout:g} s, {self.seconds:.1f} s",
            f"  orders by expected outcome: {c.get('expected', {})}",
            f"  outcomes: {c.get('outcomes', {})}",
            f"  outcomes by target: {c.get('outcomes_by_target', {})}",
            f"  rival runs' outcomes: {c.get('rival_outcomes', {})}",
            f"  requests: {c.get('requests', 0)} ({c.get('requests_by_method', {})}), "
            f"faults injected: {c.get('faults', 0)} ({100 * c.get('fault_fraction', 0):.1f}%) "
            f"{c.get('faults_by_kind', {})}, throttled by the rate limit: {c.get('throttled', 0)}",
            f"  writes: {c.get('writes', 0)}, applied: {c.get('applied_writes', 0)}, "
            f"orders written more than once: {c.get('orders_resent', 0)}, "
            f"updated orders whose write's answer was lost or late (settled by reading): "
            f"{c.get('settled_by_read', 0)}",
            f"  failed: {c.get('failed', 0)} ({100 * c.get('failed_fraction', 0):.2f}%, limit "
            f"{100 * self.config.max_failed_fraction:g}%); unknown (by design for New, never re-sent): "
            f"{c.get('unknown', 0)}; failed and unknown by cause: {c.get('failed_by_cause', {})}",
        ]
        lines += [f"    {order_id}: {error}" for order_id, error in c.get("failed_examples", [])]
        lines += self.verdict_lines(
            "one outcome per order; eligible orders at target; failures within limit, each with its cause; "
            "no write after a change was applied"
        )
        return "\n".join(lines)

    def verdict_lines(self, held: str) -> list[str]:
        """``PASS: <held>``, or ``FAIL`` and the first 50 problems, indented under a summary."""
        if not self.problems:
            return [f"  PASS: {held}"]
        lines = [f"  FAIL: {len(self.problems)} problem(s)"]
        lines += [f"    - {problem}" for problem in self.problems[:50]]
        if len(self.problems) > 50:
            lines.append(f"    ... and {len(self.problems) - 50} more")
        return lines


#: The columns every soak table opens with, and those it closes with (:func:`markdown_table`).
FIRST_COLUMNS = (
    "orders",
    "seed",
    "faults injected",
    "updated",
    "unchanged",
    "ineligible",
    "failed (limit)",
    "unknown",
)
LAST_COLUMNS = ("time", "result")


def markdown_table(
    reports: Sequence[SoakReport], columns: Sequence[str], cells: Callable[[Any], Sequence[str]]
) -> list[str]:
    """A Markdown table, one row per run: the runs' common figures around ``columns``.

    :param columns: the headers of the run's own figures, between the first and the last columns.
    :param cells: a report's own figures, one cell per column.
    """
    header = [*FIRST_COLUMNS, *columns, *LAST_COLUMNS]
    lines = [f"| {' | '.join(header)} |", "|" + "---:|" * (len(header) - 1) + "---|"]
    for report in reports:
        c, cfg = report.counts, report.config
        outcomes = c.get("outcomes", {})
        row = [
            str(cfg.orders),
            str(cfg.seed),
            f"{c.get('faults', 0)} of {c.get('requests', 0)} requests "
            f"({100 * c.get('fault_fraction', 0):.1f}%)",
            *(str(outcomes.get(outcome, 0)) for outcome in ("updated", "unchanged", "ineligible")),
            f"{outcomes.get('failed', 0)} ({cfg.failure_limit})",
            str(outcomes.get("unknown", 0)),
            *cells(report),
            f"{report.seconds:.1f} s",
            "pass" if report.passed else f"FAIL ({len(report.problems)})",
        ]
        lines.append(f"| {' | '.join(row)} |")
    return lines


def markdown(reports: Sequence[SoakReport]) -> str:
    """The reports as Markdown, for docs/performance.md: one row per run, then the first run's details."""

    def own_cells(report: SoakReport) -> list[str]:
        second_writes = sum(1 for p in report.problems if "after its change was applied" in p)
        counts = report.counts
        return [
            str(counts.get("orders_resent", 0)),
            str(counts.get("settled_by_read", 0)),
            str(second_writes),
        ]

    lines = markdown_table(
        reports,
        ("orders written again (never applied)", "settled by reading", "writes after applied"),
        own_cells,
    )
    first = reports[0]
    cfg = first.config
    kinds = ", ".join(f"{kind} {count}" for kind, count in first.counts.get("faults_by_kind", {}).items())
    causes = ", ".join(f"{cause} {count}" for cause, count in first.counts.get("failed_by_cause", {}).items())
    lines += [
        "",
        f"Settings: fault rate {cfg.fault_rate:g} over {', '.join(cfg.fault_kinds)}; `max_workers` "
        f"{cfg.max_workers}; client timeout {cfg.timeout:g} s, `slow` replies after {cfg.slow_seconds:g} s, "
        f"`Retry-After` {cfg.retry_after:g} s, `max_retries` {cfg.max_retries}, `backoff_factor` "
        f"{cfg.backoff_factor:g}; one operator run per target ({', '.join(TARGETS)}).",
        "",
        f"First run: faults by kind: {kinds or 'none'}; failures by cause: {causes or 'none'}; orders by "
        f"expected outcome: {first.counts.get('expected', {})}.",
    ]
    return "\n".join(lines)


class _RecordingTaskInstance:
    """The one part of a task instance the operator uses outside a DAG run: ``xcom_push``."""

    def __init__(self) -> None:
        self.xcoms: dict[str, Any] = {}

    def xcom_push(self, key: str, value: Any) -> None:
        self.xcoms[key] = value


def execute_recorded(operator: Any, into: list[dict[str, Any]], task_errors: list[str] | None = None) -> None:
    """Run ``operator`` outside a DAG run; its records go into ``into``, those of a failed run too.

    A run that fails has pushed its records to XCom before raising: they are taken from there, and its
    message goes into ``task_errors`` when given.
    """
    from airflow.providers.common.compat.sdk import AirflowException

    ti = _RecordingTaskInstance()
    try:
        into.extend(operator.execute({"ti": ti}))
    except AirflowException as exc:
        if task_errors is not None:
            task_errors.append(str(exc))
        into.extend(ti.xcoms.get("return_value") or [])


def records_by_order(records: Sequence[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    """The result records of a run, grouped by ``order_id`` (in their order)."""
    by_id: dict[str, list[dict[str, Any]]] = {}
    for record in records:
        by_id.setdefault(record["order_id"], []).append(record)
    return by_id


def journal_counts(journal: Sequence[Any]) -> dict[str, Any]:
    """The local API's side of a soak: requests (by method), faults injected (by kind), throttled requests."""
    faults_by_kind = Counter(entry.fault for entry in journal if entry.fault)
    return {
        "requests": len(journal),
        "requests_by_method": dict(Counter(entry.method for entry in journal)),
        "faults": sum(faults_by_kind.values()),
        "fault_fraction": sum(faults_by_kind.values()) / len(journal) if journal else 0.0,
        "faults_by_kind": dict(sorted(faults_by_kind.items())),
        # a gateway's 429: the request never reached Gooten
        "throttled": sum(1 for entry in journal if getattr(entry, "throttled", False)),
    }


def expected_outcome(statuses: Sequence[str], target: str) -> str:
    """The outcome an order's statuses call for: ``unchanged``, ``updated`` or ``ineligible``."""
    from gooten_provider.statuses import CHANGEABLE_FROM_STATUSES

    if all(status == target for status in statuses):
        return "unchanged"
    if statuses and all(status in CHANGEABLE_FROM_STATUSES for status in statuses):
        return "updated"
    return "ineligible"


def plan_orders(count: int, seed: int) -> list[tuple[str, str, tuple[str, ...]]]:
    """``(target, label, statuses)`` for each order, targets round-robin, statuses drawn with the seed."""
    rng = random.Random(seed)
    labels = [entry[0] for entry in STATUS_MIX]
    weights = [entry[2] for entry in STATUS_MIX]
    by_label = {entry[0]: entry[1] for entry in STATUS_MIX}
    plan = []
    for index in range(count):
        target = TARGETS[index % len(TARGETS)]
        label = rng.choices(labels, weights)[0]
        statuses = tuple(target if status is None else status for status in by_label[label])
        plan.append((target, label, statuses))
    return plan


def cause_of(error: str | None) -> str | None:
    """``"<stage>: <cause>"`` for a failed order's error (``"read failed: HTTP 5xx"``).

    ``None`` when the error names no cause.
    """
    text = error or ""
    cause = next((name for name, pattern in CAUSES if pattern.search(text)), None)
    if cause is None:
        return None
    stage = next(name for name, pattern in STAGES if pattern.search(text))
    return f"{stage}: {cause}"


def check_soak(
    orders: Sequence[SoakOrder],
    results: Sequence[dict[str, Any]],
    journal: Sequence[Any],
    final_statuses: dict[str, list[str]],
    config: SoakConfig,
    task_errors: Sequence[str] = (),
    rival_results: Sequence[dict[str, Any]] | None = None,
) -> tuple[dict[str, Any], list[str]]:
    """Check the soak's properties; return ``(counts, problems)``.

    :param orders: every order of the soak.
    :param results: every result record the operator runs returned (or pushed before failing).
    :param journal: the local API's journal (``JournalEntry`` objects), read after it stopped.
    :param final_statuses: each order's item statuses in the local API afterwards.
    :param task_errors: the messages of the operator runs that failed (they must name failed orders).
    :param rival_results: the records of the rival runs, if there were any.
    """
    problems: list[str] = []
    by_id = records_by_order(results)
    known = {order.order_id for order in orders}
    for order_id in sorted(set(by_id) - known):
        problems.append(f"{order_id}: a result for an order that was not asked for")

    writes: dict[str, list[Any]] = {}
    for entry in journal:
        if (
            entry.method == "POST"
            and entry.path.rstrip("/").lower().endswith("/api/orderstatus")
            and not getattr(entry, "throttled", False)  # a gateway's 429: the request never reached Gooten
        ):
            writes.setdefault(entry.order_id, []).append(entry)

    outcomes: Counter[str] = Counter()
    outcomes_by_target: dict[str, Counter[str]] = {target: Counter() for target in TARGETS}
    failed_by_cause: Counter[str] = Counter()
    failed_examples: list[tuple[str, str]] = []
    settled_by_read = 0
    for order in orders:
        records = by_id.get(order.order_id, [])
        if len(records) != 1:
            problems.append(f"{order.order_id}: {len(records)} outcomes instead of exactly one")
            continue
        record = records[0]
        outcome = record["outcome"]
        outcomes[outcome] += 1
        outcomes_by_target[order.target][outcome] += 1
        final = final_statuses.get(order.order_id, [])
        if outcome not in ("updated", "unchanged", "ineligible", "failed", "unknown"):
            problems.append(f"{order.order_id}: unexpected outcome {outcome!r}")
        elif outcome in FAILING:
            cause = cause_of(record.get("error"))
            failed_by_cause[cause or "no recognizable cause"] += 1
            if len(failed_examples) < 10:
                failed_examples.append((order.order_id, str(record.get("error"))))
            if cause is None:
                problems.append(f"{order.order_id}: failed without naming its cause: {record.get('error')!r}")
        elif outcome != order.expected and not (rival_results is not None and _lost_the_race(order, outcome)):
            problems.append(
                f"{order.order_id}: {outcome}, but {list(order.initial)} -> {order.target} calls for "
                f"{order.expected}"
            )
        if order.expected == "updated" and outcome not in FAILING and final != [order.target] * len(final):
            problems.append(
                f"{order.order_id}: reported {outcome} but the API has {final}, not {order.target}"
            )
        if order.expected != "updated" and final != list(order.initial):
            problems.append(f"{order.order_id}: needed no change, but went {list(order.initial)} -> {final}")

        order_writes = sorted(writes.get(order.order_id, []), key=lambda e: e.started)
        if order.expected != "updated" and order_writes:
            problems.append(f"{order.order_id}: needed no change, but received {len(order_writes)} write(s)")
        applied = [entry for entry in order_writes if entry.applied]
        if len(applied) > 1:
            problems.append(f"{order.order_id}: its change was applied {len(applied)} times")
        if applied:
            first = applied[0]
            later = [
                entry
                for entry in order_writes
                if entry.started > first.finished
                and not (first.fault == "late_apply" and not entry.applied)  # refused: it landed meanwhile
                and not (rival_results is not None and not entry.applied)  # the rival's, refused
            ]
            if later:
                problems.append(
                    f"{order.order_id}: {len(later)} write(s) after its change was applied "
                    f"(first applied write's fault: {first.fault}; later: {[e.fault for e in later]})"
                )
            if outcome == "updated" and first.fault in ("lost_response", "slow"):
                settled_by_read += 1

    if rival_results is not None:
        problems += _check_rival(orders, rival_results)
    failed = outcomes["failed"]
    limit = int(config.max_failed_fraction * len(orders))
    if failed > limit:
        problems.append(
            f"{failed} of {len(orders)} orders failed ({100 * failed / len(orders):.2f}%), more than "
            f"{100 * config.max_failed_fraction:g}% ({limit})"
        )
    failed_ids = [
        o.order_id
        for o in orders
        if [r["outcome"] for r in by_id.get(o.order_id, [])] in (["failed"], ["unknown"])
    ]
    all_errors = "\n".join(task_errors)
    named = [order_id for order_id in failed_ids if order_id in all_errors]
    if failed_ids and len(named) < min(len(failed_ids), 20):
        problems.append(f"the failed tasks' errors name {len(named)} of {len(failed_ids)} failed orders")

    all_writes = [entry for entries in writes.values() for entry in entries]
    counts = {
        "orders": len(orders),
        "expected": dict(Counter(order.expected for order in orders)),
        "labels": dict(Counter(order.label for order in orders)),
        "outcomes": dict(outcomes),
        "outcomes_by_target": {target: dict(c) for target, c in outcomes_by_target.items()},
        **journal_counts(journal),
        "writes": len(all_writes),
        "applied_writes": sum(1 for entry in all_writes if entry.applied),
        "orders_resent": sum(1 for entries in writes.values() if len(entries) > 1),
        "settled_by_read": settled_by_read,
        "failed": failed,
        "unknown": outcomes["unknown"],
        "failed_fraction": failed / len(orders) if orders else 0.0,
        "failed_by_cause": dict(failed_by_cause),
        "failed_examples": failed_examples,
    }
    return counts, problems


FAILING = ("failed", "unknown")


def has_rival(target: str) -> bool:
    """Whether the run to ``target`` gets a rival run: only targets Gooten refuses a change from."""
    from gooten_provider.batch.status_change import resend_is_safe

    return resend_is_safe(target)


def _lost_the_race(order: SoakOrder, outcome: str) -> bool:
    """An order the rival run changed first is rightly ``unchanged`` for this one."""
    return order.expected == "updated" and outcome == "unchanged"


def _check_rival(orders: Sequence[SoakOrder], rival_results: Sequence[dict[str, Any]]) -> list[str]:
    """The rival run's records: one per order, each true to the order's statuses or naming its failure."""
    problems = []
    by_id = records_by_order(rival_results)
    for order in orders:
        if not has_rival(order.target):
            continue
        records = by_id.get(order.order_id, [])
        if len(records) != 1:
            problems.append(f"{order.order_id}: the rival run gave {len(records)} outcomes instead of one")
            continue
        outcome, error = records[0]["outcome"], records[0].get("error")
        if outcome in FAILING:
            if cause_of(error) is None:
                problems.append(f"{order.order_id}: rival run {outcome} without naming its cause: {error!r}")
        elif outcome != order.expected and not _lost_the_race(order, outcome):
            problems.append(
                f"{order.order_id}: rival run {outcome}, but {list(order.initial)} -> {order.target} calls "
                f"for {order.expected}"
            )
    return problems


@contextmanager
def _env(name: str, value: str) -> Iterator[None]:
    previous = os.environ.get(name)
    os.environ[name] = value
    try:
        yield
    finally:
        if previous is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = previous


def soak_api(config: SoakConfig) -> GootenApiServer:
    """The local Gooten API of a soak, not started: throttled like a gateway, no faults while it is seeded."""
    from gooten_provider.testing import GootenApiServer

    return GootenApiServer(
        latency=config.latency,
        fault_rate=0.0,  # switched on once the orders are seeded
        seed=config.seed,
        retry_after=config.retry_after,
        slow_seconds=config.slow_seconds,
        rate_limit=config.rate_limit,
        rate_burst=config.rate_burst,
    )


def soak_connection(api: GootenApiServer, config: SoakConfig) -> dict[str, Any]:
    """The Airflow connection (JSON form) of a soak: the running API, the soak's client settings."""
    return {
        "conn_type": "gooten",
        "login": api.recipe_id,
        "password": api.billing_key,
        "host": api.base_url,
        "extra": {
            "timeout": config.timeout,
            "max_retries": config.max_retries,
            "backoff_factor": config.backoff_factor,
        },
    }


def run_under_faults(api: GootenApiServer, config: SoakConfig, work: Callable[[], None]) -> float:
    """Start the soak's API, switch its faults on and run ``work`` with the soak's connection; its seconds.

    The seconds count from the API's start to the end of ``work``. The API has stopped on return: every
    request still sleeping (slow faults) has woken and been journaled.
    """
    started = time.perf_counter()
    with api:
        api.set_fault_rate(config.fault_rate, config.fault_kinds, seed=config.seed)
        with _env(f"AIRFLOW_CONN_{CONN_ID.upper()}", json.dumps(soak_connection(api, config))):
            work()
        seconds = time.perf_counter() - started
    return seconds


#: An operator run of a soak: ``(task_id, order_ids, records)``, the records put into the list.
OperatorRun = Callable[[str, list[str], list[dict[str, Any]]], None]


def run_with_rival(
    run: OperatorRun,
    task_id: str,
    order_ids: list[str],
    into: tuple[list[dict[str, Any]], list[dict[str, Any]]],
    rival: bool,
) -> None:
    """``run`` over ``order_ids`` here, and with ``rival`` a rival run at the same time, in a thread.

    The rival (task ``<task_id>_rival``) takes the same orders in reverse order, as an overlapping DAG run
    would. ``into`` is ``(records, rival's records)``.
    """
    records, rival_records = into
    thread = threading.Thread(target=run, args=(f"{task_id}_rival", order_ids[::-1], rival_records))
    if rival:
        thread.start()
    run(task_id, order_ids, records)
    if rival:
        thread.join()


def run_soak(config: SoakConfig | None = None) -> SoakReport:
    """Seed a local Gooten API, run the operator once per target over its orders, then check everything."""
    from gooten_provider.operators.gooten import GootenOrderStatusOperator

    config = config or SoakConfig()
    report = SoakReport(config=config)
    api = soak_api(config)
    orders = []
    for target, label, statuses in plan_orders(config.orders, config.seed):
        order_id = api.add_order(statuses=list(statuses))["Id"]
        orders.append(SoakOrder(order_id, target, label, statuses, expected_outcome(statuses, target)))
    results: list[dict[str, Any]] = []
    rival_results: list[dict[str, Any]] = []
    task_errors: list[str] = []

    def run_operator(target: str, task_id: str, ids: list[str], into: list[dict[str, Any]]) -> None:
        operator = GootenOrderStatusOperator(
            task_id=task_id,
            order_ids=ids,
            status=target,
            gooten_conn_id=CONN_ID,
            max_workers=config.max_workers,
        )
        execute_recorded(operator, into, task_errors)

    def every_target() -> None:
        for target in TARGETS:
            ids = [order.order_id for order in orders if order.target == target]
            if ids:
                run_with_rival(
                    functools.partial(run_operator, target),
                    f"soak_{target.lower()}",
                    ids,
                    (results, rival_results),
                    config.rival_runs and has_rival(target),
                )

    report.seconds = run_under_faults(api, config, every_target)
    # Stopped: every request still sleeping (slow faults) has woken and been journaled.
    journal = api.journal
    final = {order.order_id: api.item_statuses(order.order_id) for order in orders}
    report.counts, report.problems = check_soak(
        orders, results, journal, final, config, task_errors, rival_results if config.rival_runs else None
    )
    report.counts["rival_outcomes"] = dict(Counter(record["outcome"] for record in rival_results))
    return report


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m bench.soak``: run the soak (2,000 orders by default), print the counts; 1 on a problem."""
    defaults = SoakConfig()
    parser = argparse.ArgumentParser(prog="python -m bench.soak", description=__doc__.splitlines()[0])
    parser.add_argument("--orders", type=int, default=defaults.orders)
    parser.add_argument(
        "--seed", type=int, default=defaults.seed, help="seed of the order mix and the faults"
    )
    parser.add_argument("--seeds", type=int, default=1, help="run this many seeds: seed, seed+1, ...")
    parser.add_argument("--fault-rate", type=float, default=defaults.fault_rate)
    parser.add_argument(
        "--fault-kinds",
        default=",".join(defaults.fault_kinds),
        help="comma-separated fault kinds ('all' for every transport kind, html included)",
    )
    parser.add_argument("--workers", type=int, default=defaults.max_workers)
    parser.add_argument("--timeout", type=float, default=defaults.timeout)
    parser.add_argument("--slow-seconds", type=float, default=defaults.slow_seconds)
    parser.add_argument("--max-retries", type=int, default=defaults.max_retries)
    parser.add_argument("--json", dest="json_path", help="also write the counts and problems to this file")
    parser.add_argument(
        "--record", action="store_true", help="record the results in docs/performance.md and bench/results"
    )
    args = parser.parse_args(argv)
    # A throwaway Airflow home (it keeps the task log), so nothing is read from or written to the user's.
    os.environ["AIRFLOW_HOME"] = tempfile.mkdtemp(prefix="gooten-soak-airflow-home-")
    os.environ["AIRFLOW__CORE__LOAD_EXAMPLES"] = "False"
    if args.fault_kinds == "all":
        from gooten_provider.testing.faults import ALL_FAULT_KINDS

        kinds = tuple(kind.value for kind in ALL_FAULT_KINDS)
    else:
        kinds = tuple(kind.strip() for kind in args.fault_kinds.split(",") if kind.strip())
    from bench.run import when, when_line

    measured = when()
    log_path = os.path.join(os.environ["AIRFLOW_HOME"], "soak-task.log")
    _task_logs_to(log_path)
    print(f"task log lines (warnings and errors): {log_path}", flush=True)
    from bench.soak_cancel import cancel_markdown, run_cancel_soak

    reports = []
    cancel_reports = []
    for offset in range(args.seeds):
        config = SoakConfig(
            orders=args.orders,
            seed=args.seed + offset,
            fault_rate=args.fault_rate,
            fault_kinds=kinds,
            max_workers=args.workers,
            timeout=args.timeout,
            slow_seconds=max(args.slow_seconds, args.timeout * 1.5),
            max_retries=args.max_retries,
        )
        report = run_soak(config)
        reports.append(report)
        print(report.format(), flush=True)
        cancel_reports.append(run_cancel_soak(config))
        print(cancel_reports[-1].format(), flush=True)
    if args.record:
        from bench.run import record

        record(
            "soak",
            f"{when_line(measured)}\n\n{markdown(reports)}\n\n{cancel_markdown(cancel_reports)}",
            {
                "measured": measured,
                "runs": [_as_json(r) for r in reports],
                "cancel_runs": [_as_json(r) for r in cancel_reports],
            },
        )
    if args.json_path:
        with open(args.json_path, "w", encoding="utf-8") as out:
            json.dump([_as_json(r) for r in [*reports, *cancel_reports]], out, indent=2)
    return 0 if all(report.passed for report in [*reports, *cancel_reports]) else 1


def _as_json(report: Any) -> dict[str, Any]:
    return {
        "config": report.config.__dict__,
        "seconds": report.seconds,
        "counts": report.counts,
        "problems": report.problems,
    }


def _task_logs_to(path: str) -> None:
    """Send the operator's and urllib3's log lines (thousands of warnings under faults) to a file."""
    from airflow.sdk.log import configure_logging

    configure_logging(log_level="WARNING", output=open(path, "a", encoding="utf-8"))


if __name__ == "__main__":
    sys.exit(main())
