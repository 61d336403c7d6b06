"""The soak's cancel run: ``GootenCancelOrderItemsOperator`` over orders in every status, under ~20% faults.

Run by ``make soak`` after the status runs (``python -m bench.soak``, 2,000 orders) and by
``tests/soak/test_soak_cancel.py`` (200 orders), with the same faults, throttling and settings
(:class:`bench.soak.SoakConfig`). As the status soak runs one operator per target, the orders are cancelled
in :data:`RUNS` operator runs, one after the other (as successive DAG runs would); each has a rival run
that cancels the same orders, in reverse order, at the same time.

One operator run over all 2,000 orders is much slower under these faults: the injected 429s come at random,
not from a rate, so the client's pacer keeps taking them for a gateway's limit and lowering its pace
(``gooten_provider.client.pacer``), and a long run spends most of its time paced.
:func:`check_cancel_soak` checks:

1. every order has exactly one outcome per run, the one its item statuses call for (``updated``, or
   ``unchanged`` when the rival cancelled it first), or ``failed``/``unknown`` naming its cause;
2. every order reported ``updated`` or ``unchanged`` has every item cancelled in the local API; orders that
   needed nothing (all cancelled, or an item past cancelling) are as they were, and received no
   cancellation at all, not even a refused one;
3. at most 1% of the orders end ``failed``;
4. no item was cancelled twice (the journal's applied cancellations, ``cancellation_counts``), although a
   cancellation whose answer was lost is re-sent after a re-read: Gooten refuses a re-send once the first
   one has landed.
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from bench.soak import (
    CONN_ID,
    FAILING,
    SoakConfig,
    SoakReport,
    cause_of,
    execute_recorded,
    journal_counts,
    markdown_table,
    records_by_order,
    run_under_faults,
    run_with_rival,
    soak_api,
)

#: Operator runs the orders are split into (the status soak runs one per target: four).
RUNS = 4

#: ``(label, item statuses, weight)`` of the orders the cancel run is given.
CANCEL_STATUS_MIX: tuple[tuple[str, tuple[str, ...], int], ...] = (
    ("Hold", ("Hold",), 10),
    ("Hold+Hold", ("Hold", "Hold"), 6),
    ("New", ("New",), 5),
    ("Pending+AddressIssue", ("Pending", "AddressIssue"), 4),
    ("NeedsManualApproval", ("NeedsManualApproval",), 3),
    ("ReadyForAccounting+ImageIssue", ("ReadyForAccounting", "ImageIssue"), 3),
    ("partly cancelled", ("Cancelled", "Hold"), 4),
    ("cancelled", ("Cancelled", "CancelledRefunded"), 4),
    ("InProduction", ("InProduction",), 3),
    ("Shipped", ("Shipped", "Shipped"), 2),
    ("Hold+Shipped", ("Hold", "Shipped"), 3),
    ("Test", ("Test",), 2),
)


@dataclass(frozen=True)
class CancelSoakOrder:
    """One order of the cancel run: its initial item statuses and the outcome they call for."""

    order_id: str
    label: str
    initial: tuple[str, ...]
    expected: str  # "updated", "unchanged" or "ineligible"


@dataclass
class CancelSoakReport(SoakReport):
    """What the cancel run did, and every property that did not hold (none: it passed)."""

    def format(self) -> str:
        """A human-readable summary: counts, then problems (or PASS)."""
        c = self.counts
        lines = [
            f"cancel soak: {self.config.orders} orders, seed {self.config.seed}, fault rate "
            f"{self.config.fault_rate:g}, max_workers {self.config.max_workers}, rival run "
            f"{'on' if self.config.rival_runs else 'off'}, {self.seconds:.1f} s",
            f"  orders by expected outcome: {c.get('expected', {})}",
            f"  outcomes: {c.get('outcomes', {})}; rival run's: {c.get('rival_outcomes', {})}",
            f"  requests: {c.get('requests', 0)}, faults injected: {c.get('faults', 0)} "
            f"({100 * c.get('fault_fraction', 0):.1f}%) {c.get('faults_by_kind', {})}, throttled: "
            f"{c.get('throttled', 0)}",
            f"  cancellations sent: {c.get('sent', 0)}, applied: {c.get('applied', 0)}, refused: "
            f"{c.get('refused', 0)}; items cancelled: {c.get('items_cancelled', 0)}, most times one item "
            f"was cancelled: {c.get('most_cancellations_of_an_item', 0)}",
            f"  failed: {c.get('failed', 0)} (limit {self.config.failure_limit}), unknown: "
            f"{c.get('unknown', 0)}; by cause: {c.get('failed_by_cause', {})}",
        ]
        lines += self.verdict_lines(
            "one outcome per order; cancelled orders cancelled; failures within limit, each with its cause; "
            "no item cancelled twice; nothing sent for orders that needed nothing"
        )
        return "\n".join(lines)


def expected_cancel_outcome(statuses: Sequence[str]) -> str:
    """What cancelling every item calls for: ``unchanged``, ``ineligible`` or ``updated``."""
    from gooten_provider.statuses import CANCELLED_ITEM_STATUSES, ITEM_CANCELLABLE_FROM_STATUSES

    left = [status for status in statuses if status not in CANCELLED_ITEM_STATUSES]
    if not left:
        return "unchanged"
    return "updated" if all(status in ITEM_CANCELLABLE_FROM_STATUSES for status in left) else "ineligible"


def plan_cancel_orders(count: int, seed: int) -> list[tuple[str, tuple[str, ...]]]:
    """``(label, statuses)`` for each order, drawn with the seed."""
    rng = random.Random(seed)
    weights = [weight for _, _, weight in CANCEL_STATUS_MIX]
    return [(label, statuses) for label, statuses, _ in rng.choices(CANCEL_STATUS_MIX, weights, k=count)]


def _one_record(
    order: CancelSoakOrder, records: list[dict[str, Any]], raced: bool, run: str
) -> tuple[str | None, list[str]]:
    """The outcome of one order's records in one run, and what is wrong with them."""
    if len(records) != 1:
        return None, [f"{order.order_id}: {run} gave {len(records)} outcomes instead of exactly one"]
    outcome, error = records[0]["outcome"], records[0].get("error")
    if outcome in FAILING:
        named = cause_of(error) is not None
        return outcome, [] if named else [f"{order.order_id}: {run} {outcome} without a cause: {error!r}"]
    if outcome == order.expected or (raced and order.expected == "updated" and outcome == "unchanged"):
        return outcome, []
    return outcome, [
        f"{order.order_id}: {run} {outcome}, but {list(order.initial)} calls for {order.expected}"
    ]


