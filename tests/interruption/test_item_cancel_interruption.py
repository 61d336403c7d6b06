"""An item-cancelling batch killed for real (SIGKILL mid-batch), then a retry that resumes from its results.

The local Gooten API runs in this process, so its journal outlives the killed task: it shows each item
cancelled at most once across both tries, and the orders the first try finished neither read nor sent again.
"""

import signal
import time

import pytest

from gooten_provider.batch.results_reader import attempts, iter_records
from gooten_provider.operators.item_cancel import GootenCancelOrderItemsOperator
from gooten_provider.operators.order_results import read_order_results
from gooten_provider.testing.order_cancel import cancellation_counts, cancellations
from tests.interruption.conftest import one_record_per_order, start_batch_child
from tests.operators.conftest import RecordingTaskInstance


def wait_for_cancellations(api, count, process, timeout=60.0):
    deadline = time.monotonic() + timeout
    while len(cancellation_counts(api.journal)) < count:
        assert process.poll() is None, process.stdout.read()
        assert time.monotonic() < deadline, "the batch did not get going"
        time.sleep(0.01)


def cancelled_orders(api):
    return {entry.order_id for entry in cancellations(api.journal) if entry.cancelled_items}


@pytest.mark.parametrize("kill_after", [4, 60], ids=["early", "mid-batch"])
def test_sigkill_then_the_retry_cancels_each_item_once(slow_api, tmp_path, kill_after):
    ids = [slow_api.add_order(statuses=["Hold", "AddressIssue"])["Id"] for _ in range(100)]
    workers = 4
    results_uri = (tmp_path / "results").as_uri()
    first = start_batch_child(ids, "cancel_items", results_uri, max_workers=workers)
    wait_for_cancellations(slow_api, kill_after, first)  # items: two per order
    first.send_signal(signal.SIGKILL)
    first.wait(10)
    assert first.returncode == -signal.SIGKILL
    time.sleep(0.2)  # the requests the killed try had sent are answered and journaled
    cancelled_by_first = cancelled_orders(slow_api)
    assert kill_after // 2 <= len(cancelled_by_first) < len(ids)
    (first_folder,) = attempts(tmp_path / "results")
    recorded_by_first = {r["order_id"]: r for r in iter_records(first_folder)}
    in_flight = cancelled_by_first - set(recorded_by_first)
    assert len(in_flight) <= workers, "a cancellation whose order had ended had no record: it was not sent"
    counts_by_first = cancellation_counts(slow_api.journal)
    slow_api.clear_journal()

    ti = RecordingTaskInstance()
    ti.try_number = 2
    summary = GootenCancelOrderItemsOperator(
        task_id="cancel", order_ids=ids, results_path=results_uri, max_workers=workers
    ).execute({"ti": ti})

    assert summary["total"] == len(ids)
    assert summary["counts"]["updated"] == len(ids)  # not 'unchanged' for what the first try cancelled
    records = one_record_per_order(read_order_results(summary), ids)
    assert all(r["previous_statuses"] == ["Hold", "AddressIssue"] for r in records.values())
    touched = {entry.order_id for entry in slow_api.journal if entry.order_id}
    sent = {entry.order_id for entry in cancellations(slow_api.journal)}
    assert not touched & set(recorded_by_first), "an order the first try finished was read or sent again"
    assert touched & cancelled_by_first == in_flight, "only the orders whose write was in flight are read"
    assert not sent & cancelled_by_first, "a cancellation of the first try was sent again"
    assert sent == set(ids) - cancelled_by_first
    both = counts_by_first + cancellation_counts(slow_api.journal)
    assert len(both) == 2 * len(ids) and set(both.values()) == {1}, "an item was cancelled twice"
    assert all(slow_api.item_statuses(i) == ["Cancelled", "Cancelled"] for i in ids)
