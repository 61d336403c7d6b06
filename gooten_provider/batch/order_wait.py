"""Waiting for orders to reach a status: the decisions the sensor and its trigger share (no Airflow, no I/O).

Both read every order still pending, then judge the round here, so that a poke on a worker and a poll in
the triggerer succeed, fail and explain themselves the same way.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from gooten_provider.exceptions import (
    GootenApiError,
    GootenAuthenticationError,
    GootenConfigurationError,
    GootenConnectionError,
    GootenHttpError,
    GootenOutcomeUnknownError,
    GootenRateLimitError,
)

#: Transient read failures logged one per line per poke; past this many they are counted.
MAX_LOGGED_TRANSIENT = 10

# Statuses a base URL that answers from the wrong place gives; 408 and 429 are only "not now".
_TEMPORARY_4XX = frozenset({408, 429})


def read_failure_reason(exc: GootenApiError) -> str | None:
    """``None`` when a failed read is worth trying at the next poke; otherwise why waiting is pointless.

    Network trouble, throttling and 5xx answers pass. A 404 or another 4xx, a redirect, refused credentials
    or Gooten's refusal (an unknown order) will not change by waiting: they end the wait at once.
    """
    if isinstance(exc, (GootenConnectionError, GootenRateLimitError, GootenOutcomeUnknownError)):
        return None
    if isinstance(exc, GootenAuthenticationError):
        return "Gooten refused the connection's credentials; waiting will not change that"
    if isinstance(exc, GootenConfigurationError):
        return "the connection is not usable as configured"
    if isinstance(exc, GootenHttpError):
        return _http_failure_reason(exc.status_code)
    return "waiting will not change Gooten's answer"


def _http_failure_reason(code: int | None) -> str | None:
    """Why an HTTP status ends the wait, or ``None`` for one worth trying again (5xx, 408, 429)."""
    if code is None or code >= 500 or code < 300 or code in _TEMPORARY_4XX:
        return None
    if code == 404:
        return (
            "HTTP 404 means no such API path: the connection's host (API base URL) is probably wrong; "
            "Gooten's is https://api.print.io"
        )
    if code < 400:
        return (
            f"HTTP {code} is a redirect, never followed (the request holds credentials): check the "
            "connection's host, its scheme (https://) and path"
        )
    return f"HTTP {code} says the request itself is wrong (host or credentials), not that Gooten is busy"


def failed_orders(
    statuses: Mapping[str, Sequence[str]], failure_statuses: Collection[str]
) -> dict[str, list[str]]:
    """The orders with at least one item in a failure status, with their item statuses."""
    return {
        order_id: list(items)
        for order_id, items in statuses.items()
        if any(status in failure_statuses for status in items)
    }


def is_done(order_id: str, statuses: Mapping[str, Sequence[str]], target_statuses: Collection[str]) -> bool:
    """Whether every item of an order read is in a target status."""
    items = statuses.get(order_id)
    return bool(items) and all(status in target_statuses for status in items or ())


def failure_message(
    failed: Mapping[str, Sequence[str]], failure_statuses: Collection[str], target_statuses: Sequence[str]
) -> str:
    """One line per order that reached a failure status, naming the statuses and what was awaited."""
    lines = []
    for order_id, items in failed.items():
        reached = sorted({status for status in items if status in failure_statuses})
        lines.append(
            f"Gooten order {order_id} reached {', '.join(reached)} (items: {', '.join(items)}) while "
            f"waiting for {', '.join(target_statuses)}."
        )
    return "\n".join(lines)


def read_error_message(errors: Mapping[str, tuple[GootenApiError, str]]) -> str:
    """One line per order whose read failed for good: the error, and why waiting will not help."""
    return "\n".join(f"Order {order_id}: {exc} ({reason})." for order_id, (exc, reason) in errors.items())


@dataclass
class ReadRound:
    """The reads of one poke, sorted: statuses read, failures that end the wait, failures to try again."""

    statuses: dict[str, list[str]] = field(default_factory=dict)
    fatal: dict[str, tuple[GootenApiError, str]] = field(default_factory=dict)
    transient: dict[str, GootenApiError] = field(default_factory=dict)

    @classmethod
    def sort(cls, results: Mapping[str, list[str] | GootenApiError]) -> ReadRound:
        """Sort each order's result (its item statuses, or the error of its read)."""
        round_ = cls()
        for order_id, result in results.items():
            if not isinstance(result, GootenApiError):
                round_.statuses[order_id] = result
            elif (reason := read_failure_reason(result)) is not None:
                round_.fatal[order_id] = (result, reason)
            else:
                round_.transient[order_id] = result
        return round_

    def log_transient(self, log: Any) -> None:
        """Warn about the reads to try again at the next poke: a line each for a few, then a count."""
        for order_id, exc in list(self.transient.items())[:MAX_LOGGED_TRANSIENT]:
            log.warning("Could not read order %s this time, will try again: %s", order_id, exc)
        if len(self.transient) > MAX_LOGGED_TRANSIENT:
            log.warning(
                "... and %d more order(s) could not be read this time.",
                len(self.transient) - MAX_LOGGED_TRANSIENT,
            )