def _check_order(
    order: CancelSoakOrder,
    outcome: str | None,
    final: list[str],
    sends: list[Any],
    counts: Counter[int],
    items: list[int],
) -> list[str]:
    """The local API's side of one order: its final statuses, what it received, each item once."""
    from gooten_provider.statuses import CANCELLED_ITEM_STATUSES

    problems = []
    if outcome in ("updated", "unchanged") and any(s not in CANCELLED_ITEM_STATUSES for s in final):
        problems.append(f"{order.order_id}: reported {outcome} but the API has {final}")
    if order.expected != "updated" and (final != list(order.initial) or sends):
        problems.append(
            f"{order.order_id}: needed nothing, but went {list(order.initial)} -> {final} after "
            f"{len(sends)} cancellation(s)"
        )
    twice = [item for item in items if counts[item] > 1]
    if twice:
        problems.append(f"{order.order_id}: item(s) {twice} cancelled {[counts[i] for i in twice]} times")
    return problems


def check_cancel_soak(
    orders: Sequence[CancelSoakOrder],
    results: Sequence[dict[str, Any]],
    rival_results: Sequence[dict[str, Any]] | None,
    journal: Sequence[Any],
    final_statuses: dict[str, list[str]],
    item_ids: dict[str, list[int]],
    config: SoakConfig,
) -> tuple[dict[str, Any], list[str]]:
    """Check the cancel run's properties (see the module docstring); return ``(counts, problems)``."""
    from gooten_provider.testing.order_cancel import cancellation_counts, cancellations

    sent = [entry for entry in cancellations(journal) if not entry.throttled]
    sends_by_order: dict[str, list[Any]] = {}
    for entry in sent:
        sends_by_order.setdefault(entry.order_id, []).append(entry)
    counts = cancellation_counts(journal)
    problems: list[str] = []
    outcomes: Counter[str] = Counter()
    failed_by_cause: Counter[str] = Counter()
    runs = [("the run", results)] + ([("the rival run", rival_results)] if rival_results is not None else [])
    by_run = [(name, records_by_order(records)) for name, records in runs]
    for order in orders:
        for name, by_id in by_run:
            outcome, wrong = _one_record(order, by_id.get(order.order_id, []), len(by_run) > 1, name)
            problems += wrong
            if name == "the run" and outcome is not None:
                outcomes[str(outcome)] += 1
                if outcome in FAILING:
                    error = by_id[order.order_id][0].get("error")
                    failed_by_cause[cause_of(error) or "no recognizable cause"] += 1
        final = final_statuses[order.order_id]
        sends = sends_by_order.get(order.order_id, [])
        outcome = _outcome(by_run, order)
        problems += _check_order(order, outcome, final, sends, counts, item_ids[order.order_id])
    limit = int(config.max_failed_fraction * len(orders))
    if outcomes["failed"] > limit:
        problems.append(f"{outcomes['failed']} of {len(orders)} orders failed, more than {limit}")
    summary = {
        "orders": len(orders),
        "expected": dict(Counter(order.expected for order in orders)),
        "outcomes": dict(outcomes),
        **journal_counts(journal),
        "sent": len(sent),
        "applied": sum(1 for entry in sent if entry.cancelled_items),
        "refused": sum(1 for entry in sent if entry.outcome == "ineligible"),
        "items_cancelled": len(counts),
        "most_cancellations_of_an_item": max(counts.values(), default=0),
        "failed": outcomes["failed"],
        "unknown": outcomes["unknown"],
        "failed_by_cause": dict(failed_by_cause),
    }
    return summary, problems


