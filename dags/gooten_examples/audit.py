"""The audit table ``gooten_status_audit``: one row per order an example DAG acted on, and per run.

The rows are built from the records ``GootenOrderStatusOperator`` returns (its XCom), so they tell what
Gooten showed before, what was asked, and what happened, including dry runs and failures. The table
lives in the warehouse (connection ``gooten_warehouse``); its DDL is portable.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from gooten_examples.warehouse import insert_records, sql_timestamp
from gooten_provider.batch.records import FAILING_OUTCOMES as OPERATOR_FAILING_OUTCOMES

if TYPE_CHECKING:
    from airflow.providers.common.sql.hooks.sql import DbApiHook

AUDIT_TABLE = "gooten_status_audit"

AUDIT_DDL = f"""
CREATE TABLE IF NOT EXISTS {AUDIT_TABLE} (
    dag_id VARCHAR(250) NOT NULL,
    run_id VARCHAR(250) NOT NULL,
    order_id VARCHAR(64) NOT NULL,
    rules VARCHAR(500),
    action VARCHAR(32) NOT NULL,
    previous_status VARCHAR(200),
    new_status VARCHAR(200),
    outcome VARCHAR(32) NOT NULL,
    detail VARCHAR(2000),
    recorded_at TIMESTAMP NOT NULL
)
"""

#: The columns, in insert order.
AUDIT_COLUMNS: tuple[str, ...] = (
    "dag_id",
    "run_id",
    "order_id",
    "rules",
    "action",
    "previous_status",
    "new_status",
    "outcome",
    "detail",
    "recorded_at",
)

#: Outcome written for an order whose operator task ended without reporting any result.
NOT_ATTEMPTED = "not_attempted"

#: Outcomes that make the run fail once the audit is written.
FAILING_OUTCOMES = OPERATOR_FAILING_OUTCOMES | {NOT_ATTEMPTED}


def status_text(statuses: Sequence[str] | None) -> str | None:
    """Gooten's item statuses as one text: ``New`` for ``["New", "New"]``, ``New, Shipped`` when mixed."""
    if not statuses:
        return None
    return ", ".join(dict.fromkeys(str(status) for status in statuses))


def audit_record(
    result: Mapping[str, Any],
    *,
    dag_id: str,
    run_id: str,
    rules: str | None,
    detail: str | None = None,
    recorded_at: dt.datetime | None = None,
) -> dict[str, Any]:
    """Return one audit row (a dict keyed by :data:`AUDIT_COLUMNS`) for one operator result record.

    ``new_status`` is what Gooten shows after the task: the target when the order was ``updated`` or
    already ``unchanged`` there, the previous status when nothing changed, unknown (``None``) on failure.
    """
    outcome = str(result["outcome"])
    previous = status_text(result.get("previous_statuses"))
    target = result.get("status")
    if outcome in ("updated", "unchanged"):
        new_status = target
    elif outcome in ("ineligible", "dry_run", NOT_ATTEMPTED):
        new_status = previous
    else:
        new_status = None
    notes = [detail] if detail else []
    if outcome == "dry_run" and result.get("dry_run_outcome"):
        notes.append(f"dry run: would be {result['dry_run_outcome']}")
    if result.get("error"):
        notes.append(str(result["error"]))
    return {
        "dag_id": dag_id,
        "run_id": run_id,
        "order_id": str(result["order_id"]),
        "rules": rules,
        "action": str(target),
        "previous_status": previous,
        "new_status": new_status,
        "outcome": outcome,
        "detail": "; ".join(notes)[:2000] or None,
        "recorded_at": sql_timestamp(recorded_at or dt.datetime.now(dt.UTC)),
    }


def missing_results(order_ids: Iterable[str], action: str, task_id: str) -> list[dict[str, Any]]:
    """Operator-shaped records for orders a task was given but never reported on (it failed early)."""
    return [
        {
            "order_id": order_id,
            "outcome": NOT_ATTEMPTED,
            "previous_statuses": [],
            "status": action,
            "error": f"{task_id} reported no result (it failed before changing it; see its log)",
            "reason": None,
        }
        for order_id in order_ids
    ]


def ensure_audit_table(hook: DbApiHook) -> None:
    """Create the audit table if it does not exist yet."""
    hook.run(AUDIT_DDL)


def write_audit(hook: DbApiHook, records: Sequence[Mapping[str, Any]]) -> int:
    """Create the table if needed and insert the rows; return how many were written."""
    ensure_audit_table(hook)
    return insert_records(hook, AUDIT_TABLE, AUDIT_COLUMNS, records)


def count_outcomes(records: Iterable[Mapping[str, Any]]) -> dict[str, int]:
    """Count rows per ``action`` and ``outcome``: ``{"Hold updated": 3, "Cancelled ineligible": 1}``."""
    counts = Counter(f"{record['action']} {record['outcome']}" for record in records)
    return dict(sorted(counts.items()))


def format_table(records: Sequence[Mapping[str, Any]], columns: Sequence[str] | None = None) -> str:
    """Render rows as a plain-text table for task logs (``-`` for empty cells)."""
    columns = list(columns or ("order_id", "rules", "action", "previous_status", "new_status", "outcome"))
    cells = [
        [("-" if record.get(c) in (None, "") else str(record.get(c))) for c in columns] for record in records
    ]
    widths = [max([len(c), *(len(row[i]) for row in cells)]) for i, c in enumerate(columns)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(columns, widths, strict=True)).rstrip()]
    lines.append("  ".join("-" * w for w in widths))
    lines.extend("  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)).rstrip() for row in cells)
    return "\n".join(lines)
