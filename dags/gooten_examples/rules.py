"""The row-level data-quality rules of ``gooten_dq_hold_cancel``, and how their findings become actions.

Each rule is one SQL query in ``gooten_examples/sql/<rule name>.sql`` returning ``(order_id, reason)``
rows for the orders of the batch that fail it. A rule's action is the Gooten status to reach: ``Hold``
(a person should look at the order) or ``Cancelled`` (the order must not be produced: its items are
cancelled, which works on a held order too). When an order fails rules of both kinds, Cancel wins.

To add a rule: write ``sql/<name>.sql`` returning ``order_id, reason`` and add a :class:`Rule` to
:data:`RULES`; the DAG grows one task for it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

#: The Gooten statuses the rules ask for (Gooten's spelling).
HOLD = "Hold"
CANCEL = "Cancelled"


@dataclass(frozen=True)
class Rule:
    """A row-level rule: its name (task id and audit value), the action it asks for, and what it checks."""

    name: str
    action: str
    description: str

    @property
    def sql_path(self) -> str:
        """The rule's SQL file, relative to the DAG folder (a Jinja template rendered by Airflow)."""
        return f"gooten_examples/sql/{self.name}.sql"


#: Every rule, in the order they are shown.
RULES: tuple[Rule, ...] = (
    Rule("invalid_shipping_address", HOLD, "the shipping address is missing or incomplete"),
    Rule("bad_image_url", HOLD, "an item has no image URL, or one that is not https://"),
    Rule("price_mismatch", HOLD, "item prices do not add up to the order total"),
    Rule("duplicate_submission", CANCEL, "same customer and items submitted twice within a short window"),
    Rule("flagged_test_or_fraud", CANCEL, "the order is flagged as a test order or as suspected fraud"),
)

RULES_BY_NAME: dict[str, Rule] = {rule.name: rule for rule in RULES}


def decide_actions(rule_rows: Mapping[str, Sequence[Sequence[Any]] | None]) -> dict[str, Any]:
    """Turn each rule's failing rows into one action per order; Cancel wins over Hold.

    :param rule_rows: rule name -> the rows its query returned, ``(order_id, reason)`` each (``None``
        is read as no rows).
    :return: ``{"hold": [ids], "cancel": [ids], "findings": {order_id: [{"rule", "action", "reason"}]}}``,
        ids sorted, each order in exactly one of ``hold`` and ``cancel``.
    :raises ValueError: a rule name is unknown, or a row is not ``(order_id, reason)``.
    """
    unknown = sorted(set(rule_rows) - set(RULES_BY_NAME))
    if unknown:
        raise ValueError(f"Unknown rule(s) {', '.join(unknown)}; known: {', '.join(RULES_BY_NAME)}.")
    findings: dict[str, list[dict[str, str]]] = {}
    for rule in RULES:
        for row in rule_rows.get(rule.name) or ():
            if len(row) != 2 or not row[0]:
                raise ValueError(f"Rule {rule.name} must return (order_id, reason) rows, got {row!r}.")
            order_id, reason = str(row[0]).strip(), str(row[1] or rule.description)
            entry = {"rule": rule.name, "action": rule.action, "reason": reason}
            if entry not in findings.setdefault(order_id, []):
                findings[order_id].append(entry)
    cancel = sorted(oid for oid, hits in findings.items() if any(hit["action"] == CANCEL for hit in hits))
    hold = sorted(set(findings) - set(cancel))
    return {"hold": hold, "cancel": cancel, "findings": dict(sorted(findings.items()))}


def seconds_between_sql(start: str, end: str, dialect: str) -> str:
    """Return a SQL expression for the seconds from timestamp column ``start`` to ``end``.

    Date arithmetic is the one thing the rules cannot write portably; add your warehouse here.

    :param dialect: the warehouse connection's type (``sqlite``, ``postgres``, ...).
    :raises ValueError: a dialect this example does not know.
    """
    expressions = {
        "sqlite": f"((julianday({end}) - julianday({start})) * 86400)",
        "postgres": f"EXTRACT(EPOCH FROM ({end} - {start}))",
        "redshift": f"DATEDIFF(second, {start}, {end})",
        "snowflake": f"DATEDIFF(second, {start}, {end})",
        "mysql": f"TIMESTAMPDIFF(SECOND, {start}, {end})",
        "google_cloud_platform": f"TIMESTAMP_DIFF({end}, {start}, SECOND)",
    }
    try:
        return expressions[dialect]
    except KeyError:
        raise ValueError(
            f"No seconds-between expression for a {dialect!r} warehouse; add one to "
            "gooten_examples.rules.seconds_between_sql."
        ) from None


def seconds_between(start: str, end: str) -> str:
    """Jinja macro: :func:`seconds_between_sql` in the dialect of the ``gooten_warehouse`` connection."""
    from airflow.providers.common.compat.sdk import BaseHook

    from gooten_examples.warehouse import WAREHOUSE_CONN_ID

    return seconds_between_sql(start, end, BaseHook.get_connection(WAREHOUSE_CONN_ID).conn_type)