def _outcome(by_run: list[tuple[str, dict[str, list[dict[str, Any]]]]], order: CancelSoakOrder) -> str | None:
    """The main run's outcome of the order, if it gave exactly one."""
    records = by_run[0][1].get(order.order_id, [])
    return records[0]["outcome"] if len(records) == 1 else None


def run_cancel_soak(config: SoakConfig | None = None) -> CancelSoakReport:
    """Seed a local Gooten API, cancel every order's items (with a rival run), then check everything."""
    from gooten_provider.operators.item_cancel import GootenCancelOrderItemsOperator

    config = config or SoakConfig()
    report = CancelSoakReport(config=config)
    api = soak_api(config)
    orders = [
        CancelSoakOrder(
            api.add_order(statuses=list(statuses))["Id"], label, statuses, expected_cancel_outcome(statuses)
        )
        for label, statuses in plan_cancel_orders(config.orders, config.seed)
    ]
    ids = [order.order_id for order in orders]
    results: list[dict[str, Any]] = []
    rival_results: list[dict[str, Any]] = []

    def run_operator(task_id: str, order_ids: list[str], into: list[dict[str, Any]]) -> None:
        operator = GootenCancelOrderItemsOperator(
            task_id=task_id, order_ids=order_ids, gooten_conn_id=CONN_ID, max_workers=config.max_workers
        )
        execute_recorded(operator, into)

    def every_batch() -> None:
        for run in range(RUNS):
            batch = ids[run::RUNS]
            run_with_rival(
                run_operator, f"soak_cancel_{run}", batch, (results, rival_results), config.rival_runs
            )

    report.seconds = run_under_faults(api, config, every_batch)
    # Stopped: every late landing has landed or been refused, and is journaled.
    final = {order_id: api.item_statuses(order_id) for order_id in ids}
    items = {
        order_id: [item["Images"][0]["OrderItemId"] for item in api.order(order_id)["Items"]]
        for order_id in ids
    }
    report.counts, report.problems = check_cancel_soak(
        orders, results, rival_results if config.rival_runs else None, api.journal, final, items, config
    )
    report.counts["rival_outcomes"] = dict(Counter(str(record["outcome"]) for record in rival_results))
    return report


def cancel_markdown(reports: Sequence[CancelSoakReport]) -> str:
    """The cancel runs as Markdown, for docs/performance.md: one row per run."""

    def own_cells(report: CancelSoakReport) -> list[str]:
        counts = report.counts
        return [
            f"{counts.get('sent', 0)} / {counts.get('applied', 0)} / {counts.get('refused', 0)}",
            str(counts.get("most_cancellations_of_an_item", 0)),
        ]

    table = markdown_table(
        reports, ("cancellations sent / applied / refused", "most cancellations of one item"), own_cells
    )
    intro = (
        "Item cancellation (`GootenCancelOrderItemsOperator`, every item of each order, with a rival run):"
    )
    return "\n".join([intro, "", *table])
