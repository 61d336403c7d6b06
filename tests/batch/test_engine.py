"""The batch engine with another action than the status change: what a second kind of write plugs into.

An in-memory "archive" action (no HTTP: the engine has none) whose writes can lose their answer, land or
not: the engine must read first, decide, write once, and settle a lost answer as the action allows.
"""

import threading

import pytest

from gooten_provider.batch.action import Decision, EarlierWrite
from gooten_provider.batch.engine import run_batch
from gooten_provider.batch.order_change import ChangeSettings
from gooten_provider.batch.records import Outcome
from gooten_provider.exceptions import GootenApiError, GootenOutcomeUnknownError

FAST = {"resend_backoff": 0.01, "settle_window": 0.3}


class Archive:
    """Archive an order's items: allowed while every item is "Open"; a lost answer may or may not land."""

    target = "Archived"

    def __init__(self, items, *, resend_is_safe=True, lose=(), lost_lands=True):
        self.items = {order_id: list(statuses) for order_id, statuses in items.items()}
        self.resend_is_safe = resend_is_safe
        self.lose = dict.fromkeys(lose, 1)
        self.lost_lands = lost_lands
        self.applied: dict[str, int] = {}
        self.lock = threading.Lock()

    def read(self, order_id):
        if order_id not in self.items:
            raise GootenApiError(f"order {order_id} not found")
        return list(self.items[order_id])

    def statuses(self, state):
        return list(state)

    def decide(self, state):
        if all(status == "Archived" for status in state):
            return Decision(Outcome.UNCHANGED)
        if any(status != "Open" for status in state):
            return Decision(Outcome.INELIGIBLE, "an item is not Open")
        return Decision(Outcome.UPDATED)

    def write(self, order_id, state):
        with self.lock:
            lost = self.lose.get(order_id, 0) > 0
            if lost:
                self.lose[order_id] -= 1
            if not lost or self.lost_lands:
                self.items[order_id] = ["Archived"] * len(self.items[order_id])
                self.applied[order_id] = self.applied.get(order_id, 0) + 1
        if lost:
            raise GootenOutcomeUnknownError(f"the answer to archiving {order_id} was lost")


def outcomes(records):
    return {record["order_id"]: record["outcome"] for record in records}


def test_each_order_ends_with_one_record_decided_from_what_was_read():
    action = Archive({"a": ["Open", "Open"], "b": ["Archived"], "c": ["Open", "Shipped"]})
    records = run_batch(action, ["a", "b", "c", "missing"], ChangeSettings(reason="why", **FAST))
    assert outcomes(records) == {"a": "updated", "b": "unchanged", "c": "ineligible", "missing": "failed"}
    assert action.applied == {"a": 1}
    assert [r["status"] for r in records] == ["Archived"] * 4
    assert records[0]["previous_statuses"] == ["Open", "Open"] and records[0]["reason"] == "why"
    assert records[2]["error"] == "an item is not Open"
    # printed or logged, a record reads as the JSON it becomes
    assert "'outcome': 'updated'" in repr(records[0])


def test_a_dry_run_writes_nothing_and_says_what_would_happen():
    action = Archive({"a": ["Open"], "c": ["Shipped"]})
    records = run_batch(action, ["a", "c"], ChangeSettings(dry_run=True, **FAST))
    assert [(r["outcome"], r["dry_run_outcome"]) for r in records] == [
        ("dry_run", "updated"),
        ("dry_run", "ineligible"),
    ]
    assert not action.applied


@pytest.mark.parametrize("lands", [True, False], ids=["landed", "never-landed"])
def test_a_lost_answer_is_settled_by_reading_then_resent_only_if_it_did_not_land(lands):
    action = Archive({"a": ["Open"]}, lose=["a"], lost_lands=lands)
    (record,) = run_batch(action, ["a"], ChangeSettings(**FAST))
    assert record["outcome"] == Outcome.UPDATED
    assert action.applied == {"a": 1}  # landed once: never applied a second time


def test_a_lost_answer_that_must_not_be_resent_is_only_read_and_stays_unknown_if_it_never_shows():
    action = Archive({"a": ["Open"]}, resend_is_safe=False, lose=["a"], lost_lands=False)
    (record,) = run_batch(action, ["a"], ChangeSettings(**FAST))
    assert record["outcome"] == Outcome.UNKNOWN
    assert "It was not sent again" in record["error"]
    assert not action.applied


def test_an_earlier_tries_write_that_landed_is_updated_without_a_write():
    action = Archive({"a": ["Archived"]})
    earlier = {"a": EarlierWrite(previous_statuses=("Open",), sent_at=0.0)}
    (record,) = run_batch(action, ["a"], ChangeSettings(**FAST), earlier_writes=earlier)
    assert (record["outcome"], record["previous_statuses"]) == ("updated", ["Open"])
    assert not action.applied
