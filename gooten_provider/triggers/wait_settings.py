"""The trigger's kwargs, checked: what the triggerer hands back may not be what the sensor wrote.

The triggerer rebuilds :class:`~gooten_provider.triggers.gooten.GootenOrderStatusTrigger` from JSON kept in
Airflow's database, where anyone with database access (or a migration, or a hand-written trigger row) can
change it. A bad value must end the wait with an ``error`` event that says what was wrong, not with a raw
``ValueError`` in the triggerer or a wait that never ends (``end_time`` NaN compares false to every time).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields
from typing import Any

from gooten_provider.order_ids import normalize_order_id

# Problems named one by one in the error; past this many they are counted (10,000 bad ids stay one line).
_MAX_NAMED_PROBLEMS = 5


@dataclass(frozen=True)
class WaitSettings:
    """What the trigger waits for, every value checked (see :class:`GootenOrderStatusTrigger`)."""

    order_ids: list[str]
    target_statuses: list[str]
    failure_statuses: list[str]
    gooten_conn_id: str
    poke_interval: float
    end_time: float
    max_concurrency: int
    known_statuses: dict[str, list[str]]
    not_before: float | None
    rate_limit_conn_id: str | None = None

    @classmethod
    def from_kwargs(cls, given: Mapping[str, Any]) -> WaitSettings:
        """Check the trigger's kwargs as given.

        :raises ValueError: every problem found (the first few named, the rest counted).
        """
        problems: list[str] = []
        unknown = sorted(set(given) - {field.name for field in fields(cls)})
        if unknown:
            problems.append(f"unknown kwarg(s) {', '.join(repr(name[:40]) for name in unknown)}")
        order_ids = _order_ids(given["order_ids"], problems)
        settings = cls(
            order_ids=order_ids,
            target_statuses=_names(given, "target_statuses", problems, allow_empty=False),
            failure_statuses=_names(given, "failure_statuses", problems, allow_empty=True),
            gooten_conn_id=_conn_id(given["gooten_conn_id"], problems),
            poke_interval=_seconds(given["poke_interval"], "poke_interval", problems, positive=True),
            end_time=_seconds(given["end_time"], "end_time", problems, positive=False),
            max_concurrency=_whole_number(given["max_concurrency"], problems),
            known_statuses=_known_statuses(given["known_statuses"], set(order_ids), problems),
            not_before=None
            if given["not_before"] is None
            else _seconds(given["not_before"], "not_before", problems, positive=False),
            rate_limit_conn_id=_optional_conn_id(given.get("rate_limit_conn_id"), problems),
        )
        if problems:
            shown = "; ".join(problems[:_MAX_NAMED_PROBLEMS])
            more = len(problems) - _MAX_NAMED_PROBLEMS
            raise ValueError(shown + (f"; and {more} more problem(s)" if more > 0 else "") + ".")
        return settings

    def to_kwargs(self) -> dict[str, Any]:
        """JSON-safe kwargs that :meth:`from_kwargs` reads back to the same settings."""
        return {
            "order_ids": list(self.order_ids),
            "target_statuses": list(self.target_statuses),
            "failure_statuses": list(self.failure_statuses),
            "gooten_conn_id": self.gooten_conn_id,
            "poke_interval": self.poke_interval,
            "end_time": self.end_time,
            "max_concurrency": self.max_concurrency,
            "known_statuses": {k: list(v) for k, v in self.known_statuses.items()},
            "not_before": self.not_before,
            "rate_limit_conn_id": self.rate_limit_conn_id,
        }


def _is_list(value: object) -> bool:
    return isinstance(value, Sequence) and not isinstance(value, (str, bytes))


def _order_ids(value: object, problems: list[str]) -> list[str]:
    if not _is_list(value) or not value:
        problems.append(f"order_ids must be a non-empty list of order ids, got {_short(value)}")
        return []
    checked = []
    for item in value:  # type: ignore[attr-defined]  # a Sequence, checked above
        try:
            checked.append(normalize_order_id(item))
        except ValueError as exc:
            problems.append(f"order_ids: {str(exc).rstrip('.')}")
    return checked


def _names(given: Mapping[str, Any], what: str, problems: list[str], *, allow_empty: bool) -> list[str]:
    value = given[what]
    if not _is_list(value) or not all(isinstance(n, str) and n.strip() for n in value):
        problems.append(f"{what} must be a list of Gooten status names, got {_short(value)}")
        return []
    if not value and not allow_empty:
        problems.append(f"{what} is empty: the trigger needs at least one status to wait for")
    return list(value)


def _conn_id(value: object, problems: list[str]) -> str:
    if isinstance(value, str) and value.strip():
        return value
    problems.append(f"gooten_conn_id must be a connection id, got {_short(value)}")
    return ""


def _optional_conn_id(value: object, problems: list[str]) -> str | None:
    if value is None or isinstance(value, str):  # None: the Gooten connection's extra; "": no shared pace
        return value
    problems.append(f"rate_limit_conn_id must be a connection id or null, got {_short(value)}")
    return None


def _seconds(value: object, what: str, problems: list[str], *, positive: bool) -> float:
    is_number = isinstance(value, (int, float)) and not isinstance(value, bool)
    if is_number and math.isfinite(value) and (value > 0 or not positive):  # type: ignore[arg-type,operator]
        return float(value)  # type: ignore[arg-type]
    allowed = "a positive, finite number of seconds" if positive else "a finite number of seconds"
    if what in ("end_time", "not_before"):
        allowed += " since the epoch"
    problems.append(f"{what} must be {allowed}, got {_short(value)}")
    return 0.0


def _whole_number(value: object, problems: list[str]) -> int:
    if isinstance(value, int) and not isinstance(value, bool) and value >= 1:
        return value
    problems.append(f"max_concurrency must be a whole number of at least 1, got {_short(value)}")
    return 1


def _known_statuses(value: object, order_ids: set[str], problems: list[str]) -> dict[str, list[str]]:
    if value is None:
        return {}
    if isinstance(value, Mapping) and all(
        isinstance(k, str) and _is_list(v) and all(isinstance(s, str) for s in v) for k, v in value.items()
    ):
        return {k: list(v) for k, v in value.items() if k in order_ids}
    problems.append(f"known_statuses must map order ids to lists of item statuses, got {_short(value)}")
    return {}


def _short(value: object) -> str:
    """The value's repr, cut to a readable length, and its type."""
    shown = repr(value)
    if len(shown) > 80:
        shown = shown[:77] + "..."
    return f"{shown} ({type(value).__name__})"
