"""The bounded task log and summary of a batch."""

import logging
from functools import partial

from gooten_provider.batch.records import is_failing
from gooten_provider.batch.report import BatchLog, BatchTally


def record(i, outcome="updated", error=None):
    return {
        "order_id": f"1-{i}",
        "outcome": outcome,
        "previous_statuses": ["New"],
        "status": "Hold",
        "error": error,
        "reason": None,
    }


def test_every_failure_and_the_first_others_are_logged_then_progress_lines(caplog):
    failing = partial(is_failing, fail_on_ineligible=False)
    log = BatchLog(logging.getLogger("batch"), 5000, failing, detail_lines=100, progress_seconds=3600)
    with caplog.at_level(logging.INFO, "batch"):
        for i in range(5000):
            if i % 1000 == 7:
                log.order(record(i, "failed", "Gooten refused it"))
            elif i >= 4990:
                log.order(record(i, "failed", "not attempted: the task was stopped"))
            else:
                log.order(record(i))
        log.finish({"updated": 4985, "failed": 15})
    messages = [r.getMessage() for r in caplog.records]
    assert sum("New -> Hold" in m for m in messages) == 100
    assert sum("Gooten refused it" in m for m in messages) == 5  # every failure
    progress = [m for m in messages if m.startswith("Progress:")]
    assert 8 <= len(progress) <= 10  # every tenth of the batch
    assert progress[0].startswith("Progress: 500 of 5000 order(s) done")
    assert "10 order(s) were not attempted: the task was stopped." in messages
    assert messages[-1] == "Gooten status summary: updated 4985, failed 15."
    assert len(messages) < 130


def test_tally_keeps_counts_and_the_first_failures():
    tally = BatchTally(partial(is_failing, fail_on_ineligible=True), keep_failures=3)
    for i in range(10):
        tally.add(record(i, "ineligible" if i % 2 else "updated"))
    tally.add(record(10, "failed", "not attempted: stopped"))
    summary = tally.summary("file:///r", "attempt-001-x")
    assert summary["total"] == 11
    assert summary["counts"]["ineligible"] == 5 and summary["counts"]["updated"] == 5
    assert [r["order_id"] for r in summary["failed"]] == ["1-1", "1-3", "1-5"]
    assert tally.failures == 6 and tally.not_attempted == 1


def test_unchanged_orders_get_a_line_each_within_the_same_cap(caplog):
    # a rerun: every order already at the target; lines stay bounded whatever the batch size
    log = BatchLog(
        logging.getLogger("batch"),
        1050,
        partial(is_failing, fail_on_ineligible=False),
        detail_lines=100,
        progress_seconds=3600,
    )
    with caplog.at_level(logging.INFO, "batch"):
        for i in range(1050):
            log.order({**record(i, "unchanged"), "previous_statuses": ["Hold"]})
        log.finish({"unchanged": 1050})
    messages = [r.getMessage() for r in caplog.records]
    assert messages[0] == "1-0: Hold, unchanged: already Hold"
    assert sum(", unchanged: already Hold" in m for m in messages) == 100
    assert "950 other order(s) were not logged one by one; their records hold the details." in messages
    assert messages[-1] == "Gooten status summary: unchanged 1050."
    assert len(messages) < 115
