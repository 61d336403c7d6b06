"""The cancel run of the fault soak at 200 orders (``make soak`` runs 2,000), and a check it must not miss.

The run and its checks live in ``bench/soak_cancel.py``, shared with ``make soak``; the settings are the
status soak's (``CONFIG`` of ``tests/soak/__init__.py``: 5 retries, see ``tests/soak/test_soak.py``).
"""

from __future__ import annotations

from bench.soak import SoakConfig
from bench.soak_cancel import run_cancel_soak
from gooten_provider.batch.action import Decision
from gooten_provider.batch.item_cancel import ItemCancellation
from gooten_provider.batch.records import Outcome

from . import CONFIG, passed_under_every_fault


def test_200_orders_under_20_percent_faults_end_with_one_outcome_each_and_no_item_cancelled_twice():
    counts = passed_under_every_fault(run_cancel_soak(CONFIG))

    assert sum(counts["rival_outcomes"].values()) == 200  # the rival run recorded every order too
    assert counts["most_cancellations_of_an_item"] == 1
    assert counts["refused"] > 0  # re-sends (or the rival's sends) refused after a landing: never applied


def test_the_soak_catches_cancellations_sent_to_orders_that_needed_none(monkeypatch):
    # an action that sends every item whatever the order reads: orders cancelled already or past
    # cancelling get a PUT (which Gooten refuses, but which must never be sent)
    def send_every_item(self, order_id, state):
        items = [item.item_id for item in state.items]
        self.api.send_item_cancellation(state.gooten_id, items, order_id=order_id)

    monkeypatch.setattr(ItemCancellation, "decide", lambda self, state: Decision(Outcome.UPDATED))
    monkeypatch.setattr(ItemCancellation, "write", send_every_item)
    report = run_cancel_soak(SoakConfig(orders=40, fault_rate=0.0, rival_runs=False))

    assert any("needed nothing" in problem for problem in report.problems), report.format()
